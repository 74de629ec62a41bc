# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hostfleet.workloads.pod_logs: a pod's output, like kubectl logs, from whichever node runs it.

Every node is asked at once (the module of the same name, run on each node):
the node that holds the pod's record reads its containers' journal, the
others answer that they do not have it. So finding the node costs nothing
more than reading the logs.
"""

from __future__ import annotations

import time

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.hostfleet.workloads.plugins.module_utils.node import events as node_events
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError, dns_label
from ansible_collections.hostfleet.workloads.plugins.module_utils.observe_args import POD_LOGS_ARGS
from ansible_collections.hostfleet.workloads.plugins.module_utils.timefmt import rfc3339
from ansible_collections.hostfleet.workloads.plugins.plugin_utils._fanout import Fleet

display = Display()

NODE_MODULE = "hostfleet.workloads.pod_logs"


def merge_lines(found, now):
    """The lines of the node(s) that have the pod, on the controller's clock, oldest first."""
    lines = []
    for node, result in found.items():
        skew = now - float(result.get("observed_at") or now)
        for line in result.get("lines") or []:
            at = line["time"] + skew
            lines.append({"time": rfc3339(at, millis=True), "timestamp": at, "container": line["container"], "message": line["message"], "node": node})
    return sorted(lines, key=lambda line: line["timestamp"])


class ActionModule(ActionBase):
    BYPASS_HOST_LOOP = True
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        _validation, args = self.validate_argument_spec(argument_spec=POD_LOGS_ARGS)
        try:
            dns_label(args["pod"], "pod")
            dns_label(args["namespace"], "namespace")
            if args["container"] is not None:
                dns_label(args["container"], "container")
            if args["since"] not in (None, ""):
                node_events.parse_duration(args["since"])
            node_events.follow_seconds(args["follow"])
        except (SpecError, node_events.EventError) as exc:
            return dict(result, failed=True, changed=False, msg=f"invalid argument: {exc}")
        if args["tail"] is not None and args["tail"] < 0:
            return dict(result, failed=True, changed=False, msg="invalid argument: tail: must be 0 or more")
        hosts = Fleet.select(self, task_vars, args["nodes"])
        if not hosts:
            return dict(result, failed=True, changed=False, msg=f"no node of the play matches nodes={args['nodes']!r}")
        node_args = {k: args[k] for k in ("pod", "namespace", "container", "since", "tail", "follow", "state_dir")}
        with Fleet(self, task_vars, hosts) as fleet:
            results = fleet.run_module(NODE_MODULE, dict.fromkeys(hosts, node_args), check_mode=False)
            fleet.emit_warnings(results)
        now = time.time()
        unreachable = {h: (r.get("msg") or "unreachable") for h, r in results.items() if r.get("unreachable") or (r.get("failed") and not r.get("found"))}
        failed = {h: r.get("msg") for h, r in results.items() if r.get("failed") and r.get("found")}
        found = {h: r for h, r in results.items() if r.get("found") and not r.get("failed")}
        result.update(changed=False, unreachable_nodes=unreachable)
        if failed:
            return dict(result, failed=True, msg="; ".join(f"{h}: {m}" for h, m in sorted(failed.items())))
        if not found:
            where = f" (not read: {', '.join(sorted(unreachable))})" if unreachable else ""
            return dict(result, failed=True, msg=f"no reachable node runs pod {args['pod']}{where}")
        for host, msg in sorted(unreachable.items()):
            display.warning(f"pod_logs: node {host} could not be asked: {msg}")
        lines = merge_lines(found, now)
        result.update(
            node=sorted(found)[0],
            containers=sorted({c for r in found.values() for c in r.get("containers") or []}),
            lines=lines,
            messages=[line["message"] for line in lines],
        )
        return result
