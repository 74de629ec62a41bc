#!/usr/bin/env python
"""A Service's availability as its clients see it (issue 14): requests to its virtual IP from every host.

A Deployment of 6 replicas over the lab's 3 hosts behind a ClusterIP Service (pods on the pod network, readiness
probe every 1 s with failureThreshold 1; tests/integration/service_sampler.py), applied as Kubernetes documents.
A client on EVERY host GETs http://<ClusterIP>:8080/ on a new connection every 0.2 s all along (one attempt per
request: a refused or timed-out connection is a failure). Phases, in this order:

- rolling updates: v1 -> v2 -> v3 with maxSurge 1, maxUnavailable 0 (target: >= 99.9 % of requests answered);
- unready: one endpoint at a time is made unready (its probe fails from the next period on), 3 times: how long
  after that any host still sent it a request (target: within probe period + 1 s);
- kill -9: one endpoint's container at a time is killed (its restart waits 5 s before it listens), 3 times: how long
  after the kill any host still got a failed request (target: within probe period + 1 s).

For each phase: requests, success rate, the longest run of failures in a row on one host, and the worst time an
endpoint kept receiving traffic. Needs the cluster network (cluster_network) and Services; a phase that fails prints
"not measured" and why.

Run: scripts/bench service  (about 3-4 minutes)
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import conftest  # noqa: E402,F401  # pylint: disable=unused-import
from integration.playbook import Lab  # noqa: E402
from integration.service_sampler import PORT, ServiceSampler, service_manifest  # noqa: E402
from lab import labctl  # noqa: E402

NAME = "svc-bench"
REPLICAS = 6
PROBE_PERIOD = 1.0
TARGET = 0.999
STATE_DIR = "/var/lib/hostfleet"


def apply(lab, version, state="present"):
    task = {"name": "apply", "hostfleet.workloads.apply": {"definition": service_manifest(NAME, REPLICAS, version), "state": state, "wait_timeout": 300},
            "run_once": True}
    return lab.run([task])


def failure(run):
    try:
        return str(next(iter(run.results("apply").values())).get("msg"))[:300]
    except (KeyError, StopIteration, AttributeError):
        return (run.stdout[-300:] + run.stderr[-300:]).strip()


def running_pods(lab):
    found = {}
    for host in lab.hosts:
        units = lab.ssh(host, f"systemctl list-units 'hf-{NAME}-*.main.service' --state=running --no-legend --plain | cut -d' ' -f1").stdout.split()
        for unit in units:
            found[unit[len("hf-") : -len(".main.service")]] = host
    return found


def pod_ip(lab, host, pod):
    return json.loads(lab.ssh(host, f"cat {STATE_DIR}/pods/{pod}/pod.json").stdout)["network"]["ip"]


def line(name, report, tail=None, note=""):
    run, seconds, host = report.longest_failure_run
    met = "met" if report.success_rate >= TARGET else "MISSED"
    tail_text = ""
    if tail is not None:
        tail_text = f"   kept getting traffic {tail:4.1f} s (limit {PROBE_PERIOD + 1:.0f} s: {'met' if tail <= PROBE_PERIOD + 1 else 'MISSED'})"
    errors = {}
    for request in report.failures:
        kind = (request.error or "").split(":")[0]
        errors[kind] = errors.get(kind, 0) + 1
    error_text = f"   failures: {', '.join(f'{n} {kind}' for kind, n in sorted(errors.items(), key=lambda kv: -kv[1]))}" if errors else ""
    return (f"{name:<16} {len(report.requests):>5} requests   {report.success_rate:8.3%} answered ({met} {TARGET:.1%})   "
            f"longest failure run {run} ({seconds:.1f} s{', ' + host if host else ''}){tail_text}{note}{error_text}")


def phase_rolling(lab, _sampler):
    start = time.time()
    for version in ("v2", "v3"):
        run = apply(lab, version)
        if run.rc:
            raise RuntimeError(f"the rollout to {version} failed: {failure(run)}")
    time.sleep(2)
    return start, time.time(), None, ""


def phase_unready(lab, sampler):
    start, tails = time.time(), []
    for pod, host in sorted(running_pods(lab).items())[:3]:
        address = pod_ip(lab, host, pod)
        at = float(lab.ssh(host, f"date +%s.%N; curl -sS --max-time 3 http://{address}:{PORT}/unready >/dev/null").stdout.split()[0])
        time.sleep(PROBE_PERIOD + 4)
        lab.ssh(host, f"curl -sS --max-time 3 http://{address}:{PORT}/ready >/dev/null")
        time.sleep(3)
        tail = sampler.report_so_far().last_answer_by(pod, at, horizon=PROBE_PERIOD + 4)
        tails.append(max((t for t in tail.values() if t is not None), default=0.0))
    return start, time.time(), max(tails), f"   (per endpoint: {', '.join(f'{t:.1f}' for t in tails)} s)"


def phase_kill(lab, sampler):
    start, tails = time.time(), []
    for pod, host in sorted(running_pods(lab).items())[3:6]:
        at = float(lab.ssh(host, f"date +%s.%N; systemctl kill -s KILL hf-{pod}.main.service").stdout.split()[0])
        time.sleep(10)  # 5 s before the restarted process listens, then ready again
        tail = sampler.report_so_far().last_failure_after(at, horizon=5)
        tails.append(max(tail.values()))
    return start, time.time(), max(tails), f"   (per kill: {', '.join(f'{t:.1f}' for t in tails)} s)"


def main():
    lab = Lab(Path(labctl.up(3)), [name for name, _ip in labctl.hosts()][:3])
    print(f"Deployment of {REPLICAS} over 3 hosts behind a ClusterIP Service, maxSurge 1, maxUnavailable 0, readiness probe every "
          f"{PROBE_PERIOD:.0f} s; GET to the VIP from every host every 0.2 s")
    network = lab.run([{"name": "network", "hostfleet.workloads.cluster_network": {}, "run_once": True}])
    if network.rc:
        print(f"not measured: the cluster network failed: {(network.stdout[-600:] + network.stderr[-300:]).strip()}")
        return 1
    status = 0
    try:
        run = apply(lab, "v1")
        if run.rc:
            print(f"not measured: the first apply failed: {failure(run)}")
            return 1
        vip = json.loads(lab.ssh(lab.hosts[0], f"cat {STATE_DIR}/network/services/default.{NAME}.json").stdout)["cluster_ip"]
        sampler = ServiceSampler(lab.hosts, vip, PORT).start()
        phases = []
        for name, phase in (("rolling updates", phase_rolling), ("unready", phase_unready), ("kill -9", phase_kill)):
            try:
                phases.append((name, *phase(lab, sampler)))
            except Exception as exc:  # pylint: disable=broad-exception-caught  # one phase's failure is its line
                print(f"{name:<16} not measured: {type(exc).__name__}: {str(exc)[:300]}", flush=True)
                status = 1
        report = sampler.stop()
        for name, start, end, tail, note in phases:
            print(line(name, report.part(start, end), tail, note), flush=True)
        print(line("all", report))
    finally:
        apply(lab, "v1", state="absent")
    return status


if __name__ == "__main__":
    sys.exit(main())
