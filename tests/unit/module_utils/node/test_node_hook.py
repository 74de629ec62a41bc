"""hook: crash-loop backoff, exit bookkeeping, handlers against real sockets and processes, probe thresholds."""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import threading
import time

import pytest
from node_helpers import spec_with

from ansible_collections.hostfleet.workloads.plugins.module_utils.node import hook, podspec

# --- backoff -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("failures,delay", [(0, 0), (1, 0), (2, 10), (3, 20), (4, 40), (5, 80), (6, 160), (7, 300), (8, 300), (50, 300), (1000, 300)])
def test_backoff_delay(failures, delay):
    assert hook.backoff_delay(failures) == delay


def test_backoff_delay_after_days_of_crash_loop():
    assert hook.backoff_delay(1100) == 300


# --- pre / post / exited ----------------------------------------------------------------------------


@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    path = tmp_path / "run" / "pods"
    monkeypatch.setattr(hook, "RUN_DIR", str(path))
    return path


@pytest.fixture
def sleeps(monkeypatch):
    calls = []
    monkeypatch.setattr(hook.time, "sleep", calls.append)
    return calls


def status(run_dir, pod="web", container="main"):
    return json.loads((run_dir / pod / container / "status.json").read_text())


def exited(monkeypatch, code, value, result):
    monkeypatch.setenv("EXIT_CODE", code)
    monkeypatch.setenv("EXIT_STATUS", value)
    monkeypatch.setenv("SERVICE_RESULT", result)
    hook.cmd_exited("/unused", "web", "main")


def crash(monkeypatch, code="killed", value="KILL", result="signal"):
    hook.cmd_pre("/unused", "web", "main")
    hook.cmd_post("/unused", "web", "main")
    exited(monkeypatch, code, value, result)


def test_start_and_clean_exit(run_dir, sleeps, monkeypatch):
    hook.cmd_pre("/unused", "web", "main")
    assert status(run_dir) == {"starts": 1, "backoff_until": None}
    hook.cmd_post("/unused", "web", "main")
    started = status(run_dir)
    assert started["running"] is True and started["started_at"] <= time.time()
    exited(monkeypatch, "exited", "0", "success")
    st = status(run_dir)
    assert st["running"] is False and st["consecutive_failures"] == 1  # a process that ended by itself feeds the backoff, as with the kubelet
    assert st["last_exit"]["exit_code"] == 0 and st["last_exit"]["reason"] == "Completed" and st["last_exit"]["started_at"] == started["started_at"]
    assert sleeps == []


def test_kill_9_counts_as_a_failure_and_backs_off(run_dir, sleeps, monkeypatch):
    crash(monkeypatch)
    st = status(run_dir)
    assert st["consecutive_failures"] == 1
    assert st["last_exit"] == dict(st["last_exit"], exit_code=128 + 9, code="killed", status="KILL", result="signal", reason="Error")
    crash(monkeypatch)
    assert status(run_dir)["consecutive_failures"] == 2
    assert sleeps == []  # the first restart is immediate
    hook.cmd_pre("/unused", "web", "main")
    assert sleeps == [10.0]
    st = status(run_dir)
    assert st["starts"] == 3 and st["backoff_until"] == pytest.approx(time.time() + 10, abs=5)
    hook.cmd_post("/unused", "web", "main")
    assert status(run_dir)["backoff_until"] is None
    exited(monkeypatch, "dumped", "SEGV", "core-dump")
    assert status(run_dir)["last_exit"]["exit_code"] == 128 + 11
    hook.cmd_pre("/unused", "web", "main")
    assert sleeps == [10.0, 20.0]


def test_exit_code_1_counts_as_a_failure(run_dir, sleeps, monkeypatch):
    crash(monkeypatch, "exited", "1", "exit-code")
    st = status(run_dir)
    assert st["consecutive_failures"] == 1 and st["last_exit"]["exit_code"] == 1 and st["last_exit"]["reason"] == "Error"


