# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hostfleet.workloads.apply: Kubernetes manifests, applied to the fleet as they are.

The documents are read and checked by plugin_utils/manifests/ (pure), then each workload is checked by its own
kind's action (argument spec and spec parser) — every problem of every document is reported before any host is
touched. Then each object is applied, in dependency order, by the SAME action plugin as its kind module
(``hostfleet.workloads.deployment`` ...), built with the object's arguments; ConfigMaps and Secrets by the
``config_data`` node module on every node; a bare Pod by the ``pod`` node module on one node.

Documents of kinds that mean nothing on hosts (manifests/skipped_kinds.py) are listed in ``not_applied`` and a warning,
or refused with ``unsupported_kinds: error``. One object's failure skips only the objects that depend on it
(``objects.dependencies``: what its pods read); the task fails at the end naming every object that failed. A Job
that had already failed before this run is reported (``already_failed``), not failed again.
"""

from __future__ import annotations

import copy

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.module_utils.common.parameters import remove_values
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.hostfleet.workloads.plugins.module_utils.apply_args import APPLY_ARGS, APPLY_MUTUALLY_EXCLUSIVE, APPLY_REQUIRED_ONE_OF
from ansible_collections.hostfleet.workloads.plugins.module_utils.node import namespaces
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError, dns_label
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.units import valid_env_name
from ansible_collections.hostfleet.workloads.plugins.plugin_utils._fanout import Fleet
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.templates import parse_pod_template
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.manifests import load
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.manifests.objects import WORKLOADS, ManifestErrors, build, dependencies, references
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.network.servicespec import parse_service, service_name
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.nodes import CAPACITY_VAR, LABELS_VAR, node_from_inventory
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.one_node import choose_nodes, eligible_nodes, most_preferred
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.taints import TAINTS_VAR, admission_refusal, parse_taints

display = Display()

CONFIG_MODULE = "hostfleet.workloads.config_data"
POD_MODULE = "hostfleet.workloads.pod"
# What an object's result keeps of its kind action's result (the rest is on the nodes: workload_info shows it).
KEPT = ("status", "plan", "message", "waiting_for", "revision", "deleted", "volumes_deleted", "unreachable_nodes", "nodes", "replaced", "job_pods", "runs")


def _pod_template(obj):
    """The Pod's spec checked as the node layer and the scheduler will see it (paths as in the manifest)."""
    args = obj.args
    template = {"metadata": {"labels": args.get("labels") or {}, "annotations": args.get("annotations") or {}}, "spec": args.get("spec")}
    try:
        return parse_pod_template(template, "pod", ("Always", "OnFailure", "Never"))
    except SpecError as exc:
        path = exc.path[len("pod.") :] if exc.path.startswith("pod.") else exc.path
        raise SpecError(path, exc.message) from None


class _Warnings:
    """Collects the warnings of this task (its own and its objects' kind actions') for the result's ``warnings``.

    Warnings displayed in this process between fan-out rounds would be copied into every forked child (ansible-core
    2.21 defers them in a context that a fork inherits) and come back once per host per round; so they are kept
    here while the objects are applied, and returned once, with the result.
    """

    def __init__(self):
        self.messages = []

    def __enter__(self):
        self._saved = display.__dict__.get("warning")
        display.warning = self._warning
        return self

    def _warning(self, msg, *args, **kwargs):
        self.messages.append(str(msg))

    def __exit__(self, *exc):
        if self._saved is None:
            del display.warning
        else:
            display.warning = self._saved


