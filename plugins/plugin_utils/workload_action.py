# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The action plugin every workload kind shares: arguments in, one fleet-wide loop, a Kubernetes-like result out.

Every kind runs this one path: the kind's parser, reconcile, progress line and
flags come from the registry (controllers/registry.py); a kind's action plugin
subclasses ``WorkloadAction`` only for its own hooks (``spec_fields``,
``prepare_record``, ``before_converge``, ``simulate``, ``finish``, ...).
Bad input fails here, before any node is contacted.
"""

from __future__ import annotations

import copy
import getpass
import json
import os
import secrets
import socket
import time

from ansible import context
from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.hostfleet.workloads.plugins.module_utils.node import namespaces
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError, dns_label, validate_pod_spec
from ansible_collections.hostfleet.workloads.plugins.plugin_utils._fanout import Fleet
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.records import RecordError, load_record
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.registry import controller
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.lease import Claim, LeaseError
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.workload_task import WorkloadError, WorkloadTask, material

display = Display()


# The template annotation that pins a revision to the image IDs of its imagePullPolicy=Always containers.
IMAGE_IDS_ANNOTATION = "hostfleet.io/image-ids"


def pulled_images(template):
    """The image references a template asks to pull at every start (imagePullPolicy Always, no digest)."""
    try:
        spec = validate_pod_spec((template or {}).get("spec") or {}, "spec.template.spec", pod_network=None)
    except (SpecError, AttributeError):
        return []  # the spec's own parser reports it
    return [c["image"] for c in spec["containers"] if c.get("imagePullPolicy") == "Always" and "@" not in c["image"]]


def pull_secrets(template):
    """The template's imagePullSecrets (names), which the pin's pulls use as the pods' pulls do."""
    try:
        return validate_pod_spec((template or {}).get("spec") or {}, "spec.template.spec", pod_network=None).get("imagePullSecrets") or []
    except (SpecError, AttributeError):
        return []


def pin_images(template, image_ids):
    """A copy of ``template`` whose annotation names, per container pulling an image, the image ID its tag names now.

    As in Kubernetes a template hash covers the annotations: a new image under the same tag is then a new revision,
    rolled out within the budget, and the same image is no change at all.
    """
    pinned = copy.deepcopy(template)
    names = [(c.get("name"), c.get("image")) for c in (pinned.get("spec") or {}).get("containers") or []]
    pins = ",".join(f"{name}={image_ids[image]}" for name, image in sorted(names) if image in image_ids)
    if pins:
        metadata = pinned.setdefault("metadata", {}) or {}
        pinned["metadata"] = metadata
        metadata["annotations"] = dict(metadata.get("annotations") or {}, **{IMAGE_IDS_ANNOTATION: pins})
    return pinned


def _kube_pod(pod):
    """A pod of the task's result as Kubernetes names it: its name in its namespace, and the namespace."""
    namespace, name = namespaces.split(pod["name"])
    return dict(pod, name=name, namespace=namespace)


