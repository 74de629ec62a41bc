# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hostfleet.workloads.service: one Service for the whole fleet, as the same file on every host.

Two rounds: every node reports what it holds (its Service files, its node network, its pods; the node module
``service_files``), then the Service's file (cluster IP and node ports kept from the files, endpoints from the pods
of the nodes reached) is written to every reachable node, whose network sync makes the rules. The spec is checked
before any node is contacted; allocation problems (an address taken, a changed clusterIP) before any node is
written. The allocations and endpoints are pure (plugin_utils/network/).
"""

from __future__ import annotations

import json
from collections import Counter

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.hostfleet.workloads.plugins.module_utils.network import config as netconfig
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError, dns_label
from ansible_collections.hostfleet.workloads.plugins.module_utils.service_args import SERVICE_ARGS
from ansible_collections.hostfleet.workloads.plugins.plugin_utils._fanout import Fleet
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.network import clusterips, endpoints
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.network.servicespec import parse_service, service_name

display = Display()

NODE_MODULE = "hostfleet.workloads.service_files"


def _text(data):
    return json.dumps(data, indent=1, sort_keys=True) + "\n" if data is not None else ""


def current_copy(files, key):
    """This Service as the reached nodes hold it: the copy most of them hold (a node that was down has an older one)."""
    copies = [json.dumps(held[key], sort_keys=True) for held in files.values() if key in held]
    if not copies:
        return None
    counts = Counter(copies)
    best = max(counts.values())
    return json.loads(next(text for text in copies if counts[text] == best))


def service_cidr(reports):
    """The service CIDR the nodes' node.json name (the default without any); nodes that disagree are an error."""
    found = sorted({r["node"]["service_cidr"] for r in reports.values() if r.get("node")})
    if len(found) > 1:
        raise SpecError("service_cidr", f"the nodes' node.json disagree ({', '.join(found)}): run cluster_network first")
    return found[0] if found else netconfig.DEFAULT_SERVICE_CIDR


def plan(parsed, reports, addresses):
    """(Service file, current copy) from the nodes' reports ({host: service_files result}); SpecError when the
    allocation is refused. ``addresses``: {host: the host's address from the inventory}, for hosts without node.json."""
    key = f"{parsed['namespace']}.{parsed['name']}"
    files = {host: {f"{s['namespace']}.{s['name']}": s for s in r.get("services") or []} for host, r in reports.items()}
    current = current_copy(files, key)
    others = {k: s for held in files.values() for k, s in held.items() if k != key}
    used_ips = {s["cluster_ip"] for s in others.values() if s.get("cluster_ip")}
    used_ports = {p["node_port"] for s in others.values() for p in s.get("ports") or [] if p.get("node_port")}
    cluster_ip = clusterips.allocate_cluster_ip(service_cidr(reports), key, parsed["cluster_ip"], (current or {}).get("cluster_ip"), used_ips)
    node_ports = None
    if parsed["type"] == "NodePort":
        node_ports = clusterips.allocate_node_ports(key, parsed["ports"], (current or {}).get("ports"), used_ports)
    nodes = {}
    for host, report in reports.items():
        node = report.get("node") or {}
        nodes[host] = {"node_index": node.get("node_index"), "address": node.get("address") or addresses.get(host), "pods": report.get("pods") or []}
    found = endpoints.endpoints(parsed, nodes)
    return endpoints.service_file(parsed, cluster_ip, node_ports, found), current


class ActionModule(ActionBase):
    BYPASS_HOST_LOOP = True
    _requires_connection = False

    def check_arguments(self, args):
        """The normal form of the Service (None for state absent) and its ignored fields; SpecError naming the field."""
        service_name(args["name"], "name")
        dns_label(args["namespace"], "namespace")
        if args["state"] == "absent":
            return None, []
        return parse_service(args["name"], args["namespace"], args["spec"])

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        _validation, args = self.validate_argument_spec(argument_spec=SERVICE_ARGS)
        try:
            parsed, ignored = self.check_arguments(args)
        except SpecError as exc:
            return dict(result, failed=True, changed=False, msg=f"invalid argument: {exc}", field=exc.path)
        hosts = Fleet.select(self, task_vars, args["nodes"])
        if not hosts:
            return dict(result, failed=True, changed=False, msg=f"no node of the play matches nodes={args['nodes']!r}")
        check_mode = bool(self._task.check_mode)
        title = f"Service {args['namespace']}/{args['name']}"
        base = {"state_dir": args["state_dir"]}
        key = f"{args['namespace']}.{args['name']}"
        result.update(ignored_fields=ignored, nodes=[], unreachable_nodes={})
        with Fleet(self, task_vars, hosts) as fleet:
            seen = fleet.run_module(NODE_MODULE, dict.fromkeys(hosts, base), check_mode=True, timeout=args["wait_timeout"])
            unreachable = {h: r.get("msg") or "unreachable" for h, r in seen.items() if r.get("unreachable")}
            broken = {h: r.get("msg") or "failed" for h, r in seen.items() if r.get("failed") and h not in unreachable}
            result["unreachable_nodes"] = unreachable
            for host, msg in sorted(unreachable.items()):
                display.warning(f"{title}: node {host} is unreachable ({msg}): its endpoints are left out and its copy is updated at the next run")
            if broken:
                return dict(result, failed=True, changed=False, msg="; ".join(f"{h}: {m}" for h, m in sorted(broken.items())))
            reports = {h: r for h, r in seen.items() if h not in unreachable}
            if not reports:
                return dict(result, failed=True, changed=False, msg=f"{title}: no node could be reached")
            if parsed is None:
                holders = sorted(h for h, r in reports.items() if any(f"{s['namespace']}.{s['name']}" == key for s in r.get("services") or []))
                current = current_copy({h: {f"{s['namespace']}.{s['name']}": s for s in reports[h].get("services") or []} for h in holders}, key)
                after, calls = None, {h: {**base, "remove": [{"namespace": args["namespace"], "name": args["name"]}]} for h in holders}
            else:
                addresses = {h: fleet.host_vars(h).get("ansible_host") or h for h in reports}
                try:
                    after, current = plan(parsed, reports, addresses)
                except SpecError as exc:
                    return dict(result, failed=True, changed=False, msg=f"{title}: {exc}", field=exc.path)
                # Every reachable node gets it (also those already up to date: their sync catches up if it failed before).
                calls = {h: {**base, "write": [after]} for h in reports}
                result.update(service=after, cluster_ip=after["cluster_ip"], endpoints=after["endpoints"])
            differs = sorted(h for h in calls if _held(reports[h], key) != after)
            if check_mode:
                done = {}
            else:
                done = fleet.run_module(NODE_MODULE, calls, check_mode=False, timeout=args["wait_timeout"]) if calls else {}
                fleet.emit_warnings(done)
        failures = {h: r.get("msg") or "failed" for h, r in done.items() if r.get("failed") or r.get("unreachable")}
        changed_on = differs if check_mode else sorted(h for h, r in done.items() if r.get("written"))
        result.update(changed=bool(changed_on), nodes=changed_on)
        if self._task.diff and changed_on:
            result["diff"] = {"before": _text(current), "after": _text(after),
                              "before_header": f"{title} ({key}.json)", "after_header": f"{title} on {', '.join(changed_on)}"}
        if failures:
            result.update(failed=True, msg=f"{title}: " + "; ".join(f"{h}: {m}" for h, m in sorted(failures.items())))
        return result


def _held(report, key):
    return next((s for s in report.get("services") or [] if f"{s['namespace']}.{s['name']}" == key), None)
