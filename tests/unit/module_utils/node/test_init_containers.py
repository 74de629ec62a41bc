"""init_containers: validation of spec.initContainers (Kubernetes' rules), their units and ordering, the hook's record
of their runs, the pod status kubectl prints (Init:N/M, Init:CrashLoopBackOff, Init:Error, PodInitializing) and the
converge's view of a pod that initializes."""

from __future__ import annotations

import os
import shutil
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from node_helpers import parse_exec_line, unit_values, validated, write_plan
from node_strategies import TEXT_CHARS

from ansible_collections.hostfleet.workloads.plugins.module_utils.node import converge, hook, init_containers, podspec, status, units
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError

STATE = "/var/lib/hostfleet"
RUN = "/run/hostfleet"
PY = "/usr/bin/python3"
HOOK = f"{STATE}/bin/hostfleet-hook"
SLEEP = ["/bin/sleep", "inf"]


def init(name, command=("/bin/true",), **extra):
    return dict({"name": name, "command": list(command)}, **extra)


def sidecar(name, **extra):
    return dict({"name": name, "command": SLEEP, "restartPolicy": "Always"}, **extra)


def pod_spec(inits, restart_policy="Always", **extra):
    return dict({"restartPolicy": restart_policy, "initContainers": inits, "containers": [{"name": "main", "command": SLEEP}]}, **extra)


def render(spec, name="web"):
    normal = podspec.validate_pod({"name": name, "spec": spec}, "pods[0]")
    return units.render_pod(normal, "Pod/web", {}, STATE, PY, RUN)


def refused(spec):
    with pytest.raises(SpecError) as info:
        podspec.validate_pod_spec(spec)
    return info.value.path


# --- validation -------------------------------------------------------------------------------------


def test_absent_or_empty_init_containers_leave_the_normal_form_as_it_was():
    plain = {"containers": [{"name": "main", "command": SLEEP}]}
    assert podspec.validate_pod_spec(dict(plain, initContainers=[])) == podspec.validate_pod_spec(plain)
    assert podspec.validate_pod_spec(dict(plain, initContainers=None)) == podspec.validate_pod_spec(plain)
    assert "initContainers" not in podspec.validate_pod_spec(plain)
    # ... and so do their units (a collection upgrade restarts nothing).
    assert render(dict(plain, initContainers=[])) == render(plain)


def test_init_containers_are_validated_as_containers_and_kept_in_order():
    spec = podspec.validate_pod_spec(pod_spec([init("first", env=[{"name": "A", "value": "1"}]), sidecar("logs"), init("second")]))
    assert [c["name"] for c in spec["initContainers"]] == ["first", "logs", "second"]
    assert spec["initContainers"][0]["env"] == [{"name": "A", "value": "1"}]
    assert "restartPolicy" not in spec["initContainers"][0] and spec["initContainers"][1]["restartPolicy"] == "Always"
    assert [c["name"] for c in init_containers.pod_containers(spec)] == ["first", "logs", "second", "main"]
    assert [init_containers.role(spec, n) for n in ("first", "logs", "main")] == ["init", "sidecar", "app"]