class ActionModule(ActionBase):
    BYPASS_HOST_LOOP = True
    _requires_connection = False

    # -- the kinds' own actions -------------------------------------------------------------------

    def _kind_args(self, obj, args):
        """The kind module's arguments for one object: the apply task's fleet options and the object's spec."""
        spec = WORKLOADS[obj.kind][1]
        fleet = {key: args[key] for key in ("state", "nodes", "wait", "wait_timeout", "state_dir") if key in spec}
        if "namespace" in spec:
            fleet["namespace"] = obj.namespace
        return {"name": obj.name, **fleet, **copy.deepcopy(obj.args)}

    def _kind_action(self, obj, args):
        """The kind module's action plugin (the same code as a task of that module), for this object."""
        task = self._task.copy()
        task.args.clear()
        task.args.update(self._kind_args(obj, args))
        return self._shared_loader_obj.action_loader.get(
            f"hostfleet.workloads.{obj.kind.lower()}",
            task=task,
            connection=self._connection,
            play_context=self._play_context,
            loader=self._loader,
            templar=self._templar,
            shared_loader_obj=self._shared_loader_obj,
        )

    def _check_object(self, obj, args, hosts):
        """Everything the object's own task would refuse before contacting a node, as a list of messages."""
        where = f"{obj.source} ({obj.title})"
        try:
            if obj.is_claim:
                return []
            if obj.kind == "Pod":
                _pod_template(obj)
                node = obj.args.get("nodeName")
                if node is not None and node not in hosts:
                    raise SpecError("spec.nodeName", f"{node!r} is not a node of this play")
                return []
            if obj.kind == "Service":
                service_name(obj.name, "metadata.name")
                if args["state"] == "present":
                    parse_service(obj.name, getattr(obj, "namespace", "default"), obj.args["spec"])
                return []
            action = self._kind_action(obj, args)
            try:
                _validation, kind_args = action.validate_argument_spec(argument_spec=WORKLOADS[obj.kind][1])
            except AnsibleActionFail as exc:
                return [f"{where}: {exc.message}"]
            dns_label(kind_args["name"], "metadata.name")
            action.check_arguments(kind_args)
            if args["state"] == "present":
                action.parse(kind_args, None)
        except (SpecError, ValueError) as exc:
            return [f"{where}: {exc}"]
        return []

    # -- the run ----------------------------------------------------------------------------------

    def _documents(self, args):
        if args["src"] is not None:
            try:
                path = self._find_needle("files", args["src"])
            except AnsibleError:
                path = args["src"]
            return load.from_path(path)
        return load.from_definition(args["definition"])

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        _validation, args = self.validate_argument_spec(
            argument_spec=APPLY_ARGS, mutually_exclusive=APPLY_MUTUALLY_EXCLUSIVE, required_one_of=APPLY_REQUIRED_ONE_OF
        )
        if args["wait_timeout"] < 1:
            return {**result, "failed": True, "changed": False, "msg": "wait_timeout: must be at least 1"}
        errors = []
        try:
            dns_label(args["namespace"], "namespace")
        except SpecError as exc:
            return {**result, "failed": True, "changed": False, "msg": str(exc), "field": exc.path}
        try:
            objects = build(self._documents(args), args["namespace"])
        except load.LoadError as exc:
            return {**result, "failed": True, "changed": False, "msg": str(exc), "errors": [str(exc)]}
        except ManifestErrors as exc:
            objects, errors = exc.objects, exc.errors
        not_applied = [obj for obj in objects if obj.skipped_because]
        objects = [obj for obj in objects if not obj.skipped_because]
        if args["unsupported_kinds"] == "error":
            errors += [f"{obj.source} ({obj.title}): kind {obj.kind} means nothing on hosts ({obj.skipped_because}); "
                       "unsupported_kinds=skip reports it and applies the rest" for obj in not_applied]
        hosts = Fleet.select(self, task_vars, args["nodes"])
        if not hosts:
            raise AnsibleActionFail(f"no node of the play matches nodes={args['nodes']!r}")
        # Each workload is also checked by its own kind, as its task would be: every problem is named at once.
        errors += [message for obj in objects if not obj.is_config for message in self._check_object(obj, args, hosts)]
        if errors:
            return self._refused(result, errors)
        secrets = sorted({value for obj in objects for value in obj.secret_values}, key=len, reverse=True)

        ordered = objects if args["state"] == "present" else list(reversed(objects))
        needs = dependencies(objects, args["state"])
        reports, undone = [], set()  # titles of the objects that failed or were not applied
        with _Warnings() as warnings:
            if not_applied:
                display.warning(
                    f"not applied, {len(not_applied)} object{'s' if len(not_applied) != 1 else ''} of kinds that mean nothing on hosts "
                    f"(see not_applied): {', '.join(f'{obj.title} ({obj.source})' for obj in not_applied)}"
                )
            for obj in ordered:
                blockers = [title for title in needs[obj.title] if title in undone]
                if blockers:
                    why = "it reads" if args["state"] == "present" else "it is read by"
                    reports.append({"kind": obj.kind, "namespace": obj.namespace, "name": obj.name, "source": obj.source, "changed": False, "skipped": True,
                                    "msg": f"not applied: {why} {', '.join(blockers)}, which failed or was not applied"})
                    undone.add(obj.title)
                    continue
                if obj.is_config:
                    report = self._apply_config(obj, args, hosts, task_vars)
                elif obj.is_claim:
                    report = self._apply_claim(obj, args, objects)
                elif obj.kind == "Service":
                    report = self._apply_service(obj, args, task_vars)
                elif obj.kind == "Pod":
                    report = self._apply_pod(obj, args, hosts, task_vars)
                else:
                    report = self._apply_workload(obj, args, task_vars)
                report = {"kind": obj.kind, "namespace": obj.namespace, "name": obj.name, "source": obj.source, "ignored_fields": list(obj.ignored), **report}
                reports.append(report)
                if report.get("failed"):
                    undone.add(obj.title)
        if warnings.messages:
            result["warnings"] = list(result.get("warnings") or []) + list(dict.fromkeys(warnings.messages))
        ignored = [f"{obj.source} ({obj.title}): {path}" for obj in objects for path in obj.ignored]
        for line in ignored:
            display.vvv(f"apply: ignored on hosts: {line}")
        result.update(
            changed=any(r.get("changed") for r in reports),
            objects=reports,
            ignored_fields=ignored,
            # Not "skipped": Ansible reads that key of a result as the task having been skipped.
            not_applied=[
                {"kind": obj.kind, "namespace": obj.namespace, "name": obj.name, "source": obj.source, "reason": obj.skipped_because} for obj in not_applied
            ],
        )
        if self._task.diff:
            diffs = [d for r in reports for d in r.pop("diff", [])]
            if diffs:
                result["diff"] = diffs
        else:
            for report in reports:
                report.pop("diff", None)
        failures = [r for r in reports if r.get("failed")]
        if failures:
            lines = [f"{r['kind']} {r['name']} ({r['source']}): {r.get('msg') or 'failed'}" for r in failures]
            blocked = [f"{r['kind']} {r['name']}" for r in reports if r.get("skipped")]
            count = len(failures)
            msg = f"{count} object{'s' if count != 1 else ''} failed: " + "; ".join(lines)
            if blocked:
                msg += f" (not applied, as they depend on them: {', '.join(blocked)})"
            result.update(failed=True, msg=msg)
        # Secret values never leave this task, whatever an object's result might contain.
        return remove_values(result, secrets) if secrets else result

    def _refused(self, result, errors):
        count = len(errors)
        msg = f"{count} problem{'s' if count != 1 else ''} in the manifests, nothing was applied:\n" + "\n".join(f"- {e}" for e in errors)
        return {**result, "failed": True, "changed": False, "msg": msg, "errors": errors}

    # -- one object -------------------------------------------------------------------------------

    def _apply_workload(self, obj, args, task_vars):
        action = self._kind_action(obj, args)
        sub = action.run(task_vars=task_vars)
        report = {"changed": bool(sub.get("changed")), "failed": bool(sub.get("failed"))}
        if sub.get("msg"):
            report["msg"] = sub["msg"]
        if report["failed"] and sub.get("finished_before_run") == "Failed":
            # As `kubectl apply` of an unchanged, failed Job: it is not run again, its failure is from before this run
            # (a changed spec fails earlier, in the Job's own check, without this key).
            report.update(failed=False, already_failed=True, msg=f"had already failed before this run, not run again: {sub.get('msg') or 'failed'}")
            display.warning(f"{obj.title} ({obj.source}): {report['msg']} (state: absent deletes it, so that the next apply runs it again)")
        report.update({key: sub[key] for key in KEPT if key in sub})
        if "diff" in sub:
            diffs = sub["diff"] if isinstance(sub["diff"], list) else [sub["diff"]]
            report["diff"] = [self._titled(obj, d) for d in diffs]
        return report

    def _apply_service(self, obj, args, task_vars):
        """A Service: the service task's own action (plugins/action/service.py); it comes after the workloads of this
        apply (objects.ORDER), so its endpoints are their pods as this run left them."""
        task = self._task.copy()
        task.args.clear()
        task.args.update({"name": obj.name, "namespace": getattr(obj, "namespace", "default"), "spec": copy.deepcopy(obj.args["spec"]),
                          **{key: args[key] for key in ("state", "nodes", "wait_timeout", "state_dir")}})
        action = self._shared_loader_obj.action_loader.get(
            "hostfleet.workloads.service",
            task=task,
            connection=self._connection,
            play_context=self._play_context,
            loader=self._loader,
            templar=self._templar,
            shared_loader_obj=self._shared_loader_obj,
        )
        sub = action.run(task_vars=task_vars)
        ignored = list(obj.ignored) + list(sub.get("ignored_fields") or [])
        report = {"changed": bool(sub.get("changed")), "failed": bool(sub.get("failed")), "ignored_fields": ignored}
        report.update({key: sub[key] for key in ("msg", "cluster_ip", "endpoints", "nodes", "unreachable_nodes") if key in sub})
        if sub.get("diff"):
            report["diff"] = [self._titled(obj, sub["diff"])]
        return report

    @staticmethod
    def _apply_claim(obj, args, objects):
        """A claim changes nothing itself: pods that name it mount <state_dir>/volumes/<name> on their node (the node
        layer makes it). Deleting it never deletes that data: a StatefulSet's retention policy is the only way."""
        users = sorted(other.title for other in objects if other.namespace == obj.namespace and (obj.kind, obj.name) in references(other))
        # Outside default the claim's volume is <namespace>_<claim> (module_utils/node/namespaces.py, units.volume_source).
        report = {"changed": False, "volume": f"{args['state_dir']}/volumes/{namespaces.node_name(obj.namespace, obj.name)}", "used_by": users}
        if args["state"] == "absent":
            report["msg"] = "kept: apply never deletes a volume's data (remove the directory on its hosts when it is no longer needed)"
        return report

    @staticmethod
    def _titled(obj, diff):
        diff = dict(diff)
        for key in ("before_header", "after_header"):
            if diff.get(key):
                diff[key] = f"{obj.source}: {diff[key]}"
        return diff

    def _apply_config(self, obj, args, hosts, task_vars):
        check_mode = bool(self._task.check_mode)
        # A ConfigMap or Secret is its namespace's: <namespace>_<name> on the nodes outside default (namespaces.py).
        call = {"kind": obj.kind, "name": namespaces.node_name(obj.namespace, obj.name), "state": args["state"], "state_dir": args["state_dir"]}
        if args["state"] == "present":
            call.update(files=obj.args["files"], immutable=obj.args["immutable"])
        with Fleet(self, task_vars, hosts) as fleet:
            done = fleet.run_module(CONFIG_MODULE, dict.fromkeys(hosts, call), check_mode=check_mode, timeout=args["wait_timeout"])
        unreachable = sorted(h for h, r in done.items() if r.get("unreachable"))
        failures = {h: r.get("msg") for h, r in done.items() if r.get("failed") and not r.get("unreachable")}
        for host in unreachable:
            display.warning(f"{obj.title}: {host} is unreachable; its pods get the data at the next apply")
        omitted = sorted({k for r in done.values() for k in r.get("env_omitted") or []})
        # Keys that are no environment variable names are not in the environment anyway (as in Kubernetes).
        if any(valid_env_name(k) for k in omitted):
            names = ", ".join(k for k in omitted if valid_env_name(k))
            display.warning(f"{obj.title}: {names}: not one line of UTF-8 text, so files only (volumes), not environment variables")
        report = {
            "changed": any(r.get("changed") for r in done.values()),
            "failed": bool(failures),
            "nodes": sorted(h for h in done if h not in unreachable and h not in failures),
            "unreachable_nodes": unreachable,
            "data_keys": sorted(obj.args.get("files") or {}),
            "env_omitted": omitted,
        }
        if failures:
            report["msg"] = "; ".join(f"{h}: {m}" for h, m in sorted(failures.items()))
        changed_on = {h: r.get("diff") for h, r in done.items() if r.get("changed") and r.get("diff")}
        if changed_on:
            first = sorted(changed_on)[0]
            diff = dict(changed_on[first])
            diff["after_header"] = f"{diff.get('after_header')} on {', '.join(sorted(changed_on))}"
            report["diff"] = [self._titled(obj, diff)]
        return report

    def _apply_pod(self, obj, args, hosts, task_vars):
        """A bare Pod: on its spec.nodeName, else where it already runs while eligible, else on one eligible node."""
        check_mode = bool(self._task.check_mode)
        # The node layer's names of the pod and its owner (the pod itself): <namespace>_<name> outside default.
        name = namespaces.node_name(obj.namespace, obj.name)
        base = {"owner": name, "owner_kind": "Pod", "state_dir": args["state_dir"]}
        with Fleet(self, task_vars, hosts) as fleet:
            # That look also brings each node's facts (its well-known and feature labels).
            look = {**base, "state": "absent", "node_facts": True}
            seen = fleet.run_module(POD_MODULE, {h: dict(look) for h in hosts}, check_mode=True, timeout=args["wait_timeout"])
            reachable = [h for h in hosts if not (seen[h].get("unreachable") or seen[h].get("failed"))]
            unreachable = sorted(set(hosts) - set(reachable))
            present = [h for h in reachable if name in (seen[h].get("deleted") or [])]
            targets = []
            if args["state"] == "present":
                template = _pod_template(obj)
                if obj.args.get("nodeName"):
                    targets = [obj.args["nodeName"]]
                    # No scheduler, but the kubelet admits no pod that does not tolerate a NoExecute taint of its node.
                    taints = parse_taints(fleet.host_vars(targets[0]).get(TAINTS_VAR), targets[0]) if targets[0] in hosts else ()
                    refused = admission_refusal(targets[0], taints, template.constraints.tolerations)
                    if refused is not None:
                        return {"changed": False, "failed": True, "msg": refused, "unreachable_nodes": unreachable}
                else:
                    nodes = []
                    for host in reachable:
                        hostvars = fleet.host_vars(host)
                        node_vars = {k: hostvars[k] for k in (LABELS_VAR, CAPACITY_VAR, TAINTS_VAR) if k in hostvars}
                        nodes.append(node_from_inventory(host, True, node_vars, fleet.groups_of(host), seen[host].get("node_facts")))
                    eligible = eligible_nodes(nodes, template.constraints)
                    if not eligible:
                        return {
                            "changed": False,
                            "failed": True,
                            "msg": "no reachable node matches the pod's node constraints",
                            "unreachable_nodes": unreachable,
                        }
                    # Where it runs it stays while eligible; a new one goes to a node its preferred node affinity ranks first.
                    kept = [h for h in present if h in eligible]
                    targets = choose_nodes(obj.name, "one", eligible if kept else most_preferred(nodes, template.constraints, eligible), present)
            pod = {"name": name, "labels": obj.args.get("labels") or {}, "annotations": obj.args.get("annotations") or {}, "spec": obj.args["spec"]}
            calls = {h: {**base, "state": "present", "pods": [pod], "wait": args["wait"], "wait_timeout": args["wait_timeout"]} for h in targets}
            calls.update({h: {**base, "state": "absent"} for h in present if h not in targets})
            done = fleet.run_module(POD_MODULE, calls, check_mode=check_mode, timeout=args["wait_timeout"] + 30) if calls else {}
            fleet.emit_warnings(done)
        failures = {h: r.get("msg") for h, r in done.items() if r.get("failed") or r.get("unreachable")}
        report = {
            "changed": any(r.get("changed") for r in done.values()),
            "failed": bool(failures),
            "nodes": targets,
            "unreachable_nodes": unreachable,
            "status": next((p for h in targets for p in done.get(h, {}).get("pods") or [] if p.get("name") == name), {}),
        }
        if failures:
            report["msg"] = "; ".join(f"{h}: {m}" for h, m in sorted(failures.items()))
        diffs = []
        for host in sorted(done):
            found = done[host].get("diff") or []
            diffs += [self._titled(obj, d) for d in (found if isinstance(found, list) else [found]) if isinstance(d, dict)]
        if diffs:
            report["diff"] = diffs
        return report
