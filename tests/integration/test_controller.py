"""The role hostfleet.workloads.controller on a real control node: a systemd timer that runs a playbook, under a lock.

The control node is a lab host (node4): this machine's PID 1 is not systemd. It gets ansible-core (a virtualenv
built here from wheels, copied in: the hosts have no route out), this work tree's collection (built and installed
offline), the lab's SSH key and an inventory of the fleet (node1..node3). The role is applied from this machine.
benchmarks/bench_recovery.py uses the same control node (ControlNode below).
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from lab import labctl

REPO = Path(__file__).resolve().parents[2]
CACHE = Path("/var/cache/hostfleet")
CORE = "2.19.14"  # the newest ansible-core that runs on the hosts' Python 3.11 (Debian 12)
WHEELS = CACHE / "controller-wheels"
# Built here at the path it has on the control node: a virtualenv is not relocatable.
VENV = CACHE / f"controller-venv-{CORE}"
BUILD_PIP = CACHE / "venv-2.19" / "bin" / "pip"  # any pip >= 22.3 (--python), offline once the wheels are cached
HOST_PYTHON = "/usr/bin/python3.11"  # Debian 12's, the same binary as the hosts'
CONTROL = "node4"
FLEET = ("node1", "node2", "node3")
WORK = "/srv/hostfleet"  # the playbooks and inventory on the control node
BIN = Path(sys.executable).parent


def _ssh_argv(host):
    return ["ssh", "-F", str(labctl.ssh_config_path()), host]


def build_venv():
    """An ansible-core virtualenv for the control node, cached under /var/cache/hostfleet (built once)."""
    if (VENV / ".complete").exists():
        return VENV
    WHEELS.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(BUILD_PIP), "download", "--quiet", f"ansible-core=={CORE}", "-d", str(WHEELS)], check=True)
    # Built in place (its scripts hold absolute paths); .complete marks a full install.
    subprocess.run(["rm", "-rf", str(VENV)], check=True)
    subprocess.run([HOST_PYTHON, "-m", "venv", "--without-pip", str(VENV)], check=True)
    pip = [str(BUILD_PIP), "--python", str(VENV / "bin" / "python"), "install", "--quiet", "--no-index", "--find-links", str(WHEELS)]
    subprocess.run([*pip, f"ansible-core=={CORE}"], check=True)
    (VENV / ".complete").touch()
    return VENV


class ControlNode:
    """node4 as a control node for node1..node3: ansible-core, the collection, the SSH key, an inventory."""

    def __init__(self, host=CONTROL, fleet=FLEET):
        self.host = host
        self.fleet = fleet

    def ssh(self, command, check=True, timeout=120):
        done = labctl.ssh(self.host, command, check=False, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"{self.host}: {command!r} failed ({done.returncode}): {done.stdout}{done.stderr}")
        return done

    def push_tree(self, local_root: Path, paths: list[str], dest="/"):
        """Copy files of this machine to the same paths on the control node (tar over SSH: binary-safe)."""
        tar = subprocess.Popen(["tar", "-C", str(local_root), "-cf", "-", *paths], stdout=subprocess.PIPE)
        subprocess.run([*_ssh_argv(self.host), f"tar -C {shlex.quote(dest)} -xf -"], stdin=tar.stdout, check=True, timeout=300)
        tar.stdout.close()
        if tar.wait() != 0:
            raise AssertionError(f"tar of {paths} failed")

    def prepare(self):
        venv = build_venv()
        if self.ssh(f"test -e {venv}/.complete", check=False).returncode != 0:
            self.push_tree(Path("/"), [str(venv).lstrip("/")])
        with tempfile.TemporaryDirectory(prefix="hf-ctl-") as tmp:
            subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", "--force", "--output-path", tmp, str(REPO)], check=True, capture_output=True)
            tarball = next(Path(tmp).glob("hostfleet-workloads-*.tar.gz"))
            self.ssh(f"mkdir -p {WORK}/.ssh")
            self.push_tree(Path(tmp), [tarball.name], dest=WORK)
            key = labctl.key_path()
            self.push_tree(key.parent, [key.name], dest=f"{WORK}/.ssh")
        # This work tree's collection, installed offline where every run finds it (~root/.ansible/collections).
        self.ssh(f"{venv}/bin/ansible-galaxy collection install --offline --force {WORK}/{tarball.name} >/dev/null && rm {WORK}/{tarball.name}")
        names = dict(labctl.hosts())
        inventory = ["[fleet]"] + [
            f"{h} ansible_host={names[h]} ansible_user=root ansible_ssh_private_key_file={WORK}/.ssh/{key.name} "
            "ansible_python_interpreter=/usr/bin/python3 ansible_ssh_timeout=8 "
            "ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=3'"
            for h in self.fleet
        ]
        self.write(f"{WORK}/inventory.ini", "\n".join(inventory) + "\n")
        self.write(f"{WORK}/ansible.cfg", "[defaults]\ninventory = inventory.ini\nforks = 10\n[ssh_connection]\npipelining = True\n")
        return self

    def write(self, path, text):
        quoted = shlex.quote(path)
        done = labctl.ssh(self.host, f"mkdir -p $(dirname {quoted}) && cat > {quoted}.tmp && mv {quoted}.tmp {quoted}", check=False, input=text)
        if done.returncode != 0:
            raise AssertionError(f"writing {path}: {done.stderr}")

    def status(self, name="workloads"):
        return json.loads(self.ssh(f"hostfleet-controller status {name} --json", check=False).stdout)

    def apply_role(self, lab, check=False, **variables):
        """Apply the controller role to the control node from this machine; returns (PlaybookRun, role task results)."""
        variables.setdefault("controller_venv", str(VENV))
        tasks = [{"name": "controller role", "ansible.builtin.include_role": {"name": "hostfleet.workloads.controller"}, "vars": variables}]
        return lab.run(tasks, hosts=self.host, check=check)


def add_control_host():
    """Bring node1..node4 up; returns whether node4 was created here (then `remove_control_host` removes it)."""
    created = CONTROL not in dict(labctl.hosts())
    labctl.up(4)
    return created


def remove_control_host():
    """Remove node4 from the lab: the other tests (and benchmarks) play on the inventory's `lab` group, every known host."""
    labctl.remove(CONTROL)