def test_kubernetes_rules_name_the_field():
    assert refused(pod_spec([init("main")])) == "spec.initContainers[0].name"  # unique across init and app containers
    assert refused(pod_spec([init("a"), init("a")])) == "spec.initContainers[1].name"
    assert refused(pod_spec([init("a", restartPolicy="OnFailure")])) == "spec.initContainers[0].restartPolicy"
    assert refused(pod_spec([init("a", restartPolicy="Never")])) == "spec.initContainers[0].restartPolicy"
    probe = {"exec": {"command": ["/bin/true"]}}
    for field in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert refused(pod_spec([init("a", **{field: probe})])) == f"spec.initContainers[0].{field}"
    assert refused(pod_spec([init("a", lifecycle={"preStop": {"sleep": {"seconds": 1}}})])) == "spec.initContainers[0].lifecycle"
    # A sidecar may have them.
    spec = podspec.validate_pod_spec(pod_spec([sidecar("a", readinessProbe=probe, startupProbe=probe, lifecycle={"preStop": {"sleep": {"seconds": 1}}})]))
    assert spec["initContainers"][0]["readinessProbe"]["exec"]["command"] == ["/bin/true"]
    # The container rules are the app containers' (podspec._container), with the init container's path.
    assert refused(pod_spec([init("a", command=["relative"])])) == "spec.initContainers[0].command[0]"
    assert refused(pod_spec([init("a", volumeMounts=[{"name": "nope", "mountPath": "/x"}])])) == "spec.initContainers[0].volumeMounts[0].name"
    assert refused(pod_spec([init("a", bogus=1)])) == "spec.initContainers[0].bogus"
    assert refused(pod_spec([sidecar("a", ports=[{"containerPort": 80}, {"containerPort": 81, "hostPort": 81}])])) == "spec.initContainers[0].ports[1].hostPort"
    assert podspec.validate_pod_spec(pod_spec([sidecar("a", ports=[{"containerPort": 80, "name": "http"}])]))["initContainers"][0]["ports"]
    assert refused(pod_spec("no")) == "spec.initContainers"
    assert refused(pod_spec(["no"])) == "spec.initContainers[0]"


def test_an_image_on_an_init_container_makes_the_pod_a_podman_pod():
    spec = {"initContainers": [{"name": "wait", "image": "busybox:1.28"}], "containers": [{"name": "main", "image": "busybox:1.28"}]}
    assert podspec.validate_pod_spec(spec)["runtimeClassName"] == "podman"
    # All or none: a process app container next to an image init container is refused, naming it.
    image, process = {"image": "busybox:1.28"}, {"command": SLEEP}
    assert refused({"initContainers": [dict(image, name="wait")], "containers": [dict(process, name="main")]}) == "spec.containers[0].image"
    assert refused({"initContainers": [dict(process, name="wait")], "containers": [dict(image, name="main")]}) == "spec.initContainers[0].image"


def test_a_changed_init_container_is_a_new_normal_form():
    before = podspec.validate_pod_spec(pod_spec([init("a", command=["/bin/true"])]))
    after = podspec.validate_pod_spec(pod_spec([init("a", command=["/bin/false"])]))
    assert converge.spec_hash(before) != converge.spec_hash(after)


# --- units ------------------------------------------------------------------------------------------


def test_units_of_init_containers_sidecars_and_app_containers():
    got = render(pod_spec([init("first"), sidecar("logs"), init("second")]))
    first, logs, second, main = (got[f"hf-web.{n}.service"] for n in ("first", "logs", "second", "main"))
    for plain in (first, second):
        assert unit_values(plain, "Type") == ["oneshot"] and unit_values(plain, "RemainAfterExit") == ["yes"]
        assert unit_values(plain, "Restart") == ["on-failure"] and unit_values(plain, "TimeoutStartSec") == ["infinity"]
        pre = [parse_exec_line(v)[1][3] for v in unit_values(plain, "ExecStartPre")]
        assert pre == ["pre", "init-start"]  # the start is recorded after the backoff
        assert [parse_exec_line(v)[1][3] for v in unit_values(plain, "ExecStartPost")] == ["init-done"]
        assert "[Install]" not in plain
    assert unit_values(first, "After") == [] and unit_values(first, "Requires") == []
    assert unit_values(logs, "After") == ["hf-web.first.service"] and unit_values(logs, "Requires") == ["hf-web.first.service"]
    assert unit_values(logs, "Type") == ["exec"] and unit_values(logs, "Restart") == ["always"] and "[Install]" not in logs
    # Stopping the sidecar stops what runs after it first (whatever order one systemctl call enqueues the stops in).
    assert unit_values(logs, "PropagatesStopTo") == ["hf-web.second.service hf-web.main.service"]
    assert [unit_values(u, "PropagatesStopTo") for u in (first, second, main)] == [[], [], []]
    assert unit_values(second, "After") == ["hf-web.first.service hf-web.logs.service"]
    assert unit_values(second, "Requires") == ["hf-web.first.service"] and unit_values(second, "Wants") == ["hf-web.logs.service"]
    assert unit_values(main, "After") == ["hf-web.first.service hf-web.logs.service hf-web.second.service"]
    assert unit_values(main, "Requires") == ["hf-web.first.service hf-web.second.service"]
    assert unit_values(main, "Wants") == ["hf-web.logs.service"]
    assert unit_values(main, "WantedBy") == ["multi-user.target"] and unit_values(main, "Type") == ["exec"]


