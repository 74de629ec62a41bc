"""network/sync.py: the hostfleet-net script (installed standalone, lock, apply only when changed) and the pod hook
running it on every readiness transition (issue 14 item 2).

nft is replaced by a recording stand-in on PATH: what the sync hands it is the table (test_nftables.py loads real
ones into the kernel).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from ansible_collections.hostfleet.workloads.plugins.module_utils.network import dns, sync
from ansible_collections.hostfleet.workloads.plugins.module_utils.node import hook, podspec

NODE = {
    "schema": 1,
    "node": "node1",
    "node_index": 1,
    "address": "10.77.4.11",
    "cluster_cidr": "10.244.0.0/16",
    "cidr": "10.244.1.0/24",
    "gateway": "10.244.1.1",
    "bridge": "hf0",
    "service_cidr": "10.96.0.0/12",
    "cluster_domain": "cluster.local",
    "dns_ip": "10.244.1.1",
    "peers": [{"node": "node2", "node_index": 2, "address": "10.77.4.12", "cidr": "10.244.2.0/24", "gateway": "10.244.2.1", "via": "direct"}],
}
SERVICE = {
    "schema": 1, "namespace": "default", "name": "web", "type": "ClusterIP", "cluster_ip": "10.96.0.12",
    "ports": [{"name": "http", "protocol": "TCP", "port": 80, "target_port": "http", "node_port": None}],
    "selector": {"app": "web"}, "publish_not_ready_addresses": False,
    "endpoints": [{"pod": "b", "node": "node2", "node_index": 2, "ip": "10.244.2.5", "ready": True, "hostname": None, "subdomain": None,
                   "ports": {"http": 8080}}],
}
FAKE_NFT = """#!/bin/sh
# Records each ruleset it is given (one file per call), as nft -f - would load it.
n=$(ls "$NFT_LOG" | wc -l)
cat > "$NFT_LOG/$n.nft"
exit "${NFT_EXIT:-0}"
"""


@pytest.fixture
def node(tmp_path, monkeypatch):
    """A node of the cluster network: node.json, one Service, pod 'web' (container main) on the pod network."""
    state, run = tmp_path / "state", tmp_path / "run"
    (state / "network" / "services").mkdir(parents=True)
    (state / "network" / "node.json").write_text(json.dumps(NODE))
    (state / "network" / "services" / "default.web.json").write_text(json.dumps(SERVICE))
    fake = tmp_path / "fakebin"
    fake.mkdir()
    (fake / "nft").write_text(FAKE_NFT)
    (fake / "nft").chmod(0o755)
    log = tmp_path / "nft-log"
    log.mkdir()
    monkeypatch.setenv("NFT_LOG", str(log))
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    monkeypatch.setattr(hook, "RUN_DIR", str(run / "pods"))

    class Node:
        pass

    n = Node()
    n.state, n.run, n.log = state, run, log

    def add_pod(name="web", ip="10.244.1.5", **container):
        raw = {"containers": [dict({"name": "main", "command": ["/bin/sleep", "inf"], "ports": [{"name": "http", "containerPort": 8080}]}, **container)]}
        record = {"name": name, "labels": {"app": "web"}, "spec": podspec.validate_pod_spec(raw, pod_network=True),
                  "network": {"ip": ip, "cidr": "10.244.1.0/24", "prefix": 24, "gateway": "10.244.1.1", "bridge": "hf0"}}
        (state / "pods" / name).mkdir(parents=True, exist_ok=True)
        (state / "pods" / name / "pod.json").write_text(json.dumps(record))

    def loads():
        return [(log / f"{i}.nft").read_text() for i in range(len(os.listdir(log)))]

    n.add_pod, n.loads = add_pod, loads
    return n


def serves(text, ip="10.244.1.5"):
    return f"dnat to {ip}:8080" in text


def test_sync_applies_only_what_changed_and_is_cheap_otherwise(node):
    node.add_pod()
    rdir = node.run / "pods" / "web" / "main"
    rdir.mkdir(parents=True)
    (rdir / "status.json").write_text(json.dumps({"running": True}))
    first = sync.sync(str(node.state), str(node.run))
    assert first["nftables_changed"] and first["problems"] == []
    assert len(node.loads()) == 1 and serves(node.loads()[0])
    start = time.perf_counter()
    for _attempt in range(20):
        again = sync.sync(str(node.state), str(node.run))
    per_call = (time.perf_counter() - start) / 20
    assert again == {"changed": False, "nftables_changed": False, "dns_changed": False, "problems": []}
    assert len(node.loads()) == 1  # no nft call at all when nothing changed
    print(f"no-op sync: {per_call * 1000:.2f} ms")
    assert per_call < 0.25
    (rdir / "status.json").write_text(json.dumps({"running": False}))
    assert sync.sync(str(node.state), str(node.run))["nftables_changed"]
    assert len(node.loads()) == 2 and not serves(node.loads()[1])


def test_a_refused_ruleset_is_retried_by_the_next_sync(node, monkeypatch):
    monkeypatch.setenv("NFT_EXIT", "1")
    with pytest.raises(RuntimeError):
        sync.sync(str(node.state), str(node.run))
    monkeypatch.setenv("NFT_EXIT", "0")
    assert sync.sync(str(node.state), str(node.run))["nftables_changed"]


def test_without_node_json_there_is_nothing_to_do(tmp_path):
    assert sync.sync(str(tmp_path), str(tmp_path / "run"))["skipped"] == "no node.json"
    assert not (tmp_path / "network").exists()


def test_live_readiness_from_the_hooks_files(node):
    node.add_pod("plain")
    node.add_pod("probed", ip="10.244.1.6", readinessProbe={"tcpSocket": {"port": 8080}})
    node.add_pod("starting", ip="10.244.1.7", startupProbe={"tcpSocket": {"port": 8080}})
    for name in ("plain", "probed", "starting"):
        (node.run / "pods" / name / "main").mkdir(parents=True)
        (node.run / "pods" / name / "main" / "status.json").write_text(json.dumps({"running": True}))
    pods = {p["pod"]: p for p in sync.local_pods(str(node.state), NODE, str(node.run))}
    assert {name: (p["running"], p["ready"]) for name, p in pods.items()} == {"plain": (True, True), "probed": (True, False), "starting": (True, False)}
    (node.run / "pods" / "probed" / "main" / "ready").write_text("{}")
    (node.run / "pods" / "starting" / "main" / "startup_ok").write_text("{}")
    pods = {p["pod"]: p for p in sync.local_pods(str(node.state), NODE, str(node.run))}
    assert all(p["ready"] for p in pods.values()) and pods["probed"]["ip"] == "10.244.1.6" and pods["plain"]["namespace"] == "default"
    (node.run / "pods" / "plain" / "main" / "status.json").write_text(json.dumps({"running": True, "fenced": {"reason": "NodeFenced"}}))
    assert not {p["pod"]: p for p in sync.local_pods(str(node.state), NODE, str(node.run))}["plain"]["ready"]


def test_the_installed_script_runs_standalone(node, tmp_path):
    assert sync.install_script(str(node.state), sys.executable) is True
    assert sync.install_script(str(node.state), "/other/python") is False  # the same content, whoever installs it
    script = sync.script_path(str(node.state))
    assert os.access(script, os.X_OK)
    node.add_pod()
    # -I -S and another working directory: nothing of the collection is importable but what the script carries.
    done = subprocess.run([sys.executable, "-I", "-S", script, "sync", str(node.state), str(node.run)], capture_output=True, text=True, cwd=str(tmp_path),
                          check=False, env={"PATH": os.environ["PATH"], "NFT_LOG": os.environ["NFT_LOG"]})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["nftables_changed"] is True
    assert "table ip hostfleet {" in node.loads()[0]
    # The DNS records follow too (dns.refresh through the script).
    assert "10.96.0.12 web.default.svc.cluster.local" in (node.state / "network" / dns.DNS_DIR / dns.HOSTS_DIR / dns.SERVICES_FILE).read_text()
    bad = subprocess.run([sys.executable, "-I", "-S", script, "sync"], capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "usage" in bad.stderr


# ------------------------------------------------------------------------------------------------ the hook


@pytest.fixture
def hooked(node, monkeypatch):
    """The real hook with the real installed script; probes scripted."""
    sync.install_script(str(node.state), sys.executable)
    outcomes = []
    monkeypatch.setattr(hook, "run_handler", lambda *args, **kwargs: outcomes.pop(0))
    monkeypatch.setattr(hook.time, "sleep", lambda _seconds: None)
    node.outcomes = outcomes
    return node


def test_the_hook_moves_a_pod_in_and_out_of_level_2_on_each_transition(hooked, monkeypatch):
    state = str(hooked.state)
    hooked.add_pod(readinessProbe={"tcpSocket": {"port": 8080}, "failureThreshold": 1})
    hook.cmd_pre(state, "web", "main")
    hook.cmd_post(state, "web", "main")  # running, not ready yet
    assert len(hooked.loads()) == 1 and not serves(hooked.loads()[-1])
    hooked.outcomes.append(True)
    hook.cmd_probe(state, "web", "main", "readiness")
    assert len(hooked.loads()) == 2 and serves(hooked.loads()[-1])
    hooked.outcomes.append(True)
    hook.cmd_probe(state, "web", "main", "readiness")  # still ready: no transition, nothing loaded
    assert len(hooked.loads()) == 2
    hooked.outcomes.append(False)
    hook.cmd_probe(state, "web", "main", "readiness")  # unready
    assert len(hooked.loads()) == 3 and not serves(hooked.loads()[-1])
    hooked.outcomes.append(True)
    hook.cmd_probe(state, "web", "main", "readiness")
    assert serves(hooked.loads()[-1])
    monkeypatch.setenv("EXIT_CODE", "killed")
    monkeypatch.setenv("EXIT_STATUS", "KILL")
    monkeypatch.setenv("SERVICE_RESULT", "signal")
    hook.cmd_exited(state, "web", "main")  # kill -9
    assert len(hooked.loads()) == 5 and not serves(hooked.loads()[-1])


def test_a_pod_without_probes_is_served_from_its_start(hooked, monkeypatch):
    state = str(hooked.state)
    hooked.add_pod()
    hook.cmd_pre(state, "web", "main")
    assert hooked.loads() == []  # nothing was running: no transition
    hook.cmd_post(state, "web", "main")
    assert serves(hooked.loads()[-1])
    monkeypatch.setenv("EXIT_CODE", "exited")
    monkeypatch.setenv("EXIT_STATUS", "1")
    monkeypatch.setenv("SERVICE_RESULT", "exit-code")
    hook.cmd_exited(state, "web", "main")
    assert not serves(hooked.loads()[-1])


def test_the_startup_probe_holds_readiness_until_it_succeeds(hooked):
    state = str(hooked.state)
    hooked.add_pod(startupProbe={"tcpSocket": {"port": 8080}})
    hook.cmd_post(state, "web", "main")
    assert not serves(hooked.loads()[-1])
    hooked.outcomes.append(True)
    hook.cmd_probe(state, "web", "main", "startup")
    assert serves(hooked.loads()[-1])


def test_the_hook_does_nothing_without_the_cluster_network(hooked):
    os.unlink(hooked.state / "network" / "node.json")
    hooked.add_pod()
    hook.cmd_post(str(hooked.state), "web", "main")
    assert hooked.loads() == []


def test_a_failing_sync_does_not_stop_the_container(hooked, monkeypatch, capsys):
    monkeypatch.setenv("NFT_EXIT", "1")
    hooked.add_pod()
    hook.cmd_post(str(hooked.state), "web", "main")  # no exception
    assert "network sync" in capsys.readouterr().err
    assert json.loads((hooked.run / "pods" / "web" / "main" / "status.json").read_text())["running"] is True


def test_the_tasks_sync_loads_the_table_again_when_the_kernel_lost_it(node, tmp_path):
    """A table removed behind our back (nft flush ruleset) comes back at the next task's sync; the hook's does not
    look (it trusts its record, to stay cheap)."""
    node.add_pod()
    assert sync.run_sync(str(node.state), str(node.run))["nftables_changed"]
    loads = len(node.loads())
    # The stand-in says the table is there: nothing to load.
    assert not sync.run_sync(str(node.state), str(node.run))["nftables_changed"]
    # Now it says it is gone (nft list fails): the task's sync loads it again, the hook's sync does not.
    fake = tmp_path / "fakebin" / "nft"
    fake.write_text(FAKE_NFT.replace('n=$(ls', 'if [ "$1" = list ]; then exit 1; fi\nn=$(ls'))
    assert not sync.sync(str(node.state), str(node.run))["nftables_changed"]
    assert sync.run_sync(str(node.state), str(node.run))["nftables_changed"]
    assert node.loads()[-1] == node.loads()[loads - 1]
