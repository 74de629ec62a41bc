"""Cluster DNS on the lab's 3 real hosts (issue 14 item 3): dnsmasq on every host (hostfleet-dns.service, installed
by cluster_network), Kubernetes' resolv.conf in the pods. Names are resolved INSIDE pods (their mount and network
namespaces, entered with nsenter), by the pod's own glibc resolver: the search path and ndots:5 do the rest."""

from __future__ import annotations

import json
import time

import pytest

from lab import labctl
from lab.images import build_images

# The cluster network, a Deployment, a StatefulSet and two Services are set up once (about 100 s), then each test is seconds.
pytestmark = pytest.mark.slow

STATE_DIR = "/var/lib/hostfleet"
PROBE = {"periodSeconds": 1, "failureThreshold": 1, "successThreshold": 1}
# getaddrinfo inside a pod: the sorted IPv4 addresses of each name, or the error (NXDOMAIN: "Name or service not known").
RESOLVE = (
    "import json, socket, sys\n"
    "out = {}\n"
    "for name in sys.argv[1:]:\n"
    "    try:\n"
    "        out[name] = sorted({a[4][0] for a in socket.getaddrinfo(name, None, socket.AF_INET)})\n"
    "    except socket.gaierror as exc:\n"
    "        out[name] = str(exc)\n"
    "print(json.dumps(out))\n"
)


def address(i):
    return f"10.77.{labctl.instance()}.1{i}"


def where(lab, pod):
    """(host, pod IP) of a running pod."""
    for host in lab.hosts:
        record = lab.ssh(host, f"cat {STATE_DIR}/pods/{pod}/pod.json 2>/dev/null", check=False).stdout
        if record.strip():
            return host, json.loads(record)["network"]["ip"]
    raise AssertionError(f"pod {pod} is on no host")


def resolve(lab, pod, *names):
    """Resolve ``names`` inside ``pod``'s main container (its mount namespace holds its /etc/resolv.conf)."""
    host, _ip = where(lab, pod)
    pid = lab.ssh(host, f"systemctl show -P MainPID hf-{pod}.main.service").stdout.strip()
    assert pid not in ("", "0"), pod
    words = " ".join(f"'{name}'" for name in names)
    out = lab.ssh(host, f"nsenter -t {pid} -m -n python3 -c '{RESOLVE.replace(chr(39), chr(34))}' {words}").stdout
    return json.loads(out)


def template(app, command, image=None):
    container = {
        "name": "main",
        "command": command,
        **({"image": image, "imagePullPolicy": "Never"} if image else {}),
        "readinessProbe": dict(PROBE, exec={"command": ["/bin/sh", "-c", "test ! -e /flags/unready"]}),
        "volumeMounts": [{"name": "flags", "mountPath": "/flags"}],
    }
    return {
        "metadata": {"labels": {"app": app}},
        "spec": {"terminationGracePeriodSeconds": 1, "containers": [container], "volumes": [{"name": "flags", "emptyDir": {}}]},
    }


def task(name, module, args):
    return {"name": name, f"hostfleet.workloads.{module}": args, "run_once": True}


@pytest.fixture(scope="module")
def cluster(lab):
    # The backend's pods are podman pods (their resolv.conf is a --mount), the store's process pods (BindReadOnlyPaths=).
    image = build_images(lab.hosts, "dnsit", "v1", {"/www/index.html": "backend\n"})
    backend_template = template("dnsit-backend", ["/bin/httpd", "-f", "-p", "8080", "-h", "/www"], image)
    # One play (each playbook run costs seconds): the network, the workloads, then their Services.
    run = lab.run([
        task("net", "cluster_network", {}),
        task("backend", "deployment", {"name": "dnsit-backend", "replicas": 2, "template": backend_template, "wait_timeout": 120}),
        task("store", "statefulset", {"name": "store", "replicas": 2, "serviceName": "store", "template": template("dnsit-store", ["/bin/sleep", "infinity"]),
                                      "wait_timeout": 120}),
        task("svc", "service", {"name": "backend", "spec": {"selector": {"app": "dnsit-backend"}, "ports": [{"port": 8080}]}}),
        task("headless", "service", {"name": "store", "spec": {"clusterIP": "None", "selector": {"app": "dnsit-store"}, "ports": [{"port": 80}]}}),
    ])
    assert run.rc == 0, run.stdout[-3000:]
    yield lab, run.result("svc", lab.hosts[0])["cluster_ip"]
    run = lab.run([
        task("svc", "service", {"name": "backend", "state": "absent"}),
        task("headless", "service", {"name": "store", "state": "absent"}),
        task("store", "statefulset", {"name": "store", "state": "absent", "wait_timeout": 120}),
        task("backend", "deployment", {"name": "dnsit-backend", "state": "absent", "wait_timeout": 120}),
        task("net", "cluster_network", {"state": "absent"}),
    ])
    assert run.rc == 0, run.stdout[-3000:]