class WorkloadAction(ActionBase):
    BYPASS_HOST_LOOP = True
    # The task's own connection (to the first host) is never used: Fleet opens one per node.
    _requires_connection = False
    # The kind: everything else about it (argument spec, spec fields, parser, reconcile, flags) is its registry entry.
    KIND = ""

    @property
    def controller(self):
        return controller(self.KIND)

    @property
    def node_name(self):
        """The workload's name on the nodes: its name in ``default``, ``<namespace>_<name>`` elsewhere (namespaces.py)."""
        return namespaces.node_name(self._task.args.get("namespace"), self._task.args["name"])

    def on_nodes(self, args):
        """The validated arguments with the workload named as the nodes name it (its pods, record, lease, units)."""
        return dict(args, name=namespaces.node_name(args["namespace"], args["name"]))

    # -- what a kind provides (hooks; the defaults read the registry) ------------------------------

    def spec_fields(self, args, record):
        """The spec as Kubernetes writes it; the selector defaults to the template's labels."""
        spec = {key: args[key] for key in self.controller.info.spec_fields if args.get(key) not in (None, [])}
        template = spec.get("template")
        if template is None:
            raise SpecError("template", "is required with state=present")
        labels = (template.get("metadata") or {}).get("labels") if isinstance(template, dict) else None
        if "selector" not in spec and isinstance(labels, dict):
            spec["selector"] = {"matchLabels": labels}
        pins = getattr(self, "_image_ids", None)
        if pins:
            spec["template"] = pin_images(template, pins)
        return spec

    def parse(self, args, record):
        """The kind's spec; a selector stored on the nodes must not change."""
        return self.controller.parse_spec(args["name"], self.spec_fields(args, record), stored_selector=(record or {}).get("selector"))

    def prepare_record(self, args, record, now):
        return record

    def before_converge(self, task, observation, stored, args, check_mode):
        """The kind's own checks on the run's first observation, before the shared loop (a Job's immutable fields).

        None goes on; a dict ends the task with it as the result (nothing more is done). A hook that acts (through
        ``task``, e.g. ``task.remove_all()``) and returns None has the fleet observed once more before planning.
        """
        return None

    def reconcile(self, spec, record, observation, now):
        return self.controller.reconcile(spec, record, observation, now)

    def progress_line(self, step, number):
        return self.controller.progress_line(namespaces.display(self.node_name), self._task.args, step, number)

    def finish(self, result, step, record):
        return result

    def simulate(self, task, plan, observation, record, spec):
        """Check mode: (the last step, the waves). The default forecasts a whole rollout, its pods available as soon
        as started (ready for the spec's minReadySeconds already)."""
        return task.simulate(plan, observation, record, getattr(spec, "min_ready_seconds", 0))

    def volumes_on_delete(self, args, record):
        """{node: claims} to delete with the workload (state=absent); only a retention policy of Delete names any."""
        return {}

    def check_arguments(self, args):
        """The kind's own argument checks before any node is contacted (raise SpecError naming the field)."""

    def observer(self, args):
        """The node module that observes the kind and its arguments; None: pod_info (pods, records, the lease)."""
        return None

    def takes_lease(self):
        """Whether a run holds the workload's lease (its observation module takes it, its acts carry it)."""
        return True

    # -- the shared run ---------------------------------------------------------------------------

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        _validation, args = self.validate_argument_spec(argument_spec=self.controller.info.argument_spec)
        try:
            dns_label(args["name"], "name")
            dns_label(args["namespace"], "namespace")
            self.check_arguments(args)
            if args["state"] == "present":
                self.parse(args, None)  # the whole spec, before any node is contacted
            if args["wait_timeout"] < 1:
                raise SpecError("wait_timeout", "must be at least 1")
            if (args.get("node_grace_seconds") or 0) < 0:
                raise SpecError("node_grace_seconds", "must be greater than or equal to 0")
        except SpecError as exc:
            return dict(result, failed=True, msg=f"invalid {self.KIND} spec: {exc}", field=exc.path, changed=False)
        args = self.on_nodes(args)
        result["namespace"] = args["namespace"]
        flags = self.controller
        hosts = Fleet.select(self, task_vars, args["nodes"])
        self._task_vars = task_vars  # for the nodes that left the fleet (_deselected)
        if not hosts:
            raise AnsibleActionFail(f"no node of the play matches nodes={args['nodes']!r}")
        check_mode = bool(self._task.check_mode)
        with Fleet(self, task_vars, hosts) as fleet:
            grace = args.get("node_grace_seconds") if flags.replaces_unreachable else None
            task = WorkloadTask(
                fleet,
                self.KIND,
                args["name"],
                args["state_dir"],
                check_mode,
                grace=grace,
                track_placement=flags.tracks_placement,
                observer=self.observer(args),
            )
            if self.takes_lease():
                task.claim = Claim(f"{self.KIND} {args['name']}", secrets.token_hex(8), self._holder_description(), list(fleet.hosts), read_only=check_mode)
            try:
                return self.run_task(result, task, args, check_mode)
            finally:
                task.release_lease()
                for warning in task.claim.warnings if task.claim else ():
                    display.warning(warning)

    def run_task(self, result, task, args, check_mode):
        """The task over its fleet (``task``: a WorkloadTask, whose fleet a unit test may simulate).

        Only a SpecError is an invalid spec. A stored record this collection cannot use (RecordError: another schema,
        kind or name), from loading it or from the controller's reconcile, fails the task cleanly before anything
        changes (the record is loaded before any act, and a step is planned before it is applied); any other exception
        is a bug and stays one (a traceback).
        """
        try:
            if args["state"] == "absent":
                return self._remove(result, task, args)
            return self._converge(result, task, args, check_mode)
        except RecordError as exc:
            shown = namespaces.display(args["name"])
            return dict(result, failed=True, changed=task.acted, msg=f"the stored record of {self.KIND} {shown} on the nodes cannot be used: {exc}")
        except LeaseError as exc:
            return dict(result, failed=True, changed=exc.acted, msg=str(exc), lease_holder=exc.holder)

    def _holder_description(self):
        """Who holds a workload's lease, as other runs are told: user@control-host pid N, playbook, task."""
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = str(os.getuid())
        playbooks = ", ".join(os.path.basename(str(p)) for p in (context.CLIARGS.get("args") or ()))
        # The worker running this task is a fork of ansible-playbook: its parent is the process a user would kill.
        text = f"{user}@{socket.gethostname()} pid {os.getppid()}" + (f", playbook {playbooks}" if playbooks else "")
        return f"{text}, task {self._task.get_name()!r}"[:500]

    def _remove(self, result, task, args):
        doomed = self.volumes_on_delete(args, task.observe().record()) if args.get("persistentVolumeClaimRetentionPolicy") else {}
        results = task.remove_all(doomed)
        unreachable = sorted(h for h, r in results.items() if r.get("unreachable") or r.get("failed"))
        for host in unreachable:
            display.warning(f"{self.KIND} {namespaces.display(task.name)}: could not remove its pods on {host}: {results[host].get('msg')}")
        deleted = {h: r.get("deleted", []) for h, r in results.items() if r.get("deleted")}
        volumes = {h: r.get("volumes_deleted", []) for h, r in results.items() if r.get("volumes_deleted")}
        return dict(
            result,
            changed=any(r.get("changed") for r in results.values()),
            deleted=deleted,
            volumes_deleted=volumes,
            unreachable_nodes=unreachable,
            failed=bool(unreachable),
            msg=f"pods left on unreachable nodes: {', '.join(unreachable)}" if unreachable else "",
        )

    def _converge(self, result, task, args, check_mode):
        """The one path of every kind: observe once, the kind's checks, plan, then act and wait (or forecast, in check
        mode). A stored record this collection cannot use (RecordError, from here or from reconcile) fails the task
        through ``run``, before anything changes: the record is loaded first, and reconcile plans before acting."""
        observation = task.observe()
        stored = observation.record()
        load_record(self.KIND, stored, args["name"])  # RecordError before any act (images pulled, deselected nodes cleaned)
        ended = self.before_converge(task, observation, stored, args, check_mode)
        if ended is not None:
            return dict(result, **ended)
        if task.acted:
            # The hook changed the fleet (a Job replaced): plan from what it is now.
            observation = task.observe()
            stored = observation.record()
        now = time.time()
        if self.controller.pins_pulled_images:
            try:
                template = args.get("template")
                self._image_ids = task.resolve_images(pulled_images(template), pull_secrets(template), args.get("namespace"))
            except WorkloadError as exc:
                return dict(result, failed=True, msg=str(exc), changed=False)
        try:
            record = self.prepare_record(args, stored, now)
            spec = self.parse(args, record)
        except SpecError as exc:
            return dict(result, failed=True, msg=f"invalid {self.KIND} spec: {exc}", field=exc.path, changed=False)

        def plan(rec, obs, at):
            return self.reconcile(spec, rec, obs, at)

        timed_out = False
        deselected, outside = self._deselected(task, observation, args, check_mode)
        if check_mode:
            step, steps = self.simulate(task, plan, observation, record, spec)
        else:
            try:
                step, observation, steps, timed_out = task.converge(plan, args["wait"], args["wait_timeout"], self.progress_line, observation, record)
            except WorkloadError as exc:
                return dict(result, failed=True, msg=str(exc), changed=True)
        final_record = task.last_record if task.last_record is not None else task.with_placement(step.record, observation)
        # A kind that never replaces pods (grace None) waits for them however long: unknown, never evicted.
        unknown = [p for p in observation.unseen if p.unknown or task.grace is None]
        evicted = [p for p in observation.unseen if not (p.unknown or task.grace is None)]
        unplanned = [p for p in observation.unseen if not p.unknown]  # not in observation.pods: listed all the same
        result.update(
            changed=bool(steps) or bool(deselected) or material(final_record) != material(stored),
            # Pods the run could not see are not claimed gone: Unknown within their grace, lost after it.
            status=dict(step.status, unknownReplicas=len(observation.unseen)) if task.track_placement else step.status,
            pods=[_kube_pod(dict(p.to_json(), node=p.node)) for p in sorted(observation.pods + unplanned, key=lambda p: (p.node, p.name))],
            nodes={
                n.name: {
                    "ready": n.ready,
                    "labels": n.labels,
                    "pods": sorted(namespaces.kube_name(p.name) for p in observation.pods + unplanned if p.node == n.name),
                    **({"unreachable": observation.unreachable[n.name]} if n.name in observation.unreachable else {}),
                }
                for n in observation.nodes
            },
            pending=[p.to_json() for p in step.pending],
            plan=steps,
            message=step.message,
            waiting_for=list(step.waiting_for),
            observation_rounds=task.rounds,
        )
        if task.track_placement:
            result.update(
                # Within their grace (waited for) / past it (replaced elsewhere; their node may still run them).
                unknown_pods=sorted(p.name for p in unknown),
                evicted_pods=sorted(p.name for p in evicted),
                unreachable_since=observation.unreachable_since,
                deselected_nodes=deselected,
                pods_outside_fleet=outside,
            )
        if self._task.diff:
            result["diff"] = self.template_diff(stored, step)
        result = self.finish(result, step, final_record)
        if step.failed:
            reason = next((c.get("reason") for c in step.status.get("conditions", []) if c.get("status") == "False"), "")
            result.update(failed=True, msg=step.message or f"{self.KIND} {namespaces.display(args['name'])} failed: {reason}")
        if timed_out and not result.get("failed"):
            waiting = "; ".join(step.waiting_for)
            stuck = [f"{p.name} on {p.node}: {p.reason}" + (f": {p.message}" if p.message else "") for p in observation.pods if p.reason]
            if stuck:
                waiting += " (" + "; ".join(sorted(stuck)) + ")"
            shown = namespaces.display(args["name"])
            result.update(failed=True, msg=f"{self.KIND} {shown} did not converge within wait_timeout={args['wait_timeout']}s: {waiting}")
        if args["wait"] and self.controller.fails_unless_available and not check_mode and not step.done and not result.get("failed") and not args.get("paused"):
            # As `kubectl rollout status`: waiting ended (nothing more can be done now) short of full availability.
            why = "; ".join(step.waiting_for) or "see status"
            result.update(failed=True, msg=f"{self.KIND} {namespaces.display(args['name'])} is not fully available: {step.message}: {why}")
        return result

    def _deselected(self, task, observation, args, check_mode):
        """Pods the record places on hosts outside this run's fleet: ({node: pods removed}, {node: pods left, reported}).

        A host that is in the inventory and was left out of the play's hosts or of `nodes:` is cleaned like an
        ineligible node (its pods of this workload are removed, their volumes kept); one that the run cannot
        address (gone from the inventory, or only left out by --limit or a serial batch) is reported, never forgotten.
        """
        outside = dict(observation.outside)
        if not outside:
            return {}, {}
        play_hosts = set(self._task_vars.get("ansible_play_hosts_all") or ())
        batch = set(self._task_vars.get("ansible_play_batch") or ())
        limited = bool(context.CLIARGS.get("subset"))
        inventory = self._task.get_variable_manager()._inventory

        def left_the_fleet(node):
            if not self.controller.cleans_deselected or inventory.get_host(node) is None or node in task.fleet.hosts:
                return False
            if node in play_hosts:
                return node in batch  # left out by `nodes:` (not merely in another serial batch, or failed)
            return not limited  # left out of the play's hosts, not by --limit

        cleanable = sorted(n for n in outside if left_the_fleet(n))
        removed = {}
        if cleanable:
            absent = {"owner": args["name"], "owner_kind": self.KIND, "state_dir": args["state_dir"], "state": "absent"}
            with Fleet(self, self._task_vars, cleanable) as extra:
                results = extra.run_module("hostfleet.workloads.pod", dict.fromkeys(cleanable, absent), check_mode=check_mode)
            for node, got in results.items():
                if got.get("failed") or got.get("unreachable"):
                    shown = namespaces.display(args["name"])
                    display.warning(f"{self.KIND} {shown}: could not remove its pods from {node}, which left the fleet: {got.get('msg')}")
                    continue
                removed[node] = sorted(outside[node])
                shown = namespaces.display(args["name"])
                display.warning(f"{self.KIND} {shown}: {node} is no longer one of its nodes: removed its pod(s) {', '.join(removed[node])}")
        if not check_mode:
            task.forget_nodes(set(removed))
        left = {n: sorted(pods) for n, pods in sorted(outside.items()) if n not in removed}
        for node, pods in left.items():
            display.warning(
                f"{self.KIND} {namespaces.display(args['name'])}: its record places pod(s) {', '.join(pods)} on {node}, which this run cannot reach or act on "
                "(not in the inventory, left out by --limit or a serial batch, or a kind that never moves pods): they are not counted, not removed"
            )
        return removed, left

    def template_diff(self, stored, step):
        """--diff: the template of the revision running (or being rolled out) on the nodes, and of the one requested.

        Each kind names that revision differently in its record; the typed record's ``current_revision`` is it for all.
        """

        def template_of(data):
            record = load_record(self.KIND, data, self.node_name)
            template = record.template(record.current_revision) if record is not None else None
            return json.dumps(template, indent=2, sort_keys=True) + "\n" if template is not None else ""

        return {
            "before_header": f"{self.KIND} template (running)",
            "after_header": f"{self.KIND} template (requested)",
            "before": template_of(stored),
            "after": template_of(step.record),
        }
