"""Issue 14's acceptance on the lab: a three-tier app from one unchanged multi-document manifest (pod network,
Services, cluster DNS), and a Service's virtual IP answering from every host through a rolling update with
maxUnavailable 0, an endpoint turning unready and a kill -9 of an endpoint (tests/integration/service_sampler.py;
the long run is benchmarks/bench_service.py)."""

from __future__ import annotations

import ipaddress
import json
import time
from pathlib import Path

import pytest

from integration.service_sampler import PORT, ServiceSampler, service_manifest
from lab import labctl

# Judged against budgets and latencies: one at a time, with the other `timing` tests (tests/lab/xdist_groups.py).
pytestmark = pytest.mark.xdist_group("timing")

MANIFEST = Path(__file__).resolve().parent / "manifests" / "three_tier.yml"
STATE_DIR = "/var/lib/hostfleet"
SMOKE = "svc-smoke"
PROBE_PERIOD = 1.0  # the sampler pods' readiness probe (failureThreshold 1)


def network_tasks():
    """The cluster network on every host of the play (node CIDRs, routes, the sync, DNS)."""
    return [{"name": "network", "hostfleet.workloads.cluster_network": {}, "run_once": True}]


def apply_task(name, state="present", **source):
    return {"name": name, "hostfleet.workloads.apply": dict(source, state=state, wait_timeout=240), "run_once": True}


def service_file(lab, name, namespace="default", host=None):
    """The Service as the hosts hold it (network/services/<namespace>.<name>.json)."""
    text = lab.ssh(host or lab.hosts[0], f"cat {STATE_DIR}/network/services/{namespace}.{name}.json").stdout
    return json.loads(text)


def running_pods(lab, prefix, container):
    """{pod: host} of the pods whose container unit hf-<pod>.<container>.service runs."""
    found = {}
    for host in lab.hosts:
        units = lab.ssh(host, f"systemctl list-units 'hf-{prefix}*.{container}.service' --state=running --no-legend --plain | cut -d' ' -f1").stdout.split()
        for unit in units:
            found[unit[len("hf-") : -len(f".{container}.service")]] = host
    return found


def pod_ip(lab, host, pod):
    return json.loads(lab.ssh(host, f"cat {STATE_DIR}/pods/{pod}/pod.json").stdout)["network"]["ip"]


def pod_ips(lab, pods):
    """{pod: its address} from the pod records on each pod's host (one SSH round trip per host)."""
    found = {}
    for host in sorted(set(pods.values())):
        names = " ".join(pod for pod, on in pods.items() if on == host)
        read = f"import json, sys; print(json.dumps({{p: json.load(open('{STATE_DIR}/pods/' + p + '/pod.json'))['network']['ip'] for p in sys.argv[1:]}}))"
        found.update(json.loads(lab.ssh(host, f'python3 -c "{read}" {names}').stdout))
    return found


def get_json(lab, host, url, times=1):
    """The JSON answers of ``times`` GETs of ``url`` from ``host`` (one SSH round trip)."""
    lines = lab.ssh(host, f"for i in $(seq {times}); do curl -sS --fail --max-time 10 {url}; echo; done").stdout.splitlines()
    answers = [json.loads(line) for line in lines if line.strip()]
    assert len(answers) == times, lines
    return answers if times > 1 else answers[0]


@pytest.fixture(scope="module")
def cluster(lab):
    def clean():
        lab.run([apply_task("remove", state="absent", src=str(MANIFEST)), apply_task("remove smoke", state="absent", definition=service_manifest(SMOKE, 3))])
        for host in lab.hosts:
            lab.ssh(host, f"rm -rf {STATE_DIR}/volumes/data-store-*", check=False)

    run = lab.run(network_tasks())
    assert run.rc == 0, run.stdout[-4000:] + run.stderr[-2000:]
    clean()
    yield lab
    clean()
    # The other tests of this lab expect pods on their hosts' network, as before.
    lab.run([{"name": "network off", "hostfleet.workloads.cluster_network": {"state": "absent"}, "run_once": True}])