@pytest.mark.parametrize("policy, plain, side, app", [("Always", "on-failure", "always", "always"), ("OnFailure", "on-failure", "always", "on-failure"),
                                                      ("Never", "no", "always", "no")])
def test_restart_settings_follow_kubernetes(policy, plain, side, app):
    got = render(pod_spec([init("first"), sidecar("logs")], restart_policy=policy))
    assert [unit_values(got[f"hf-web.{n}.service"], "Restart") for n in ("first", "logs", "main")] == [[plain], [side], [app]]


def test_podman_init_containers_run_in_the_foreground():
    spec = {"initContainers": [{"name": "wait", "image": "busybox:1.28", "command": ["sh", "-c", "until nslookup db; do sleep 2; done"]},
                               {"name": "logs", "image": "busybox:1.28", "restartPolicy": "Always"}],
            "containers": [{"name": "main", "image": "busybox:1.28"}]}
    got = render(spec)
    wait, logs, main = got["hf-web.wait.service"], got["hf-web.logs.service"], got["hf-web.main.service"]
    program, argv = parse_exec_line(unit_values(wait, "ExecStart")[0])
    assert (program, argv[0]) == ("/usr/bin/podman", "run") and "-d" not in argv and "--sdnotify=conmon" not in argv
    assert argv[argv.index("--entrypoint=[\"sh\"]") + 1:] == ["busybox:1.28", "-c", "until nslookup db; do sleep 2; done"]
    assert unit_values(wait, "Type") == ["oneshot"] and unit_values(wait, "NotifyAccess") == [] and unit_values(wait, "StandardOutput") == ["null"]
    for unit in (logs, main):
        _program, argv = parse_exec_line(unit_values(unit, "ExecStart")[0])
        assert "-d" in argv and "--sdnotify=conmon" in argv and unit_values(unit, "Type") == ["notify"]
    assert unit_values(main, "After") == ["hf-web.wait.service hf-web.logs.service"]


@settings(max_examples=60, deadline=None)
@given(words=st.lists(st.text(TEXT_CHARS, max_size=20), min_size=1, max_size=4))
def test_init_container_command_lines_read_back_exactly(words):
    """Whatever an init container's arguments say, systemd reads back exactly those words (they go through exec_line)."""
    spec = pod_spec([init("first", command=["/bin/echo"], args=words)], restart_policy="Never")
    try:
        got = render(spec)
    except SpecError as exc:
        assert exc.path.startswith(("spec.initContainers[0]", "containers[first]")), exc.path
        return
    program, argv = parse_exec_line(unit_values(got["hf-web.first.service"], "ExecStart")[0], env={})
    assert (program, argv) == ("/bin/echo", words)


# --- the hook's records and the pod status ------------------------------------------------------------


@pytest.fixture
def host(tmp_path, monkeypatch):
    h = converge.Host(str(tmp_path / "state"), unit_dir=str(tmp_path / "units"), wants_dir=str(tmp_path / "wants"), run_dir=str(tmp_path / "run"))
    monkeypatch.setattr(hook, "RUN_DIR", f"{h.run_dir}/pods")
    monkeypatch.setattr(hook.time, "sleep", lambda seconds: None)
    return h


