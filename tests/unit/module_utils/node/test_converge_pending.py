"""A converge that fails half-way is finished by the next one (issue 12, item 7).

converge.apply journals the starts, restarts and reload of its plan before writing the unit and environment files and
drops the journal once systemctl did them all; converge.plan puts back what the journal holds (carry_over, pure).
systemctl is recorded, not run (this machine's PID 1 is not systemd); the real thing is
tests/integration/test_faults_node.py::test_a_half_failed_converge_is_finished_by_the_next.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st
from node_helpers import MAIN, validated

from ansible_collections.hostfleet.workloads.plugins.module_utils.node import converge, systemctl

PY = "/usr/bin/python3"


@pytest.fixture
def host(tmp_path):
    return converge.Host(str(tmp_path / "state"), unit_dir=str(tmp_path / "units"), wants_dir=str(tmp_path / "wants"), run_dir=str(tmp_path / "run"))


def plan(host, *pods):
    return converge.plan(host, "Deployment", "web", validated(*pods), "present", PY, prune=False)


def raw_pod(name, *args):
    return {"name": name, "labels": {"app": "x"}, "spec": {"containers": [dict(MAIN, args=list(args))]}}


class Systemctl:
    """Records the calls; the verbs in ``failing`` fail once each (a transient D-Bus error)."""

    def __init__(self, monkeypatch):
        self.calls = []
        self.failing = set()
        monkeypatch.setattr(systemctl, "_run", self.run)

    def run(self, args, check=True):
        self.calls.append(tuple(args))
        if args[0] in self.failing and check:
            self.failing.discard(args[0])
            raise systemctl.SystemctlError(f"systemctl {args[0]} failed (1): Failed to connect to bus: Connection refused")
        return 0, "", ""

    def verbs(self):
        return [c for c in self.calls if c[0] in ("start", "restart")]


@pytest.mark.parametrize("failing", ["start", "restart", "daemon-reload"])
def test_what_a_failed_apply_wrote_is_applied_by_the_next_converge(host, monkeypatch, failing):
    sysctl = Systemctl(monkeypatch)
    converge.apply(host, plan(host, raw_pod("a", "old")))
    sysctl.calls.clear()
    # One call: pod a gets new args (a restart), pod b is new (a start); one verb fails.
    sysctl.failing.add(failing)
    first = plan(host, raw_pod("a", "new"), raw_pod("b"))
    with pytest.raises(systemctl.SystemctlError):
        converge.apply(host, first)
    assert os.path.exists(first.pending_path)
    if failing == "start":  # the restart of the same call still ran
        assert ("restart", "--no-block", "hf-a.main.service") in sysctl.calls
    sysctl.calls.clear()
    # The files are new already: without the journal this plan was empty and a kept its old args.
    second = plan(host, raw_pod("a", "new"), raw_pod("b"))
    assert second.writes == {} or set(second.writes) == {host.record_path("b")}
    assert "hf-a.main.service" in second.restart_units and "hf-b.main.service" in second.start_units
    assert second.changed and "a" in second.updated
    assert second.reload  # journaled with the files: whether or not the failed call got to it, once more is harmless
    converge.apply(host, second)
    assert ("restart", "--no-block", "hf-a.main.service") in sysctl.calls
    assert not os.path.exists(second.pending_path)
    # Done: nothing more to do.
    third = plan(host, raw_pod("a", "new"), raw_pod("b"))
    assert not third.changed and third.start_units == set() and third.restart_units == set()


def test_a_journaled_pod_that_is_removed_meanwhile_is_forgotten(host, monkeypatch):
    sysctl = Systemctl(monkeypatch)
    converge.apply(host, plan(host, raw_pod("a", "old")))
    sysctl.failing.add("restart")
    with pytest.raises(systemctl.SystemctlError):
        converge.apply(host, plan(host, raw_pod("a", "new")))
    gone = converge.plan(host, "Deployment", "web", [], "present", PY, prune=True)
    assert gone.deleted == ["a"] and gone.restart_units == set() and gone.start_units == set()
    converge.apply(host, gone)
    assert not os.path.exists(gone.pending_path)


def test_a_successful_apply_leaves_no_journal(host, monkeypatch):
    Systemctl(monkeypatch)
    result = plan(host, raw_pod("a"))
    converge.apply(host, result)
    assert not os.path.exists(result.pending_path)


UNITS = [f"hf-{p}.{c}.service" for p in ("a", "b", "c") for c in ("main", "side")] + ["hf-a.main.readiness.timer"]


@given(
    kept=st.sets(st.sampled_from(UNITS)),
    start=st.sets(st.sampled_from(UNITS)),
    restart=st.sets(st.sampled_from(UNITS)),
    planned_start=st.sets(st.sampled_from(UNITS)),
    planned_restart=st.sets(st.sampled_from(UNITS)),
    reload=st.booleans(),
)
def test_carry_over_adds_exactly_the_journaled_units_that_stay(kept, start, restart, planned_start, planned_restart, reload):
    result = converge.Plan()
    result.start_units, result.restart_units = set(planned_start), set(planned_restart)
    converge.carry_over(result, {"start": sorted(start), "restart": sorted(restart), "reload": reload, "reset": []}, kept)
    # Nothing planned is lost, nothing gone is touched, everything journaled that stays is (re)started.
    assert planned_start <= result.start_units and planned_restart <= result.restart_units
    assert result.start_units - planned_start <= kept and result.restart_units - planned_restart <= kept
    assert (start | restart) & kept <= result.start_units | result.restart_units
    # A journaled start stays a start (a unit that never ran is started, not restarted).
    assert not (result.restart_units - planned_restart) & (start | planned_start)
    assert result.resumed == bool(((start | restart) & kept) - planned_start - planned_restart or (reload and kept))
    if result.resumed:
        assert result.changed
    touched = {converge.render.parse_unit_name(u)[0] for u in ((start | restart) & kept) - planned_start - planned_restart}
    assert touched <= set(result.updated) | set(result.started)
