#!/usr/bin/env python
"""Faults against the control plane's promises (issue 12): what clients see while they happen.

One Deployment of 6 replicas over the lab's 3 hosts (maxSurge 1, maxUnavailable 1, node_grace_seconds 10), pods
that serve HTTP (tests/integration/sampler.py's http_template: a readiness probe every 1 s, ready 1 s after start).
The availability sampler GETs every pod every 0.2 s from this machine, as a client would, all along. Scenarios, in
this order, each a rollout to a new version with a fault in it:

- concurrent runs: two ansible-playbook runs of the same rollout started together (one writer at a time: the lease);
- kill -9 of the run: the run is killed mid-rollout, then run again;
- probe periods 1 s: a rollout whose pods also have a liveness probe every 1 s, then 30 s of 1 s probes;
- host loss mid-step: node3 is powered off when the rollout's first new pod appears;
- host return: node3 boots again after its pods were replaced, then (10 s later) the next run, which removes them:
  converged when that run has ended.

For each: budget violations (samples with fewer ready pods than replicas - maxUnavailable, or more serving than
replicas + maxSurge; target 0; for a host loss the floor allows for the pods the host took with it, as Kubernetes'
budget covers voluntary disruptions only), the longest time below replicas - maxUnavailable, and the time from the
fault until the fleet serves exactly the new version's 6 ready pods. The host-return scenario also counts samples in
which a pod of a replaced revision served. A scenario whose feature is missing or that fails prints "not measured"
and why.

Run: scripts/bench faults  (about 4-6 minutes)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import conftest  # noqa: E402,F401  # pylint: disable=unused-import
from integration.playbook import Lab  # noqa: E402
from integration.sampler import AvailabilitySampler, http_template  # noqa: E402
from integration.test_killed_run import run_processes, start_run  # noqa: E402
from lab import labctl  # noqa: E402

NAME = "faults"
REPLICAS, SURGE, UNAVAILABLE = 6, 1, 1
GRACE = 10
LOST = "node3"
FLOOR, CEILING = REPLICAS - UNAVAILABLE, REPLICAS + SURGE


def task(version, **spec):
    return {
        "name": "deploy",
        "hostfleet.workloads.deployment": {
            "name": NAME,
            "replicas": REPLICAS,
            "template": http_template(NAME, version=version, ready_after=1, grace=1, **spec),
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": SURGE, "maxUnavailable": UNAVAILABLE}},
            "node_grace_seconds": GRACE,
            "wait_timeout": 180,
        },
        "run_once": True,
    }


def converged(version):
    return lambda s: s.serving == REPLICAS and s.versions(ready_only=True) == {version: REPLICAS}


class Result:
    def __init__(self, name):
        self.name = name
        self.violations = None
        self.below = None
        self.converge = None
        self.note = ""
        self.missing = None
        self.settled_t = None  # when the repair is over (sampler time), if converging means more than the samples show

    def line(self):
        if self.missing:
            return f"{self.name:<22} not measured: {self.missing}"
        conv = f"{self.converge:.1f} s" if self.converge is not None else "not within the scenario"
        return f"{self.name:<22} violations {self.violations:>3}   longest below budget {self.below:5.1f} s   converged {conv:>8} after the fault{self.note}"


def judge(result, samples, fault_t, version, floor=FLOOR):
    """The scenario's figures from the samples taken since its fault (up to the end of the scenario)."""
    mine = [s for s in samples if s.t >= fault_t]
    result.violations = sum(1 for s in mine if s.ready < floor or s.serving > CEILING)
    longest, since = 0.0, None
    for s in mine:
        if s.ready < FLOOR:
            since = s.t if since is None else since
        elif since is not None:
            longest, since = max(longest, s.t - since), None
    result.below = max(longest, (mine[-1].t - since) if since is not None and mine else 0.0)
    done = next((s for s in mine if converged(version)(s) and s.t >= (result.settled_t or 0)), None)
    result.converge = done.t - fault_t if done else None


LEASE_HELD = "holds its lease"


RERUNS: list = []  # failures of the runs that had to be run again (reported with the scenario)


