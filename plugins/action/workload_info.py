# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hostfleet.workloads.workload_info: what the fleet runs, as data and as a `kubectl get`-like table.

One round reads every node (the module of the same name, run on each node:
pods with status, the controllers' records, CronJobs, optionally journal
events); the rest is pure: ``summarize`` groups pods by workload and counts
them the way ``kubectl get`` does, ``render_table`` prints that. Records are
the ones the controllers store with the pods (the newest copy wins, as in
``workload_task.Observation.record``): nothing is kept controller-side.
"""

from __future__ import annotations

import time

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.hostfleet.workloads.plugins.module_utils.kinds import WORKLOAD_KINDS
from ansible_collections.hostfleet.workloads.plugins.module_utils.node import events as node_events
from ansible_collections.hostfleet.workloads.plugins.module_utils.node import namespaces
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError, dns_label
from ansible_collections.hostfleet.workloads.plugins.module_utils.observe_args import WORKLOAD_INFO_ARGS
from ansible_collections.hostfleet.workloads.plugins.module_utils.timefmt import rfc3339
from ansible_collections.hostfleet.workloads.plugins.plugin_utils import summaries
from ansible_collections.hostfleet.workloads.plugins.plugin_utils._fanout import Fleet
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.records import RecordError, load_record
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.registry import controller
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.network import endpoints as service_endpoints
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.labels import parse_label_selector
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.nodes import LABELS_VAR, node_from_inventory
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.summaries import FINISHED, current_template, human_duration, revision_numbers

display = Display()

NODE_MODULE = "hostfleet.workloads.workload_info"
# Display order: the registry's kinds, then bare pods.
KIND_ORDER = WORKLOAD_KINDS + ("Pod",)


def kind_summary(kind):
    """How workload_info shows ``kind``: the registry's summary; bare Pods and pods of an unknown owner kind are listed and counted."""
    summary = controller(kind).summarize if kind in WORKLOAD_KINDS else None
    return summary or summaries.owned_pods(kind)


def kind_rank(kind):
    return KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)


# -- pods ----------------------------------------------------------------------------------------------