def record(spec):
    return {"name": "web", "spec": podspec.validate_pod_spec(spec), "owner": {"kind": "Pod", "name": "web"}}


def exited(monkeypatch, container, code, value, result):
    monkeypatch.setenv("EXIT_CODE", code)
    monkeypatch.setenv("EXIT_STATUS", value)
    monkeypatch.setenv("SERVICE_RESULT", result)
    hook.cmd_exited("/unused", "web", container)


def pod_status(host, rec, units_state):
    return status.pod_status(rec, units_state, host, time.time())


def test_status_while_initializing_then_running(host, monkeypatch):
    rec = record(pod_spec([init("init-myservice"), init("init-mydb")]))
    one, two, main = "hf-web.init-myservice.service", "hf-web.init-mydb.service", "hf-web.main.service"
    # Nothing ran yet: the first init container's unit starts.
    got = pod_status(host, rec, {one: ("loaded", "activating", "start-pre"), two: ("loaded", "inactive", "dead"), main: ("loaded", "inactive", "dead")})
    assert (got["phase"], got["init_status"], got["ready"]) == ("Pending", "Init:0/2", False)
    hook.cmd_pre("/unused", "web", "init-myservice")
    hook.cmd_init_start("web", "init-myservice")
    got = pod_status(host, rec, {one: ("loaded", "activating", "start"), two: ("loaded", "inactive", "dead"), main: ("loaded", "inactive", "dead")})
    assert got["init_status"] == "Init:0/2" and list(got["init_containers"][0]["state"]) == ["running"]
    assert got["init_containers"][0]["started"] and not got["init_containers"][0]["ready"]
    hook.cmd_init_done("web", "init-myservice")
    hook.cmd_pre("/unused", "web", "init-mydb")
    hook.cmd_init_start("web", "init-mydb")
    units_state = {one: ("loaded", "active", "exited"), two: ("loaded", "activating", "start"), main: ("loaded", "inactive", "dead")}
    got = pod_status(host, rec, units_state)
    assert (got["phase"], got["init_status"]) == ("Pending", "Init:1/2")
    assert got["init_containers"][0]["state"]["terminated"]["exitCode"] == 0 and got["init_containers"][0]["state"]["terminated"]["reason"] == "Completed"
    hook.cmd_init_done("web", "init-mydb")
    units_state.update({two: ("loaded", "active", "exited"), main: ("loaded", "activating", "start-pre")})
    got = pod_status(host, rec, units_state)
    assert (got["phase"], got["init_status"], got["ready"]) == ("Pending", "PodInitializing", False)
    hook.cmd_pre("/unused", "web", "main")
    hook.cmd_post("/unused", "web", "main")
    units_state[main] = ("loaded", "active", "running")
    got = pod_status(host, rec, units_state)
    assert (got["phase"], got["init_status"], got["ready"]) == ("Running", None, True)
    # kill -9 of the app container: it restarts alone, the init containers stay Completed.
    exited(monkeypatch, "main", "killed", "KILL", "signal")
    hook.cmd_pre("/unused", "web", "main")
    hook.cmd_post("/unused", "web", "main")
    got = pod_status(host, rec, units_state)
    assert got["init_status"] is None and got["restart_count"] == 1
    assert [c["state"]["terminated"]["reason"] for c in got["init_containers"]] == ["Completed", "Completed"]


