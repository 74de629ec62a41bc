# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cluster DNS on a host: dnsmasq answers the cluster domain from files written here (docs/network.md).

Each host runs ``hostfleet-dns.service``: Debian's dnsmasq (package dnsmasq-base) in the foreground, listening on the
node's ``dns_ip`` (the pod bridge's address) and nowhere else. Names under ``<cluster_domain>`` are answered only from
the hosts files under ``<state_dir>/network/dns/hosts`` (``local=/<domain>/``: an unknown name there is NXDOMAIN at
once, never forwarded); every other name is forwarded to the host's resolvers (its /etc/resolv.conf). dnsmasq watches
that directory (``hostsdir``, inotify) and re-reads a file that was replaced: ``refresh`` (called by the network sync
on every readiness transition) changes the answers without a restart and without a daemon of ours.

Records, as Kubernetes' DNS specification has them:

- ``<svc>.<ns>.svc.<domain>``: the ClusterIP; for a headless Service the IPs of its ready endpoints (all of them with
  publishNotReadyAddresses);
- ``<hostname>.<svc>.<ns>.svc.<domain>``: an endpoint of a headless Service whose pod has ``hostname`` and
  ``subdomain: <svc>`` (a StatefulSet's ``web-0.nginx``);
- the nodes' names (node.json: this node and its peers) at their addresses.

Pods on the pod network get Kubernetes' resolv.conf (``resolv_conf_text``): this nameserver, the search path
``<ns>.svc.<domain> svc.<domain> <domain>`` (so ``backend`` and ``backend.default`` resolve) and ``ndots:5``.

Every name that goes into a file is a checked DNS-1123 label and every address a checked IPv4 address, rendered in
their canonical forms: a value from a Service file can never add a line or a name of its own. Stdlib only and
Python 3.8+ (it runs on the hosts, inlined into the standalone network sync script: no import of this collection).
"""

from __future__ import annotations

import ipaddress
import os
import re

UNIT = "hostfleet-dns.service"
DNSMASQ = "/usr/sbin/dnsmasq"
MKDIR = "/bin/mkdir"
DNS_DIR = "dns"
HOSTS_DIR = "hosts"
SERVICES_FILE = "services.hosts"
NODES_FILE = "nodes.hosts"
RESOLV_DIR = "resolv"
NDOTS = 5
# Kubernetes' limits on a pod's dnsConfig (and glibc's: 3 nameservers are read, the search list is 6 names up to 256).
MAX_NAMESERVERS = 3
MAX_SEARCHES = 32
MAX_SEARCH_CHARS = 2048
DNS_POLICIES = ("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None")
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_OPTION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_OPTION_VALUE = re.compile(r"[A-Za-z0-9._-]+")


class DnsError(ValueError):
    """A value that cannot be a DNS name or address; the message names the field."""


def dns_dir(state_dir):
    return os.path.join(state_dir, "network", DNS_DIR)


def hosts_dir(state_dir):
    """The directory dnsmasq watches (``hostsdir``): only complete files ever appear in it (renamed in)."""
    return os.path.join(dns_dir(state_dir), HOSTS_DIR)


def is_label(value):
    return isinstance(value, str) and bool(_LABEL.fullmatch(value))


def label(value, field):
    """``value`` if it is a DNS-1123 label (lowercase letters, digits, '-', at most 63), else DnsError naming ``field``."""
    if not is_label(value):
        raise DnsError(f"{field}: {value!r} is not a DNS-1123 label (at most 63 of a-z, 0-9 and '-', alphanumeric at both ends)")
    return value


def domain(value, field="cluster_domain"):
    """A DNS name of labels (``cluster.local``), lowercase, without the final dot; at most 200 characters so that
    ``<hostname>.<svc>.<ns>.svc.<domain>`` can still be a name."""
    if not isinstance(value, str) or not value or len(value) > 200 or not all(is_label(part) for part in value.split(".")):
        raise DnsError(f"{field}: {value!r} is not a domain of DNS-1123 labels (e.g. cluster.local)")
    return value


def ipv4(value, field):
    """The canonical text of an IPv4 address (``010.1.2.3`` is refused, never read as something else)."""
    try:
        address = ipaddress.IPv4Address(value) if isinstance(value, str) else None
    except ValueError:
        address = None
    if address is None or str(address) != value:
        raise DnsError(f"{field}: {value!r} is not an IPv4 address")
    return str(address)


def _fqdn(parts, field):
    name = ".".join(parts)
    # A name is at most 253 characters (255 octets on the wire); dnsmasq would drop a longer one with a warning.
    if len(name) > 253:
        raise DnsError(f"{field}: the name {name[:60]}... is longer than 253 characters")
    return name


def _selects(selector, labels):
    # The same rule as services.selects (repeated: this module stands alone when inlined).
    return bool(selector) and all((labels or {}).get(key) == value for key, value in selector.items())


def service_records(service, node_config, local_pods=()):
    """The (name, address) records of one Service file (services.py), or DnsError naming the file's field.

    Endpoints on this node come from ``local_pods`` (the network sync's list: pod, ip, ready, labels, hostname,
    subdomain, and namespace when it is not ``default``) with their live readiness, instead of the file's, which is
    only as fresh as the last playbook run.
    """
    where = f"Service {service.get('namespace')}/{service.get('name')}"
    namespace = label(service["namespace"], f"{where}: namespace")
    name = label(service["name"], f"{where}: name")
    base = [name, namespace, "svc", domain(node_config["cluster_domain"])]
    fqdn = _fqdn(base, f"{where}: name")
    if service["cluster_ip"] is not None:
        return [(fqdn, ipv4(service["cluster_ip"], f"{where}: cluster_ip"))]
    here = node_config["node"]
    endpoints = [dict(endpoint, where=f"{where}: endpoints[{i}]") for i, endpoint in enumerate(service["endpoints"]) if endpoint["node"] != here]
    for pod in local_pods:
        if (pod.get("namespace") or "default") == namespace and _selects(service["selector"], pod.get("labels")):
            endpoints.append(dict(pod, where=f"{where}: local pod {pod.get('pod')}"))
    records = set()
    for endpoint in endpoints:
        if not (endpoint.get("ready") or service["publish_not_ready_addresses"]):
            continue
        address = ipv4(endpoint.get("ip"), f"{endpoint['where']}.ip")
        records.add((fqdn, address))
        # Kubernetes names an endpoint only when its pod says both hostname and subdomain = this Service.
        if endpoint.get("hostname") and endpoint.get("subdomain") == name:
            host = label(endpoint["hostname"], f"{endpoint['where']}.hostname")
            records.add((_fqdn([host] + base, f"{endpoint['where']}.hostname"), address))
    return sorted(records)


def node_records(node_config):
    """This node's and its peers' names at their addresses (the names the inventory gave them, as labels only)."""
    records = set()
    for i, node in enumerate([node_config] + list(node_config["peers"])):
        field = "node" if i == 0 else f"peers[{i - 1}]"
        records.add((label(node["node"], f"node.json: {field}.node" if i else "node.json: node"), ipv4(node["address"], f"node.json: {field}.address")))
    return sorted(records)


def render_hosts(records):
    """A hosts file dnsmasq reads: one ``<address> <name>`` line per record, sorted (a name with several addresses
    is answered with all of them)."""
    lines = [f"{address} {name}\n" for name, address in sorted(set(records))]
    return "# Managed by hostfleet.workloads (network sync); changes here are overwritten.\n" + "".join(lines)


def parse_hosts(text):
    """The records of a hosts file as render_hosts writes it (for tests and for comparing what is there)."""
    records = []
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        address, name = line.split(" ")
        records.append((name, address))
    return records


def records(node_config, services, local_pods=()):
    """(service records, node records, problems): every Service that cannot be rendered is left out whole and
    named in ``problems`` (one bad file must not take the cluster's DNS down with it)."""
    service_lines, problems = set(), []
    for service in services:
        try:
            service_lines.update(service_records(service, node_config, local_pods))
        except (DnsError, KeyError, TypeError) as exc:
            problems.append(f"DNS records of Service {service.get('namespace')}/{service.get('name')} left out: {exc}")
    return sorted(service_lines), node_records(node_config), problems


def _write_if_changed(state_dir, name, content):
    # Written next to the watched directory, then renamed into it: dnsmasq only ever sees a complete file (a rename
    # is one inotify IN_MOVED_TO; it re-reads the file and drops what the old one said).
    path = os.path.join(hosts_dir(state_dir), name)
    try:
        with open(path) as handle:
            if handle.read() == content:
                return False
    except FileNotFoundError:
        pass
    tmp = os.path.join(dns_dir(state_dir), f".{name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        os.fchmod(fd, 0o644)  # dnsmasq reads it after dropping root; the umask must not decide
        os.write(fd, content.encode("utf-8"))
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return True


def _ensure_dirs(state_dir):
    for directory in (os.path.join(state_dir, "network"), dns_dir(state_dir), hosts_dir(state_dir)):
        try:
            os.mkdir(directory, 0o755)
        except FileExistsError:
            continue
        os.chmod(directory, 0o755)


def refresh(state_dir, node_config, services, local_pods):
    """Write the cluster's records for dnsmasq (``hostsdir``), only what changed; returns {"changed": bool,
    "records": count, "problems": [Services left out, each named]}. Cheap when nothing changed: two reads."""
    service_lines, node_lines, problems = records(node_config, services, local_pods)
    _ensure_dirs(state_dir)
    changed = _write_if_changed(state_dir, SERVICES_FILE, render_hosts(service_lines))
    changed = _write_if_changed(state_dir, NODES_FILE, render_hosts(node_lines)) or changed
    return {"changed": changed, "records": len(service_lines) + len(node_lines), "problems": problems}


def _unit_word(word):
    # Our words are paths and checked names/addresses; '%' is systemd's specifier character, '\\' and whitespace
    # would split or escape: refuse rather than quote (a state_dir never has them).
    if not word or any(char in word for char in '%\\"\' \t\n\r;'):
        raise DnsError(f"state_dir: {word!r} cannot be used in the DNS unit (no quotes, '%', '\\\\', ';' or whitespace)")
    return word


def dnsmasq_argv(node_config, state_dir):
    """dnsmasq's command line: every option on it, no configuration file read."""
    dns_ip = ipv4(node_config["dns_ip"], "node.json: dns_ip")
    cluster_domain = domain(node_config["cluster_domain"], "node.json: cluster_domain")
    return [
        DNSMASQ,
        "--keep-in-foreground",
        "--conf-file=/dev/null",  # nothing from /etc/dnsmasq.conf or /etc/dnsmasq.d
        "--pid-file",  # none: systemd tracks the process
        "--log-facility=-",  # stderr: the journal
        f"--listen-address={dns_ip}",
        # The address is the pod bridge's, which appears with the first pod: bind-dynamic binds it when it does.
        "--bind-dynamic",
        # The host's /etc/hosts maps its own name to 127.0.1.1, which means the pod itself inside a pod.
        "--no-hosts",
        f"--local=/{cluster_domain}/",
        f"--hostsdir={_unit_word(hosts_dir(state_dir))}",
        # Answers follow readiness: a pod's resolver must not keep a headless answer long (Kubernetes' CoreDNS: 5 s).
        "--local-ttl=5",
    ]


def unit_text(node_config, state_dir):
    """The unit ``hostfleet-dns.service`` (the cluster_network task installs and starts it)."""
    argv = dnsmasq_argv(node_config, state_dir)
    where = f"{node_config['cluster_domain']} on {node_config['dns_ip']}"  # both checked by dnsmasq_argv
    return (
        "# Managed by hostfleet.workloads; changes here are overwritten.\n"
        "[Unit]\n"
        f"Description=hostfleet cluster DNS ({where})\n"
        "After=network.target\n"
        "StartLimitIntervalSec=0\n"
        "\n[Service]\n"
        "Type=simple\n"
        f"ExecStartPre={MKDIR} -p {_unit_word(hosts_dir(state_dir))}\n"
        f"ExecStart={' '.join(argv)}\n"
        # SIGHUP makes dnsmasq re-read everything (the files are re-read by themselves; this is for a hand edit).
        "ExecReload=/bin/kill -HUP $MAINPID\n"
        "Restart=always\n"
        "RestartSec=1\n"
        "\n[Install]\n"
        "WantedBy=multi-user.target\n"
    )


def resolv_conf_path(state_dir, pod):
    """Where a pod's resolv.conf is kept (bind-mounted read-only on the pod's /etc/resolv.conf)."""
    return os.path.join(state_dir, "pods", pod, "resolv.conf")


def _dns_config(dns_config, field):
    """A PodDNSConfig's (nameservers, searches, options), checked, or DnsError naming the field."""
    if dns_config is None:
        return [], [], []
    if not isinstance(dns_config, dict):
        raise DnsError(f"{field}: must be a mapping of nameservers, searches, options")
    unknown = sorted(set(dns_config) - {"nameservers", "searches", "options"})
    if unknown:
        raise DnsError(f"{field}.{unknown[0]}: unknown field")
    nameservers = dns_config.get("nameservers") or []
    searches = dns_config.get("searches") or []
    options = dns_config.get("options") or []
    for key, value in (("nameservers", nameservers), ("searches", searches), ("options", options)):
        if not isinstance(value, list):
            raise DnsError(f"{field}.{key}: must be a list")
    nameservers = [ipv4(server, f"{field}.nameservers[{i}]") for i, server in enumerate(nameservers)]
    for i, search in enumerate(searches):
        domain(search.rstrip(".") if isinstance(search, str) else search, f"{field}.searches[{i}]")
    searches = [search.rstrip(".") for search in searches]
    checked = []
    for i, option in enumerate(options):
        if not isinstance(option, dict) or set(option) - {"name", "value"} or not isinstance(option.get("name"), str):
            raise DnsError(f"{field}.options[{i}]: must be a mapping of name and, optionally, value")
        if not _OPTION_NAME.fullmatch(option["name"]):
            raise DnsError(f"{field}.options[{i}].name: {option['name']!r} is not a resolver option name")
        value = option.get("value")
        if value is not None and not (isinstance(value, str) and _OPTION_VALUE.fullmatch(value)):
            raise DnsError(f"{field}.options[{i}].value: {value!r} is not a resolver option value")
        checked.append((option["name"], value))
    return nameservers, searches, checked


def check_pod_dns(dns_policy, dns_config, host_network=False, field="spec"):
    """A pod's dnsPolicy and dnsConfig, checked as far as they do not depend on the node: (policy, nameservers,
    searches, options), or DnsError naming the field. (podspec checks them with the rest of the spec.)"""
    dns_policy = "ClusterFirst" if dns_policy is None else dns_policy
    if dns_policy not in DNS_POLICIES:
        raise DnsError(f"{field}.dnsPolicy: Unsupported value: {dns_policy!r}: supported values: {', '.join(DNS_POLICIES)}")
    nameservers, searches, options = _dns_config(dns_config, f"{field}.dnsConfig")
    if dns_policy == "None" and not nameservers:
        raise DnsError(f"{field}.dnsConfig.nameservers: must have at least one nameserver when dnsPolicy is None")
    if dns_config and (dns_policy == "Default" or (dns_policy == "ClusterFirst" and host_network)):
        # The kubelet would merge it into a copy of the host's resolv.conf; a host file is not ours to rewrite.
        raise DnsError(f"{field}.dnsConfig: is not supported with the host's resolv.conf (dnsPolicy {dns_policy} here): use dnsPolicy None")
    if len(nameservers) > MAX_NAMESERVERS:
        raise DnsError(f"{field}.dnsConfig.nameservers: at most {MAX_NAMESERVERS}, got {len(nameservers)}")
    return dns_policy, nameservers, searches, options


def resolv_conf_text(node_config, namespace, dns_policy=None, dns_config=None, host_network=False, field="spec"):
    """The pod's /etc/resolv.conf as the kubelet makes it, or None when the pod keeps the host's (dnsPolicy Default,
    ClusterFirst on the host's network, or no cluster DNS on the node: ``node_config`` None, as a kubelet without
    one falls back to Default). DnsError names the field of a bad dnsPolicy/dnsConfig."""
    dns_policy, nameservers, searches, options = check_pod_dns(dns_policy, dns_config, host_network, field)
    cluster = dns_policy == "ClusterFirstWithHostNet" or (dns_policy == "ClusterFirst" and not host_network)
    if dns_policy != "None" and not (cluster and node_config is not None):
        return None
    if dns_policy != "None":
        cluster_domain = domain(node_config["cluster_domain"])
        label(namespace, "metadata.namespace")
        base_servers = [ipv4(node_config["dns_ip"], "node.json: dns_ip")]
        base_searches = [f"{namespace}.svc.{cluster_domain}", f"svc.{cluster_domain}", cluster_domain]
        base_options = [("ndots", str(NDOTS))]
    else:
        base_servers, base_searches, base_options = [], [], []
    # Merged as the kubelet does: dnsConfig's nameservers and searches follow the policy's, duplicates dropped;
    # an option of the same name replaces the policy's.
    servers = list(dict.fromkeys(base_servers + nameservers))
    search = list(dict.fromkeys(base_searches + searches))
    merged = dict(base_options)
    merged.update(options)
    if len(servers) > MAX_NAMESERVERS:
        raise DnsError(f"{field}.dnsConfig.nameservers: at most {MAX_NAMESERVERS} nameservers in all (the cluster's included), got {len(servers)}")
    if len(search) > MAX_SEARCHES or len(" ".join(search)) > MAX_SEARCH_CHARS:
        raise DnsError(f"{field}.dnsConfig.searches: at most {MAX_SEARCHES} search domains of {MAX_SEARCH_CHARS} characters in all")
    lines = [f"nameserver {server}\n" for server in servers]
    if search:
        lines.append(f"search {' '.join(search)}\n")
    if merged:
        lines.append("options " + " ".join(name if value is None else f"{name}:{value}" for name, value in merged.items()) + "\n")
    return "# Managed by hostfleet.workloads: the pod's resolv.conf (dnsPolicy " + dns_policy + ").\n" + "".join(lines)
