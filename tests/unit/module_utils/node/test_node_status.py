"""status: container states and pod phase from list-units states and the hook's runtime files."""

from __future__ import annotations

import json
import os
import time

import pytest

from ansible_collections.hostfleet.workloads.plugins.module_utils.node import converge, hook, podspec, status, systemctl

UNIT = "hf-web.main.service"


@pytest.fixture
def host(tmp_path, monkeypatch):
    h = converge.Host(str(tmp_path / "state"), unit_dir=str(tmp_path / "units"), wants_dir=str(tmp_path / "wants"), run_dir=str(tmp_path / "run"))
    # The hook writes where status reads: <run_dir>/pods/<pod>/<container>.
    monkeypatch.setattr(hook, "RUN_DIR", f"{h.run_dir}/pods")
    monkeypatch.setattr(hook.time, "sleep", lambda seconds: None)
    return h


def container(**extra):
    raw = {"containers": [dict({"name": "main", "command": ["/bin/sleep", "inf"]}, **extra)]}
    return podspec.validate_pod_spec(raw)["containers"][0]


def lifecycle(monkeypatch, *steps):
    """Drive the hook as systemd would: 'start' = pre+post, ('exit', code, status, result) = ExecStopPost."""
    for step in steps:
        if step == "start":
            hook.cmd_pre("/unused", "web", "main")
            hook.cmd_post("/unused", "web", "main")
        else:
            _unused, code, value, result = step
            monkeypatch.setenv("EXIT_CODE", code)
            monkeypatch.setenv("EXIT_STATUS", value)
            monkeypatch.setenv("SERVICE_RESULT", result)
            hook.cmd_exited("/unused", "web", "main")


def state_of(host, units, **extra):
    return status.container_status("web", container(**extra), units, host, time.time())


def test_running(host, monkeypatch):
    lifecycle(monkeypatch, "start")
    st = state_of(host, {UNIT: ("loaded", "active", "running")})
    assert list(st["state"]) == ["running"]
    assert st["started"] and st["ready"] and st["restart_count"] == 0 and st["unit_state"] == "active/running"
    assert status.pod_phase([st]) == "Running"