def test_a_failing_init_container_crash_loops_or_fails_the_pod(host, monkeypatch):
    for policy, unit_state, phase, text in (("Always", ("loaded", "activating", "auto-restart"), "Pending", "Init:CrashLoopBackOff"),
                                            ("Never", ("loaded", "failed", "failed"), "Failed", "Init:Error")):
        rec = record(pod_spec([init("wait", command=["/bin/false"]), init("other")], restart_policy=policy))
        hook.cmd_pre("/unused", "web", "wait")
        hook.cmd_init_start("web", "wait")
        exited(monkeypatch, "wait", "exited", "1", "exit-code")
        units_state = {"hf-web.wait.service": unit_state, "hf-web.other.service": ("loaded", "inactive", "dead"),
                       "hf-web.main.service": ("loaded", "inactive", "dead")}
        got = pod_status(host, rec, units_state)
        assert (got["phase"], got["init_status"], got["reason"]) == (phase, text, text), policy
        assert got["init_containers"][0]["last_exit_code"] == 1


def test_a_plain_init_container_stopped_after_it_completed_stays_completed(host, monkeypatch):
    rec = record(pod_spec([init("first")]))
    hook.cmd_pre("/unused", "web", "first")
    hook.cmd_init_start("web", "first")
    hook.cmd_init_done("web", "first")
    exited(monkeypatch, "first", "exited", "0", "success")  # its ExecStopPost= when the pod stops
    got = status.container_status("web", rec["spec"]["initContainers"][0], {}, host, time.time())
    assert got["restart_count"] == 0
    got = init_containers.init_container_status("web", rec["spec"]["initContainers"][0], {}, host, time.time(), status.container_status)
    assert got["state"]["terminated"]["reason"] == "Completed"


def test_sidecars_count_for_readiness_and_initialization(host, monkeypatch):
    probe = {"exec": {"command": ["/bin/true"]}, "periodSeconds": 1}
    rec = record(pod_spec([sidecar("logs", readinessProbe=probe, startupProbe=probe)]))
    logs, main = "hf-web.logs.service", "hf-web.main.service"
    hook.cmd_pre("/unused", "web", "logs")
    hook.cmd_post("/unused", "web", "logs")
    units_state = {logs: ("loaded", "active", "running"), main: ("loaded", "inactive", "dead")}
    # Running, but its startup probe did not pass yet: not started, the pod still initializes.
    assert pod_status(host, rec, units_state)["init_status"] == "Init:0/1"
    hook.write_json(os.path.join(host.runtime_dir("web", "logs"), "startup_ok"), {"since": time.time()})
    hook.cmd_pre("/unused", "web", "main")
    hook.cmd_post("/unused", "web", "main")
    units_state[main] = ("loaded", "active", "running")
    got = pod_status(host, rec, units_state)
    assert got["init_status"] is None and got["phase"] == "Running" and not got["ready"]  # the sidecar is not ready
    hook.write_json(os.path.join(host.runtime_dir("web", "logs"), "ready"), {"since": time.time()})
    assert pod_status(host, rec, units_state)["ready"]


@pytest.mark.parametrize("policy, code, stops", [("Never", "0", True), ("Never", "1", True), ("OnFailure", "0", True), ("OnFailure", "1", False),
                                                 ("Always", "0", False)])
def test_sidecars_are_stopped_once_the_app_containers_are_done(host, monkeypatch, policy, code, stops):
    calls = []
    monkeypatch.setattr(hook.subprocess, "run", lambda argv, **kwargs: calls.append(argv))
    monkeypatch.setattr(hook, "event", lambda *args, **kwargs: None)
    spec = pod_spec([sidecar("logs"), sidecar("proxy")], restart_policy=policy)
    spec["containers"].append({"name": "other", "command": SLEEP})
    rec = record(spec)
    os.makedirs(os.path.join(host.state_dir, "pods", "web"))
    hook.write_json(os.path.join(host.state_dir, "pods", "web", "pod.json"), rec)
    for name in ("main", "other"):
        hook.cmd_pre(host.state_dir, "web", name)
        hook.cmd_post(host.state_dir, "web", name)
    monkeypatch.setenv("EXIT_CODE", "exited")
    monkeypatch.setenv("EXIT_STATUS", code)
    monkeypatch.setenv("SERVICE_RESULT", "success" if code == "0" else "exit-code")
    hook.cmd_exited(host.state_dir, "web", "main")
    assert calls == []  # "other" still runs
    hook.cmd_exited(host.state_dir, "web", "other")
    assert calls == ([["systemctl", "--no-block", "stop", "hf-web.logs.service", "hf-web.proxy.service"]] if stops else [])
    calls.clear()
    hook.cmd_exited(host.state_dir, "web", "logs")  # a sidecar's own end stops nothing
    assert calls == []


