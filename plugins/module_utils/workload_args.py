# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Argument specs of the workload modules, shared by their documentation stubs and their action plugins."""

from __future__ import annotations

# metadata.namespace: part of every object's identity, as in Kubernetes (module_utils/node/namespaces.py).
NAMESPACE_ARGS = dict(namespace=dict(type="str", default="default"))

# Options every fleet-wide workload task has: its identity, where it runs and how long it waits.
FLEET_ARGS = dict(
    NAMESPACE_ARGS,
    name=dict(type="str", required=True),
    state=dict(type="str", default="present", choices=["present", "absent"]),
    nodes=dict(type="str"),
    wait=dict(type="bool", default=True),
    wait_timeout=dict(type="int", default=600),
    state_dir=dict(type="path", default="/var/lib/hostfleet"),
)

REPLICASET_ARGS = dict(
    FLEET_ARGS,
    node_grace_seconds=dict(type="int", default=40),
    replicas=dict(type="int", default=1),
    selector=dict(type="dict"),
    template=dict(type="dict"),
    minReadySeconds=dict(type="int", default=0),
)

# The same options as a ReplicaSet; its selector is a plain label map (the dict type holds both).
REPLICATIONCONTROLLER_ARGS = dict(REPLICASET_ARGS)

DEPLOYMENT_ARGS = dict(
    REPLICASET_ARGS,
    strategy=dict(type="dict"),
    progressDeadlineSeconds=dict(type="int", default=600),
    revisionHistoryLimit=dict(type="int", default=10),
    paused=dict(type="bool", default=False),
    auto_rollback=dict(type="bool", default=False),
    rollback_to=dict(type="int"),
    restart=dict(type="bool", default=False),
)

DAEMONSET_ARGS = dict(
    FLEET_ARGS,
    selector=dict(type="dict"),
    template=dict(type="dict"),
    updateStrategy=dict(type="dict"),
    minReadySeconds=dict(type="int", default=0),
    revisionHistoryLimit=dict(type="int", default=10),
    progressDeadlineSeconds=dict(type="int", default=600),
)

STATEFULSET_ARGS = dict(
    FLEET_ARGS,
    replicas=dict(type="int", default=1),
    selector=dict(type="dict"),
    template=dict(type="dict"),
    serviceName=dict(type="str"),
    ordinals=dict(type="dict"),
    volumeClaimTemplates=dict(type="list", elements="dict", default=[]),
    podManagementPolicy=dict(type="str", default="OrderedReady", choices=["OrderedReady", "Parallel"]),
    updateStrategy=dict(type="dict"),
    persistentVolumeClaimRetentionPolicy=dict(type="dict"),
    minReadySeconds=dict(type="int", default=0),
    revisionHistoryLimit=dict(type="int", default=10),
    unsafeMoveOnNodeLoss=dict(type="bool", default=False),
)

JOB_ARGS = dict(
    FLEET_ARGS,
    template=dict(type="dict"),
    completions=dict(type="int"),
    parallelism=dict(type="int"),
    completionMode=dict(type="str", default="NonIndexed", choices=["NonIndexed", "Indexed"]),
    backoffLimit=dict(type="int"),
    backoffLimitPerIndex=dict(type="int"),
    maxFailedIndexes=dict(type="int"),
    podFailurePolicy=dict(type="dict"),
    successPolicy=dict(type="dict"),
    activeDeadlineSeconds=dict(type="int"),
    ttlSecondsAfterFinished=dict(type="int"),
    suspend=dict(type="bool", default=False),
    replace=dict(type="bool", default=False),
)

CRONJOB_ARGS = dict(
    NAMESPACE_ARGS,
    name=dict(type="str", required=True),
    state=dict(type="str", default="present", choices=["present", "absent"]),
    nodes=dict(type="str"),
    wait_timeout=dict(type="int", default=600),
    state_dir=dict(type="path", default="/var/lib/hostfleet"),
    schedule=dict(type="str"),
    timeZone=dict(type="str"),
    concurrencyPolicy=dict(type="str", default="Allow", choices=["Allow", "Forbid", "Replace"]),
    startingDeadlineSeconds=dict(type="int"),
    suspend=dict(type="bool", default=False),
    successfulJobsHistoryLimit=dict(type="int", default=3),
    failedJobsHistoryLimit=dict(type="int", default=1),
    jobTemplate=dict(type="dict"),
    run_on=dict(type="str", default="one", choices=["one", "every"]),
)

# The host side of a CronJob (run by the cronjob action on the node(s) it chose).
CRONJOB_TIMER_ARGS = dict(
    name=dict(type="str", required=True),
    state=dict(type="str", default="present", choices=["present", "absent"]),
    report_only=dict(type="bool", default=False),
    config=dict(type="dict"),
    state_dir=dict(type="path", default="/var/lib/hostfleet"),
    node_facts=dict(type="bool", default=False),
)


def refuse_outside_action(module):
    """The workload modules run as action plugins on the controller; reaching a host means a wrong setup."""
    module.fail_json(msg=f"{module._name} runs on the controller as an action plugin and orchestrates the whole fleet; it cannot run on a host directly")
