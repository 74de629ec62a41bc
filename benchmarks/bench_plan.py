#!/usr/bin/env python
"""Planning at scale, pure (no lab): the real controllers plan N replicas over M nodes.

Each scenario is one reconcile step (the work of one round of a task, before any host is touched):

- ReplicaSet: scale up from 0, scale down to half;
- Deployment: scale up from 0, the first step of a rolling update (maxSurge/maxUnavailable 25%),
  a step in the middle of it (half the replicas updated), a scale-down to half;
- StatefulSet (Parallel): create every identity, then an update step;
- DaemonSet over M nodes: first step, then a rolling-update step;
- the scheduler alone: place N pods over M nodes.

The baseline, run in the same process, is the same scenario at a tenth of the size (N/10 replicas on the
same nodes; a tenth of the nodes for the DaemonSet): the ratio of the times says how planning grows (about
10 when it is linear, 100 when it is quadratic). Times are CPU times (the machines are shared), best of a
few runs. Target (issue 11): 10,000 replicas over 500 nodes in under 1 s per step; before, a ReplicaSet
of 10,000 replicas took about 30 s to plan.

Run: scripts/bench plan   or   python benchmarks/bench_plan.py [--replicas 10000] [--nodes 500] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import conftest  # noqa: E402,F401  # pylint: disable=unused-import  # makes the collection importable
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.daemonset.spec import parse_daemonset_spec  # noqa: E402
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.daemonset.sync import reconcile_daemonset  # noqa: E402
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.deployment.spec import parse_deployment_spec  # noqa: E402
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.deployment.sync import reconcile  # noqa: E402
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.pods import ObservedPod  # noqa: E402
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.replicaset import parse_replicaset_spec, reconcile_replicaset  # noqa: E402
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.statefulset.spec import parse_statefulset_spec  # noqa: E402
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.statefulset.sync import reconcile_statefulset  # noqa: E402
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.nodes import Node  # noqa: E402
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.placement import PlacementState, PodTemplate  # noqa: E402

NOW = 10_000.0


def nodes(count):
    return [Node(f"node{i:04d}", True, {"kubernetes.io/hostname": f"node{i:04d}", "zone": f"z{i % 3}"}) for i in range(count)]


def pod_template(version):
    return {"metadata": {"labels": {"app": "bench"}}, "spec": {"containers": [{"name": "main", "command": ["/bin/sleep", version]}]}}


def running(step, now=NOW):
    """The pods a step starts, as observed once they run ready."""
    return [ObservedPod(s.name, s.node, s.revision, "Running", True, now - 100, now - 100) for s in step.starts]


def applied(pods, step, now=NOW):
    stopped = {s.name for s in step.stops}
    return [p for p in pods if p.name not in stopped] + running(step, now)


def replicaset_spec(replicas):
    return parse_replicaset_spec("bench", {"replicas": replicas, "selector": {"matchLabels": {"app": "bench"}}, "template": pod_template("v1")})


def deployment_spec(replicas, version="v1"):
    raw = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": "bench"}},
        "template": pod_template(version),
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
    }
    return parse_deployment_spec("bench", raw)


def statefulset_spec(replicas, version="v1"):
    raw = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": "bench"}},
        "serviceName": "bench",
        "podManagementPolicy": "Parallel",
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%"}},
        "template": pod_template(version),
    }
    return parse_statefulset_spec("bench", raw)


def daemonset_spec(version="v1"):
    raw = {
        "selector": {"matchLabels": {"app": "bench"}},
        "template": pod_template(version),
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%"}},
    }
    return parse_daemonset_spec("bench", raw)


def scenarios(replicas, fleet):
    """(name, prepare) pairs; prepare() sets the scene (untimed) and returns the timed call."""

    def rs_up():
        return lambda: reconcile_replicaset(replicaset_spec(replicas), None, fleet, [], None, NOW)

    def rs_down():
        first = reconcile_replicaset(replicaset_spec(replicas), None, fleet, [], None, NOW)
        pods = running(first)
        return lambda: reconcile_replicaset(replicaset_spec(replicas // 2), first.record, fleet, pods, None, NOW)

    def deploy_up():
        return lambda: reconcile(deployment_spec(replicas), None, fleet, [], None, NOW)

    def deployed():
        first = reconcile(deployment_spec(replicas), None, fleet, [], None, NOW)
        pods = running(first)
        second = reconcile(deployment_spec(replicas), first.record, fleet, pods, None, NOW)
        return second.record, pods

    def deploy_roll_first():
        record, pods = deployed()
        return lambda: reconcile(deployment_spec(replicas, "v2"), record, fleet, pods, None, NOW)

    def deploy_roll_middle():
        record, pods = deployed()
        step = None
        for _round in range(4):  # 25% + 25% per round: about half updated after two rounds of starts and stops
            step = reconcile(deployment_spec(replicas, "v2"), record, fleet, pods, None, NOW)
            record, pods = step.record, applied(pods, step)
            if sum(1 for p in pods if p.revision == pods[-1].revision) >= replicas // 2:
                break
        return lambda: reconcile(deployment_spec(replicas, "v2"), record, fleet, pods, None, NOW)

    def deploy_down():
        record, pods = deployed()
        return lambda: reconcile(deployment_spec(replicas // 2), record, fleet, pods, None, NOW)

    def sts_up():
        return lambda: reconcile_statefulset(statefulset_spec(replicas), None, fleet, [], None, NOW)

    def sts_update():
        first = reconcile_statefulset(statefulset_spec(replicas), None, fleet, [], None, NOW)
        pods = running(first)
        second = reconcile_statefulset(statefulset_spec(replicas), first.record, fleet, pods, None, NOW)
        return lambda: reconcile_statefulset(statefulset_spec(replicas, "v2"), second.record, fleet, pods, None, NOW)

    def place():
        template = PodTemplate("abc", {"app": "bench"})

        def call():
            names = iter(range(replicas))
            return PlacementState(fleet).place(template, replicas, lambda: f"p{next(names)}")

        return call

    return [
        ("ReplicaSet scale up from 0", rs_up),
        ("ReplicaSet scale down to half", rs_down),
        ("Deployment scale up from 0", deploy_up),
        ("Deployment rolling update, first step", deploy_roll_first),
        ("Deployment rolling update, middle step", deploy_roll_middle),
        ("Deployment scale down to half", deploy_down),
        ("StatefulSet (Parallel) create all", sts_up),
        ("StatefulSet rolling update step", sts_update),
        ("scheduler: place all over the nodes", place),
    ]


def daemon_scenarios(fleet):
    def ds_first():
        return lambda: reconcile_daemonset(daemonset_spec(), None, fleet, [], None, NOW)

    def ds_update():
        first = reconcile_daemonset(daemonset_spec(), None, fleet, [], None, NOW)
        pods = running(first)
        second = reconcile_daemonset(daemonset_spec(), first.record, fleet, pods, None, NOW)
        return lambda: reconcile_daemonset(daemonset_spec("v2"), second.record, fleet, pods, None, NOW)

    return [("DaemonSet first step", ds_first), ("DaemonSet rolling update step", ds_update)]


def timed(prepare, repeat):
    """Best CPU time of ``repeat`` calls: the machines this runs on are shared, wall time would measure the neighbours."""
    call = prepare()
    times = []
    for _round in range(repeat):
        start = time.process_time()
        call()
        times.append(time.process_time() - start)
    return min(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=10_000)
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--daemon-nodes", type=int, default=2_000, help="nodes of the DaemonSet scenarios (baseline: a tenth)")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs per scenario")
    args = parser.parse_args(argv)
    fleet = nodes(args.nodes)
    base = max(1, args.replicas // 10)
    print(f"planning {args.replicas} replicas over {args.nodes} nodes (baseline: {base} replicas, same nodes); CPU time, best of {args.repeat}")
    print(f"{'scenario':46} {'time':>9} {'baseline':>9} {'ratio':>6}")
    small = dict(scenarios(base, fleet))
    rows = [(name, prepare, small[name]) for name, prepare in scenarios(args.replicas, fleet)]
    small_daemons = dict(daemon_scenarios(nodes(max(1, args.daemon_nodes // 10))))
    rows += [(f"{name} ({args.daemon_nodes} nodes)", prepare, small_daemons[name]) for name, prepare in daemon_scenarios(nodes(args.daemon_nodes))]
    worst = 0.0
    for name, prepare, baseline in rows:
        big, little = timed(prepare, args.repeat), timed(baseline, args.repeat)
        worst = max(worst, big)
        print(f"{name:46} {big:8.3f}s {little:8.3f}s {big / little if little else float('inf'):5.1f}x")
    print(f"slowest step: {worst:.3f} s (target: under 1 s); ratio for 10x the size: about 10 when linear, 100 when quadratic")
    return 0 if worst < 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
