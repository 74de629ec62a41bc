"""The availability sampler (tests/integration/sampler.py) judged on its own: its arithmetic, then real pods."""

from __future__ import annotations

import pytest

from integration.sampler import AvailabilitySampler, Report, Sample, http_template
from lab import labctl

# Judged against budgets and latencies: one at a time, with the other `timing` tests (tests/lab/xdist_groups.py).
pytestmark = pytest.mark.xdist_group("timing")

NAME = "sampled"


def pods(ready, serving):
    return {f"p{i}": {"node": "node1", "version": "v1", "ready": i < ready} for i in range(serving)}


def test_report_counts_violations_and_the_longest_stretches():
    ready_serving = [(3, 3), (2, 3), (2, 4), (3, 3), (0, 1), (0, 0), (3, 3), (1, 1)]
    samples = [Sample(t * 0.2, pods(r, s)) for t, (r, s) in enumerate(ready_serving)]
    report = Report(samples, floor=3, ceiling=3, duration=1.6)
    assert [s.t for s in report.below_floor] == pytest.approx([0.2, 0.4, 0.8, 1.0, 1.4])
    assert [s.t for s in report.above_ceiling] == pytest.approx([0.4])
    assert report.violations == 6
    # 0.2 -> 0.6 (first sample back at the floor), 0.8 -> 1.2, 1.4 -> end of sampling (1.6).
    assert report.longest_below_floor == pytest.approx(0.4)
    assert report.longest_outage == pytest.approx(0.4)
    assert (report.min_ready, report.min_serving, report.max_serving) == (0, 0, 4)
    with pytest.raises(AssertionError, match="budget violated"):
        report.assert_budget()
    assert Report(samples[:1], floor=3, ceiling=3).violations == 0


@pytest.fixture
def sampled(lab):
    args = {"name": NAME, "replicas": 3, "template": http_template(NAME), "wait_timeout": 60}
    yield lab, args
    lab.run([{"name": "cleanup", "hostfleet.workloads.deployment": {"name": NAME, "state": "absent"}, "run_once": True}])


def test_sampler_sees_pods_become_ready_and_one_stop(sampled):
    lab, args = sampled
    with AvailabilitySampler(dict(labctl.hosts()), prefix=f"{NAME}-", floor=3, ceiling=3) as sampler:
        run = lab.run([{"name": "deploy", "hostfleet.workloads.deployment": args, "run_once": True}])
        assert run.rc == 0, run.stdout[-3000:]
        everyone = sampler.wait_for(lambda s: s.ready == 3, timeout=10)
        assert sorted(p["node"] for p in everyone.pods.values()) == ["node1", "node2", "node3"]
        assert everyone.versions() == {"v1": 3}
        victim, where = next((name, pod["node"]) for name, pod in everyone.pods.items() if pod["node"] == "node2")
        lab.ssh(where, f"systemctl stop hf-{victim}.main.service")
        gone = sampler.wait_for(lambda s: victim not in s.pods, timeout=5)
        assert gone.serving == 2 and gone.ready == 2
    report = sampler.report
    assert len(report.samples) >= 10
    # Before the deploy nothing served (below the floor), and again after the stop.
    assert report.below_floor and report.below_floor[-1].t >= gone.t
    assert report.longest_outage > 0 and not report.above_ceiling