def test_systemctl_stop_is_not_a_failure(run_dir, sleeps, monkeypatch):
    crash(monkeypatch)
    crash(monkeypatch, "killed", "TERM", "success")  # what `systemctl stop/restart` looks like
    st = status(run_dir)
    assert st["consecutive_failures"] == 1
    assert st["last_exit"]["exit_code"] == 128 + 15


def test_term_after_a_liveness_kill_is_a_failure(run_dir, sleeps, monkeypatch):
    hook.cmd_pre("/unused", "web", "main")
    hook.cmd_post("/unused", "web", "main")
    (run_dir / "web" / "main" / "kill_reason").write_text("LivenessProbeFailed")
    exited(monkeypatch, "killed", "TERM", "success")
    st = status(run_dir)
    assert st["consecutive_failures"] == 1 and st["last_exit"]["reason"] == "LivenessProbeFailed"


def test_reset_marker_zeroes_the_history(run_dir, sleeps, monkeypatch):
    for _unused in range(4):
        crash(monkeypatch)
    assert status(run_dir)["consecutive_failures"] == 4
    marker = run_dir / "web" / "main" / "reset"
    marker.write_text("")
    hook.cmd_pre("/unused", "web", "main")
    assert status(run_dir) == {"starts": 1, "backoff_until": None}
    assert sleeps == [10.0, 20.0] and not marker.exists()  # no backoff for the start the module asked for


def test_reset_marker_at_exit(run_dir, sleeps, monkeypatch):
    crash(monkeypatch)
    hook.cmd_pre("/unused", "web", "main")
    hook.cmd_post("/unused", "web", "main")
    (run_dir / "web" / "main" / "reset").write_text("")
    exited(monkeypatch, "killed", "KILL", "signal")
    assert status(run_dir)["consecutive_failures"] == 0


def test_a_long_run_starts_the_backoff_over(run_dir, sleeps, monkeypatch):
    for _unused in range(3):
        crash(monkeypatch)
    hook.cmd_pre("/unused", "web", "main")
    hook.cmd_post("/unused", "web", "main")
    path = run_dir / "web" / "main" / "status.json"
    st = json.loads(path.read_text())
    st["started_at"] -= hook.BACKOFF_RESET_AFTER + 1
    path.write_text(json.dumps(st))
    exited(monkeypatch, "exited", "2", "exit-code")
    assert status(run_dir)["consecutive_failures"] == 1


def test_failed_start_before_the_process_ran(run_dir, sleeps, monkeypatch):
    hook.cmd_pre("/unused", "web", "main")
    monkeypatch.delenv("EXIT_CODE", raising=False)
    monkeypatch.delenv("EXIT_STATUS", raising=False)
    monkeypatch.delenv("SERVICE_RESULT", raising=False)
    before = status(run_dir)
    hook.cmd_exited("/unused", "web", "main")
    assert status(run_dir) == before


def test_pre_clears_the_previous_run(run_dir, sleeps):
    rdir = run_dir / "web" / "main"
    rdir.mkdir(parents=True)
    for name in ("ready", "startup_ok", "probe-liveness.json", "kill_reason"):
        (rdir / name).write_text("{}")
    hook.cmd_pre("/unused", "web", "main")
    assert sorted(os.listdir(rdir)) == ["status.json"]


def test_main_dispatch(run_dir, sleeps, capsys):
    assert hook.main(["pre", "/unused", "web", "main"]) == 0
    assert status(run_dir)["starts"] == 1
    assert hook.main(["bogus", "/unused", "web", "main"]) == 2
    assert hook.main(["pre"]) == 2
    assert "usage" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["probe", "liveness", "/unused", "web"], ["handler", "preStop", "/unused", "web"], ["probe", "/unused", "web", "main"]])
def test_main_with_missing_arguments_prints_usage(argv, run_dir, capsys):
    assert hook.main(argv) == 2
    assert "usage" in capsys.readouterr().err