def recap(run, host):
    """(changed, failed) counts of the PLAY RECAP for host, from the hf_json callback's stats."""
    stats = run.data.get("stats", {}).get(host, {})
    return stats.get("changed", 0), stats.get("failures", 0) + stats.get("unreachable", 0)


@pytest.fixture(scope="module")
def control():
    """A 4-host lab (this file needs one host more than conftest's `lab`): node4 controls node1..node3."""
    from integration.playbook import Lab

    created = add_control_host()
    try:
        lab = Lab(labctl.inventory_path(), ["node1", "node2", "node3", "node4"])
        node = ControlNode().prepare()
        node.write(f"{WORK}/site.yml", SITE)
        node.ssh(f"rm -f {WORK}/runs.log {WORK}/hold")
        yield lab, node
        node.apply_role(lab, controller_state="absent")
    finally:
        if created:
            remove_control_host()


# Each run appends "start"/"end" lines (time, pid) to runs.log: overlapping runs would interleave them.
# A run holds for as many seconds as the file `hold` says (the lock test needs a long run).
SITE = f"""\
- name: Controller test
  hosts: fleet
  gather_facts: false
  tasks:
    - name: Start mark
      ansible.builtin.shell: echo "start $PPID $(date +%s.%N)" >> {WORK}/runs.log
      delegate_to: localhost
      run_once: true
      changed_when: true
    - name: Reach the fleet
      ansible.builtin.ping:
    - name: Hold
      ansible.builtin.command: sleep {{{{ lookup('ansible.builtin.file', '{WORK}/hold', errors='ignore') | default('0', true) | trim }}}}
      delegate_to: localhost
      run_once: true
      changed_when: false
    - name: End mark
      ansible.builtin.shell: echo "end $PPID $(date +%s.%N)" >> {WORK}/runs.log
      delegate_to: localhost
      run_once: true
      changed_when: true
"""


def runs_log(node):
    out = node.ssh(f"cat {WORK}/runs.log 2>/dev/null || true").stdout
    return [(kind, float(at)) for kind, _pid, at in (line.split() for line in out.splitlines() if line.strip())]


