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
from datetime import UTC, datetime

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.hostfleet.workloads.plugins.module_utils.node import events as node_events
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError
from ansible_collections.hostfleet.workloads.plugins.module_utils.observe_args import WORKLOAD_INFO_ARGS
from ansible_collections.hostfleet.workloads.plugins.plugin_utils._fanout import Fleet
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.pods import ObservedPod, is_available, is_ready
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.labels import parse_label_selector

display = Display()

NODE_MODULE = "hostfleet.workloads.workload_info"
KIND_ORDER = ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod")
FINISHED = ("Succeeded", "Failed")


# -- times -------------------------------------------------------------------------------------------


def rfc3339(timestamp, millis=False):
    if timestamp is None:
        return None
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    if millis:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def human_duration(seconds):
    """kubectl's short age (k8s.io/apimachinery duration.HumanDuration): 45s, 3m20s, 2h5m, 3d4h, 400d, 2y10d."""
    if seconds is None:
        return "<unknown>"
    total = int(seconds)
    if total < 0:
        return "<invalid>" if total < -1 else "0s"
    if total < 120:
        return f"{total}s"
    minutes = total // 60
    if minutes < 10:
        return f"{minutes}m{total % 60}s" if total % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    years = hours // (24 * 365)
    if years < 8:
        days = (hours // 24) % 365
        return f"{years}y{days}d" if days else f"{years}y"
    return f"{years}y"


# -- pods ----------------------------------------------------------------------------------------------


def pod_status_text(pod):
    """STATUS as `kubectl get pods` prints it: a waiting or terminated reason wins over the phase."""
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
    containers = []
    for container in pod.get("containers") or []:
        containers.append(
            {
                key: container.get(key)
                for key in ("name", "unit", "unit_state", "state", "ready", "started", "restart_count", "last_exit_code", "last_exit_reason", "image")
                if key in container
            }
        )
    ready_count = sum(1 for c in containers if c.get("ready"))
    view = {
        "name": pod["name"],
        "node": node,
        "owner": pod.get("owner") or {},
        "phase": pod.get("phase") or "Unknown",
        "status": pod_status_text(pod),
        "ready": bool(pod.get("ready")),
        "ready_containers": f"{ready_count}/{len(containers)}",
        "ready_since": ready_since,
        "restarts": int(pod.get("restart_count") or 0),
        "created": rfc3339(created),
        "created_at": created,
        "age": (now - created) if created is not None else None,
        "template_hash": pod.get("revision") or "",
        "revision": revisions.get(pod.get("revision") or ""),
        "labels": pod.get("labels") or {},
        "containers": containers,
    }
    return view


def _observed(view):
    return ObservedPod.from_json(
        {
            "name": view["name"],
            "node": view["node"],
            "revision": view["template_hash"],
            "phase": view["phase"],
            "ready": view["ready"],
            "ready_since": view["ready_since"],
            "created": view["created_at"] or 0.0,
        }
    )


# -- workloads -----------------------------------------------------------------------------------------


def newest_records(results):
    """{"Kind/name": record}: the newest copy (highest ``seq``) any node holds, as the controllers read them."""
    records = {}
    for result in results.values():
        for key, record in (result.get("owner_records") or {}).items():
            if isinstance(record, dict) and (key not in records or (record.get("seq") or 0) > (records[key].get("seq") or 0)):
                records[key] = record
    return records


def _revision_numbers(record):
    return {h: int(e.get("revision") or 0) for h, e in ((record or {}).get("revisions") or {}).items() if isinstance(e, dict)}


def _conditions(record):
    rendered = []
    for condition in (record or {}).get("conditions") or []:
        item = dict(condition)
        for key in ("lastUpdateTime", "lastTransitionTime", "lastProbeTime"):
            if isinstance(item.get(key), (int, float)):
                item[key] = rfc3339(item[key])
        if isinstance(item.get("time"), (int, float)):
            item["lastTransitionTime"] = rfc3339(item.pop("time"))
        rendered.append(item)
    return rendered


def _current_hash(kind, record):
    record = record or {}
    if kind == "StatefulSet":
        return record.get("update_revision") or record.get("template_hash")
    if kind == "Deployment":
        return record.get("current_hash")
    if kind == "DaemonSet":
        return record.get("current_hash")
    return record.get("template_hash") or record.get("current_hash")


def _first_created(record, pods):
    times = [e.get("created") for e in ((record or {}).get("revisions") or {}).values() if isinstance(e, dict) and e.get("created")]
    if (record or {}).get("start_time"):
        times.append(record["start_time"])
    times += [p["created_at"] for p in pods if p.get("created_at")]
    return min(times) if times else None


def summarize_workload(kind, name, record, pods, cronjob, now):
    """One workload's counts, as kubectl shows them, from its record and the pods the nodes run now."""
    record = record or {}
    current_hash = _current_hash(kind, record)
    numbers = _revision_numbers(record)
    live = [p for p in pods if p["phase"] not in FINISHED]
    min_ready = int(record.get("minReadySeconds") or record.get("min_ready_seconds") or 0)
    observed = [_observed(p) for p in live]
    desired = None
    if kind == "Deployment":
        desired = record.get("replicas")
    elif kind == "DaemonSet":
        desired = (record.get("observed") or {}).get("desired")
    elif kind in ("ReplicaSet", "StatefulSet"):
        desired = record.get("replicas")
    elif kind == "Job":
        desired = (record.get("immutable") or {}).get("completions")
    created = _first_created(record, pods)
    workload = {
        "kind": kind,
        "name": name,
        "desired": int(desired) if isinstance(desired, int) else None,
        "current": len(live),
        "ready": sum(1 for p in observed if is_ready(p)),
        "up_to_date": sum(1 for p in live if current_hash and p["template_hash"] == current_hash),
        "available": sum(1 for p in observed if is_available(p, min_ready, now)),
        "revision": numbers.get(current_hash) if current_hash else None,
        "conditions": _conditions(record),
        "status": {},
        "nodes": sorted({p["node"] for p in pods}),
        "created": rfc3339(created),
        "age": (now - created) if created is not None else None,
        "pods": sorted(pods, key=lambda p: (p["node"], p["name"])),
    }
    if kind == "Job":
        finished = next((c for c in record.get("conditions") or [] if c.get("type") in ("Complete", "Failed") and c.get("status") == "True"), None)
        suspended = next((c for c in record.get("conditions") or [] if c.get("type") == "Suspended" and c.get("status") == "True"), None)
        end = record.get("completion_time") or record.get("finished_time")
        start = record.get("start_time")
        workload["status"] = {
            "active": len(live),
            "succeeded": int(record.get("succeeded") or 0),
            "failed": int(record.get("failed") or 0),
            "completions": desired,
            "status": finished["type"] if finished else ("Suspended" if suspended else "Running"),
            "startTime": rfc3339(start),
            "completionTime": rfc3339(record.get("completion_time")),
            "duration": ((end or now) - start) if start else None,
        }
    elif kind == "CronJob" and cronjob:
        config = cronjob.get("config") or {}
        runs = cronjob.get("runs") or []
        workload["status"] = {
            "schedule": config.get("schedule"),
            "timeZone": config.get("timeZone"),
            "suspend": bool(config.get("suspend")),
            "active": sum(1 for r in runs if r.get("active")),
            "lastScheduleTime": rfc3339(cronjob.get("last_schedule")),
            "lastSuccessfulTime": rfc3339(cronjob.get("last_success")),
            "runs": [{k: r.get(k) for k in ("name", "scheduled", "active", "outcome")} for r in runs],
        }
        workload["desired"] = None
    return workload


def summarize(results, now, kinds=None, name=None, selector=None):
    """Workloads and pods of every reachable node's report (``results``: {node: module result}), selected."""
    records = newest_records(results)
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
            if kind == "Job" and owner_name in run_owner and f"Job/{owner_name}" not in records:
                kind, owner_name = "CronJob", run_owner[owner_name]
            key = (kind, owner_name)
            numbers = _revision_numbers(records.get(f"{kind}/{owner_name}"))
            grouped.setdefault(key, []).append(pod_view(pod, node, skew, numbers, now))
    keys = set(grouped)
    for key in records:
        kind, _sep, owner_name = key.partition("/")
        keys.add((kind, owner_name))
    keys |= {("CronJob", cron) for cron in cronjobs}
    workloads = []
    for kind, owner_name in sorted(keys, key=lambda k: (KIND_ORDER.index(k[0]) if k[0] in KIND_ORDER else len(KIND_ORDER), k[1])):
        if kinds and kind not in kinds:
            continue
        if name is not None and owner_name != name:
            continue
        pods = grouped.get((kind, owner_name), [])
        record = records.get(f"{kind}/{owner_name}")
        if selector is not None and not _selected(selector, record, pods):
            continue
        workloads.append(summarize_workload(kind, owner_name, record, pods, cronjobs.get(owner_name) if kind == "CronJob" else None, now))
    return workloads


def _selected(selector, record, pods):
    if pods:
        return any(selector.matches(p["labels"]) for p in pods)
    current = _current_hash((record or {}).get("kind"), record)
    template = (((record or {}).get("revisions") or {}).get(current) or {}).get("template") or (record or {}).get("immutable", {}).get("template") or {}
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


# -- the table -----------------------------------------------------------------------------------------


def columns(rows):
    """Left-aligned columns three spaces apart, as kubectl prints them; no trailing spaces."""
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return ["   ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]


def _n(value):
    return "-" if value is None else str(value)


def _kind_rows(kind, workloads):
    if kind == "Deployment":
        header = ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "REVISION", "AGE"]
        rows = [[f"deployment/{w['name']}", f"{w['ready']}/{_n(w['desired'])}", w["up_to_date"], w["available"], _n(w["revision"]), human_duration(w["age"])]
                for w in workloads]
    elif kind == "ReplicaSet":
        header = ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
        rows = [[f"replicaset/{w['name']}", _n(w["desired"]), w["current"], w["ready"], human_duration(w["age"])] for w in workloads]
    elif kind == "StatefulSet":
        header = ["NAME", "READY", "UP-TO-DATE", "REVISION", "AGE"]
        rows = [
            [f"statefulset/{w['name']}", f"{w['ready']}/{_n(w['desired'])}", w["up_to_date"], _n(w["revision"]), human_duration(w["age"])] for w in workloads
        ]
    elif kind == "DaemonSet":
        header = ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "REVISION", "AGE"]
        rows = [
            [f"daemonset/{w['name']}", _n(w["desired"]), w["current"], w["ready"], w["up_to_date"], w["available"], _n(w["revision"]), human_duration(w["age"])]
            for w in workloads
        ]
    elif kind == "Job":
        header = ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
        rows = [
            [f"job/{w['name']}", w["status"].get("status", "-"), f"{w['status'].get('succeeded', 0)}/{_n(w['desired'])}",
             human_duration(w["status"].get("duration")) if w["status"].get("duration") is not None else "-", human_duration(w["age"])]
            for w in workloads
        ]
    elif kind == "CronJob":
        header = ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE", "AGE"]
        rows = []
        for w in workloads:
            s = w["status"]
            last = s.get("lastScheduleTime")
            rows.append([f"cronjob/{w['name']}", s.get("schedule") or "-", s.get("timeZone") or "-", str(bool(s.get("suspend"))), s.get("active", 0),
                         human_duration(w["_now"] - _parse_time(last)) if last else "<none>", human_duration(w["age"])])
    else:
        header = ["NAME", "READY", "PODS", "AGE"]
        rows = [[f"{kind.lower()}/{w['name']}", f"{w['ready']}/{w['current']}", len(w["pods"]), human_duration(w["age"])]
                for w in workloads]
    return columns([header] + rows)