# --- handlers ---------------------------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    seen = []

    def do_GET(self):  # noqa: N802 - http.server's naming
        _Handler.seen.append((self.path, dict(self.headers)))
        code = {"/ok": 200, "/redirect": 302, "/missing": 404, "/boom": 500}.get(self.path, 200)
        self.send_response(code)
        if code == 302:
            self.send_header("Location", "/ok")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def http_port():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def probe(handler_spec, ports=None):
    """A normal-form probe (through podspec, so defaults are the real ones)."""
    return podspec.validate_pod_spec(spec_with(ports=ports or [], livenessProbe=handler_spec))["containers"][0]["livenessProbe"]


def test_tcp_socket_handler(closed_port):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert hook.run_handler(probe({"tcpSocket": {"port": port}}), {}, {}, 1) is True
    assert hook.run_handler(probe({"tcpSocket": {"port": closed_port}}), {}, {}, 1) is False


@pytest.mark.parametrize("path,ok", [("/ok", True), ("/redirect", True), ("/missing", False), ("/boom", False)])
def test_http_get_handler_status_codes(http_port, path, ok):
    assert hook.run_handler(probe({"httpGet": {"port": http_port, "path": path}}), {}, {}, 2) is ok


def test_http_get_handler_sends_headers_and_resolves_named_ports(http_port):
    _Handler.seen.clear()
    get = {"port": "web", "path": "/ok", "httpHeaders": [{"name": "X-Probe", "value": "yes"}]}
    handler = probe({"httpGet": get}, ports=[{"name": "web", "containerPort": http_port}])
    assert hook.run_handler(handler, {}, {}, 2) is True
    (path, headers), = _Handler.seen
    assert path == "/ok" and headers["X-Probe"] == "yes" and headers["User-Agent"] == "hostfleet-probe/1.0"


def test_http_get_handler_failures(http_port, closed_port):
    assert hook.run_handler(probe({"httpGet": {"port": closed_port}}), {}, {}, 1) is False
    assert hook.run_handler(probe({"httpGet": {"port": http_port, "scheme": "HTTPS"}}), {}, {}, 1) is False  # TLS against plain HTTP


def test_exec_handler(tmp_path):
    assert hook.run_handler(probe({"exec": {"command": ["/bin/true"]}}), {}, {}, 5) is True
    assert hook.run_handler(probe({"exec": {"command": ["/bin/false"]}}), {}, {}, 5) is False
    assert hook.run_handler(probe({"exec": {"command": ["/nonexistent/probe"]}}), {}, {}, 5) is False
    check = probe({"exec": {"command": ["/bin/sh", "-c", 'test "$GREETING" = "hi there" && test "$(pwd)" = "$WANT"']}})
    assert hook.run_handler(check, {"GREETING": "hi there", "WANT": str(tmp_path)}, {"workingDir": str(tmp_path)}, 5) is True
    assert hook.run_handler(check, {"GREETING": "nope", "WANT": str(tmp_path)}, {"workingDir": str(tmp_path)}, 5) is False


def test_exec_handler_timeout():
    started = time.monotonic()
    assert hook.run_handler(probe({"exec": {"command": ["/bin/sleep", "5"]}}), {}, {}, 0.3) is False
    assert time.monotonic() - started < 3


def test_sleep_handler(monkeypatch):
    calls = []
    monkeypatch.setattr(hook.time, "sleep", calls.append)
    assert hook.run_handler({"sleep": {"seconds": 7}}, {}, {}, 30) is True
    assert calls == [7]
    assert hook.run_handler({}, {}, {}, 1) is False


# --- probes ------------------------------------------------------------------------------------------


