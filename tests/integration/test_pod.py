"""The node layer on real hosts: hostfleet.workloads.pod and pod_info over SSH on the lab's systemd hosts."""

from __future__ import annotations

import time

import pytest

OWNER = "it-pod"


def sleeper(name, *, labels=None, env=None, extra=None):
    container = {"name": "main", "command": ["/bin/sleep", "infinity"]}
    if env:
        container["env"] = [{"name": k, "value": v} for k, v in env.items()]
    container.update(extra or {})
    return {"name": name, "labels": labels or {"app": name}, "spec": {"containers": [container]}}


def pod_task(name, pods, owner=OWNER, state="present", **extra):
    args = {"owner": owner, "pods": pods, "state": state}
    args.update(extra)
    return {"name": name, "hostfleet.workloads.pod": args}


def main_pids(lab, host, units):
    """{unit: MainPID}; systemctl prints one block per unit, properties in its own order."""
    out = lab.ssh(host, "systemctl show -p Id -p MainPID " + " ".join(units)).stdout
    pids = {}
    for block in out.strip().split("\n\n"):
        props = dict(line.partition("=")[::2] for line in block.splitlines())
        pids[props["Id"]] = int(props["MainPID"])
    return pids


def reloads_since(lab, host, since):
    out = lab.ssh(host, f"journalctl -q -o cat _PID=1 --since=@{int(since)} | grep -c '^Reloading' || true").stdout.strip()
    return int(out or 0)


def wait_until(predicate, timeout, interval=0.2):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


@pytest.fixture
def clean(lab):
    yield
    lab.run([pod_task("cleanup", [], state="absent")])
    for host in lab.hosts:
        lab.ssh(host, "rm -rf /var/lib/hostfleet/volumes/it-data-*", check=False)