def _parse_time(text):
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def render_table(workloads, events=None, unreachable=None, now=None):
    """kubectl-get-like lines: one section per kind, then every pod, then the events; sections apart by a blank line."""
    now = time.time() if now is None else now
    sections = []
    for kind in KIND_ORDER:
        mine = [dict(w, _now=now) for w in workloads if w["kind"] == kind]
        if mine:
            sections.append(_kind_rows(kind, mine))
    pods = [(w, p) for w in workloads for p in w["pods"]]
    if pods:
        header = ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "NODE", "REVISION", "OWNER"]
        rows = [
            [f"pod/{p['name']}", p["ready_containers"], p["status"], p["restarts"], human_duration(p["age"]), p["node"], _n(p["revision"]),
             f"{w['kind'].lower()}/{w['name']}"]
            for w, p in sorted(pods, key=lambda wp: (wp[1]["node"], wp[1]["name"]))
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


class ActionModule(ActionBase):
    BYPASS_HOST_LOOP = True
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        _validation, args = self.validate_argument_spec(argument_spec=WORKLOAD_INFO_ARGS)
        try:
            selector = parse_label_selector(args["selector"], "selector") if args["selector"] else None
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
        now = time.time()
        unreachable = {h: (r.get("msg") or "unreachable") for h, r in results.items() if r.get("unreachable") or r.get("failed")}
        for host, msg in sorted(unreachable.items()):
            display.warning(f"workload_info: node {host} could not be read: {msg}")
        readable = {h: r for h, r in results.items() if h not in unreachable}
        workloads = summarize(readable, now, args["kind"], args["name"], selector)
        found_events = collect_events(readable, workloads, now) if args["events"] else None
        result.update(
            changed=False,
            workloads=workloads,
            pods=sorted((p for w in workloads for p in w["pods"]), key=lambda p: (p["node"], p["name"])),
            table=render_table(workloads, found_events, unreachable, now),
            unreachable_nodes=unreachable,
            nodes=sorted(readable),
        )
        if found_events is not None:
            result["events"] = found_events
        return result