def assert_never_overlapped(entries):
    kinds = [kind for kind, _at in entries]
    # start, end, start, end...: a second start before an end would be two runs at once (the last run may still go on).
    assert all(kind == ("start" if i % 2 == 0 else "end") for i, kind in enumerate(kinds)), kinds


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.mark.slow
def test_timer_runs_the_playbook_idempotently(control):
    lab, node = control
    # 20 s: longer than a run (a few seconds, 10-15 s on a loaded machine), for the checks made between runs.
    variables = {"controller_playbook": f"{WORK}/site.yml", "controller_interval": "20s"}

    check = node.apply_role(lab, check=True, **variables)
    assert check.rc == 0, check.stdout[-3000:] + check.stderr[-2000:]
    assert node.ssh("test -e /etc/systemd/system/hostfleet-controller-workloads.timer", check=False).returncode != 0, "check mode wrote the units"

    run = node.apply_role(lab, **variables)
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert recap(run, CONTROL)[0] > 0
    assert node.ssh("systemctl is-active hostfleet-controller-workloads.timer").stdout.strip() == "active"
    assert node.ssh("systemctl is-enabled hostfleet-controller-workloads.timer").stdout.strip() == "enabled"

    # Runs happen on their own, one after another, each ending well (the timer, not us, starts them).
    def two_runs():
        status = node.status()
        entries = runs_log(node)
        # Between runs (while one runs, systemd has no next elapse yet).
        between = status.get("last_run") and not status.get("running") and status["service"]["active"] in ("inactive", "failed")
        return status if sum(kind == "end" for kind, _at in entries) >= 2 and between else None

    status = wait_for(two_runs, 180, "two timer runs")
    assert status["last_run"]["exit_status"] == 0 and status["last_run"]["source"] == "timer", status
    assert status["timer"]["active"] == "active" and status["timer"]["next"], status
    assert status["interval"] == "20s" and status["playbook"] == f"{WORK}/site.yml"
    starts = [at for kind, at in runs_log(node) if kind == "start"]
    assert_never_overlapped(runs_log(node))
    # Runs follow one another at the interval (from start to start), not back to back. The bound is half the interval:
    # systemd's timer accuracy and a loaded machine moved starts by more than a second (18.4 s apart once in CI).
    assert all(b - a >= 10 for a, b in zip(starts, starts[1:], strict=False)), starts

    # The playbook's output is in the journal, under the controller's unit.
    logs = node.ssh("hostfleet-controller logs -n 200").stdout  # NAME left out: one controller
    assert "PLAY RECAP" in logs and "node3" in logs and "timer run of workloads" in logs, logs[-2000:]

    # The human status names the last run and the next one (between runs: while one runs, systemd has no next elapse).
    def between_runs():
        out = node.ssh("hostfleet-controller status").stdout
        return out if "next run in" in out else None

    human = wait_for(between_runs, 60, "status between runs")
    assert "last run   succeeded (exit status 0), timer run" in human and "running    no" in human, human

    again = node.apply_role(lab, **variables)
    assert again.rc == 0 and recap(again, CONTROL) == (0, 0), again.stdout[-3000:]
    check_again = node.apply_role(lab, check=True, **variables)
    assert check_again.rc == 0 and recap(check_again, CONTROL) == (0, 0), check_again.stdout[-3000:]

    # A new interval is applied (the timer restarted on the new unit).
    changed = node.apply_role(lab, **dict(variables, controller_interval="24s"))
    assert changed.rc == 0 and recap(changed, CONTROL)[0] > 0
    assert "OnUnitActiveSec=24s" in node.ssh("systemctl cat hostfleet-controller-workloads.timer").stdout
    assert "OnUnitActiveUSec=24s" in node.ssh("systemctl show -p TimersMonotonic --value hostfleet-controller-workloads.timer").stdout


