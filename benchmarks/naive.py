"""What both benchmarks share: the naive way (a loop of copy + systemd_service tasks) and how a run is timed."""

from __future__ import annotations

NAIVE_UNIT = """[Unit]
Description=naive replica {{ item }}

[Service]
ExecStart=/bin/sleep infinity
Restart=always

[Install]
WantedBy=multi-user.target
"""


def naive_tasks(count, state="present"):
    """The units a playbook author writes without this collection: one copy and one systemd task per unit."""
    if state == "absent":
        # Cleanup is not measured: one shell command.
        script = (
            "systemctl disable --now $(cd /etc/systemd/system && ls naive-*.service 2>/dev/null) 2>/dev/null; "
            "rm -f /etc/systemd/system/naive-*.service; systemctl daemon-reload"
        )
        return [{"name": "naive cleanup", "ansible.builtin.shell": script, "changed_when": False}]
    return [
        {
            "name": "naive unit files",
            "ansible.builtin.copy": {"dest": "/etc/systemd/system/naive-{{ item }}.service", "content": NAIVE_UNIT, "mode": "0644"},
            "loop": list(range(count)),
        },
        {
            "name": "naive start",
            "ansible.builtin.systemd_service": {"name": "naive-{{ item }}", "state": "started", "enabled": True, "daemon_reload": True},
            "loop": list(range(count)),
        },
    ]


def timed(lab, tasks, what, hosts="lab"):
    """Seconds spent in the play's tasks (first task's start to last one's end), and the run.

    Task time, not process time: ansible-playbook's own start-up (about a second) is the same for both sides
    and would only blur the ratio.
    """
    run = lab.run(tasks, hosts=hosts, timeout=900)
    if run.rc != 0:
        raise SystemExit(f"{what} failed:\n{run.stdout[-4000:]}\n{run.stderr[-2000:]}")
    durations = [t["task"]["duration"] for play in run.data["plays"] for t in play["tasks"]]
    return durations[-1]["end"] - durations[0]["start"], run
