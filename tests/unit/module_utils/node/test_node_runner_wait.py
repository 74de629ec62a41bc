"""When the pod module's wait may stop: ready, or a finish the pod's restartPolicy keeps.

A container the converge just restarted is "terminated" between its stop and its start; with restartPolicy Always a
wait that stopped there returned the pod not ready (seen on the lab: test_pod_network's changed CIDR, now and then).
"""

from __future__ import annotations

import pytest

from ansible_collections.hostfleet.workloads.plugins.module_utils.node import runner


def pod(phase, ready=False):
    return {"name": "a", "phase": phase, "ready": ready}


@pytest.mark.parametrize(
    ("policy", "phase", "settled"),
    [
        ("Always", "Failed", False),  # the moment between a restart's stop and start
        ("Always", "Succeeded", False),
        ("OnFailure", "Failed", False),  # it will run again
        ("OnFailure", "Succeeded", True),
        ("Never", "Failed", True),
        ("Never", "Succeeded", True),
        (None, "Failed", True),  # a pod the call did not send: any finish, as before
        ("Always", "Running", False),
        ("Always", "Pending", False),
    ],
)
def test_a_wait_stops_at_a_finish_the_restart_policy_keeps(policy, phase, settled):
    assert runner._settled(pod(phase), policy) is settled
    assert runner._settled(pod(phase, ready=True), policy) is True
