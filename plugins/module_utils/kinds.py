# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The workload kinds this collection knows: the ONE list every other list of kinds is read from.

Stdlib only and Python 3.8: the node layer (``pod``, ``pod_info``) imports it on the hosts for the owner kinds.
The controller side of each kind (parser, reconcile, record, summary) is in
``plugins/plugin_utils/controllers/registry.py``, keyed by these names. A new kind starts here
(``docs/architecture.md``, "Adding a kind").
"""

from __future__ import annotations

from typing import NamedTuple

from ansible_collections.hostfleet.workloads.plugins.module_utils.job.cron_inputs import JOB_KEYS
from ansible_collections.hostfleet.workloads.plugins.module_utils.workload_args import (
    CRONJOB_ARGS,
    DAEMONSET_ARGS,
    DEPLOYMENT_ARGS,
    JOB_ARGS,
    REPLICASET_ARGS,
    REPLICATIONCONTROLLER_ARGS,
    STATEFULSET_ARGS,
)


class KindInfo(NamedTuple):
    name: str  # the Kubernetes kind, "Deployment"
    api_version: str  # what a manifest of this kind must say, "apps/v1"
    module: str  # the collection's module (and action plugin) name, "deployment"
    spec_fields: tuple  # the Kubernetes spec fields its task accepts (action plugin and manifest loader read them)
    argument_spec: dict  # its module's argument spec (workload_args.py)


KINDS = (
    KindInfo(
        "Deployment",
        "apps/v1",
        "deployment",
        ("replicas", "selector", "template", "strategy", "minReadySeconds", "progressDeadlineSeconds", "revisionHistoryLimit", "paused"),
        DEPLOYMENT_ARGS,
    ),
    KindInfo("ReplicaSet", "apps/v1", "replicaset", ("replicas", "selector", "template", "minReadySeconds"), REPLICASET_ARGS),
    # Core v1, run by the ReplicaSet controller; its selector is a plain label map.
    KindInfo("ReplicationController", "v1", "replicationcontroller", ("replicas", "selector", "template", "minReadySeconds"), REPLICATIONCONTROLLER_ARGS),
    KindInfo(
        "StatefulSet",
        "apps/v1",
        "statefulset",
        (
            "replicas",
            "selector",
            "template",
            "serviceName",
            "ordinals",
            "volumeClaimTemplates",
            "podManagementPolicy",
            "updateStrategy",
            "persistentVolumeClaimRetentionPolicy",
            "minReadySeconds",
            "revisionHistoryLimit",
            "unsafeMoveOnNodeLoss",
        ),
        STATEFULSET_ARGS,
    ),
    KindInfo(
        "DaemonSet",
        "apps/v1",
        "daemonset",
        ("selector", "template", "updateStrategy", "minReadySeconds", "revisionHistoryLimit", "progressDeadlineSeconds"),
        DAEMONSET_ARGS,
    ),
    # A Job's fields are those the hosts check a CronJob's Job against (one list for both).
    KindInfo("Job", "batch/v1", "job", tuple(JOB_KEYS), JOB_ARGS),
    KindInfo(
        "CronJob",
        "batch/v1",
        "cronjob",
        (
            "schedule",
            "timeZone",
            "concurrencyPolicy",
            "startingDeadlineSeconds",
            "suspend",
            "successfulJobsHistoryLimit",
            "failedJobsHistoryLimit",
            "jobTemplate",
        ),
        CRONJOB_ARGS,
    ),
)

WORKLOAD_KINDS = tuple(kind.name for kind in KINDS)
# What may own pods on a host (the node layer's owner_kind): a bare Pod or a workload.
OWNER_KINDS = ("Pod",) + WORKLOAD_KINDS

_BY_NAME = {kind.name: kind for kind in KINDS}


def kind_info(name):
    """The KindInfo of ``name``; a ValueError naming the known kinds for any other."""
    try:
        return _BY_NAME[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown kind {name!r} (known: {', '.join(WORKLOAD_KINDS)})") from None