def test_three_tier_app_from_one_unchanged_manifest(cluster):
    lab = cluster
    run = lab.run([apply_task("apply", src=str(MANIFEST))])
    assert run.rc == 0, run.stdout[-6000:] + run.stderr[-2000:]
    result = run.result("apply", lab.hosts[0])
    assert sorted((o["kind"], o["name"]) for o in result["objects"]) == [
        ("ConfigMap", "three-tier"),
        ("Deployment", "backend"),
        ("Deployment", "frontend"),
        ("Service", "backend"),
        ("Service", "frontend"),
        ("Service", "store"),
        ("StatefulSet", "store"),
    ]

    # Six replicas of a port-80 server on three hosts: two per host, each on its own address.
    frontends = running_pods(lab, "frontend-", "web")
    assert sorted(frontends.values()) == sorted(lab.hosts * 2), frontends
    addresses = pod_ips(lab, frontends)
    assert len(set(addresses.values())) == 6, addresses
    assert all(ipaddress.ip_address(ip) in ipaddress.ip_network("10.244.0.0/16") for ip in addresses.values()), addresses

    frontend, backend, store = service_file(lab, "frontend"), service_file(lab, "backend"), service_file(lab, "store")
    assert frontend["type"] == "NodePort" and frontend["ports"][0]["node_port"] == 30080, frontend
    assert ipaddress.ip_address(backend["cluster_ip"]) in ipaddress.ip_network("10.96.0.0/12"), backend
    assert store["cluster_ip"] is None, store  # headless
    assert len([e for e in frontend["endpoints"] if e["ready"]]) == 6, frontend["endpoints"]

    # From every host, the frontend's virtual IP: the frontend reached the backend by its Service name and the store
    # as store-0.store (both through the pods' cluster DNS), and the answers came from pods on different hosts.
    answered_on = set()
    for host in lab.hosts:
        for answer in get_json(lab, host, f"http://{frontend['cluster_ip']}:80/", times=8):
            assert answer["backend"].get("greeting") == "hello from the backend", answer
            assert answer["backend"]["backend"].startswith("backend-"), answer
            assert answer["store"] == {"store": "store-0", "ip": answer["store"]["ip"], "value": "written by store-0"}, answer
            assert answer["frontend"] in frontends, answer
            assert answer["ip"] == addresses[answer["frontend"]], answer  # status.podIP through the downward API
            answered_on.add(frontends[answer["frontend"]])
    assert len(answered_on) >= 2, answered_on
    # The NodePort on each host's address, asked from another host.
    for name, address in labctl.hosts():
        if name in lab.hosts:
            asker = lab.hosts[1] if name == lab.hosts[0] else lab.hosts[0]
            assert get_json(lab, asker, f"http://{address}:30080/")["frontend"] in frontends

    again = lab.run([apply_task("again", src=str(MANIFEST))])
    assert again.rc == 0, again.stdout[-4000:]
    assert again.result("again", lab.hosts[0])["changed"] is False, [o["name"] for o in again.result("again", lab.hosts[0])["objects"] if o["changed"]]


def test_service_vip_answers_from_every_host_through_rolling_update_unready_and_kill_9(cluster):
    lab = cluster
    first = lab.run([apply_task("v1", definition=service_manifest(SMOKE, 3, "v1"))])
    assert first.rc == 0, first.stdout[-4000:] + first.stderr[-2000:]
    vip = service_file(lab, SMOKE)["cluster_ip"]

    with ServiceSampler(lab.hosts, vip, PORT) as sampler:
        rolled_from = time.time()
        roll = lab.run([apply_task("v2", definition=service_manifest(SMOKE, 3, "v2"))])
        assert roll.rc == 0, roll.stdout[-4000:] + roll.stderr[-2000:]
        rolled_at = time.time()
        time.sleep(2)

        # One endpoint turns unready (its probe fails from the next period on): no host sends it traffic after
        # probe period + 1 s.
        pods = running_pods(lab, f"{SMOKE}-", "main")
        unready_pod, unready_host = sorted(pods.items())[0]
        address = pod_ip(lab, unready_host, unready_pod)
        unready_at = float(lab.ssh(unready_host, f"date +%s.%N; curl -sS --max-time 3 http://{address}:{PORT}/unready >/dev/null").stdout.split()[0])
        time.sleep(PROBE_PERIOD + 4)
        lab.ssh(unready_host, f"curl -sS --max-time 3 http://{address}:{PORT}/ready >/dev/null")
        time.sleep(3)

        # kill -9 of another endpoint (its restart waits 5 s before it listens again): no host keeps sending it
        # connections (failures) after probe period + 1 s.
        killed_pod, killed_host = sorted(pods.items())[1]
        killed_at = float(lab.ssh(killed_host, f"date +%s.%N; systemctl kill -s KILL hf-{killed_pod}.main.service").stdout.split()[0])
        time.sleep(6)
    report = sampler.report

    rolling = report.part(rolled_from, rolled_at + 2)
    rolling.assert_success(0.999, window=5.0)
    assert set(report.part(rolled_at + 1, unready_at).answered_by()) <= set(pods), report.part(rolled_at + 1, unready_at).answered_by()
    assert {r.version for r in report.between(rolled_at + 1, unready_at)} == {"v2"}

    unready_tail = report.last_answer_by(unready_pod, unready_at, horizon=PROBE_PERIOD + 4)
    assert all(t is None or t <= PROBE_PERIOD + 1 for t in unready_tail.values()), (unready_tail, report.summary())
    report.part(unready_at, killed_at).assert_success(0.999, window=PROBE_PERIOD + 4)

    dead_tail = report.last_failure_after(killed_at, horizon=5)
    assert all(t <= PROBE_PERIOD + 1 for t in dead_tail.values()), (dead_tail, report.summary())

    # The cluster network off and on again, the Service unchanged: every host has its rules back (the sync's record
    # of what it had loaded went with the table).
    off = lab.run([{"name": "off", "hostfleet.workloads.cluster_network": {"state": "absent"}, "run_once": True}] + network_tasks())
    assert off.rc == 0, off.stdout[-4000:] + off.stderr[-2000:]
    for host in lab.hosts:
        answer = get_json(lab, host, f"http://{vip}:{PORT}/")
        assert answer["pod"] in running_pods(lab, f"{SMOKE}-", "main"), answer
