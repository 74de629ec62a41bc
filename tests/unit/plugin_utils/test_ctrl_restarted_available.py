"""A pod that restarted is available only once it outlived the first crash-loop back-off (issue 14: a crash-looping
DaemonSet pod, up for moments between back-offs, was reported available)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.pods import RESTARTED_READY_SECONDS, ObservedPod, is_available

NOW = 1_000_000.0


def pod(ready_since, restart_count, ready=True, phase="Running"):
    return ObservedPod("p", "n1", "r1", phase, ready, ready_since, created=NOW - 3600, restart_count=restart_count)


def test_a_restarted_pod_up_for_moments_is_not_available():
    assert not is_available(pod(NOW - 2.5, 1), 0, NOW)
    assert is_available(pod(NOW - RESTARTED_READY_SECONDS, 1), 0, NOW)
    # Never restarted: available as soon as ready (minReadySeconds 0), as in Kubernetes.
    assert is_available(pod(NOW - 0.1, 0), 0, NOW)
    # A longer minReadySeconds still rules.
    assert not is_available(pod(NOW - 20, 3), 30, NOW) and is_available(pod(NOW - 30, 3), 30, NOW)


@given(
    ready_for=st.integers(0, 100).map(float),
    restarts=st.integers(0, 50),
    min_ready=st.integers(0, 60),
    ready=st.booleans(),
    phase=st.sampled_from(["Pending", "Running", "Succeeded", "Failed", "Unknown"]),
)
def test_available_property(ready_for, restarts, min_ready, ready, phase):
    needed = max(min_ready, RESTARTED_READY_SECONDS) if restarts else min_ready
    expected = phase == "Running" and ready and ready_for >= needed
    assert is_available(pod(NOW - ready_for, restarts, ready, phase), min_ready, NOW) == expected
