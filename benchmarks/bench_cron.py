#!/usr/bin/env python
"""How late a CronJob's runs start, against the naive way, in the same run, measured on the host.

- hostfleet: a CronJob every minute (`hostfleet.workloads.cronjob`, AccuracySec=100ms);
- naive: what a playbook author writes without this collection, a timer with
  `OnCalendar=*-*-* *:*:00` and systemd's defaults (AccuracySec=1min), whose
  service runs the same command.

Both run at the same time, on two hosts (node1, node2: systemd would coalesce the naive
timer with ours on one host), for MINUTES minute boundaries. For each boundary
the host's journal gives when systemd started the launcher (the timer fired),
when the launcher ran (hostfleet: its own measurement, written to the run's
record) and when the run's process started. Prints the medians and the ratio
naive / hostfleet of the process start lateness. Target: hostfleet within 1 s.

Run: scripts/bench cron  (about MINUTES + 1 minutes)
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import conftest  # noqa: E402,F401  # pylint: disable=unused-import
from integration.playbook import Lab  # noqa: E402
from lab import labctl  # noqa: E402

MINUTES = 3
HOST = "node1"
# On another host: systemd coalesces timers that elapse in one window, so beside ours the naive timer would fire on time too.
NAIVE_HOST = "node2"
NAIVE_SETUP = """
cat > /etc/systemd/system/naive-tick.service <<'EOF'
[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo tick'
EOF
cat > /etc/systemd/system/naive-tick.timer <<'EOF'
[Timer]
OnCalendar=*-*-* *:*:00
EOF
systemctl daemon-reload && systemctl restart naive-tick.timer
"""
NAIVE_CLEANUP = "systemctl stop naive-tick.timer; rm -f /etc/systemd/system/naive-tick.*; systemctl daemon-reload"


def cronjob(state="present"):
    args = {"name": "benchtick", "state": state, "nodes": HOST}
    if state == "present":
        args.update(
            schedule="* * * * *",
            successfulJobsHistoryLimit=MINUTES + 1,
            jobTemplate={
                "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "main", "command": ["/bin/sh", "-c", "echo tick"]}]}}}
            },
        )
    return [{"name": "cronjob", "hostfleet.workloads.cronjob": args, "run_once": True}]


def journal(lab, selector, pattern, host=HOST):
    """Realtime stamps (s) of the journal lines matching ``pattern`` under ``selector``."""
    out = lab.ssh(host, f"journalctl {selector} -o json --no-pager --since=-{MINUTES + 2}min").stdout
    return [int(e["__REALTIME_TIMESTAMP"]) / 1e6 for e in map(json.loads, out.splitlines()) if pattern in e.get("MESSAGE", "")]


def late(stamps):
    """Seconds after the minute boundary each stamp came (stamps a few seconds before one count as early)."""
    return [s % 60 for s in stamps]


def main():
    lab = Lab(Path(labctl.up(3)), ["node1", "node2", "node3"])
    lab.run(cronjob("absent"))
    lab.ssh(NAIVE_HOST, NAIVE_CLEANUP, check=False)
    run = lab.run(cronjob())
    if run.rc != 0:
        raise SystemExit(run.stdout[-3000:])
    lab.ssh(NAIVE_HOST, NAIVE_SETUP)
    now = time.time()
    time.sleep(now - now % 60 + 60 * MINUTES + 10 - now)
    ours_fired = late(journal(lab, "-u hfcron-benchtick.service", "Starting hfcron"))
    records = lab.ssh(HOST, "for f in /var/lib/hostfleet/cronjobs/benchtick/runs/*.json; do cat $f; echo; done").stdout
    runs = [json.loads(line) for line in records.splitlines() if line.strip()]
    launcher = [r["fired_at"] - r["scheduled"] for r in runs]
    # systemd's own "Started" line of each run's pod unit: the process is running.
    pod_start = late(journal(lab, "_PID=1", "Started hf-benchtick-"))
    naive_fired = late(journal(lab, "-u naive-tick.service", "Starting naive-tick", NAIVE_HOST))
    lab.ssh(NAIVE_HOST, NAIVE_CLEANUP, check=False)
    lab.run(cronjob("absent"))
    if not ours_fired or not naive_fired or not pod_start:
        raise SystemExit(f"missing measurements: ours {ours_fired}, launcher {launcher}, pods {pod_start}, naive {naive_fired}")
    print(f"hostfleet runs measured: {len(runs)}")
    print(
        f"timer fired after the minute boundary (median of {len(ours_fired)}): "
        f"hostfleet {statistics.median(ours_fired):.3f}s, naive {statistics.median(naive_fired):.3f}s"
    )
    print(f"hostfleet launcher ran {statistics.median(launcher):.3f}s after the boundary (max {max(launcher):.3f}s)")
    print(f"hostfleet run's pod started {statistics.median(pod_start):.3f}s after the boundary (max {max(pod_start):.3f}s; target < 1 s)")
    naive_median = statistics.median(naive_fired)
    print(f"ratio naive timer / hostfleet pod start lateness: {naive_median / max(statistics.median(pod_start), 1e-3):.1f}x")
    return 0 if max(pod_start) < 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