def run_when_free(lab, version, timeout=150):
    """The run again, as an operator or the controller role's timer would: while another run's lease (a killed run's,
    until it expires) holds the workload, it is refused at once ("run again when it ends"); a run that fails is run
    again too (each failure is kept in RERUNS). Every 3 s until ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        run = lab.run([task(version)])
        if run.rc == 0 or time.monotonic() > deadline:
            return run
        RERUNS.append("lease held" if LEASE_HELD in run.stdout else failure(run.stdout))
        time.sleep(3)


def failure(out):
    """The task's failure message in ansible-playbook's output (the JSON of Lab.run, or the default callback's text)."""
    try:
        return str(json.loads(out[out.index("{"):])["plays"][-1]["tasks"][-1]["hosts"].popitem()[1].get("msg"))[:400]
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        pass
    lines = [line for line in out.splitlines() if '"msg"' in line or "FAILED" in line or "fatal" in line]
    return (lines[-1] if lines else out[-300:]).strip()[:400]


def background(lab, tmp, version):
    return start_run(lab, Path(tmp), [task(version)])


def finish(proc, timeout=240):
    try:
        out, _err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _err = proc.communicate()
    return proc.returncode, out or ""


def scenario_concurrent(lab, sampler):
    result = Result("concurrent runs")
    fault = sampler.samples[-1].t
    with tempfile.TemporaryDirectory(prefix="hf-bench-a-") as a, tempfile.TemporaryDirectory(prefix="hf-bench-b-") as b:
        first, second = background(lab, a, "v2"), background(lab, b, "v2")
        (rc1, out1), (rc2, out2) = finish(first), finish(second)
    failed = [failure(out) for rc, out in ((rc1, out1), (rc2, out2)) if rc]
    if len(failed) == 2:
        # Neither finished: the fleet is as the runs left it; the next run converges it (and is what is timed).
        run = run_when_free(lab, "v2")
        if run.rc:
            raise RuntimeError(f"both runs failed ({' | '.join(failed)}), and so did the next: {failure(run.stdout)}")
    sampler.wait_for(converged("v2"), timeout=60)
    if not failed:
        result.note = "   (both runs succeeded: one after the other)"
    elif len(failed) == 1:
        result.note = "   (one run refused at once: " + ("the other held the lease)" if LEASE_HELD in failed[0] else f"{failed[0][:120]})")
    else:
        result.note = f"   (BOTH runs failed, a third converged: {failed[0][:100]} | {failed[1][:100]})"
    return result, fault, "v2"


def scenario_killed(lab, sampler):
    result = Result("kill -9 of the run")
    before = sampler.samples[-1].pods.keys() if sampler.samples else set()
    with tempfile.TemporaryDirectory(prefix="hf-bench-k-") as tmp:
        proc = background(lab, tmp, "v3")
        sampler.wait_for(lambda s: any(p not in before for p in s.pods), timeout=90)
        fault = sampler.samples[-1].t
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 5
        while run_processes(Path(tmp)) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = run_processes(Path(tmp))
        for line in left:
            os.kill(int(line.split()[0]), signal.SIGKILL)
    del RERUNS[:]
    run = run_when_free(lab, "v3")  # the killed run's lease stays until it expires
    if run.rc:
        raise RuntimeError(f"the re-run failed: {failure(run.stdout)}")
    sampler.wait_for(converged("v3"), timeout=60)
    result.note = f"   ({len(left)} process(es) of the killed run alive after 5 s; " if left else "   (no process of the killed run left; "
    leases, others = RERUNS.count("lease held"), [r for r in RERUNS if r != "lease held"]
    result.note += f"re-run refused {leases}x while its lease ran out" + (f", failed {len(others)}x: {others[0][:160]})" if others else ")")
    return result, fault, "v3"


def scenario_host_loss(lab, sampler):
    result = Result("host loss mid-step")
    before = set(sampler.samples[-1].pods) if sampler.samples else set()
    on_lost = sum(1 for p in sampler.samples[-1].pods.values() if p["node"] == LOST) if sampler.samples else 2
    with tempfile.TemporaryDirectory(prefix="hf-bench-l-") as tmp:
        proc = background(lab, tmp, "v6")
        sampler.wait_for(lambda s: any(p not in before for p in s.pods), timeout=90)
        fault = sampler.samples[-1].t
        labctl.stop(LOST)
        HOST_LOST.append(LOST)
        rc, out = finish(proc)
    if rc:
        raise RuntimeError(f"the rollout failed after the host loss: {failure(out)}")
    sampler.wait_for(converged("v6"), timeout=60)
    result.note = f"   (floor allows for the {on_lost} pods node3 took)"
    return result, fault, "v6", FLOOR - on_lost


def scenario_host_return(lab, sampler):
    result = Result("host return")
    if not HOST_LOST:
        raise RuntimeError("needs the host-loss scenario (not measured)")
    time.sleep(GRACE)  # away longer than the grace: its pods were replaced
    fault = sampler.samples[-1].t
    labctl.start(LOST)
    time.sleep(10)  # before any run: the host alone
    run = lab.run([task("v6")])
    if run.rc:
        raise RuntimeError(f"the run after the return failed: {failure(run.stdout)}")
    # Converged once that run removed the host's replaced pods (they never served meanwhile: counted below).
    result.settled_t = sampler.samples[-1].t
    sampler.wait_for(converged("v6"), timeout=60)
    stale = sum(1 for s in sampler.samples if s.t >= fault and set(s.versions()) - {"v6"})
    result.note = f"   ({stale} samples with a replaced revision serving)"
    return result, fault, "v6"


def scenario_probes(lab, sampler):
    """Readiness and liveness probes every 1 s through a rollout and 30 s after: no probe may stall or flap."""
    result = Result("probe periods 1 s")
    fault = sampler.samples[-1].t
    liveness = {"exec": {"command": ["/bin/true"]}, "periodSeconds": 1}
    template = http_template(NAME, version="v5", ready_after=1, grace=1)
    template["spec"]["containers"][0]["livenessProbe"] = liveness
    run = lab.run([task("v5", containers=template["spec"]["containers"])])
    if run.rc:
        raise RuntimeError(f"the rollout failed: {failure(run.stdout)}")
    time.sleep(30)
    return result, fault, "v5"


HOST_LOST: list = []


def main():
    lab = Lab(Path(labctl.up(3)), [name for name, _ip in labctl.hosts()][:3])
    print(f"Deployment of {REPLICAS} over 3 hosts, maxSurge {SURGE}, maxUnavailable {UNAVAILABLE}, node_grace_seconds {GRACE}, "
          "readiness probes every 1 s, sampled every 0.2 s")
    print(f"budget: ready >= {FLOOR}, serving <= {CEILING}")
    results = []
    try:
        run = lab.run([task("v1")])
        if run.rc:
            raise SystemExit(f"the first deployment failed: {run.stdout[-2000:]}")
        # One sampler all along; each scenario is judged on the samples from its fault to its end.
        sampler = AvailabilitySampler(dict(labctl.hosts()), prefix=f"{NAME}-").start()
        sampler.wait_for(converged("v1"), timeout=60)
        for scenario in (scenario_concurrent, scenario_killed, scenario_probes, scenario_host_loss, scenario_host_return):
            try:
                outcome = scenario(lab, sampler)
                result, fault, version = outcome[:3]
                judge(result, list(sampler.samples), fault, version, outcome[3] if len(outcome) > 3 else FLOOR)
            except Exception as exc:  # pylint: disable=broad-exception-caught  # one scenario's failure is its line, not the end
                result = Result(scenario.__name__.replace("scenario_", "").replace("_", " "))
                result.missing = f"{type(exc).__name__}: {str(exc)[:300]}"
            print(result.line(), flush=True)
            results.append(result)
        sampler.stop()
    finally:
        labctl.start(LOST)
        lab.run([{"name": "remove", "hostfleet.workloads.deployment": {"name": NAME, "state": "absent"}, "run_once": True}])
    return 0 if all(r.missing is None for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
