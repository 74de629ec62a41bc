"""CronJobs on the lab's real systemd: timers on the minute, Forbid / Replace / Allow, history limits, suspend, DST.

Several CronJobs run side by side so that three minute boundaries exercise every policy at once.
"""

from __future__ import annotations

import json
import random
import re
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.cronjob.oncalendar import to_on_calendar
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.cronjob.schedule import parse_schedule

# Judged against budgets and latencies: one at a time, with the other `timing` tests (tests/lab/xdist_groups.py).
pytestmark = pytest.mark.xdist_group("timing")

NAMES = ("forbid", "replace", "allow", "keep", "broken")


def cronjob(lab, name, script="true", state="present", check=False, diff=False, **fields):
    args = {"name": name, "state": state}
    if state == "present":
        args.update(
            schedule=fields.pop("schedule", "* * * * *"),
            jobTemplate={
                "spec": {
                    "backoffLimit": fields.pop("backoffLimit", 0),
                    "template": {
                        "spec": {
                            "restartPolicy": "Never",
                            "terminationGracePeriodSeconds": 1,
                            "containers": [{"name": "main", "command": ["/bin/sh", "-c", script]}],
                        }
                    },
                }
            },
        )
    args.update(fields)
    run = lab.run([{"name": "cron", "hostfleet.workloads.cronjob": args, "run_once": True}], check=check, diff=diff)
    return run, run.result("cron", lab.hosts[0])


def runs_on(lab, host, name):
    """The run records on the host, read from disk (the runner's truth), oldest first."""
    out = lab.ssh(host, f"for f in /var/lib/hostfleet/cronjobs/{name}/runs/*.json; do [ -e $f ] && cat $f && echo; done; true").stdout
    records = [json.loads(line) for line in out.splitlines() if line.strip()]
    return sorted(records, key=lambda r: r["scheduled"])


def active_supervisors(lab, host, name):
    out = lab.ssh(host, f"systemctl list-units --state=active --plain --no-legend 'hfrun-{name}-*' | cut -d' ' -f1").stdout
    return sorted(out.split())


def finished(record):
    return [c["type"] for c in record.get("conditions", []) if c["type"] in ("Complete", "Failed") and c["status"] == "True"]


def wait_for_second(second):
    """Sleep until ``second`` seconds past the next minute boundary (or this minute's, if still ahead)."""
    now = time.time()
    target = now - now % 60 + second
    if target <= now:
        target += 60
    time.sleep(target - now)


def trigger_lateness(lab, host, name):
    """Seconds between each minute boundary and systemd starting the launcher (journal timestamps, on the host)."""
    out = lab.ssh(host, f"journalctl -u hfcron-{name}.service -o json --no-pager | grep '\"Starting hfcron' || true").stdout
    late = []
    for line in out.splitlines():
        stamp = int(json.loads(line)["__REALTIME_TIMESTAMP"]) / 1e6
        late.append(stamp % 60 if stamp % 60 < 30 else stamp % 60 - 60)
    return late


@pytest.fixture(scope="module")
def crons(lab):
    for name in NAMES:
        cronjob(lab, name, state="absent")
    yield lab
    for name in NAMES:
        cronjob(lab, name, state="absent")