@pytest.fixture
def probe_env(tmp_path, run_dir, monkeypatch):
    """A pod record in a tmp state dir, a running container, a scripted run_handler and a fake systemctl."""
    state = tmp_path / "state"
    outcomes = []
    calls = []
    systemctl_calls = []
    real_run = subprocess.run

    def scripted_handler(handler, env, spec, timeout, exec_prefix=None, target=None, pod_ip=None):
        calls.append(handler)
        return outcomes.pop(0)

    def fake_run(argv, *args, **kwargs):
        # Mocked for the systemctl restart/stop call only: this machine's PID 1 is not systemd.
        if argv and argv[0] == "systemctl":
            systemctl_calls.append(list(argv))
            return subprocess.CompletedProcess(argv, 0)
        return real_run(argv, *args, **kwargs)  # pylint: disable=subprocess-run-check

    monkeypatch.setattr(hook, "run_handler", scripted_handler)
    # A running main process to exec in (test_hook_exec_in_container.py covers finding it).
    monkeypatch.setattr(hook, "container_process", lambda pod, container, spec: {"pid": os.getpid()})
    monkeypatch.setattr(hook.subprocess, "run", fake_run)

    class Env:
        pass

    env = Env()
    env.state, env.outcomes, env.calls, env.systemctl = str(state), outcomes, calls, systemctl_calls
    env.rdir = run_dir / "web" / "main"

    def setup(restart_policy="Always", started_ago=100.0, **container):
        raw = {"containers": [dict({"name": "main", "command": ["/bin/sleep", "inf"]}, **container)], "restartPolicy": restart_policy}
        record = {"name": "web", "spec": podspec.validate_pod_spec(raw)}
        (state / "pods" / "web").mkdir(parents=True, exist_ok=True)
        (state / "pods" / "web" / "pod.json").write_text(json.dumps(record))
        env.rdir.mkdir(parents=True, exist_ok=True)
        (env.rdir / "status.json").write_text(json.dumps({"starts": 1, "running": True, "started_at": time.time() - started_ago}))

    def run(kind, *results):
        outcomes.extend(results)
        for _unused in results:
            hook.cmd_probe(env.state, "web", "main", kind)
        assert not outcomes, "a probe did not run"

    env.setup, env.run = setup, run
    return env


def test_readiness_thresholds(probe_env):
    probe_env.setup(readinessProbe={"exec": {"command": ["/bin/true"]}, "successThreshold": 2, "failureThreshold": 2})
    ready = probe_env.rdir / "ready"
    probe_env.run("readiness", True)
    assert not ready.exists()
    probe_env.run("readiness", True)
    assert ready.exists()
    since = json.loads(ready.read_text())["since"]
    probe_env.run("readiness", True, False)
    assert ready.exists() and json.loads(ready.read_text())["since"] == since
    probe_env.run("readiness", True, False, False)  # a success in between resets the failure count
    assert not ready.exists()
    assert json.loads((probe_env.rdir / "probe-readiness.json").read_text())["failures"] == 2
    probe_env.run("readiness", False, True)
    assert not ready.exists()  # one success is not enough after failures
    assert probe_env.systemctl == []  # readiness never restarts


def test_readiness_defaults_ready_after_one_success(probe_env):
    probe_env.setup(readinessProbe={"tcpSocket": {"port": 1}})
    probe_env.run("readiness", True)
    assert (probe_env.rdir / "ready").exists()
    probe_env.run("readiness", False, False)
    assert (probe_env.rdir / "ready").exists()
    probe_env.run("readiness", False)
    assert not (probe_env.rdir / "ready").exists()


def test_startup_probe_gates_liveness(probe_env):
    probe_env.setup(startupProbe={"tcpSocket": {"port": 1}, "failureThreshold": 5}, livenessProbe={"tcpSocket": {"port": 2}, "failureThreshold": 2})
    hook.cmd_probe(probe_env.state, "web", "main", "liveness")
    assert probe_env.calls == [] and not (probe_env.rdir / "probe-liveness.json").exists()  # held off until startup succeeded
    probe_env.run("startup", False, True)
    assert (probe_env.rdir / "startup_ok").exists()
    hook.cmd_probe(probe_env.state, "web", "main", "startup")  # done: it does not run again
    assert len(probe_env.calls) == 2
    probe_env.run("liveness", False)
    assert probe_env.systemctl == []
    probe_env.run("liveness", False)
    assert probe_env.systemctl == [["systemctl", "--no-block", "restart", "hf-web.main.service"]]
    assert (probe_env.rdir / "kill_reason").read_text() == "LivenessProbeFailed"