# --- converge -----------------------------------------------------------------------------------------


@pytest.fixture
def node(tmp_path):
    return converge.Host(str(tmp_path / "state"), unit_dir=str(tmp_path / "units"), wants_dir=str(tmp_path / "wants"), run_dir=str(tmp_path / "run"))


def test_converge_writes_init_containers_files_and_waits_for_them(node):
    raw = {"name": "web", "spec": pod_spec([init("first", env=[{"name": "WHO", "value": "init"}]), sidecar("logs")])}
    result = converge.plan(node, "Pod", "web", validated(raw), "present", PY)
    # Environment files for every container; only the app containers are enabled and started (they pull the others in).
    assert {os.path.basename(p) for p in result.writes if "/env/" in p} == {"first.env", "logs.env", "main.env"}
    assert result.start_units == {"hf-web.main.service"}
    assert {os.path.basename(p) for p in result.links} - {converge.HEARTBEAT_TIMER} == {"hf-web.main.service"}
    assert result.reset_runtime == {("web", "first"), ("web", "logs"), ("web", "main")}
    write_plan(node, result)
    # A re-run while the init container still runs: nothing to start (the app's start job waits), nothing changed.
    waiting = {"hf-web.first.service": ("loaded", "activating", "start"), "hf-web.logs.service": ("loaded", "inactive", "dead"),
               "hf-web.main.service": ("loaded", "inactive", "dead")}
    again = converge.plan(node, "Pod", "web", validated(raw), "present", PY, observed_units=waiting)
    assert not again.changed and again.start_units == set() and again.restart_units == set()
    # ... also while a failed try's ExecStopPost= runs, before systemd restarts it (a crash loop; seen on the lab).
    between = dict(waiting, **{"hf-web.first.service": ("loaded", "deactivating", "stop-post")})
    assert not converge.plan(node, "Pod", "web", validated(raw), "present", PY, observed_units=between).changed
    # Once initialized, an app container someone stopped is started again, as before.
    done = dict(waiting, **{"hf-web.first.service": ("loaded", "active", "exited"), "hf-web.logs.service": ("loaded", "active", "running")})
    assert converge.plan(node, "Pod", "web", validated(raw), "present", PY, observed_units=done).start_units == {"hf-web.main.service"}
    # A changed init container restarts it (systemd restarts the units that require it: the pod initializes again).
    raw["spec"]["initContainers"][0]["command"] = ["/bin/echo", "again"]
    changed = converge.plan(node, "Pod", "web", validated(raw), "present", PY)
    assert changed.restart_units == {"hf-web.first.service"} and changed.updated == ["web"]


def test_init_containers_env_sources_name_their_field(node):
    raw = {"name": "web", "spec": pod_spec([init("first", envFrom=[{"configMapRef": {"name": "missing"}}])])}
    with pytest.raises(SpecError) as info:
        converge.plan(node, "Pod", "web", validated(raw), "present", PY)
    assert info.value.path == "pods[0].spec.initContainers[0].envFrom[0].configMapRef"


# --- what workload_info prints ---------------------------------------------------------------------------