@pytest.mark.slow
def test_lock_keeps_runs_from_overlapping(control):
    lab, node = control
    # Manual runs only (timer stopped), so that only this test starts runs.
    run = node.apply_role(lab, controller_playbook=f"{WORK}/site.yml", controller_enabled=False)
    assert run.rc == 0, run.stdout[-3000:]
    assert node.ssh("systemctl is-active hostfleet-controller-workloads.timer", check=False).stdout.strip() == "inactive"
    # Stopping the timer leaves a run in progress alone: let it end first.
    wait_for(lambda: node.status()["running"] is None and node.status()["service"]["active"] in ("inactive", "failed"), 120, "the last timer run to end")
    node.ssh(f"rm -f {WORK}/runs.log; echo 8 > {WORK}/hold")
    try:
        # A run through the service (as the timer starts it) that holds the lock for about 8 s.
        node.ssh("systemctl start --no-block hostfleet-controller-workloads.service")
        running = wait_for(lambda: node.status().get("running"), 60, "the service's run to hold the lock")
        assert running["source"] == "timer" and running["pid"], running

        refused = node.ssh("hostfleet-controller run workloads", check=False)
        assert refused.returncode == 75, (refused.returncode, refused.stdout, refused.stderr)
        assert "holds the lock" in refused.stderr and f"pid {running['pid']}" in refused.stderr

        # --wait queues behind it, then runs.
        node.ssh(f"echo 0 > {WORK}/hold")
        waited = node.ssh("hostfleet-controller run --wait workloads", timeout=180)
        assert "waiting for the run that holds the lock" in waited.stdout and "ended with exit status 0" in waited.stdout, waited.stdout[-2000:]
    finally:
        node.ssh(f"rm -f {WORK}/hold")
    entries = runs_log(node)
    assert [kind for kind, _at in entries] == ["start", "end", "start", "end"], entries
    assert_never_overlapped(entries)
    status = node.status()
    assert status["running"] is None and status["last_run"]["source"] == "manual" and status["last_run"]["exit_status"] == 0, status
    assert node.ssh("systemctl show -p Result --value hostfleet-controller-workloads.service").stdout.strip() == "success"


LOCK = "/var/lib/hostfleet-controller/workloads/lock"
ROOT_ONLY = {
    "/var/lib/hostfleet-controller/workloads": "700",
    LOCK: "600",
    "/etc/hostfleet/controller": "700",
    "/etc/hostfleet/controller/workloads.json": "600",
}


def modes(node):
    out = node.ssh("stat -c '%n %a %U' " + " ".join(ROOT_ONLY)).stdout
    return {path: (mode, owner) for path, mode, owner in (line.split() for line in out.splitlines())}


ROOT_ONLY_VARIABLES = {"controller_playbook": f"{WORK}/site.yml", "controller_enabled": False, "controller_environment": {"HF_SECRET": "s3cret"}}


@pytest.mark.slow
def test_lock_and_configuration_are_root_only(control):
    lab, node = control
    run = node.apply_role(lab, **ROOT_ONLY_VARIABLES)
    assert run.rc == 0, run.stdout[-3000:]
    manual = node.ssh("hostfleet-controller run workloads", timeout=180)
    assert "ended with exit status 0" in manual.stdout, manual.stdout[-2000:]
    # Another local user can neither hold the lock (a shared flock would stop every run) nor read the configuration.
    shared = node.ssh(f"runuser -u nobody -- flock -n -s {LOCK} true", check=False)
    assert shared.returncode != 0, "a non-root user took a shared lock on the controller's lock"
    assert node.ssh("runuser -u nobody -- cat /etc/hostfleet/controller/workloads.json", check=False).returncode != 0
    assert modes(node) == {path: (mode, "root") for path, mode in ROOT_ONLY.items()}
    # What an older version left (a 0644 lock in a 0755 directory, a 0644 configuration) is made root-only again.
    node.ssh(f"chmod 0755 $(dirname {LOCK}) /etc/hostfleet/controller && chmod 0644 {LOCK} /etc/hostfleet/controller/workloads.json")
    run = node.apply_role(lab, **ROOT_ONLY_VARIABLES)
    assert run.rc == 0 and recap(run, CONTROL)[0] > 0, run.stdout[-3000:]
    assert modes(node) == {path: (mode, "root") for path, mode in ROOT_ONLY.items()}
    # The program keeps a lock it creates root-only too.
    node.ssh(f"rm -rf $(dirname {LOCK})")
    manual = node.ssh("hostfleet-controller run workloads", timeout=180)
    assert "ended with exit status 0" in manual.stdout, manual.stdout[-2000:]
    assert modes(node) == {path: (mode, "root") for path, mode in ROOT_ONLY.items()}
    again = node.apply_role(lab, **ROOT_ONLY_VARIABLES)
    assert again.rc == 0 and recap(again, CONTROL) == (0, 0), again.stdout[-3000:]