def test_policies_history_and_accuracy_on_real_timers(crons):
    lab = crons
    wait_for_second(3)
    placed = {}
    for name, script, extra in (
        ("forbid", "sleep 150", {"concurrencyPolicy": "Forbid"}),
        ("replace", "sleep 150", {"concurrencyPolicy": "Replace"}),
        ("allow", "sleep 150", {"concurrencyPolicy": "Allow"}),
        ("keep", "echo run $POD_NAME", {"successfulJobsHistoryLimit": 2}),
        ("broken", "exit 7", {"failedJobsHistoryLimit": 1}),
    ):
        run, res = cronjob(lab, name, script, **extra)
        assert run.rc == 0 and res["changed"] is True, run.stdout[-3000:]
        assert len(res["nodes"]) == 1 and res["on_calendar"] == ["*-*-* *:*:00 UTC"]
        placed[name] = res["nodes"][0]
    start = time.time()
    boundaries = [start - start % 60 + 60 * k for k in (1, 2, 3)]
    time.sleep(boundaries[-1] + 8 - time.time())  # three boundaries have passed

    # Forbid: the first run is still active, the later ones were skipped.
    forbid = runs_on(lab, placed["forbid"], "forbid")
    assert len(forbid) == 1 and not finished(forbid[0]) and len(active_supervisors(lab, placed["forbid"], "forbid")) == 1
    run, res = cronjob(lab, "forbid", "sleep 150", concurrencyPolicy="Forbid")
    assert res["changed"] is False, run.stdout[-2000:]
    assert len(res["skipped_runs"]) >= 2 and all("Forbid" in s["reason"] for s in res["skipped_runs"])
    assert [a["name"] for a in res["status"]["active"]] == [forbid[0]["name"]]

    # Replace: only the newest run exists; the ones before were stopped and deleted.
    replace = runs_on(lab, placed["replace"], "replace")
    assert len(replace) == 1 and int(replace[0]["scheduled"]) == int(boundaries[-1])
    assert len(active_supervisors(lab, placed["replace"], "replace")) == 1
    # (only this test's lines: the journal keeps those of earlier runs of the suite on a kept lab)
    log = lab.ssh(placed["replace"], f"journalctl -t cronjob/replace --no-pager -o cat --since=@{int(start)}").stdout
    assert log.count("concurrencyPolicy Replace: stopping and deleting run") == 2

    # Allow: the runs overlap.
    allow = runs_on(lab, placed["allow"], "allow")
    assert len(allow) == 3 and not any(finished(r) for r in allow)
    assert len(active_supervisors(lab, placed["allow"], "allow")) == 3

    # History limits: exactly 2 successful and 1 failed finished runs are kept.
    keep = runs_on(lab, placed["keep"], "keep")
    assert [finished(r) for r in keep] == [["Complete"], ["Complete"]]
    assert [int(r["scheduled"]) for r in keep] == [int(b) for b in boundaries[1:]]
    assert lab.ssh(placed["keep"], "ls /var/lib/hostfleet/pods | grep -c '^keep-' || true").stdout.strip() == "2"
    broken = runs_on(lab, placed["broken"], "broken")
    assert [finished(r) for r in broken] == [["Failed"]] and int(broken[0]["scheduled"]) == int(boundaries[-1])
    assert broken[0]["pods"][f"broken-{int(boundaries[-1]) // 60}-0"]["exit_codes"] == {"main": 7}

    # On the minute: systemd started each launcher within 1 s of the boundary (AccuracySec=100ms), measured on the host.
    late = trigger_lateness(lab, placed["keep"], "keep")
    assert len(late) == 3 and all(0 <= x < 1.0 for x in late), late

    # Suspend: the timer stops; no new run after the next boundary; the running Allow runs go on.
    run, res = cronjob(lab, "keep", "echo run $POD_NAME", successfulJobsHistoryLimit=2, suspend=True)
    assert run.rc == 0 and res["changed"] is True and res["timers"][placed["keep"]]["active"] is False
    before = [r["name"] for r in runs_on(lab, placed["keep"], "keep")]
    time.sleep(boundaries[-1] + 60 + 5 - time.time())
    assert [r["name"] for r in runs_on(lab, placed["keep"], "keep")] == before


def test_removal_stops_runs_and_leaves_nothing(crons):
    lab = crons
    host_units = {}
    for name in NAMES:
        run, res = cronjob(lab, name, state="absent")
        assert run.rc == 0, run.stdout[-2000:]
    for host in lab.hosts:
        host_units[host] = lab.ssh(
            host, "systemctl list-units --all --plain --no-legend 'hfcron-*' 'hfrun-*' 'hf-*' | grep -E 'forbid|replace|allow|keep|broken' || true"
        ).stdout.strip()
        assert lab.ssh(host, "ls /var/lib/hostfleet/cronjobs 2>/dev/null || true").stdout.split() == []
    assert host_units == dict.fromkeys(lab.hosts, "")


