"""workload_info reports each pod's status.podIP and status.hostIP as its node reported them (issue 14)."""

from __future__ import annotations

from ansible_collections.hostfleet.workloads.plugins.action import workload_info as wi


def report(**extra):
    return dict({"name": "web-1", "phase": "Running", "ready": True, "created": 100.0, "containers": [{"name": "main", "ready": True}]}, **extra)


def test_pod_view_carries_pod_and_host_ip():
    view = wi.pod_view(report(pod_ip="10.244.1.5", host_ip="10.77.3.11"), "node1", 0.0, {}, 200.0)
    assert (view["pod_ip"], view["host_ip"]) == ("10.244.1.5", "10.77.3.11")
    # A node without a cluster network (or of an older version) reports neither.
    assert (wi.pod_view(report(), "node1", 0.0, {}, 200.0)["pod_ip"], wi.pod_view(report(), "node1", 0.0, {}, 200.0)["host_ip"]) == (None, None)