def test_lifecycle_create_rerun_change_delete(lab, clean):
    pods = [sleeper("it-a"), sleeper("it-b", env={"COLOR": "blue"}), sleeper("it-c")]
    pods[2]["spec"]["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    pods[2]["spec"]["containers"][0]["command"] = ["/bin/sh", "-c", "echo kept > /data/file; exec sleep infinity"]
    pods[2]["spec"]["volumes"] = [{"name": "data", "persistentVolumeClaim": {"claimName": "it-data-c"}}]

    run = lab.run([pod_task("create", pods, wait=True, wait_timeout=60)])
    assert run.rc == 0, run.stdout + run.stderr
    for host in lab.hosts:
        res = run.result("create", host)
        assert res["changed"] and sorted(res["created"]) == ["it-a", "it-b", "it-c"]
        assert {p["name"]: (p["phase"], p["ready"]) for p in res["pods"]} == dict.fromkeys(("it-a", "it-b", "it-c"), ("Running", True))
        active = lab.ssh(host, "systemctl is-active hf-it-a.main.service hf-it-b.main.service hf-it-c.main.service").stdout.split()
        assert active == ["active"] * 3
        assert lab.ssh(host, "cat /var/lib/hostfleet/volumes/it-data-c/file").stdout.strip() == "kept"

    units = ["hf-it-a.main.service", "hf-it-b.main.service", "hf-it-c.main.service"]
    before = {host: main_pids(lab, host, units) for host in lab.hosts}
    since = time.time()
    time.sleep(1.1)

    rerun = lab.run([pod_task("rerun", pods)])
    assert rerun.rc == 0
    for host in lab.hosts:
        res = rerun.result("rerun", host)
        assert res["changed"] is False and res["daemon_reload"] is False
        assert main_pids(lab, host, units) == before[host], "a re-run must restart nothing"
        assert reloads_since(lab, host, since) == 0, "a re-run must not reload systemd"

    pods[1] = sleeper("it-b", env={"COLOR": "green"})
    change = lab.run([pod_task("change", pods, wait=True)])
    assert change.rc == 0
    for host in lab.hosts:
        res = change.result("change", host)
        assert res["changed"] and res["updated"] == ["it-b"] and res["created"] == [] and res["deleted"] == []
        after = main_pids(lab, host, units)
        assert after["hf-it-a.main.service"] == before[host]["hf-it-a.main.service"]
        assert after["hf-it-c.main.service"] == before[host]["hf-it-c.main.service"]
        assert after["hf-it-b.main.service"] != before[host]["hf-it-b.main.service"]
        env = lab.ssh(host, f"tr '\\0' '\\n' < /proc/{after['hf-it-b.main.service']}/environ").stdout
        assert "COLOR=green" in env.splitlines()

    delete = lab.run([pod_task("delete", [pods[0]])])
    assert delete.rc == 0
    for host in lab.hosts:
        res = delete.result("delete", host)
        assert sorted(res["deleted"]) == ["it-b", "it-c"]
        assert lab.ssh(host, "ls /etc/systemd/system | grep -c '^hf-it-[bc]\\.' || true").stdout.strip() == "0"
        assert lab.ssh(host, "systemctl is-active hf-it-c.main.service", check=False).stdout.strip() in ("inactive", "unknown")
        assert lab.ssh(host, "cat /var/lib/hostfleet/volumes/it-data-c/file").stdout.strip() == "kept", "named volume data must survive a delete"


def test_check_mode_changes_nothing(lab, clean):
    # Unit files and pod dirs of every pod, units of this test's pods (other pods' probe runs come and go meanwhile).
    snapshot = "ls -la /etc/systemd/system /var/lib/hostfleet/pods 2>/dev/null; systemctl list-units --all --plain --no-legend 'hf-it-*'"
    before = {host: lab.ssh(host, snapshot, check=False).stdout for host in lab.hosts}
    run = lab.run([pod_task("check", [sleeper("it-check")])], check=True, diff=True)
    assert run.rc == 0, run.stdout
    for host in lab.hosts:
        res = run.result("check", host)
        assert res["changed"] is True and res["created"] == ["it-check"]
        assert any("hf-it-check.main.service" in d["after_header"] for d in res["diff"])
        assert lab.ssh(host, snapshot, check=False).stdout == before[host]


@pytest.mark.parametrize(
    "bad_pod, field",
    [
        ({"name": "Bad_Name", "spec": {"containers": [{"name": "main", "command": ["/bin/true"]}]}}, "pods[1].name"),
        ({"name": "x;rm", "spec": {"containers": [{"name": "main", "command": ["/bin/true"]}]}}, "pods[1].name"),
        ({"name": "ok", "spec": {"containers": [{"name": "main", "command": ["/bin/true"], "livenessprobe": {}}]}}, "pods[1].spec.containers[0].livenessprobe"),
        ({"name": "ok", "spec": {"containers": [{"name": "../etc", "command": ["/bin/true"]}]}}, "pods[1].spec.containers[0].name"),
    ],
)
def test_bad_input_is_refused_and_touches_nothing(lab, clean, bad_pod, field):
    # <state>/node holds the host's heartbeat, rewritten every few seconds whatever the test does.
    snapshot = "ls -la /etc/systemd/system; ls -laR --ignore=node /var/lib/hostfleet 2>/dev/null | grep -v hostfleet-hook"
    before = {host: lab.ssh(host, snapshot, check=False).stdout for host in lab.hosts}
    run = lab.run([pod_task("bad", [sleeper("it-good"), bad_pod])])
    assert run.rc != 0
    for host in lab.hosts:
        res = run.result("bad", host)
        assert res["failed"] and res["field"] == field and field in res["msg"]
        assert lab.ssh(host, snapshot, check=False).stdout == before[host]


@pytest.mark.xdist_group("timing")  # a restart within 1 s, measured (tests/lab/xdist_groups.py)
def test_kill_9_comes_back_within_a_second(lab, clean):
    host = lab.hosts[0]
    run = lab.run([pod_task("create", [sleeper("it-kill")], wait=True)], hosts=host)
    assert run.rc == 0
    pid = main_pids(lab, host, ["hf-it-kill.main.service"])["hf-it-kill.main.service"]
    # Measured on the host itself: the time from the kill to a new main PID.
    script = (
        f"kill -9 {pid}; t0=$(date +%s.%N); "
        "while :; do p=$(systemctl show -p MainPID --value hf-it-kill.main.service); "
        f'if [ "$p" != 0 ] && [ "$p" != {pid} ]; then break; fi; sleep 0.02; done; '
        't1=$(date +%s.%N); echo "$t1 - $t0" | bc -l 2>/dev/null || python3 -c "print($t1 - $t0)"'
    )
    elapsed = float(lab.ssh(host, script, timeout=20).stdout.strip().splitlines()[-1])
    assert elapsed < 1.0, f"restart took {elapsed:.3f}s"
    info = lab.run([{"name": "info", "hostfleet.workloads.pod_info": {"owner": OWNER}}], hosts=host)
    pod = info.result("info", host)["pods"][0]
    assert pod["restart_count"] == 1 and pod["containers"][0]["last_exit_code"] == 137


def test_liveness_failure_restarts_and_readiness_failure_reports_not_ready(lab, clean):
    host = lab.hosts[0]
    liveness = sleeper(
        "it-live", extra={"livenessProbe": {"exec": {"command": ["/bin/sh", "-c", "test ! -e /tmp/it-live-sick"]}, "periodSeconds": 1, "failureThreshold": 2}}
    )
    readiness = sleeper("it-ready", extra={"readinessProbe": {"exec": {"command": ["/bin/sh", "-c", "test ! -e /tmp/it-ready-sick"]}, "periodSeconds": 1}})
    lab.ssh(host, "rm -f /tmp/it-live-sick /tmp/it-ready-sick")
    run = lab.run([pod_task("create", [liveness, readiness], wait=True, wait_timeout=30)], hosts=host)
    assert run.rc == 0, run.stdout
    pid = main_pids(lab, host, ["hf-it-live.main.service"])["hf-it-live.main.service"]

    lab.ssh(host, "touch /tmp/it-live-sick /tmp/it-ready-sick")

    def info():
        res = lab.run([{"name": "info", "hostfleet.workloads.pod_info": {"owner": OWNER}}], hosts=host).result("info", host)
        return {p["name"]: p for p in res["pods"]}

    def restarted_and_unready():
        pods = info()
        return pods if pods["it-live"]["restart_count"] >= 1 and not pods["it-ready"]["ready"] else None

    pods = wait_until(restarted_and_unready, timeout=20, interval=1)
    assert pods, "liveness failure did not restart the pod or readiness failure was not reported"
    assert pods["it-live"]["containers"][0]["last_exit_reason"] == "LivenessProbeFailed"
    assert pods["it-ready"]["phase"] == "Running" and pods["it-ready"]["restart_count"] == 0, "readiness failure must not restart"
    lab.ssh(host, "rm -f /tmp/it-live-sick /tmp/it-ready-sick")
    assert main_pids(lab, host, ["hf-it-live.main.service"])["hf-it-live.main.service"] != pid
    assert wait_until(lambda: info()["it-ready"]["ready"], timeout=10, interval=1)


@pytest.mark.slow
def test_crash_looping_pod_is_still_retried_after_a_minute(lab, clean):
    host = lab.hosts[1]
    crasher = {"name": "it-crash", "spec": {"containers": [{"name": "main", "command": ["/bin/sh", "-c", "sleep 0.2; exit 3"]}]}}
    run = lab.run([pod_task("create", [crasher])], hosts=host)
    assert run.rc == 0
    time.sleep(65)
    state = lab.ssh(host, "systemctl show -p ActiveState -p SubState --value hf-it-crash.main.service").stdout.split()
    assert state[0] != "failed", f"systemd gave up: {state}"
    info = lab.run([{"name": "info", "hostfleet.workloads.pod_info": {"owner": OWNER}}], hosts=host).result("info", host)["pods"][0]
    assert info["restart_count"] >= 3 and info["last_exit_code"] == 3
    # Backoff grows (10 s, 20 s, 40 s ...) instead of a tight 100 ms loop: far fewer than 65 / 0.3 starts.
    assert info["restart_count"] <= 8
    # And a new start is still scheduled: the backoff sleep runs (start-pre) or the process runs.
    later = wait_until(
        lambda: (
            lab.run([{"name": "info", "hostfleet.workloads.pod_info": {"owner": OWNER}}], hosts=host).result("info", host)["pods"][0]["restart_count"]
            > info["restart_count"]
        ),
        timeout=90,
        interval=5,
    )
    assert later, "no further restart attempt after the first minute"