@pytest.mark.slow
def test_control_characters_are_refused_and_change_nothing(control):
    lab, node = control
    run = node.apply_role(lab, **ROOT_ONLY_VARIABLES)
    assert run.rc == 0, run.stdout[-3000:]
    # A control character in any value that reaches a unit, the configuration or a command line is refused, named,
    # before anything changes (a newline in the playbook would have added a root ExecStartPre= to the service).
    fingerprint = "sha256sum /etc/systemd/system/hostfleet-controller-* /etc/hostfleet/controller/*; ls /var/lib/hostfleet-controller"
    before = node.ssh(fingerprint).stdout
    injected = "\nExecStartPre=/bin/touch /tmp/hf-injected"
    attempts = [
        ({"controller_playbook": f"{WORK}/site.yml{injected}"}, "controller_playbook"),
        ({"controller_name": "x\n"}, "controller_name"),
        ({"controller_interval": f"10s{injected}"}, "controller_interval"),
        ({"controller_environment": {"HF_SECRET": f"s3cret{injected}"}}, 'controller_environment[\\"HF_SECRET\\"]'),
        ({"controller_extra_args": ["-v", "--limit\tfleet"]}, "controller_extra_args[1]"),
        ({"controller_python": f"/usr/bin/python3{injected}"}, "controller_python"),
    ]
    for override, name in attempts:
        refused = node.apply_role(lab, **dict(ROOT_ONLY_VARIABLES, **override))
        assert refused.rc != 0, (name, refused.stdout[-3000:])
        assert f"{name} must not contain control characters" in refused.stdout, (name, refused.stdout[-3000:])
        assert recap(refused, CONTROL)[0] == 0, (name, refused.stdout[-3000:])
    assert node.ssh(fingerprint).stdout == before
    assert node.ssh("test -e /tmp/hf-injected", check=False).returncode != 0


@pytest.mark.slow
def test_failed_run_is_reported_and_state_absent_removes_everything(control):
    lab, node = control
    # A second controller beside the first: its own units and config, one shared command.
    broken = "- name: Broken\n  hosts: fleet\n  gather_facts: false\n  tasks:\n    - name: Fail\n      ansible.builtin.fail: {msg: on purpose}\n"
    node.write(f"{WORK}/broken.yml", broken)
    run = node.apply_role(lab, controller_name="broken", controller_playbook=f"{WORK}/broken.yml", controller_enabled=False)
    assert run.rc == 0, run.stdout[-3000:]
    assert node.ssh("hostfleet-controller list").stdout.split() == ["broken", "workloads"]
    failed = node.ssh("hostfleet-controller run broken", check=False, timeout=180)
    assert failed.returncode == 2, (failed.returncode, failed.stdout[-2000:])
    status = node.ssh("hostfleet-controller status broken", check=False)
    assert status.returncode == 3 and "last run   failed (exit status 2)" in status.stdout, status.stdout

    gone = node.apply_role(lab, controller_name="broken", controller_state="absent")
    assert gone.rc == 0 and recap(gone, CONTROL)[0] > 0, gone.stdout[-3000:]
    assert node.ssh("hostfleet-controller list").stdout.split() == ["workloads"]  # the command stays for the other one
    assert node.ssh("ls /etc/systemd/system/hostfleet-controller-broken.* /var/lib/hostfleet-controller/broken", check=False).returncode != 0

    check = node.apply_role(lab, controller_state="absent", check=True)
    assert check.rc == 0 and recap(check, CONTROL)[0] > 0
    assert node.ssh("test -e /etc/systemd/system/hostfleet-controller-workloads.timer", check=False).returncode == 0, "check mode removed it"

    gone = node.apply_role(lab, controller_state="absent")
    assert gone.rc == 0 and recap(gone, CONTROL)[0] > 0, gone.stdout[-3000:]
    leftovers = node.ssh(
        "ls -d /etc/systemd/system/hostfleet-controller-* /usr/local/bin/hostfleet-controller /usr/local/lib/hostfleet-controller "
        "/etc/hostfleet/controller /var/lib/hostfleet-controller/workloads 2>/dev/null",
        check=False,
    ).stdout
    assert leftovers == "", leftovers
    assert node.ssh("systemctl list-units --all --plain --no-legend 'hostfleet-controller-*'").stdout.strip() == ""
    again = node.apply_role(lab, controller_state="absent")
    assert again.rc == 0 and recap(again, CONTROL) == (0, 0), again.stdout[-3000:]
