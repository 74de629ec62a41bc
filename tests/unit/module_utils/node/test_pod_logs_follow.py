"""pod_logs' follow is bounded (issue 11 item 13): inf crashed the node module (OverflowError), a large value hung the task."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.hostfleet.workloads.plugins.module_utils.node import events

COLLECTIONS_ROOT = os.path.abspath(os.path.join(os.path.dirname(events.__file__), *[".."] * 6))


def run_module(tmp_path, **args):
    """The pod_logs module as Ansible runs it on a node (its JSON arguments file), with a pod record on that node."""
    state = tmp_path / "state"
    (state / "pods" / "web-1").mkdir(parents=True)
    (state / "pods" / "web-1" / "pod.json").write_text(json.dumps({"name": "web-1", "spec": {"containers": [{"name": "main"}]}}))
    (tmp_path / "args.json").write_text(json.dumps({"ANSIBLE_MODULE_ARGS": dict({"pod": "web-1", "state_dir": str(state)}, **args)}))
    done = subprocess.run(
        [sys.executable, "-m", "ansible_collections.hostfleet.workloads.plugins.modules.pod_logs", str(tmp_path / "args.json")],
        capture_output=True, text=True, timeout=60, env=dict(os.environ, PYTHONPATH=COLLECTIONS_ROOT), check=False,
    )
    return json.loads(done.stdout)


@pytest.mark.parametrize("follow", [math.inf, -math.inf, math.nan, -1, 3600.5, 1e12])
def test_the_node_module_refuses_a_follow_out_of_bounds_naming_it(tmp_path, follow):
    result = run_module(tmp_path, follow=follow)
    assert result.get("failed") and result["msg"].startswith("follow: must be a number of seconds from 0 to 3600"), result


@pytest.mark.parametrize("follow", [0, 0.5, 3600])
def test_follow_within_bounds_is_seconds(follow):
    assert events.follow_seconds(follow) == float(follow)


@given(st.floats(allow_nan=True, allow_infinity=True) | st.integers())
def test_property_follow_is_accepted_only_in_0_to_3600(value):
    try:
        seconds = events.follow_seconds(value)
    except events.EventError as exc:
        assert str(exc).startswith("follow: ")
        assert not (math.isfinite(value) and 0 <= value <= events.MAX_FOLLOW)
    else:
        assert 0 <= seconds <= events.MAX_FOLLOW


@pytest.mark.parametrize("since", [math.inf, math.nan, -1.0])
def test_a_duration_that_is_not_finite_is_refused(since):
    with pytest.raises(events.EventError, match="finite number of seconds"):
        events.parse_duration(since)


@pytest.mark.parametrize(
    "args, field",
    [({"pod": "../web-1"}, "pod"), ({"container": "main/x"}, "container"), ({"state_dir": "state/../x"}, "state_dir"), ({"state_dir": "/a/../b"}, "state_dir")],
)
def test_the_node_module_checks_names_and_state_dir_as_its_action_does(tmp_path, args, field):
    result = run_module(tmp_path, **args)
    assert result.get("failed") and result["msg"].startswith(f"invalid argument: {field}: "), result
