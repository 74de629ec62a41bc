"""Services on the control side (issue 14) over the lab's 3 real hosts: the service task writes the same Service file
(stable cluster IP and node ports, endpoints from every reachable node) to every host; bad specs change nothing; a
host lost leaves every other host's file at the next run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab import labctl

NAME = "svc-it"
STATE_DIR = "/var/lib/hostfleet"
SERVICES = f"{STATE_DIR}/network/services"
CLUSTER_NETWORK = Path(__file__).resolve().parents[2] / "plugins" / "modules" / "cluster_network.py"
PORT = 18080


def node_json(index, hosts):
    """A node.json as the cluster_network task writes it (module_utils/network/config.py), for labs without that task."""

    def entry(i):
        return {"node": f"node{i}", "node_index": i, "address": f"10.77.{labctl.instance()}.1{i}", "cidr": f"10.244.{i}.0/24", "gateway": f"10.244.{i}.1"}

    peers = [dict(entry(i), via="direct") for i in range(1, len(hosts) + 1) if i != index]
    return dict(entry(index), schema=1, cluster_cidr="10.244.0.0/16", bridge="hf0", service_cidr="10.96.0.0/12", cluster_domain="cluster.local",
                dns_ip=f"10.244.{index}.1", peers=peers)


def set_up_network(lab):
    if CLUSTER_NETWORK.exists():
        run = lab.run([{"name": "net", "hostfleet.workloads.cluster_network": {}, "run_once": True}])
        assert run.rc == 0, run.stdout[-3000:]
        return
    for i, host in enumerate(lab.hosts, start=1):
        text = json.dumps(node_json(i, lab.hosts))
        lab.ssh(host, f"mkdir -p {STATE_DIR}/network && cat > {STATE_DIR}/network/node.json <<'EOF'\n{text}\nEOF")


def tear_down_network(lab):
    """Pods started later by other tests on this lab stay on the host's network, as before this module."""
    if CLUSTER_NETWORK.exists():
        run = lab.run([{"name": "net", "hostfleet.workloads.cluster_network": {"state": "absent"}, "run_once": True}])
        assert run.rc == 0, run.stdout[-3000:]
    for host in lab.hosts:
        lab.ssh(host, f"rm -f {STATE_DIR}/network/node.json")


def daemonset(lab, state="present"):
    args = {"name": NAME, "state": state, "wait_timeout": 120}
    if state == "present":
        args["template"] = {
            "metadata": {"labels": {"app": NAME}},
            "spec": {
                # On the host's network: its endpoints are the hosts' addresses (pod-network pods: unit-tested).
                "hostNetwork": True,
                "terminationGracePeriodSeconds": 1,
                "containers": [{
                    "name": "main",
                    "command": ["/bin/sleep", "infinity"],
                    "ports": [{"name": "http", "containerPort": PORT}],
                    "readinessProbe": {"exec": {"command": ["/bin/true"]}, "periodSeconds": 1},
                }],
            },
        }
    run = lab.run([{"name": "ds", "hostfleet.workloads.daemonset": args, "run_once": True}])
    assert run.rc == 0, run.stdout[-3000:]


def service(lab, spec=None, state="present", name=NAME, check=False, diff=False, env=None):
    args = {"name": name, "state": state}
    if spec is not None:
        args["spec"] = spec
    run = lab.run([{"name": "svc", "hostfleet.workloads.service": args, "run_once": True}], check=check, diff=diff, env=env)
    return run, run.result("svc", lab.hosts[0])


def held(lab, host, name=NAME):
    """The Service file the host holds, or None."""
    out = lab.ssh(host, f"cat {SERVICES}/default.{name}.json 2>/dev/null", check=False).stdout
    return json.loads(out) if out.strip() else None


def snapshot(lab):
    return {host: lab.ssh(host, f"cd {SERVICES} 2>/dev/null && sha256sum * 2>/dev/null; true").stdout for host in lab.hosts}


SPEC = {"selector": {"app": NAME}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}


@pytest.fixture(scope="module")
def fleet(lab):
    set_up_network(lab)
    for name in (NAME, f"{NAME}-np"):
        service(lab, state="absent", name=name)
    daemonset(lab)
    yield lab
    for name in (NAME, f"{NAME}-np"):
        service(lab, state="absent", name=name)
    daemonset(lab, state="absent")
    tear_down_network(lab)