def test_names_resolve_inside_pods_as_in_kubernetes(cluster):
    lab, cluster_ip = cluster
    (_host0, ip0), (_host1, ip1) = where(lab, "store-0"), where(lab, "store-1")
    names = ["backend", "backend.default", "backend.default.svc.cluster.local", "store", "store-0.store", "store-1.store.default.svc.cluster.local",
             "nothing.default.svc.cluster.local", "node1", "node2", "node3"]
    for pod in ("store-0", "store-1"):
        got = resolve(lab, pod, *names)
        assert got["backend"] == got["backend.default"] == got["backend.default.svc.cluster.local"] == [cluster_ip], got
        assert got["store"] == sorted([ip0, ip1]), got
        assert got["store-0.store"] == [ip0] and got["store-1.store.default.svc.cluster.local"] == [ip1], got
        assert isinstance(got["nothing.default.svc.cluster.local"], str), got  # NXDOMAIN, not an address
        # The nodes by name: a peer only through our DNS (a host's /etc/hosts names only itself in the lab).
        assert [got[f"node{i}"] for i in (1, 2, 3)] == [[address(1)], [address(2)], [address(3)]], got
    host, _ip = where(lab, "store-0")
    text = lab.ssh(host, "cat /proc/$(systemctl show -P MainPID hf-store-0.main.service)/root/etc/resolv.conf").stdout
    dns_ip = json.loads(lab.ssh(host, f"cat {STATE_DIR}/network/node.json").stdout)["dns_ip"]
    assert [line for line in text.splitlines() if not line.startswith("#")] == [
        f"nameserver {dns_ip}",
        "search default.svc.cluster.local svc.cluster.local cluster.local",
        "options ndots:5",
    ], text


def test_dnsmasq_listens_on_the_dns_address_only(cluster):
    lab, _cluster_ip = cluster
    for host in lab.hosts:
        dns_ip = json.loads(lab.ssh(host, f"cat {STATE_DIR}/network/node.json").stdout)["dns_ip"]
        pid = lab.ssh(host, "systemctl show -P MainPID hostfleet-dns.service").stdout.strip()
        sockets = lab.ssh(host, f"ss -lntupH | grep 'pid={pid},' | awk '{{print $1, $5}}' | sort -u").stdout.split("\n")
        assert sorted(filter(None, sockets)) == [f"tcp {dns_ip}:53", f"udp {dns_ip}:53"], (host, sockets)


def test_a_name_of_the_hosts_resolvers_still_resolves(cluster):
    """Names outside the cluster domain go to the host's own resolvers (its /etc/resolv.conf): here a stand-in for a
    site's DNS server, on another lab host."""
    lab, _cluster_ip = cluster
    host, _ip = where(lab, "store-0")
    upstream = next(h for h in lab.hosts if h != host)
    upstream_ip = address(lab.hosts.index(upstream) + 1)
    lab.ssh(upstream, f"systemd-run --unit=dnsit-upstream /usr/sbin/dnsmasq -k --conf-file=/dev/null --pid-file --no-resolv --no-hosts --user=root "
                      f"--listen-address={upstream_ip} --bind-interfaces --address=/upstream.example/192.0.2.10")
    saved = lab.ssh(host, "cat /etc/resolv.conf").stdout
    try:
        lab.ssh(host, f"printf 'nameserver {upstream_ip}\\noptions timeout:1 attempts:2\\n' > /etc/resolv.conf")
        deadline = time.monotonic() + 10
        while (got := resolve(lab, "store-0", "upstream.example"))["upstream.example"] != ["192.0.2.10"]:
            assert time.monotonic() < deadline, got
            time.sleep(0.5)
    finally:
        lab.ssh(host, f"cat > /etc/resolv.conf <<'EOF'\n{saved}EOF")
        lab.ssh(upstream, "systemctl stop dnsit-upstream", check=False)


def test_an_unready_pod_leaves_the_headless_answer_without_a_playbook_run(cluster):
    lab, _cluster_ip = cluster
    host, ip1 = where(lab, "store-1")
    _host0, ip0 = where(lab, "store-0")
    flag = f"{STATE_DIR}/pods/store-1/volumes/flags/unready"

    def answers():
        # Asked on store-1's own host (its DNS follows its pods' readiness at once; the others at the next run).
        return resolve(lab, "store-1", "store", "store-1.store")

    lab.ssh(host, f"touch {flag}")
    try:
        deadline = time.monotonic() + 5
        while (got := answers())["store"] != [ip0]:
            assert time.monotonic() < deadline, got
            time.sleep(0.2)
        assert isinstance(got["store-1.store"], str), got
    finally:
        lab.ssh(host, f"rm -f {flag}")
    deadline = time.monotonic() + 5
    while (got := answers())["store"] != sorted([ip0, ip1]):
        assert time.monotonic() < deadline, got
        time.sleep(0.2)
    assert got["store-1.store"] == [ip1]


def test_podman_pods_get_the_same_resolv_conf_and_resolve_through_it(cluster):
    lab, cluster_ip = cluster
    _host0, ip0 = where(lab, "store-0")
    containers = {h: lab.ssh(h, "podman ps --format '{{.Names}}'").stdout.split() for h in lab.hosts}
    host, name = next((h, c) for h, names in containers.items() for c in names if c.startswith("hf-dnsit-backend-"))
    dns_ip = json.loads(lab.ssh(host, f"cat {STATE_DIR}/network/node.json").stdout)["dns_ip"]
    text = lab.ssh(host, f"podman exec {name} cat /etc/resolv.conf").stdout
    assert [line for line in text.splitlines() if not line.startswith("#")] == [
        f"nameserver {dns_ip}",
        "search default.svc.cluster.local svc.cluster.local cluster.local",
        "options ndots:5",
    ], text
    # busybox's own resolver (not glibc's) reads the same file.
    for query, expected in (("backend", cluster_ip), ("store-0.store.default.svc.cluster.local", ip0)):
        out = lab.ssh(host, f"podman exec {name} nslookup {query}", check=False).stdout
        assert f"Address: {expected}" in out, out