def test_workload_info_shows_the_init_status_and_counts_sidecars_as_kubectl(host, monkeypatch):
    from ansible_collections.hostfleet.workloads.plugins.action import workload_info

    rec = dict(record(pod_spec([init("first"), sidecar("logs")])), created=100.0)
    units_state = {"hf-web.first.service": ("loaded", "activating", "start"), "hf-web.logs.service": ("loaded", "inactive", "dead"),
                   "hf-web.main.service": ("loaded", "inactive", "dead")}
    hook.cmd_pre("/unused", "web", "first")
    hook.cmd_init_start("web", "first")
    view = workload_info.pod_view(pod_status(host, rec, units_state), "node1", 0.0, {}, 200.0)
    assert (view["status"], view["ready_containers"], view["phase"]) == ("Init:0/2", "0/2", "Pending")
    assert [c["name"] for c in view["init_containers"]] == ["first", "logs"] and list(view["init_containers"][0]["state"]) == ["running"]
    hook.cmd_init_done("web", "first")
    for name in ("logs", "main"):
        hook.cmd_pre("/unused", "web", name)
        hook.cmd_post("/unused", "web", name)
    units_state.update({"hf-web.first.service": ("loaded", "active", "exited"), "hf-web.logs.service": ("loaded", "active", "running"),
                        "hf-web.main.service": ("loaded", "active", "running")})
    view = workload_info.pod_view(pod_status(host, rec, units_state), "node1", 0.0, {}, 200.0)
    assert (view["status"], view["ready_containers"], view["ready"]) == ("Running", "2/2", True)
    # A pod without init containers shows no init_containers at all.
    plain = dict(record({"containers": [{"name": "main", "command": SLEEP}]}), created=100.0)
    assert "init_containers" not in workload_info.pod_view(pod_status(host, plain, units_state), "node1", 0.0, {}, 200.0)


def test_a_job_pod_whose_sidecar_was_stopped_after_its_containers_completed_succeeded(host, monkeypatch):
    """The sidecar's end (podman's 143 on SIGTERM) after the app containers completed neither fails the pod nor makes
    it initialize again: it was initialized once its containers ran."""
    rec = record(pod_spec([sidecar("logshipper")], restart_policy="Never"))
    for name in ("logshipper", "main"):
        hook.cmd_pre("/unused", "web", name)
        hook.cmd_post("/unused", "web", name)
    exited(monkeypatch, "main", "exited", "0", "success")
    units_state = {"hf-web.logshipper.service": ("loaded", "deactivating", "stop"), "hf-web.main.service": ("loaded", "inactive", "dead")}
    assert (pod_status(host, rec, units_state)["phase"], pod_status(host, rec, units_state)["init_status"]) == ("Succeeded", None)
    exited(monkeypatch, "logshipper", "exited", "143", "success")
    units_state["hf-web.logshipper.service"] = ("loaded", "inactive", "dead")
    got = pod_status(host, rec, units_state)
    assert (got["phase"], got["init_status"], got["initialized"]) == ("Succeeded", None, True), got
    # A plain init container that failed under Never does fail the pod (its app containers never ran).
    shutil.rmtree(host.runtime_dir("web"))
    rec = record(pod_spec([init("first")], restart_policy="Never"))
    hook.cmd_pre("/unused", "web", "first")
    hook.cmd_init_start("web", "first")
    exited(monkeypatch, "first", "exited", "2", "exit-code")
    got = pod_status(host, rec, {"hf-web.first.service": ("loaded", "failed", "failed")})
    assert (got["phase"], got["init_status"]) == ("Failed", "Init:Error")


