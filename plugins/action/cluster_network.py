# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hostfleet.workloads.cluster_network: the pod network across hosts, ONE task for the play's hosts.

Two rounds over the fleet (``_fanout.Fleet``): every node says what it holds (node.json, its addresses); the
controller allocates the per-node CIDRs and decides how each pair is linked (``plugin_utils/network/cidrs.py``,
pure); every reachable node applies its node.json (the ``node_network`` module). Nothing is changed on any host
when an option or an address is wrong.
"""

from __future__ import annotations

import ipaddress
import time

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.hostfleet.workloads.plugins.module_utils.network import config
from ansible_collections.hostfleet.workloads.plugins.plugin_utils._fanout import Fleet
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.network import cidrs

display = Display()

NODE_MODULE = "hostfleet.workloads.node_network"
ADDRESS_VAR = "hostfleet_node_address"

ARGS = config.CLUSTER_NETWORK_ARGS


class AddressError(ValueError):
    pass


def _ipv4(value):
    try:
        return str(ipaddress.IPv4Address(value))
    except (ipaddress.AddressValueError, ValueError, TypeError):
        return None


def node_address(host, host_vars, networks):
    """The address peers reach ``host`` at: ``hostfleet_node_address``, else ``ansible_host`` when it is one of the
    host's addresses, else its only address."""
    own = {net.split("/")[0] for net in networks}
    chosen = host_vars.get(ADDRESS_VAR)
    if chosen is not None:
        if _ipv4(chosen) is None or _ipv4(chosen) not in own:
            raise AddressError(f"{ADDRESS_VAR} of {host}: {chosen!r} is not one of its IPv4 addresses ({', '.join(sorted(own)) or 'none'})")
        return _ipv4(chosen)
    for candidate in (host_vars.get("ansible_host"), host):
        if _ipv4(candidate) in own:
            return _ipv4(candidate)
    if len(own) == 1:
        return next(iter(own))
    raise AddressError(f"{host}: cannot tell which of its addresses ({', '.join(sorted(own)) or 'none'}) the other nodes reach it at: set {ADDRESS_VAR}")


class ActionModule(ActionBase):
    BYPASS_HOST_LOOP = True
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        _validation, args = self.validate_argument_spec(argument_spec=ARGS)
        try:
            conf = cidrs.settings(args["cluster_cidr"], args["node_prefix"], args["service_cidr"], args["cluster_domain"], args["bridge"], args["mode"])
        except cidrs.CidrError as exc:
            return dict(result, failed=True, changed=False, msg=f"invalid argument: {exc}")
        hosts = Fleet.select(self, task_vars, args["nodes"])
        if not hosts:
            return dict(result, failed=True, changed=False, msg=f"no node of the play matches nodes={args['nodes']!r}")
        check_mode = bool(self._task.check_mode)
        with Fleet(self, task_vars, hosts) as fleet:
            observed = fleet.run_module(NODE_MODULE, dict.fromkeys(hosts, {"step": "observe", "state_dir": args["state_dir"]}), check_mode=False)
            fleet.emit_warnings(observed)
            down = {h: r.get("msg") or "unreachable" for h, r in observed.items() if r.get("unreachable") or r.get("failed")}
            reachable = [h for h in hosts if h not in down]
            for host, msg in sorted(down.items()):
                display.warning(f"cluster_network: {host} could not be asked: {msg}")
            if args["state"] == "absent":
                node_args = {h: {"step": "apply", "state": "absent", "state_dir": args["state_dir"]} for h in reachable}
            else:
                try:
                    configs = self.plan(conf, fleet, hosts, reachable, observed)
                except (cidrs.CidrError, AddressError) as exc:
                    return dict(result, failed=True, changed=False, msg=str(exc), unreachable_nodes=down)
                node_args = {h: {"step": "apply", "state": "present", "node_config": configs[h], "state_dir": args["state_dir"]} for h in reachable}
                result["nodes"] = {
                    h: {k: c[k] for k in ("node_index", "address", "cidr", "gateway")} | {"peers": {p["node"]: p["via"] for p in c["peers"]}}
                    for h, c in sorted(configs.items())
                }
            applied = fleet.run_module(NODE_MODULE, node_args, check_mode=check_mode)
            fleet.emit_warnings(applied)
        failed = {h: r.get("msg") or "unreachable" for h, r in applied.items() if r.get("unreachable") or r.get("failed")}
        result.update(
            changed=any(r.get("changed") for r in applied.values()),
            unreachable_nodes=down,
            commands={h: r.get("commands", []) for h, r in applied.items() if r.get("commands")},
            changes={h: r.get("changes", []) for h, r in applied.items() if r.get("changes")},
        )
        diffs = [dict(r["diff"], before_header=f"{h}: {r['diff']['before_header']}", after_header=f"{h}: {r['diff']['after_header']}")
                 for h, r in applied.items() if r.get("diff")]
        if diffs:
            result["diff"] = diffs
        if failed:
            return dict(result, failed=True, msg="; ".join(f"{h}: {m}" for h, m in sorted(failed.items())))
        return result

    @staticmethod
    def plan(conf, fleet, hosts, reachable, observed):
        """Every node's node.json, the unreachable ones' too (they are not written: those nodes keep theirs, and stay
        everyone's peers)."""
        own = {h: observed[h]["node_config"] for h in reachable if observed[h].get("node_config")}
        networks = {h: observed[h].get("networks") or [] for h in reachable}
        addresses = {h: node_address(h, fleet.host_vars(h), networks[h]) for h in reachable}
        remembered = {}  # an unreachable node, as the newest file that names it remembers it
        for data in sorted(own.values(), key=lambda d: d.get("written_at") or 0):
            for peer in data["peers"]:
                remembered[peer["node"]] = peer
        cluster = [h for h in hosts if h in addresses or h in remembered]
        for host in hosts:
            if host not in cluster:
                display.warning(f"cluster_network: {host} is unreachable and no node remembers it: it joins the cluster network on a run that reaches it")
        for host in cluster:
            if host not in addresses:
                addresses[host] = remembered[host]["address"]
        cidrs.check_addresses(conf, addresses)
        indexes = cidrs.allocate(conf, cluster, own)
        vias = {}
        for a in cluster:
            for b in cluster:
                if a < b:
                    memory = [p["via"] for n in (a, b) if n in own for p in own[n]["peers"] if p["node"] in (a, b) and p["node"] != n]
                    vias[(a, b)] = cidrs.via(conf.mode, networks.get(a), addresses[a], networks.get(b), addresses[b], memory[0] if memory else None)
        return cidrs.node_configs(conf, indexes, addresses, vias, time.time())
