"""A pod the converge deletes leaves the Service rules before its containers are stopped (issue 14): else a rolling
update behind a Service refuses the connections that reach an old pod between its SIGTERM and its hook's sync."""

from __future__ import annotations

import json
import os

from node_helpers import MAIN, write_plan

from ansible_collections.hostfleet.workloads.plugins.module_utils.network import config, sync
from ansible_collections.hostfleet.workloads.plugins.module_utils.node import converge, podnet, podspec

PY = "/usr/bin/python3"
NETWORK = podnet.validate_config({"cidr": "10.244.3.0/24"})
NODE = {
    "schema": config.SCHEMA, "node": "node1", "node_index": 3, "address": "10.77.3.11", "cluster_cidr": "10.244.0.0/16", "cidr": "10.244.3.0/24",
    "gateway": "10.244.3.1", "bridge": "hf0", "service_cidr": "10.96.0.0/12", "cluster_domain": "cluster.local", "dns_ip": "10.244.3.1", "peers": [],
}


def raw(name):
    return podspec.validate_pod({"name": name, "labels": {"app": "web"}, "spec": {"containers": [dict(MAIN)]}}, "pods[0]")


def test_a_deleted_pod_is_out_of_the_rules_before_its_units_stop(tmp_path, monkeypatch):
    host = converge.Host(str(tmp_path / "state"), unit_dir=str(tmp_path / "units"), wants_dir=str(tmp_path / "wants"), run_dir=str(tmp_path / "run"))
    os.makedirs(config.network_dir(host.state_dir))
    with open(config.node_config_path(host.state_dir), "w") as handle:
        json.dump(NODE, handle)
    write_plan(host, converge.plan(host, "Deployment", "web", [raw("old"), raw("new")], "present", PY, network=NETWORK, host_ip=NODE["address"]))
    for name in ("old", "new"):  # both running (no readiness probe: ready while running)
        os.makedirs(host.runtime_dir(name, "main"), exist_ok=True)
        with open(os.path.join(host.runtime_dir(name, "main"), "status.json"), "w") as handle:
            json.dump({"running": True}, handle)

    calls = []

    def ready_now():
        return {p["pod"]: p["ready"] for p in sync.local_pods(host.state_dir, NODE, host.run_dir)}

    monkeypatch.setattr(converge.network_sync, "run_sync", lambda state_dir, run_dir=None: calls.append(("sync", ready_now())) or {"problems": []})
    monkeypatch.setattr(converge.systemctl, "stop", lambda units: calls.append(("stop", sorted(units))))
    for verb in ("start", "restart", "reset_failed"):
        monkeypatch.setattr(converge.systemctl, verb, lambda units: None)
    monkeypatch.setattr(converge.systemctl, "daemon_reload", lambda: None)

    result = converge.plan(host, "Deployment", "web", [raw("new")], "present", PY, network=NETWORK, host_ip=NODE["address"])
    assert result.deleted == ["old"] and "hf-old.main.service" in result.stop_units
    converge.apply(host, result)

    stop = next(i for i, call in enumerate(calls) if call[0] == "stop")
    # Before the stop: a sync that no longer counts the old pod as ready, and still the new one.
    assert ("sync", {"old": False, "new": True}) in calls[:stop], calls
    # After: the pod's record is gone, the last sync has the new pod only.
    assert calls[-1] == ("sync", {"new": True}), calls


def test_the_terminating_mark_makes_a_running_container_unready(tmp_path):
    rdir = tmp_path / "web" / "main"
    rdir.mkdir(parents=True)
    (rdir / "status.json").write_text(json.dumps({"running": True}))
    (rdir / "ready").write_text("{}")
    probed = {"name": "main", "readinessProbe": {"tcpSocket": {"port": 80}}}
    assert sync.container_ready(str(rdir), probed) == (True, True)
    assert sync.container_ready(str(rdir), {"name": "main"}) == (True, True)
    (rdir / sync.TERMINATING).write_text("")
    assert sync.container_ready(str(rdir), probed) == (True, False)
    assert sync.container_ready(str(rdir), {"name": "main"}) == (True, False)