def test_startup_probe_failure_kills(probe_env):
    probe_env.setup(startupProbe={"tcpSocket": {"port": 1}, "failureThreshold": 3})
    probe_env.run("startup", False, False)
    assert probe_env.systemctl == []
    probe_env.run("startup", False)
    assert probe_env.systemctl == [["systemctl", "--no-block", "restart", "hf-web.main.service"]]
    assert (probe_env.rdir / "kill_reason").read_text() == "StartupProbeFailed"


def test_liveness_with_restart_policy_never_stops(probe_env):
    probe_env.setup(restart_policy="Never", livenessProbe={"tcpSocket": {"port": 1}, "failureThreshold": 1})
    probe_env.run("liveness", False)
    assert probe_env.systemctl == [["systemctl", "--no-block", "stop", "hf-web.main.service"]]


def test_liveness_success_resets_failures(probe_env):
    probe_env.setup(livenessProbe={"tcpSocket": {"port": 1}})
    probe_env.run("liveness", False, False, True, False, False)
    assert probe_env.systemctl == []
    assert json.loads((probe_env.rdir / "probe-liveness.json").read_text())["failures"] == 2


def test_probes_wait_for_initial_delay_and_a_running_container(probe_env):
    probe_env.setup(started_ago=1, livenessProbe={"tcpSocket": {"port": 1}, "initialDelaySeconds": 60})
    hook.cmd_probe(probe_env.state, "web", "main", "liveness")
    assert probe_env.calls == []
    probe_env.setup(started_ago=100, livenessProbe={"tcpSocket": {"port": 1}})
    (probe_env.rdir / "status.json").write_text(json.dumps({"running": False}))
    hook.cmd_probe(probe_env.state, "web", "main", "liveness")
    hook.cmd_probe(probe_env.state, "web", "main", "readiness")  # no such probe
    hook.cmd_probe(probe_env.state, "other", "main", "liveness")  # no such pod
    assert probe_env.calls == []


def test_real_exec_probe_end_to_end(tmp_path, run_dir, monkeypatch):
    """cmd_probe with the real run_handler: an exec readiness probe that tests for a file."""
    state = tmp_path / "state"
    flag = tmp_path / "flag"
    raw = {"containers": [{"name": "main", "command": ["/bin/sleep", "inf"], "env": [{"name": "FLAG", "value": str(flag)}],
                           "readinessProbe": {"exec": {"command": ["/bin/sh", "-c", 'test -e "$FLAG"']}}}]}
    (state / "pods" / "web" / "env").mkdir(parents=True)
    (state / "pods" / "web" / "pod.json").write_text(json.dumps({"name": "web", "spec": podspec.validate_pod_spec(raw)}))
    (state / "pods" / "web" / "env" / "main.env").write_text(f'FLAG="{flag}"\n')
    rdir = run_dir / "web" / "main"
    rdir.mkdir(parents=True)
    (rdir / "status.json").write_text(json.dumps({"running": True, "started_at": time.time() - 5}))
    # The container's main process: this one (no systemd here; test_hook_exec_in_container.py covers the rest).
    own = {"pid": os.getpid(), "namespaces": [], "uid": os.geteuid(), "gid": os.getegid(), "groups": os.getgroups(), "cwd": "/"}
    monkeypatch.setattr(hook, "container_process", lambda pod, container, spec: own)
    hook.cmd_probe(str(state), "web", "main", "readiness")
    assert not (rdir / "ready").exists()
    flag.write_text("")
    hook.cmd_probe(str(state), "web", "main", "readiness")
    assert (rdir / "ready").exists()


