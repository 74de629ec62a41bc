"""The node's fence of pods after a long absence (fence.py, issue 12 item 3): the pure rule, the heartbeat's file, and
converge's lifting of the fence for the pods a run keeps. The real thing is tests/integration/test_faults_node.py."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st
from node_helpers import MAIN, validated

from ansible_collections.hostfleet.workloads.plugins.module_utils.node import converge, fence

PY = "/usr/bin/python3"
BOOT = 1_000_000.0


@given(st.floats(0, 1e6), st.floats(0, 1e6), st.sampled_from(["Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "Pod"]))
def test_fenced_only_replaceable_pods_of_before_the_boot_away_longer_than_the_timeout(away, timeout, kind):
    before = fence.fence_reason(kind, BOOT - 1, BOOT, BOOT - away, timeout)
    assert fence.fence_reason(kind, BOOT, BOOT, BOOT - away, timeout) is None  # created in this boot by a run
    assert fence.fence_reason(kind, BOOT + 5, BOOT, BOOT - away, timeout) is None
    if kind == "StatefulSet":
        assert before is not None  # an identity never runs twice, whatever the timing
    elif kind in ("Deployment", "ReplicaSet"):
        assert (before is not None) == (BOOT - (BOOT - away) > timeout)  # away as the host's clock tells it
    else:
        assert before is None  # never replaced elsewhere
    assert fence.fence_reason("Deployment", BOOT - 1, BOOT, None, timeout) is None  # no heartbeat known (older node layer)


def test_heartbeat_keeps_the_last_beat_of_the_previous_boot():
    first = fence.next_heartbeat(None, "b1", 10.0)
    assert fence.last_beat_before(first, "b1") is None
    later = fence.next_heartbeat(fence.next_heartbeat(first, "b1", 15.0), "b1", 20.0)
    assert later["at"] == 20.0 and fence.last_beat_before(later, "b2") == 20.0  # read in the next boot before its first beat
    rebooted = fence.next_heartbeat(later, "b2", 100.0)
    assert fence.last_beat_before(rebooted, "b2") == 20.0
    assert fence.last_beat_before(fence.next_heartbeat(rebooted, "b2", 105.0), "b2") == 20.0
    assert fence.last_beat_before(rebooted, None) == 100.0  # no token of this boot: no beat of this boot either
    assert fence.last_beat_before("junk", "b2") is None and fence.next_heartbeat("junk", "b1", 1.0)["previous"] is None


@pytest.mark.parametrize(
    ("record", "timeout"), [(None, 40.0), ({"fleet": {"grace": 5}}, 5.0), ({"fleet": {"grace": True}}, 40.0), ({"fleet": {"grace": -1}}, 40.0)]
)
def test_eviction_timeout_is_the_grace_the_last_run_stored(record, timeout):
    assert fence.eviction_timeout(record) == timeout


def test_boot_time_is_in_the_past():
    import time

    assert 0 < fence.boot_time() <= time.time()


@pytest.fixture
def host(tmp_path):
    return converge.Host(str(tmp_path / "state"), unit_dir=str(tmp_path / "units"), wants_dir=str(tmp_path / "wants"), run_dir=str(tmp_path / "run"))


def raw_pod(name):
    return {"name": name, "labels": {"app": "x"}, "spec": {"containers": [dict(MAIN)]}}


def test_a_run_keeping_a_held_pod_lifts_its_fence_and_starts_it_one_it_removes_stays_down(host, monkeypatch):
    created = converge.plan(host, "Deployment", "web", validated(raw_pod("a"), raw_pod("b")), "present", PY)
    for path, (content, _mode) in created.writes.items():
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            handle.write(content)
    for pod in ("a", "b"):  # what the hook wrote when it held them at boot
        os.makedirs(host.runtime_dir(pod, "main"))
        with open(os.path.join(host.runtime_dir(pod, "main"), "status.json"), "w") as handle:
            json.dump({"fenced": {"reason": "NodeFenced", "message": "away"}}, handle)
    # This boot began after the pods were created and 100 s after the last heartbeat (timeout 40 s).
    created_at = json.loads(created.writes[host.record_path("a")][0])["created"]
    monkeypatch.setattr(fence, "boot_time", lambda: created_at + 200)
    os.makedirs(os.path.dirname(fence.heartbeat_path(host.state_dir)))
    with open(fence.heartbeat_path(host.state_dir), "w") as handle:
        json.dump({"boot": "old", "at": created_at + 100}, handle)
    assert fence.pod_fence(host.state_dir, "a", host.run_dir)
    step = converge.plan(host, "Deployment", "web", [], "present", PY, prune=False, remove=["b"])
    assert step.unfence == ["a"] and step.deleted == ["b"]
    assert "hf-a.main.service" in step.start_units and ("a", "main") in step.reset_runtime and "a" in step.started
    assert "hf-b.main.service" not in step.start_units and step.changed
    fence.unfence("a", host.run_dir)
    assert fence.pod_fence(host.state_dir, "a", host.run_dir) is None
    assert converge.plan(host, "Deployment", "web", [], "present", PY, prune=False, remove=["b"]).unfence == []