def test_a_sidecar_with_a_startup_probe_starts_the_next_containers_once_the_probe_passed(host, monkeypatch):
    probe = {"exec": {"command": ["/bin/true"]}, "periodSeconds": 1}
    got = render(pod_spec([sidecar("proxy", startupProbe=probe), sidecar("logs")], containers=[{"name": "main", "command": SLEEP, "startupProbe": probe}]))
    proxy, logs = got["hf-web.proxy.service"], got["hf-web.logs.service"]
    # Its start (which the units after it wait for) ends with the hook's wait for the startup probe ...
    assert [parse_exec_line(v)[1][3] for v in unit_values(proxy, "ExecStartPost")] == ["post", "sidecar-started"]
    assert [parse_exec_line(v)[1][3] for v in unit_values(logs, "ExecStartPost")] == ["post"]
    # ... so its probe timer runs during that start (After= would wait for it: a deadlock); an app container's does not.
    assert unit_values(got["hf-web.proxy.startup.timer"], "After") == []
    assert unit_values(got["hf-web.main.startup.timer"], "After") == ["hf-web.main.service"]
    assert [parse_exec_line(v)[1][3] for v in unit_values(got["hf-web.main.service"], "ExecStartPost")] == ["post"]
    # The hook's wait: done once the probe passed; a failure when the process ended meanwhile.
    rdir = host.runtime_dir("web", "proxy")
    os.makedirs(rdir)
    monkeypatch.setenv("MAINPID", "999999999")
    assert hook.cmd_sidecar_started("web", "proxy") == 1
    hook.write_json(os.path.join(rdir, "startup_ok"), {"since": time.time()})
    assert hook.cmd_sidecar_started("web", "proxy") == 0


def test_a_sidecars_readiness_counts_in_the_service_rules(node):
    """The network sync (Service endpoints, DNS) takes a pod as ready when its app containers and its sidecars are."""
    from ansible_collections.hostfleet.workloads.plugins.module_utils.network import config, sync

    os.makedirs(os.path.join(node.state_dir, "pods", "web"))
    rec = dict(record(pod_spec([init("first"), sidecar("proxy", readinessProbe={"exec": {"command": ["/bin/true"]}})])),
               network={"ip": "10.244.3.2", "prefix": 24, "gateway": "10.244.3.1", "bridge": "hf0"})
    hook.write_json(os.path.join(node.state_dir, "pods", "web", "pod.json"), rec)
    for name in ("proxy", "main"):
        os.makedirs(node.runtime_dir("web", name))
        hook.write_json(os.path.join(node.runtime_dir("web", name), "status.json"), {"running": True})
    node_config = {"schema": config.SCHEMA, "node": "node1", "address": "10.77.3.11"}

    def ready():
        return [p["ready"] for p in sync.local_pods(node.state_dir, node_config, node.run_dir)]

    assert ready() == [False]  # the sidecar's readiness probe has not passed
    hook.write_json(os.path.join(node.runtime_dir("web", "proxy"), "ready"), {"since": time.time()})
    assert ready() == [True]  # (the plain init container is not counted: it completed long ago)


def test_a_pod_held_at_boot_by_its_init_container_starts_again_when_a_run_keeps_it(node, monkeypatch):
    """At the first start after a long absence the hook holds the first container that starts: the init container (the
    app containers' start then fails with it, their hook never ran). The run that keeps the pod starts the app units."""
    import json

    from ansible_collections.hostfleet.workloads.plugins.module_utils.node import fence

    raw = {"name": "a", "labels": {"app": "x"}, "spec": pod_spec([init("first")])}
    write_plan(node, converge.plan(node, "Deployment", "web", validated(raw), "present", PY))
    os.makedirs(node.runtime_dir("a", "first"), exist_ok=True)
    hook.write_json(os.path.join(node.runtime_dir("a", "first"), "status.json"), {"fenced": {"reason": "NodeFenced", "message": "away"}})
    with open(node.record_path("a")) as handle:
        created_at = json.load(handle)["created"]
    monkeypatch.setattr(fence, "boot_time", lambda: created_at + 200)
    os.makedirs(os.path.dirname(fence.heartbeat_path(node.state_dir)), exist_ok=True)
    hook.write_json(fence.heartbeat_path(node.state_dir), {"boot": "old", "at": created_at + 100})
    assert fence.pod_fence(node.state_dir, "a", node.run_dir)
    step = converge.plan(node, "Deployment", "web", validated(raw), "present", PY)
    assert step.unfence == ["a"] and "hf-a.main.service" in step.start_units and ("a", "first") in step.reset_runtime