def test_auto_restart_is_crash_loop_back_off(host, monkeypatch):
    lifecycle(monkeypatch, "start", ("exit", "killed", "KILL", "signal"), "start", ("exit", "exited", "1", "exit-code"))
    st = state_of(host, {UNIT: ("loaded", "activating", "auto-restart")})
    assert st["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert st["restart_count"] == 1 and st["last_exit_code"] == 1 and not st["ready"]
    assert status.pod_phase([st]) == "Running"  # it has run before


def test_backoff_sleep_in_pre_is_crash_loop_back_off(host, monkeypatch):
    lifecycle(monkeypatch, "start", ("exit", "killed", "KILL", "signal"), "start", ("exit", "killed", "KILL", "signal"))
    hook.cmd_pre("/unused", "web", "main")  # sleeps the backoff (patched out), still activating for systemd
    st = state_of(host, {UNIT: ("loaded", "activating", "start-pre")})
    assert st["state"] == {"waiting": {"reason": "CrashLoopBackOff", "until": pytest.approx(time.time() + 10, abs=5)}}


def test_succeeded(host, monkeypatch):
    lifecycle(monkeypatch, "start", ("exit", "exited", "0", "success"))
    st = state_of(host, {UNIT: ("loaded", "inactive", "dead")})
    assert st["state"]["terminated"]["exitCode"] == 0 and st["state"]["terminated"]["reason"] == "Completed"
    assert not st["started"] and not st["ready"]
    assert status.pod_phase([st]) == "Succeeded"


def test_failed(host, monkeypatch):
    lifecycle(monkeypatch, "start", ("exit", "exited", "1", "exit-code"))
    st = state_of(host, {UNIT: ("loaded", "failed", "failed")})
    assert st["state"]["terminated"] == dict(st["state"]["terminated"], exitCode=1, reason="Error")
    assert status.pod_phase([st]) == "Failed"


def test_pending_states(host, monkeypatch):
    st = state_of(host, {})
    assert st["state"] == {"waiting": {"reason": "NotLoaded"}} and st["unit_state"] == "inactive/dead"
    assert status.pod_phase([st]) == "Pending"
    st = state_of(host, {UNIT: ("loaded", "inactive", "dead")})
    assert st["state"] == {"waiting": {"reason": "ContainerCreating"}}
    hook.cmd_pre("/unused", "web", "main")
    st = state_of(host, {UNIT: ("loaded", "active", "running")})  # systemd says running, the hook's 'post' has not run yet
    assert st["state"] == {"waiting": {"reason": "ContainerCreating"}} and not st["started"]
    assert status.pod_phase([st]) == "Pending"


def test_readiness_comes_from_the_ready_file(host, monkeypatch):
    lifecycle(monkeypatch, "start")
    units = {UNIT: ("loaded", "active", "running")}
    probe = {"readinessProbe": {"tcpSocket": {"port": 1}}}
    assert not state_of(host, units, **probe)["ready"]
    hook.write_json(f"{host.runtime_dir('web', 'main')}/ready", {"since": 123.0})
    st = state_of(host, units, **probe)
    assert st["ready"] and st["ready_since"] == 123.0
    st = state_of(host, {UNIT: ("loaded", "failed", "failed")}, **probe)
    assert not st["ready"]  # a stale ready file of a dead container does not count


def test_startup_probe_gates_readiness(host, monkeypatch):
    lifecycle(monkeypatch, "start")
    units = {UNIT: ("loaded", "active", "running")}
    probe = {"startupProbe": {"tcpSocket": {"port": 1}}}
    assert not state_of(host, units, **probe)["ready"]
    hook.write_json(f"{host.runtime_dir('web', 'main')}/startup_ok", {"since": time.time() + 1})
    assert state_of(host, units, **probe)["ready"]


def test_pod_phase_mixes():
    def c(state, exit_code=None, restarts=0):
        body = {"terminated": {"exitCode": exit_code}} if state == "terminated" else {state: {}}
        return {"state": body, "restart_count": restarts, "last_exit_code": exit_code}

    assert status.pod_phase([c("terminated", 0), c("terminated", 0)]) == "Succeeded"
    assert status.pod_phase([c("terminated", 0), c("terminated", 137)]) == "Failed"
    assert status.pod_phase([c("terminated", 0), c("running")]) == "Running"
    assert status.pod_phase([c("waiting"), c("waiting")]) == "Pending"
    assert status.pod_phase([c("waiting", restarts=2), c("waiting")]) == "Running"


def test_pod_status_aggregates(host, monkeypatch):
    record = {"name": "web", "owner": {"kind": "Pod", "name": "web"}, "labels": {"a": "b"}, "revision": "r1", "spec_hash": "h", "created": 1.0,
              "spec": podspec.validate_pod_spec({"containers": [
                  {"name": "main", "command": ["/bin/true"], "resources": {"limits": {"cpu": "500m", "memory": "1Gi"}}},
                  {"name": "side", "command": ["/bin/true"], "resources": {"requests": {"cpu": "250m"}}},
              ]})}
    lifecycle(monkeypatch, "start")
    units = {UNIT: ("loaded", "active", "running"), "hf-web.side.service": ("loaded", "activating", "auto-restart")}
    result = status.pod_status(record, units, host, time.time())
    assert result["phase"] == "Running" and not result["ready"]
    assert result["units"] == ["hf-web.main.service", "hf-web.side.service"]
    assert result["requests"] == {"cpu": 750, "memory": 2**30}
    assert (result["owner"], result["labels"], result["revision"], result["annotations"]) == ({"kind": "Pod", "name": "web"}, {"a": "b"}, "r1", {})


def test_observe_filters(host, monkeypatch):
    for name, owner, labels in (("a", "one", {"app": "x"}), ("b", "one", {"app": "y"}), ("c", "two", {"app": "x"})):
        path = host.record_path(name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            json.dump({"name": name, "owner": {"kind": "Deployment", "name": owner}, "labels": labels,
                       "spec": podspec.validate_pod_spec({"containers": [{"name": "main", "command": ["/bin/true"]}]})}, handle)

    def names(pods):
        return [p["name"] for p in pods]
    assert names(converge.observe(host, units={})) == ["a", "b", "c"]
    assert names(converge.observe(host, "Deployment", "one", units={})) == ["a", "b"]
    assert names(converge.observe(host, selector={"app": "x"}, units={})) == ["a", "c"]
    assert names(converge.observe(host, names=["b"], units={})) == ["b"]


def test_parse_list_units():
    # --plain output: no bullets, descriptions with spaces.
    text = (
        "hf-web.main.service              loaded active   running   hostfleet pod web container main\n"
        "hf-web.side.service              loaded failed   failed    hostfleet pod web container side\n"
        "hf-web.main.liveness.timer       loaded active   waiting   hostfleet liveness probe\n"
        "hf-gone.main.service             not-found inactive dead   hf-gone.main.service\n"
        "\n"
        "garbage\n"
    )
    assert systemctl.parse_list_units(text) == {
        "hf-web.main.service": ("loaded", "active", "running"),
        "hf-web.side.service": ("loaded", "failed", "failed"),
        "hf-web.main.liveness.timer": ("loaded", "active", "waiting"),
        "hf-gone.main.service": ("not-found", "inactive", "dead"),
    }


def test_an_image_that_cannot_be_had_is_err_image_pull_then_back_off_and_the_pod_stays_pending(host, monkeypatch):
    rdir = hook.runtime_dir("web", "main")
    os.makedirs(rdir, exist_ok=True)
    error = {"reason": "ErrImagePull", "message": 'failed to pull image "reg/web:v1": no route'}
    hook.write_json(os.path.join(rdir, "status.json"), {"starts": 0, "consecutive_failures": 1, "image_error": error})
    image = {"image": "reg/web:v1", "command": ["/srv/web"]}
    first = status.container_status("web", container(**image), {UNIT: ("loaded", "activating", "start")}, host, time.time())
    assert first["state"] == {"waiting": error} and first["restart_count"] == 0
    later = status.container_status("web", container(**image), {UNIT: ("loaded", "activating", "auto-restart")}, host, time.time())
    assert later["state"]["waiting"]["reason"] == "ImagePullBackOff"
    assert status.pod_phase([later]) == "Pending"
    record = {"name": "web", "spec": podspec.validate_pod_spec({"containers": [dict(image, name="main")]})}
    pod = status.pod_status(record, {UNIT: ("loaded", "activating", "auto-restart")}, host, time.time())
    assert (pod["phase"], pod["reason"], pod["message"]) == ("Pending", "ImagePullBackOff", error["message"])
    # A pod with nothing to say has no reason.
    hook.write_json(os.path.join(rdir, "status.json"), {"starts": 1, "running": True, "started_at": time.time()})
    pod = status.pod_status(record, {UNIT: ("loaded", "active", "running")}, host, time.time())
    assert pod["reason"] is None and pod["message"] is None