def test_check_mode_bad_input_and_idempotence(crons):
    lab = crons
    run, res = cronjob(lab, "keep", check=True, diff=True)
    assert run.rc == 0 and res["changed"] is True
    assert lab.ssh(lab.hosts[0], "ls /etc/systemd/system | grep -c hfcron-keep || true").stdout.strip() == "0"
    for fields, field in (
        ({"schedule": "61 * * * *"}, "spec.schedule"),
        ({"schedule": "0 0 30 2 *"}, "spec.schedule"),
        ({"timeZone": "Mars/Olympus"}, "spec.timeZone"),
        ({"concurrencyPolicy": "Sometimes"}, None),
    ):
        run, res = cronjob(lab, "keep", **fields)
        assert run.rc != 0, fields
        if field:
            assert res["field"] == field, res["msg"]
        else:
            assert "concurrencyPolicy" in res["msg"]
    for host in lab.hosts:
        assert lab.ssh(host, "ls /etc/systemd/system | grep -c hfcron-keep || true").stdout.strip() == "0"
    run, res = cronjob(lab, "keep", schedule="30 2 * * *", timeZone="Europe/Berlin")
    assert run.rc == 0 and res["changed"] is True
    run, res = cronjob(lab, "keep", schedule="30 2 * * *", timeZone="Europe/Berlin")
    assert run.rc == 0 and res["changed"] is False
    host = res["nodes"][0]
    assert datetime.fromtimestamp(res["timers"][host]["next"], ZoneInfo("Europe/Berlin")).strftime("%H:%M") == "02:30"


def _systemd_next(lab, host, expressions, base: datetime, count: int):
    """The next ``count`` elapses of the union of ``expressions`` after ``base``, computed by the host's systemd."""
    found = set()
    for expression in expressions:
        out = lab.ssh(host, f"TZ=UTC systemd-analyze calendar --iterations={count} --base-time='{base:%Y-%m-%d %H:%M:%S} UTC' '{expression}'").stdout
        for match in re.finditer(r"(?:Next elapse|Iter\. #\d+): \w+ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC", out):
            found.add(datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC))
    return sorted(found)[:count]


def test_translation_agrees_with_real_systemd_outside_dst_edges(lab):
    """Random schedules in a DST zone: the host's systemd fires exactly when the cron layer says, except within
    3 hours of a DST transition, where systemd's documented rule differs (a wall time skipped by spring-forward
    does not fire, one repeated by fall-back fires once; the cron layer, like croniter, fires both)."""
    rng = random.Random(20261128)
    zone = "Europe/Berlin"
    tz = ZoneInfo(zone)
    fields = (
        lambda: rng.choice(["0", "15", "*/20", "5,35", "0-10/5"]),
        lambda: rng.choice(["*", "2", "1-3", "*/6", "9,21"]),
        lambda: rng.choice(["*", "1", "15", "1-7", "*/10"]),
        lambda: rng.choice(["*", "3", "10", "3,10", "*/2"]),
        lambda: rng.choice(["*", "0", "1-5", "sun", "6,0"]),
    )

    def near_transition(instant):
        return (instant - timedelta(hours=3)).astimezone(tz).utcoffset() != (instant + timedelta(hours=3)).astimezone(tz).utcoffset()

    agreed = 0
    for _unused in range(25):
        text = " ".join(f() for f in fields)
        schedule = parse_schedule(text)
        # Around the 2026 transitions (29 March, 25 October) and an ordinary week.
        base = rng.choice([datetime(2026, 3, 27, tzinfo=UTC), datetime(2026, 10, 23, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC)])
        systemd = _systemd_next(lab, lab.hosts[0], to_on_calendar(schedule, zone), base, 12)
        ours, t = [], base
        while len(ours) < 12:
            t = schedule.next_after(t, tz)
            ours.append(t)
        horizon = min(systemd[-1], ours[-1])
        differ = {x for x in systemd if x <= horizon} ^ {x for x in ours if x <= horizon}
        assert all(near_transition(x) for x in differ), (text, sorted(differ))
        agreed += len([x for x in ours if x <= horizon and x not in differ])
    assert agreed >= 200