def test_create_rerun_check_diff_and_delete(fleet):
    run, res = service(fleet, SPEC)
    assert run.rc == 0 and res["changed"] is True, run.stdout[-3000:]
    ip = res["cluster_ip"]
    assert ip.startswith("10.") and int(ip.split(".")[1]) in range(96, 112), ip
    addresses = {host: f"10.77.{labctl.instance()}.1{i}" for i, host in enumerate(fleet.hosts, start=1)}
    assert [(e["node"], e["ip"], e["ready"], e["ports"]) for e in res["endpoints"]] == [(h, addresses[h], True, {"http": PORT}) for h in fleet.hosts]
    files = {host: held(fleet, host) for host in fleet.hosts}
    assert all(f == res["service"] for f in files.values()), files
    assert files["node1"]["cluster_ip"] == ip and files["node1"]["ports"][0]["target_port"] == "http"
    # workload_info lists it as `kubectl get svc,endpoints`.
    info = fleet.run([{"name": "info", "hostfleet.workloads.workload_info": {}, "run_once": True}]).result("info", fleet.hosts[0])
    (listed,) = [s for s in info["services"] if s["name"] == NAME]
    assert listed["cluster_ip"] == ip and listed["ready_addresses"] == [f"{addresses[h]}:{PORT}" for h in fleet.hosts], listed
    assert any(line.split()[:5] == [f"service/{NAME}", "ClusterIP", ip, "<none>", "80/TCP"] for line in info["table"]), info["table"]

    run, res = service(fleet, SPEC)
    assert run.rc == 0 and res["changed"] is False and res["cluster_ip"] == ip, run.stdout[-3000:]

    changed = dict(SPEC, ports=[{"name": "http", "port": 8080, "targetPort": "http"}])
    before = snapshot(fleet)
    run, res = service(fleet, changed, check=True, diff=True)
    assert run.rc == 0 and res["changed"] is True and res["cluster_ip"] == ip, run.stdout[-3000:]
    assert '"port": 80,' in res["diff"]["before"] and '"port": 8080,' in res["diff"]["after"]
    assert snapshot(fleet) == before, "check mode wrote a file"

    run, res = service(fleet, state="absent")
    assert run.rc == 0 and res["changed"] is True and sorted(res["nodes"]) == fleet.hosts, run.stdout[-3000:]
    assert all(held(fleet, host) is None for host in fleet.hosts)
    run, res = service(fleet, state="absent")
    assert run.rc == 0 and res["changed"] is False


def test_node_ports_and_cluster_ips_are_stable_and_explicit_ones_honoured(fleet):
    ports = [{"name": "http", "port": 80, "targetPort": PORT}, {"name": "b", "port": 81, "nodePort": 31081}]
    spec = {"type": "NodePort", "selector": {"app": NAME}, "ports": ports}
    run, res = service(fleet, spec, name=f"{NAME}-np")
    assert run.rc == 0, run.stdout[-3000:]
    first = res["service"]
    node_ports = [p["node_port"] for p in first["ports"]]
    assert 30000 <= node_ports[0] <= 32767 and node_ports[1] == 31081
    run, res = service(fleet, spec, name=f"{NAME}-np")
    assert run.rc == 0 and res["changed"] is False and res["service"] == first
    # Kept from the hosts' files, not recomputed: the node port asked for before stays when no longer asked for.
    run, res = service(fleet, dict(spec, ports=[spec["ports"][0], {"name": "b", "port": 81}]), name=f"{NAME}-np")
    assert run.rc == 0 and res["changed"] is False and res["service"] == first, run.stdout[-3000:]
    # Another Service cannot take its address or its node port: refused naming the field, nothing written.
    before = snapshot(fleet)
    run, res = service(fleet, {"clusterIP": first["cluster_ip"], "ports": [{"port": 80}]})
    assert run.rc != 0 and "spec.clusterIP" in res["msg"] and "already allocated" in res["msg"], res
    run, res = service(fleet, {"type": "NodePort", "ports": [{"port": 80, "nodePort": 31081}]})
    assert run.rc != 0 and "spec.ports[0].nodePort" in res["msg"], res
    assert snapshot(fleet) == before


@pytest.mark.parametrize(
    ("name", "spec", "field"),
    [
        (NAME, {"ports": [{"port": 70000}]}, "spec.ports[0].port"),
        (NAME, {"ports": [{"port": 80}], "sessionAfinity": "None"}, "spec.sessionAfinity"),
        ("Not_A_Label", {"ports": [{"port": 80}]}, "name"),
    ],
)
def test_a_bad_spec_fails_naming_the_field_and_changes_nothing(fleet, name, spec, field):
    before = snapshot(fleet)
    run, res = service(fleet, spec, name=name)
    assert run.rc != 0 and res.get("field") == field and field in res["msg"], res
    assert snapshot(fleet) == before


@pytest.mark.slow
def test_a_lost_hosts_endpoints_leave_every_other_hosts_file_at_the_next_run(fleet):
    run, res = service(fleet, SPEC)
    assert run.rc == 0 and [e["node"] for e in res["endpoints"]] == fleet.hosts, run.stdout[-3000:]
    ip = res["cluster_ip"]
    no_mux = {"ANSIBLE_SSH_ARGS": "-o ControlMaster=no"}
    labctl.stop("node3")
    try:
        run, res = service(fleet, SPEC, env=no_mux)
        assert run.rc == 0 and res["changed"] is True and "node3" in res["unreachable_nodes"], run.stdout[-3000:]
        assert res["cluster_ip"] == ip
        for host in ("node1", "node2"):
            assert [e["node"] for e in held(fleet, host)["endpoints"]] == ["node1", "node2"]
    finally:
        labctl.start("node3")
    # Back: its pod (a DaemonSet's, restarted by systemd at boot) is an endpoint again, its stale copy replaced.
    run, res = service(fleet, SPEC, env=no_mux)
    assert run.rc == 0 and res["cluster_ip"] == ip, run.stdout[-3000:]
    assert held(fleet, "node3") == held(fleet, "node1") == res["service"]
