# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller side of every workload kind, in one table: what the action plugins, ``apply`` and ``workload_info`` read.

Each :class:`Controller` joins a kind's :class:`~module_utils.kinds.KindInfo` (name, apiVersion, module, spec
fields, argument spec) to its pure code: the spec parser, ``reconcile``, its record type, its summary for
``workload_info``, its progress line, and how the shared orchestration treats it (the flags). Pure: no I/O.
Controllers never import this module (it imports them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ansible_collections.hostfleet.workloads.plugins.module_utils.kinds import KindInfo, kind_info
from ansible_collections.hostfleet.workloads.plugins.plugin_utils import summaries
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.cronjob.spec import parse_cronjob_spec
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.daemonset.record import DaemonSetRecord
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.daemonset.spec import parse_daemonset_spec
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.daemonset.sync import reconcile_daemonset
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.deployment.record import DeploymentRecord
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.deployment.spec import parse_deployment_spec
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.deployment.sync import reconcile as reconcile_deployment
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.job.record import JobRecord
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.job.spec import parse_job_spec
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.job.sync import reconcile_job
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.replicaset import ReplicaSetRecord, parse_replicaset_spec, reconcile_replicaset
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.replicationcontroller import (
    ReplicationControllerRecord,
    parse_replicationcontroller_spec,
    reconcile_replicationcontroller,
)
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.statefulset.record import StatefulSetRecord
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.statefulset.spec import parse_statefulset_spec
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.statefulset.sync import reconcile_statefulset


@dataclass(frozen=True)
class Controller:
    """One kind's pure controller, as the orchestration sees it."""

    info: KindInfo
    # parse_spec(name, spec_fields, stored_selector=None) -> the kind's spec; raises SpecError naming the field.
    parse_spec: Callable[..., Any]
    # reconcile(spec, record, observation, now) -> Step; observation: workload_task.Observation. None: no fleet loop.
    reconcile: Callable[..., Any] | None
    # progress_line(name, args, step, number) -> the line shown while a task waits (args: the task's arguments).
    progress_line: Callable[..., str]
    record_type: type | None = None  # its records.Record subclass
    summarize: Callable[..., Any] | None = None  # its summary for workload_info
    # Pods of an unreachable node are replaced after `node_grace_seconds` (else never); the node fences them (fence.py).
    replaces_unreachable: bool = False
    # It rolls out revisions: templates are pinned to the IDs of the images they pull (workload_action.pin_images).
    pins_pulled_images: bool = False
    # Where its pods are is kept in the record (pods of unreachable nodes are counted, not forgotten).
    tracks_placement: bool = True
    # Its pods on nodes that left the run (inventory group, `nodes:`) are removed like on an ineligible node.
    cleans_deselected: bool = True
    # With wait, a run that ends without the workload fully available fails (`kubectl rollout status`).
    fails_unless_available: bool = True

    @property
    def kind(self) -> str:
        return self.info.name


# -- how each kind's reconcile reads an observation ----------------------------------------------------------


def _deployment(spec, record, observation, now):
    return reconcile_deployment(spec, record, observation.nodes, observation.pods, observation.usage, now)


def _replicaset(spec, record, observation, now):
    return reconcile_replicaset(spec, record, observation.nodes, observation.pods, observation.usage, now)


def _replicationcontroller(spec, record, observation, now):
    return reconcile_replicationcontroller(spec, record, observation.nodes, observation.pods, observation.usage, now)


def _statefulset(spec, record, observation, now):
    return reconcile_statefulset(spec, record, observation.nodes, observation.pods, observation.usage, now)


def _daemonset(spec, record, observation, now):
    return reconcile_daemonset(spec, record, observation.nodes, observation.pods, observation.usage, now)


def _job(spec, record, observation, now):
    # A Job counts finished pods from the node layer's full statuses (exit codes), not from ObservedPods.
    return reconcile_job(spec, record, observation.nodes, observation.details, observation.usage, now)


def _parse_job(name, spec, stored_selector=None):
    del stored_selector  # a Job's immutable fields are checked against its record by the job action
    return parse_job_spec(name, spec)


def _parse_cronjob(name, spec, stored_selector=None):
    del stored_selector
    return parse_cronjob_spec(name, spec)


# -- progress lines ---------------------------------------------------------------------------------------------


def _moved(step):
    return f"({len(step.starts)} started, {len(step.stops)} stopped)"


def _deployment_line(name, args, step, number):
    s = step.status
    desired = s.get("replicas_desired", args.get("replicas", 1))
    return (
        f"deployment {name}: step {number}: updated {s.get('updatedReplicas', 0)}/{desired}, "
        f"ready {s.get('readyReplicas', 0)}/{desired}, available {s.get('availableReplicas', 0)}/{desired} {_moved(step)}"
    )


def _replicas_line(module):
    def line(name, args, step, number):
        s = step.status
        return (
            f"{module} {name}: step {number}: ready {s.get('readyReplicas', 0)}/{args.get('replicas', 1)}, "
            f"available {s.get('availableReplicas', 0)} {_moved(step)}"
        )

    return line


def _statefulset_line(name, args, step, number):
    s = step.status
    return (
        f"statefulset {name}: step {number}: ready {s.get('readyReplicas', 0)}/{args.get('replicas', 1)}, "
        f"updated {s.get('updatedReplicas', 0)} ({', '.join(step.description) or 'waiting'})"
    )


def _daemonset_line(name, args, step, number):
    s = step.status
    return (
        f"daemonset {name}: step {number}: updated {s.get('updatedNumberScheduled', 0)}/{s.get('desiredNumberScheduled', 0)}, "
        f"available {s.get('numberAvailable', 0)}/{s.get('desiredNumberScheduled', 0)}, misscheduled {s.get('numberMisscheduled', 0)} {_moved(step)}"
    )


def _job_line(name, args, step, number):
    s = step.status
    target = args.get("completions") if args.get("completions") is not None else ("1" if args.get("parallelism") is None else "any")
    line = f"job {name}: step {number}: succeeded {s.get('succeeded', 0)}/{target}, failed {s.get('failed', 0)}, active {s.get('active', 0)}"
    if "completedIndexes" in s:
        line += f", completed indexes {s['completedIndexes'] or '-'}"
    return line


def _plain_line(module):
    def line(name, args, step, number):
        return f"{module} {name}: step {number}"

    return line


CONTROLLERS = (
    Controller(
        kind_info("Deployment"),
        parse_deployment_spec,
        _deployment,
        _deployment_line,
        record_type=DeploymentRecord,
        summarize=summaries.DEPLOYMENT,
        replaces_unreachable=True,
        pins_pulled_images=True,
    ),
    Controller(
        kind_info("ReplicaSet"),
        parse_replicaset_spec,
        _replicaset,
        _replicas_line("replicaset"),
        record_type=ReplicaSetRecord,
        summarize=summaries.REPLICASET,
        replaces_unreachable=True,
        pins_pulled_images=True,
    ),
    # A ReplicaSet with a label-map selector, as in Kubernetes (its own record kind; workload_info shows it as one).
    Controller(
        kind_info("ReplicationController"),
        parse_replicationcontroller_spec,
        _replicationcontroller,
        _replicas_line("replicationcontroller"),
        record_type=ReplicationControllerRecord,
        summarize=summaries.REPLICATIONCONTROLLER,
        replaces_unreachable=True,
        pins_pulled_images=True,
    ),
    # An identity's data is pinned to its node: a node that left the fleet is reported, its pods never removed.
    Controller(
        kind_info("StatefulSet"),
        parse_statefulset_spec,
        _statefulset,
        _statefulset_line,
        record_type=StatefulSetRecord,
        summarize=summaries.STATEFULSET,
        pins_pulled_images=True,
        cleans_deselected=False,
    ),
    Controller(
        kind_info("DaemonSet"),
        parse_daemonset_spec,
        _daemonset,
        _daemonset_line,
        record_type=DaemonSetRecord,
        summarize=summaries.DAEMONSET,
        pins_pulled_images=True,
    ),
    # A Job counts pods of unreachable nodes failed at once (its own record tracks them); its verdict is its result.
    Controller(
        kind_info("Job"),
        _parse_job,
        _job,
        _job_line,
        record_type=JobRecord,
        summarize=summaries.JOB,
        tracks_placement=False,
        fails_unless_available=False,
    ),
    # A CronJob's runs are driven on its node between playbook runs: no fleet-wide reconcile.
    Controller(
        kind_info("CronJob"), _parse_cronjob, None, _plain_line("cronjob"), summarize=summaries.CRONJOB, tracks_placement=False, fails_unless_available=False
    ),
)

# tests/unit/test_registry.py: one Controller per kinds.KINDS entry, in its order.
_BY_KIND = {c.kind: c for c in CONTROLLERS}


def controller(kind: str) -> Controller:
    """The Controller of ``kind``; a ValueError naming the known kinds for any other."""
    try:
        return _BY_KIND[kind]
    except (KeyError, TypeError):
        kind_info(kind)  # raises the ValueError that names the kinds
        raise