def pod_status_text(pod):
    """STATUS as `kubectl get pods` prints it: a waiting or terminated reason wins over the phase."""
    if pod.get("init_status"):
        return pod["init_status"]  # Init:N/M, Init:CrashLoopBackOff, Init:Error, PodInitializing (node/init_containers.py)
    containers = pod.get("containers") or []
    for container in containers:
        waiting = (container.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason") and waiting["reason"] != "ContainerCreating":
            return waiting["reason"]
    if pod.get("phase") in FINISHED:
        for container in containers:
            terminated = (container.get("state") or {}).get("terminated")
            if terminated and terminated.get("reason"):
                return terminated["reason"]
        return "Completed" if pod.get("phase") == "Succeeded" else "Error"
    if pod.get("phase") == "Pending":
        return "ContainerCreating" if containers else "Pending"
    if pod.get("phase") == "Running" and not pod.get("ready") and any(not c.get("started") for c in containers):
        for container in containers:
            terminated = (container.get("state") or {}).get("terminated")
            if terminated and terminated.get("reason"):
                return terminated["reason"]
    return pod.get("phase") or "Unknown"


def pod_view(pod, node, skew, revisions, now):
    """One pod of a node's report, on the controller's clock, as workload_info returns it."""
    created = (pod.get("created") or 0) + skew if pod.get("created") else None
    ready_since = pod["ready_since"] + skew if pod.get("ready_since") is not None else None
    keys = ("name", "unit", "unit_state", "state", "ready", "started", "restart_count", "last_exit_code", "last_exit_reason", "image")
    containers = [{key: container.get(key) for key in keys if key in container} for container in pod.get("containers") or []]
    init_containers = [{key: container.get(key) for key in keys if key in container} for container in pod.get("init_containers") or []]
    # As kubectl's READY: the app containers and the sidecars (init containers that keep running).
    sidecars = [c for c in init_containers if c.get("name") in set(pod.get("sidecars") or ())]
    ready_count = sum(1 for c in containers + sidecars if c.get("ready"))
    view = {
        "name": pod["name"],
        "node": node,
        "owner": pod.get("owner") or {},
        "phase": pod.get("phase") or "Unknown",
        "status": pod_status_text(pod),
        "ready": bool(pod.get("ready")),
        "ready_containers": f"{ready_count}/{len(containers) + len(sidecars)}",
        "ready_since": ready_since,
        "restarts": int(pod.get("restart_count") or 0),
        "created": rfc3339(created),
        "created_at": created,
        "age": (now - created) if created is not None else None,
        "template_hash": pod.get("revision") or "",
        "revision": revisions.get(pod.get("revision") or ""),
        "labels": pod.get("labels") or {},
        # status.podIP and status.hostIP (null where the node has no cluster network and the pod uses the host's).
        "pod_ip": pod.get("pod_ip"),
        "host_ip": pod.get("host_ip"),
        "containers": containers,
    }
    if init_containers:
        # Like status.initContainerStatuses; only for pods that have init containers.
        view["init_containers"] = init_containers
    return view


# -- workloads -----------------------------------------------------------------------------------------


def newest_records(results):
    """{"Kind/name": record}: the newest copy (highest ``seq``) any node holds, as the controllers read them."""
    records = {}
    for result in results.values():
        for key, record in (result.get("owner_records") or {}).items():
            if isinstance(record, dict) and (key not in records or (record.get("seq") or 0) > (records[key].get("seq") or 0)):
                records[key] = record
    return records


def typed_records(raw):
    """({"Kind/name": records.Record}, [problem]): each record loaded as its kind's controller loads it. A record
    the controller could not read either (another kind, a newer schema) is left out and named; a kind that keeps no
    record (a CronJob) has none."""
    loaded, problems = {}, []
    for key, data in sorted(raw.items()):
        kind, _sep, owner_name = key.partition("/")
        record_type = controller(kind).record_type if kind in WORKLOAD_KINDS else None
        if record_type is None:
            continue
        try:
            loaded[key] = load_record(kind, data, owner_name)
        except RecordError as exc:
            problems.append(f"the record of {key} cannot be read: {exc}")
    return loaded, problems


def summarize(results, now, kinds=None, name=None, selector=None, problems=None, namespace=None):
    """Workloads and pods of every reachable node's report (``results``: {node: module result}), selected (``name``
    is a Kubernetes name, in ``namespace`` or any). Names are the node layer's (``<namespace>_<name>`` outside
    default, node/namespaces.py) until ``as_kubernetes_names``. Records that cannot be read are named in ``problems``
    (a list) when given."""
    stored = newest_records(results)
    records, unreadable = typed_records(stored)
    if problems is not None:
        problems.extend(unreadable)
    run_owner = {}  # a CronJob run's Job name -> the CronJob
    cronjobs = {}
    for result in results.values():
        skew = now - float(result.get("observed_at") or now)
        for cron, report in (result.get("cronjobs") or {}).items():
            report = dict(report, **{k: report[k] + skew for k in ("last_schedule", "last_success") if isinstance(report.get(k), (int, float))})
            previous = cronjobs.get(cron)
            if previous is None or (report.get("last_schedule") or 0) >= (previous.get("last_schedule") or 0):
                cronjobs[cron] = report
            for run in report.get("runs") or []:
                run_owner[run.get("name")] = cron
    grouped = {}
    for node, result in results.items():
        skew = now - float(result.get("observed_at") or now)
        for pod in result.get("pods") or []:
            owner = pod.get("owner") or {}
            kind, owner_name = owner.get("kind") or "Pod", owner.get("name") or ""
            if kind == "Job" and owner_name in run_owner and f"Job/{owner_name}" not in stored:
                kind, owner_name = "CronJob", run_owner[owner_name]
            key = (kind, owner_name)
            numbers = revision_numbers(records.get(f"{kind}/{owner_name}"))
            grouped.setdefault(key, []).append(pod_view(pod, node, skew, numbers, now))
    keys = set(grouped)
    for key in stored:
        kind, _sep, owner_name = key.partition("/")
        keys.add((kind, owner_name))
    keys |= {("CronJob", cron) for cron in cronjobs}
    workloads = []
    for kind, owner_name in sorted(keys, key=lambda k: (kind_rank(k[0]), k[1])):
        if kinds and kind not in kinds:
            continue
        owner_namespace, kube_name = namespaces.split(owner_name)
        if (name is not None and kube_name != name) or (namespace is not None and owner_namespace != namespace):
            continue
        pods = grouped.get((kind, owner_name), [])
        record = records.get(f"{kind}/{owner_name}")
        if selector is not None and not _selected(selector, record, pods):
            continue
        workloads.append(kind_summary(kind)(owner_name, record, pods, now, cronjobs.get(owner_name)))
    return workloads


def _selected(selector, record, pods):
    if pods:
        return any(selector.matches(p["labels"]) for p in pods)
    template = current_template(record)
    return selector.matches((template.get("metadata") or {}).get("labels") or {})


# -- events --------------------------------------------------------------------------------------------


def collect_events(results, workloads, now):
    """The selected workloads' events from every node's journal, on the controller's clock, oldest first."""
    pod_owner = {}
    for workload in workloads:
        for pod in workload["pods"]:
            pod_owner[pod["name"]] = f"{workload['kind']}/{workload['name']}"
    merged = []
    for node, result in results.items():
        skew = now - float(result.get("observed_at") or now)
        for event in result.get("events") or []:
            item = dict(event, node=node, time=event["time"] + skew)
            if item.get("pod") and item.get("owner"):
                pod_owner.setdefault(item["pod"], item["owner"])
            merged.append(item)
    selected = {f"{w['kind']}/{w['name']}" for w in workloads}
    out = []
    for event in node_events.mark_rescheduled(merged):
        owner = event.get("owner") or pod_owner.get(event.get("pod") or "", "")
        if owner not in selected:
            continue
        out.append(
            {
                "time": rfc3339(event["time"], millis=True),
                "timestamp": event["time"],
                "node": event["node"],
                "type": event.get("type") or "Normal",
                "reason": event["reason"],
                "object": f"pod/{event['pod']}" if event.get("pod") else owner.lower(),
                "pod": event.get("pod") or "",
                "container": event.get("container") or "",
                "owner": owner,
                "message": event.get("message") or "",
                **({"count": event["count"]} if event.get("count") is not None else {}),
            }
        )
    return out


def as_kubernetes_names(workloads, events=None):
    """Workloads, pods and events named as Kubernetes names them: ``namespace`` and ``name`` apart (in place)."""
    for workload in workloads:
        workload["namespace"], workload["name"] = namespaces.split(workload["name"])
        for pod in workload["pods"]:
            pod["namespace"], pod["name"] = namespaces.split(pod["name"])
    for event in events or ():
        kind, _sep, owner = event["owner"].partition("/")
        event["namespace"], owner = namespaces.split(owner)
        event["owner"] = f"{kind}/{owner}"
        if event["pod"]:
            event["pod"] = namespaces.kube_name(event["pod"])
            event["object"] = f"pod/{event['pod']}"


# -- the table -----------------------------------------------------------------------------------------


def columns(rows):
    """Left-aligned columns three spaces apart, as kubectl prints them; no trailing spaces."""
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return ["   ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]


def _n(value):
    return "-" if value is None else str(value)


def service_views(results, kinds=None, name=None, selector=None, namespace=None):
    """The Services the reachable nodes hold (the copy most hold), selected, as `kubectl get svc,endpoints` lists them.
    A kind filter (workload kinds) or a label selector (the files keep no Service labels) selects none."""
    if kinds or selector is not None:
        return []
    newest = service_endpoints.newest_services({h: r.get("services") or [] for h, r in results.items()})
    return [service_endpoints.service_view(s) for (ns, svc), s in sorted(newest.items()) if name in (None, svc) and namespace in (None, ns)]


def render_table(workloads, events=None, unreachable=None, now=None, services=None):
    """kubectl-get-like lines: one section per kind, the Services and their endpoints, then every pod, then the
    events; sections apart by a blank line."""
    now = time.time() if now is None else now
    sections = []
    # As `kubectl get -A`: a NAMESPACE column first, once anything is outside default.
    spaced = any(w.get("namespace", namespaces.DEFAULT) != namespaces.DEFAULT for w in workloads)

    def first(namespace):
        return [namespace] if spaced else []

    for kind in sorted({w["kind"] for w in workloads}, key=kind_rank):
        summary = kind_summary(kind)
        rows = [first(w.get("namespace")) + list(summary.row(w, now)) for w in workloads if w["kind"] == kind]
        sections.append(columns([first("NAMESPACE") + list(summary.header)] + rows))
    if services:
        sections += [columns(rows) for rows in service_endpoints.service_tables(services)]
    pods = [(w, p) for w in workloads for p in w["pods"]]
    if pods:
        header = first("NAMESPACE") + ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "NODE", "REVISION", "OWNER"]
        rows = [
            first(w.get("namespace")) + [f"pod/{p['name']}", p["ready_containers"], p["status"], p["restarts"], human_duration(p["age"]), p["node"],
                                         _n(p["revision"]), f"{w['kind'].lower()}/{w['name']}"]
            for w, p in sorted(pods, key=lambda wp: (wp[1]["node"], wp[0].get("namespace") or "", wp[1]["name"]))
        ]
        sections.append(columns([header] + rows))
    if events:
        header = ["LAST SEEN", "TYPE", "REASON", "OBJECT", "NODE", "MESSAGE"]
        rows = [[human_duration(now - e["timestamp"]), e["type"], e["reason"], e["object"], e["node"], e["message"]] for e in events]
        sections.append(columns([header] + rows))
    if unreachable:
        sections.append([f"UNREACHABLE NODE {node}: {msg}" for node, msg in sorted(unreachable.items())])
    if not sections:
        sections.append(["No resources found."])
    lines = []
    for section in sections:
        if lines:
            lines.append("")
        lines += section
    return lines


# -- the action ----------------------------------------------------------------------------------------


def _node_labels(fleet, host, result) -> dict:
    """The node's labels as the workload modules place pods with them: inventory, groups, hostname and its facts."""
    hostvars = fleet.host_vars(host)
    inventory = {LABELS_VAR: hostvars[LABELS_VAR]} if LABELS_VAR in hostvars else {}
    try:
        node = node_from_inventory(host, True, inventory, fleet.groups_of(host), result.get("node_facts"))
    except SpecError as exc:
        display.warning(f"workload_info: node {host}: {exc}")
        return {}
    return node.labels


class ActionModule(ActionBase):
    BYPASS_HOST_LOOP = True
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        _validation, args = self.validate_argument_spec(argument_spec=WORKLOAD_INFO_ARGS)
        try:
            selector = parse_label_selector(args["selector"], "selector") if args["selector"] else None
            namespace = dns_label(args["namespace"], "namespace") if args["namespace"] is not None else None
            node_events.parse_duration(args["events_since"])
        except (SpecError, node_events.EventError) as exc:
            return dict(result, failed=True, changed=False, msg=f"invalid argument: {exc}")
        hosts = Fleet.select(self, task_vars, args["nodes"])
        if not hosts:
            return dict(result, failed=True, changed=False, msg=f"no node of the play matches nodes={args['nodes']!r}")
        node_args = {"state_dir": args["state_dir"], "events": args["events"], "events_since": args["events_since"]}
        with Fleet(self, task_vars, hosts) as fleet:
            # Reading changes nothing: the same in check mode.
            results = fleet.run_module(NODE_MODULE, dict.fromkeys(hosts, node_args), check_mode=False)
            fleet.emit_warnings(results)
            node_labels = {h: _node_labels(fleet, h, r) for h, r in results.items() if not (r.get("unreachable") or r.get("failed"))}
        now = time.time()
        unreachable = {h: (r.get("msg") or "unreachable") for h, r in results.items() if r.get("unreachable") or r.get("failed")}
        for host, msg in sorted(unreachable.items()):
            display.warning(f"workload_info: node {host} could not be read: {msg}")
        readable = {h: r for h, r in results.items() if h not in unreachable}
        problems = []
        workloads = summarize(readable, now, args["kind"], args["name"], selector, problems, namespace)
        for problem in problems:
            display.warning(f"workload_info: {problem}")
        found_events = collect_events(readable, workloads, now) if args["events"] else None
        as_kubernetes_names(workloads, found_events)
        services = service_views(readable, args["kind"], args["name"], selector, namespace)
        result.update(
            changed=False,
            workloads=workloads,
            pods=sorted((p for w in workloads for p in w["pods"]), key=lambda p: (p["node"], p["name"])),
            table=render_table(workloads, found_events, unreachable, now, services),
            services=services,
            unreachable_nodes=unreachable,
            nodes=sorted(readable),
            node_labels=dict(sorted(node_labels.items())),
        )
        if found_events is not None:
            result["events"] = found_events
        return result