def test_handler_command(tmp_path, monkeypatch, closed_port):
    state = tmp_path / "state"
    lifecycle = {"preStop": {"exec": {"command": ["/bin/false"]}}, "postStart": {"tcpSocket": {"port": closed_port}}}
    raw = {"containers": [{"name": "main", "command": ["/bin/sleep", "inf"], "lifecycle": lifecycle},
                          {"name": "side", "command": ["/bin/sleep", "inf"], "lifecycle": {"preStop": {"sleep": {"seconds": 0}}}}]}
    (state / "pods" / "web").mkdir(parents=True)
    (state / "pods" / "web" / "pod.json").write_text(json.dumps({"name": "web", "spec": podspec.validate_pod_spec(raw)}))
    assert hook.cmd_handler(str(state), "web", "main", "postStart") == 1
    monkeypatch.delenv("MAINPID", raising=False)
    assert hook.cmd_handler(str(state), "web", "main", "preStop") == 0  # the process already ended: nothing to stop
    monkeypatch.setenv("MAINPID", "1234")
    assert hook.cmd_handler(str(state), "web", "main", "preStop") == 1
    assert hook.cmd_handler(str(state), "web", "side", "preStop") == 0
    assert hook.cmd_handler(str(state), "web", "side", "postStart") == 0  # none defined
    assert hook.cmd_handler(str(state), "nope", "main", "preStop") == 0


# --- image problems of podman containers ---------------------------------------------------------------
# podman is not on this machine: image_exists and the journal's last error line are passed in.


@pytest.mark.parametrize("policy,present,line,reason", [
    ("Never", False, "Error: localhost/web:v1: image not known", "ErrImageNeverPull"),
    ("Never", True, "Error: runc: exec failed", None),
    ("IfNotPresent", False, "Error: initializing source docker://reg/web:v1: pinging container registry reg: no route", "ErrImagePull"),
    ("Always", True, "Error: initializing source docker://reg/web:v1: pinging container registry reg: no route", "ErrImagePull"),
    ("Always", True, "Error: crun: executable file `/nope` not found", None),
    ("IfNotPresent", True, "", None),
])
def test_image_error_says_what_kubernetes_says(policy, present, line, reason):
    error = hook.image_error({"image": "reg/web:v1", "imagePullPolicy": policy}, line, exists=lambda image: present)
    assert (error or {}).get("reason") == reason
    if reason == "ErrImageNeverPull":
        assert error["message"] == 'Container image "reg/web:v1" is not present with pull policy of Never'
    if reason == "ErrImagePull":
        assert error["message"].startswith('failed to pull image "reg/web:v1"') and line[len("Error: "):] in error["message"]
    assert hook.image_error({"command": ["/bin/true"]}, line, exists=lambda image: present) is None


def test_a_missing_image_is_no_restart_and_no_exit_and_clears_when_the_container_runs(run_dir, sleeps, monkeypatch, tmp_path):
    state = tmp_path / "state"
    (state / "pods" / "web").mkdir(parents=True)
    spec = {"name": "main", "image": "localhost/web:v1", "imagePullPolicy": "Never"}
    (state / "pods" / "web" / "pod.json").write_text(json.dumps({"spec": {"runtimeClassName": "podman", "containers": [spec]}}))
    monkeypatch.setattr(hook, "unit_error_line", lambda unit: "Error: localhost/web:v1: image not known")
    monkeypatch.setattr(hook, "image_exists", lambda image: False)
    for attempt in (1, 2):
        hook.cmd_pre(str(state), "web", "main")
        monkeypatch.setenv("EXIT_CODE", "exited")
        monkeypatch.setenv("EXIT_STATUS", "125")
        monkeypatch.setenv("SERVICE_RESULT", "exit-code")
        hook.cmd_exited(str(state), "web", "main")
        got = status(run_dir)
        assert got["starts"] == 0 and "last_exit" not in got and got["consecutive_failures"] == attempt
        assert got["image_error"]["reason"] == "ErrImageNeverPull"
    # The backoff applies from the second failed try on, as for a crash loop.
    hook.cmd_pre(str(state), "web", "main")
    assert sleeps == [10]
    hook.cmd_post(str(state), "web", "main")
    got = status(run_dir)
    assert "image_error" not in got and got["starts"] == 1
