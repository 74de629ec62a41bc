"""units: deterministic unit files, resource and volume settings, $(VAR) expansion, ExecStart/env file quoting.

The round-trip tests parse the rendered text back with models of systemd 252's parsers (node_helpers).
"""

from __future__ import annotations

import csv
import json
import os
import random
import re

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from node_helpers import MAIN, parse_bind_paths, parse_env_file, parse_exec_line, pod, rich_pod, shuffled, spec_with, split_exec_words, unit_values
from node_strategies import TEXT_CHARS, env_names, valid_pods

from ansible_collections.hostfleet.workloads.plugins.module_utils.node import hook, podspec, units

STATE = "/var/lib/hostfleet"
RUN = "/run/hostfleet"
PY = "/usr/bin/python3"
HOOK = f"{STATE}/bin/hostfleet-hook"


def render(raw_pod, env_names=None, owner="Pod/web"):
    normal = podspec.validate_pod(raw_pod, "pods[0]")
    return units.render_pod(normal, owner, env_names or {}, STATE, PY, RUN)


def main_unit(raw_pod, **kwargs):
    return render(raw_pod, **kwargs)[units.container_unit(raw_pod["name"], "main")]


def value(content, key):
    values = unit_values(content, key)
    assert len(values) == 1, (key, values)
    return values[0]


def section_of(content, key):
    section = None
    for line in content.splitlines():
        if line.startswith("["):
            section = line
        elif line.startswith(key + "="):
            return section
    return None


# --- names ------------------------------------------------------------------------------------------


def test_unit_names_and_parsing():
    assert units.container_unit("web", "main") == "hf-web.main.service"
    assert units.probe_units("web", "main", "liveness") == ("hf-web.main.liveness.timer", "hf-web.main.liveness.service")
    assert units.parse_unit_name("hf-web.main.service") == ("web", "main", None, "service")
    assert units.parse_unit_name("hf-web.main.readiness.timer") == ("web", "main", "readiness", "timer")
    for other in ("web.main.service", "hf-web.service", "hf-web.main.timer", "hf-web.main.bogus.timer", "hf-web.main.liveness.socket", "hf-a.b.c.d.service"):
        assert units.parse_unit_name(other) is None


def test_every_rendered_unit_name_parses_back():
    for name in render(rich_pod()):
        pod_name, container, kind, suffix = units.parse_unit_name(name)
        assert pod_name == "web-1" and container in ("main", "side")


# --- determinism ------------------------------------------------------------------------------------


def test_rendering_is_deterministic_and_ignores_dict_order():
    raw = rich_pod()
    first = render(raw, {"main": ["FOO"]})
    assert first == render(raw, {"main": ["FOO"]})
    assert list(first) == sorted(first)
    for seed in range(5):
        assert render(shuffled(raw, random.Random(seed)), {"main": ["FOO"]}) == first
        normal = podspec.validate_pod(raw, "pods[0]")
        assert units.render_pod(shuffled(normal, random.Random(seed)), "Pod/web", {"main": ["FOO"]}, STATE, PY, RUN) == first


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_pods(), st.integers(0, 2**32))
def test_rendering_of_random_pods_is_deterministic(raw, seed):
    normal = podspec.validate_pod(raw, "pods[0]")
    env = {c["name"]: [e["name"] for e in c["env"]] for c in normal["spec"]["containers"]}
    first = units.render_pod(normal, "Pod/x", env, STATE, PY, RUN)
    again = units.render_pod(podspec.validate_pod(shuffled(raw, random.Random(seed)), "pods[0]"), "Pod/x", env, STATE, PY, RUN)
    assert first == again
    for content in first.values():
        assert content.startswith(units.HEADER) and content.endswith("\n")
        if "\r" in content:
            continue  # known bug: test_carriage_return_in_an_argument
        for line in content.split("\n"):
            assert line == "" or line.startswith("#") or re.fullmatch(r"\[(Unit|Service|Timer|Install)\]", line) or re.match(r"[A-Za-z-]+=", line), line


# --- [Unit]/[Service] settings -------------------------------------------------------------------


@pytest.mark.parametrize("policy,restart", [("Always", "always"), ("OnFailure", "on-failure"), ("Never", "no")])
def test_restart_policy_mapping(policy, restart):
    content = main_unit(pod(spec={"containers": [MAIN], "restartPolicy": policy}))
    assert value(content, "Restart") == restart
    assert value(content, "RestartSec") == "0"


def test_default_restart_is_always_and_start_limit_is_off():
    content = main_unit(pod())
    assert value(content, "Restart") == "always"
    assert value(content, "StartLimitIntervalSec") == "0"
    assert section_of(content, "StartLimitIntervalSec") == "[Unit]"  # systemd ignores it under [Service]
    assert value(content, "X-HostfleetOwner") == "Pod/web"
    assert value(content, "Type") == "exec"
    assert value(content, "KillMode") == "mixed"
    assert value(content, "TimeoutStopSec") == "30s"
    assert value(content, "EnvironmentFile") == f"{STATE}/pods/web/env/main.env"
    assert value(content, "WorkingDirectory") == "/"
    assert value(content, "SyslogIdentifier") == "web/main"
    assert value(content, "WantedBy") == "multi-user.target"
    for absent in ("MemoryMax", "CPUQuota", "TasksMax", "User", "Group", "RuntimeMaxSec", "Wants", "BindPaths", "BindReadOnlyPaths", "ExecStop"):
        assert not unit_values(content, absent), absent


def test_grace_period_security_and_deadline():
    raw = pod(spec={"containers": [dict(MAIN, workingDir="/srv/app", securityContext={"runAsUser": 1000, "runAsGroup": 0})],
                    "terminationGracePeriodSeconds": 0, "activeDeadlineSeconds": 60})
    content = main_unit(raw)
    assert value(content, "TimeoutStopSec") == "1ms"
    assert value(content, "User") == "1000"
    assert value(content, "Group") == "0"
    assert value(content, "RuntimeMaxSec") == "60s"
    assert value(content, "WorkingDirectory") == "/srv/app"


@pytest.mark.parametrize("cpu,quota", [("10m", "1%"), ("15m", "2%"), ("11m", "2%"), ("20m", "2%"), ("999m", "100%"), ("1", "100%"), ("1001m", "101%"),
                                       ("1.5", "150%"), (4, "400%")])
def test_cpu_quota_rounds_up(cpu, quota):
    assert value(main_unit(pod(resources={"limits": {"cpu": cpu}})), "CPUQuota") == quota


def test_memory_and_tasks_limits():
    content = main_unit(pod(resources={"limits": {"memory": "128Mi", "pids": 64}, "requests": {"cpu": "2"}}))
    assert value(content, "MemoryMax") == str(128 * 2**20)
    assert value(content, "TasksMax") == "64"
    assert not unit_values(content, "CPUQuota")  # a request alone sets no quota


# --- volumes ---------------------------------------------------------------------------------------


def binds(content):
    return [("rw", *parse_bind_paths(v)) for v in unit_values(content, "BindPaths")] + \
           [("ro", *parse_bind_paths(v)) for v in unit_values(content, "BindReadOnlyPaths")]


def test_bind_paths_for_each_volume_kind():
    raw = pod(spec={
        "volumes": [
            {"name": "host", "hostPath": {"path": "/srv/data"}},
            {"name": "scratch", "emptyDir": {}},
            {"name": "mem", "emptyDir": {"medium": "Memory"}},
            {"name": "claim", "persistentVolumeClaim": {"claimName": "db"}},
            {"name": "roclaim", "persistentVolumeClaim": {"claimName": "ref", "readOnly": True}},
        ],
        "containers": [dict(MAIN, volumeMounts=[
            {"name": "host", "mountPath": "/data"},
            {"name": "host", "mountPath": "/data-ro", "readOnly": True},
            {"name": "scratch", "mountPath": "/scratch"},
            {"name": "mem", "mountPath": "/dev/shm/x", "subPath": "a/b"},
            {"name": "claim", "mountPath": "/var/lib/db", "subPath": "pg"},
            {"name": "roclaim", "mountPath": "/ref"},
        ])]})
    assert sorted(binds(main_unit(raw))) == sorted([
        ("rw", "/srv/data", "/data"),
        ("ro", "/srv/data", "/data-ro"),
        ("rw", f"{STATE}/pods/web/volumes/scratch", "/scratch"),
        ("rw", f"{RUN}/volumes/web/mem/a/b", "/dev/shm/x"),
        ("rw", f"{STATE}/volumes/db/pg", "/var/lib/db"),
        ("ro", f"{STATE}/volumes/ref", "/ref"),  # a readOnly claim binds read-only whatever the mount says
    ])


def test_volume_source():
    assert units.volume_source({"kind": "hostPath", "path": "/x", "name": "v"}, STATE, "p") == "/x"
    assert units.volume_source({"kind": "emptyDir", "medium": "", "name": "v"}, STATE, "p") == f"{STATE}/pods/p/volumes/v"
    assert units.volume_source({"kind": "emptyDir", "medium": "Memory", "name": "v"}, STATE, "p", "/r") == "/r/volumes/p/v"
    assert units.volume_source({"kind": "persistentVolumeClaim", "claimName": "c", "name": "v"}, STATE, "p") == f"{STATE}/volumes/c"


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(st.sampled_from("abz09_-.@+,=:%"), min_size=1, max_size=6).filter(lambda s: s not in (".", "..")), min_size=1, max_size=3),
       st.text(st.sampled_from("abz09_-.:%"), min_size=1, max_size=6).filter(lambda s: s not in (".", "..")))
def test_bind_paths_round_trip_colons_and_percent(parts, mount_part):
    host_path, mount_path = "/" + "/".join(parts), "/mnt/" + mount_part
    raw = pod(spec={"volumes": [{"name": "v", "hostPath": {"path": host_path}}],
                    "containers": [dict(MAIN, volumeMounts=[{"name": "v", "mountPath": mount_path}])]})
    assert binds(main_unit(raw)) == [("rw", host_path, mount_path)]


@pytest.mark.parametrize("host_path", ["/srv/my data", "/srv/a\\b", "/srv/a\tb"])
def test_bind_paths_with_spaces_backslashes_tabs(host_path):
    raw = pod(spec={"volumes": [{"name": "v", "hostPath": {"path": host_path}}], "containers": [dict(MAIN, volumeMounts=[{"name": "v", "mountPath": "/v"}])]})
    assert binds(main_unit(raw)) == [("rw", host_path, "/v")]


def test_working_directory_with_percent():
    content = main_unit(pod(workingDir="/srv/100%n"))
    assert split_exec_words(value(content, "WorkingDirectory")) == ["/srv/100%n"]


# --- probes and hooks ------------------------------------------------------------------------------


def test_probe_timers_and_services():
    raw = pod(ports=[{"name": "http", "containerPort": 8080}],
              livenessProbe={"httpGet": {"port": "http"}, "initialDelaySeconds": 15, "periodSeconds": 20, "timeoutSeconds": 3},
              readinessProbe={"tcpSocket": {"port": 8080}},
              startupProbe={"exec": {"command": ["/bin/true"]}, "periodSeconds": 2})
    rendered = render(raw)
    probe_units = [f"hf-web.main.{k}.{s}" for k in ("liveness", "readiness", "startup") for s in ("timer", "service")]
    assert sorted(rendered) == sorted(["hf-web.main.service"] + probe_units)
    main = rendered["hf-web.main.service"]
    assert value(main, "Wants").split() == ["hf-web.main.startup.timer", "hf-web.main.liveness.timer", "hf-web.main.readiness.timer"]
    liveness = rendered["hf-web.main.liveness.timer"]
    assert value(liveness, "OnActiveSec") == "15s"
    assert value(liveness, "OnUnitActiveSec") == "20s"
    assert value(liveness, "AccuracySec") == "50ms"
    assert value(liveness, "PartOf") == value(liveness, "After") == "hf-web.main.service"
    assert value(rendered["hf-web.main.readiness.timer"], "OnActiveSec") == "300ms"
    assert value(rendered["hf-web.main.readiness.timer"], "OnUnitActiveSec") == "10s"
    assert value(rendered["hf-web.main.startup.timer"], "OnUnitActiveSec") == "2s"
    service = rendered["hf-web.main.liveness.service"]
    assert value(service, "Type") == "oneshot"
    assert value(service, "TimeoutStartSec") == "8s"
    assert split_exec_words(value(service, "ExecStart")) == [PY, "-I", "-S", HOOK, "probe", "liveness", STATE, "web", "main"]


def exec_words(content, key):
    """Words of every ``key=`` line, with the leading '+' (full privileges) kept apart."""
    return [(v.startswith("+"), split_exec_words(v[1:] if v.startswith("+") else v)) for v in unit_values(content, key)]


def test_hook_and_lifecycle_command_lines():
    raw = pod(args=["a b"], lifecycle={"postStart": {"exec": {"command": ["/bin/touch", "/tmp/x y"]}},
                                       "preStop": {"exec": {"command": ["/bin/kill", "-HUP", "1"]}}})
    content = main_unit(raw)
    hook_args = [STATE, "web", "main"]
    assert exec_words(content, "ExecStartPre") == [(True, [PY, "-I", "-S", HOOK, "pre"] + hook_args)]
    assert exec_words(content, "ExecStart") == [(False, ["/bin/sleep", "inf", "a b"])]
    assert exec_words(content, "ExecStartPost") == [(True, [PY, "-I", "-S", HOOK, "post"] + hook_args), (False, ["/bin/touch", "/tmp/x y"])]
    (privileged, stop), = exec_words(content, "ExecStop")
    assert not privileged and stop[:2] == ["/bin/sh", "-c"] and stop[3:] == ["prestop", "/bin/kill", "-HUP", "1"]
    # The guard survives systemd's $-handling: the shell sees $MAINPID and "$@", not systemd's substitution of them.
    assert parse_exec_line(value(content, "ExecStop"))[1][1] == '[ -n "$MAINPID" ] || exit 0; exec "$@"'
    assert exec_words(content, "ExecStopPost") == [(True, [PY, "-I", "-S", HOOK, "exited"] + hook_args)]


def test_non_exec_lifecycle_handlers_go_through_the_hook():
    raw = pod(lifecycle={"postStart": {"httpGet": {"port": 80}}, "preStop": {"sleep": {"seconds": 3}}})
    content = main_unit(raw)
    assert exec_words(content, "ExecStartPost")[1] == (True, [PY, "-I", "-S", HOOK, "handler", "postStart", STATE, "web", "main"])
    assert exec_words(content, "ExecStop") == [(True, [PY, "-I", "-S", HOOK, "handler", "preStop", STATE, "web", "main"])]


# --- $(VAR) expansion ------------------------------------------------------------------------------


@pytest.mark.parametrize("text,expected", [
    ("$(A)", "alpha"),
    ("x$(A)y$(B)z", "xalphaybetaz"),
    ("$(NOPE)", "$(NOPE)"),
    ("$$(A)", "$(A)"),
    ("$$", "$"),
    ("$$$", "$$"),
    ("$$$(A)", "$alpha"),
    ("$", "$"),
    ("a$", "a$"),
    ("$x", "$x"),
    ("$(", "$("),
    ("$(A", "$(A"),
    ("$()", "$()"),
    ("$(A)$(A)", "alphaalpha"),
    ("$(EMPTY)!", "!"),
    ("$(A$(B))", "$(A$(B))"),
    ("${A}", "${A}"),
    ("100%", "100%"),
])
def test_expand_follows_kubernetes(text, expected):
    assert units.expand(text, {"A": "alpha", "B": "beta", "EMPTY": ""}) == expected


def k8s_expand(text, mapping):
    """A transliteration of Kubernetes' third_party/forked/golang/expansion.Expand (ASCII input)."""
    buf, checkpoint, cursor = [], 0, 0
    while cursor < len(text):
        if text[cursor] == "$" and cursor + 1 < len(text):
            buf.append(text[checkpoint:cursor])
            rest = text[cursor + 1:]
            if rest[0] == "$":
                read, is_var, advance = "$", False, 1
            elif rest[0] == "(":
                end = rest.find(")", 1)
                read, is_var, advance = (rest[1:end], True, end + 1) if end >= 0 else ("$(", False, 1)
            else:
                read, is_var, advance = "$" + rest[0], False, 1
            buf.append((mapping[read] if read in mapping else f"$({read})") if is_var else read)
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    return "".join(buf) + text[checkpoint:]


NAMES = ["A", "B", "LONG_NAME", "_x"]
ascii_pieces = st.one_of(st.sampled_from(["$", "$$", "$(", ")", "(", "$(A)", "$(B)", "$(NOPE)", "$(LONG_NAME)", "$()", "A", " ", "%", "\\", '"', "\n", ";",
                                         "{", "}"]),
                         st.text(st.characters(min_codepoint=1, max_codepoint=127), max_size=3))
words_with_refs = st.lists(ascii_pieces, max_size=8).map("".join)
variables = st.dictionaries(st.sampled_from(NAMES), st.text(st.characters(min_codepoint=1, max_codepoint=127, blacklist_characters="\r"), max_size=5))


@settings(max_examples=300, deadline=None)
@given(words_with_refs, variables)
def test_expand_matches_the_kubernetes_algorithm(text, mapping):
    assert units.expand(text, mapping) == k8s_expand(text, mapping)


# --- ExecStart quoting -----------------------------------------------------------------------------


@pytest.mark.parametrize("argv,line", [
    (["/bin/echo", "a b"], '"/bin/echo" "a b"'),
    (["/bin/echo", ";"], '"/bin/echo" \\;'),
    (["/bin/echo", "a;b", ";;"], '"/bin/echo" "a;b" ";;"'),
    (["/bin/echo", "100%"], '"/bin/echo" "100%%"'),
    (["/bin/echo", "$HOME"], '"/bin/echo" "$$HOME"'),
    (["/bin/echo", "${HOME}"], '"/bin/echo" "$${HOME}"'),
    (["/bin/echo", 'say "hi"'], '"/bin/echo" "say \\"hi\\""'),
    (["/bin/echo", "C:\\dir"], '"/bin/echo" "C:\\\\dir"'),
    (["/bin/echo", "a\nb\tc"], '"/bin/echo" "a\\nb\\tc"'),
    (["/bin/echo", ""], '"/bin/echo" ""'),
    (["/bin/echo", "it's", "`x`"], '"/bin/echo" "it\'s" "`x`"'),
])
def test_exec_line_quoting(argv, line):
    assert units.exec_line(argv) == line
    assert parse_exec_line(line) == (argv[0], argv[1:])


@pytest.mark.parametrize("word,quoted,result", [
    ("$(FOO)", '"${FOO}"', "foo value"),
    ("x$(FOO)y", '"x${FOO}y"', "xfoo valuey"),
    ("$(BAR)", '"$$(BAR)"', "$(BAR)"),
    ("$$(FOO)", '"$$(FOO)"', "$(FOO)"),
    ("$$", '"$$"', "$"),
    ("$", '"$$"', "$"),
    ("$(FOO", '"$$(FOO"', "$(FOO"),
    ("%$(FOO)%", '"%%${FOO}%%"', "%foo value%"),
])
def test_exec_line_with_kubernetes_references(word, quoted, result):
    line = units.exec_line(["/bin/echo", word], {"FOO": "", "POD_NAME": ""})
    assert line == f'"/bin/echo" {quoted}'
    env = {"FOO": "foo value", "POD_NAME": "web"}
    assert parse_exec_line(line, env)[1] == [result] == [units.expand(word, env)]


def test_container_exec_start_uses_the_environment_file_names():
    raw = pod(command=["/bin/echo"], args=["$(POD_NAME)", "$(GREETING) world", "$(NOPE)", "$$(POD_NAME)"], env=[{"name": "GREETING", "value": "hi"}])
    content = main_unit(raw, env_names={"main": ["HOSTNAME", "POD_NAME", "GREETING"]})
    assert value(content, "ExecStart") == '"/bin/echo" "${POD_NAME}" "${GREETING} world" "$$(NOPE)" "$$(POD_NAME)"'
    assert parse_exec_line(value(content, "ExecStart"), {"POD_NAME": "web", "GREETING": "hi"})[1] == ["web", "hi world", "$(NOPE)", "$(POD_NAME)"]


def test_executable_path_with_variables_keeps_references_and_unescapes_dollars():
    # systemd does not substitute in the path, so a reference cannot be honoured there; '$$' is still one '$'.
    line = units.exec_line(["/opt/a$$b$(FOO)/run", "x"], {"FOO": ""})
    assert split_exec_words(line) == ["/opt/a$b$(FOO)/run", "x"]


def test_control_characters_in_arguments_are_escaped():
    argv = ["/bin/echo", "a\x01b\x7fc\x1b", "\r\n\t"]
    line = units.exec_line(argv)
    assert not re.search(r"[\x00-\x1f\x7f]", line)
    assert parse_exec_line(line) == ("/bin/echo", argv[1:])


NO_CR = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r")
argv_texts = st.lists(st.one_of(NO_CR, st.sampled_from(list("$%\\\";' \t\n{}()") + ["$(", "$$", "${", "%%", "\\;", ";"])), max_size=10).map("".join)


@settings(max_examples=400, deadline=None)
@given(st.lists(argv_texts, max_size=6))
def test_exec_line_round_trips_through_systemd_unquoting(args):
    # '\r' is left out here: see test_carriage_return_in_an_argument.
    argv = ["/bin/echo"] + args
    assert parse_exec_line(units.exec_line(argv)) == ("/bin/echo", args)


def unknown_reference_with_dollar(word, mapping):
    """Whether ``word`` has an unknown $(...) reference with a '$' inside (test_dollars_inside_an_unknown_reference)."""
    i = 0
    while i < len(word):
        if word.startswith("$$", i):
            i += 2
        elif word.startswith("$(", i) and word.find(")", i + 2) >= 0:
            end = word.find(")", i + 2)
            if word[i + 2:end] not in mapping and "$" in word[i + 2:end]:
                return True
            i = end + 1
        else:
            i += 1
    return False


@settings(max_examples=300, deadline=None)
@given(st.lists(words_with_refs.filter(lambda w: "\r" not in w), max_size=5), variables)
def test_exec_line_with_references_behaves_like_kubernetes(args, mapping):
    assume(not any(unknown_reference_with_dollar(word, mapping) for word in args))
    line = units.exec_line(["/bin/echo"] + args, mapping)
    assert parse_exec_line(line, mapping)[1] == [units.expand(word, mapping) for word in args]


def test_dollars_inside_an_unknown_reference():
    script = "echo $(ps -o ppid= -p $$)"
    line = units.exec_line(["/bin/sh", "-c", script], {"POD_NAME": ""})
    assert units.expand(script, {"POD_NAME": "web"}) == script
    assert parse_exec_line(line, {"POD_NAME": "web"})[1] == ["-c", script]


def test_carriage_return_in_an_argument():
    assert parse_exec_line(units.exec_line(["/bin/echo", "a\rb"])) == ("/bin/echo", ["a\rb"])


def test_dollar_in_the_executable_path():
    assert split_exec_words(units.exec_line(["/opt/app$1/run"]))[0] == "/opt/app$1/run"


# --- environment files -----------------------------------------------------------------------------


def test_render_env_file_format():
    text = units.render_env_file({"A": 'say "hi" $HOME `id` \\n', "B": "line1\nline2", "C": ""})
    assert text == 'A="say \\"hi\\" \\$HOME \\`id\\` \\\\n"\nB="line1\nline2"\nC=""\n'


def write_env(state_dir, pod_name, container, variables):
    path = os.path.join(state_dir, "pods", pod_name, "env", f"{container}.env")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(units.render_env_file(variables))
    return path


env_values = st.lists(st.one_of(NO_CR, st.sampled_from(list("\"'$`\\\n=#; ") + ["\\\n", '\\"', "$(A)", "${A}"])), max_size=12).map("".join)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(env_names, env_values, max_size=6))
def test_env_file_round_trips_through_the_hook_and_systemd(tmp_path_factory, variables):
    state = str(tmp_path_factory.mktemp("state"))
    path = write_env(state, "web", "main", variables)
    assert hook.load_env(state, "web", "main") == {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", **variables}
    with open(path, newline="") as handle:
        assert parse_env_file(handle.read()) == variables


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(env_names, st.text(TEXT_CHARS, max_size=8), max_size=4))
def test_env_file_with_carriage_returns_is_fine_for_systemd(variables):
    assert parse_env_file(units.render_env_file(variables)) == variables


def test_hook_load_env_keeps_carriage_returns(tmp_path):
    write_env(str(tmp_path), "web", "main", {"A": "a\rb", "B": "c\r\nd"})
    env = hook.load_env(str(tmp_path), "web", "main")
    assert (env["A"], env["B"]) == ("a\rb", "c\r\nd")


def test_load_env_without_a_file(tmp_path):
    assert hook.load_env(str(tmp_path), "web", "main") == {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}


# --- resolve_env ------------------------------------------------------------------------------------


def test_resolve_env_order_prefixes_and_expansion():
    raw = spec_with(envFrom=[{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}, {"fileRef": {"path": "/etc/x.env"}},
                             {"secretRef": {"name": "gone", "optional": True}}],
                    env=[{"name": "URL", "value": "http://$(CFG_HOST):$(PORT)/$(LATER)"}, {"name": "LATER", "value": "x"},
                         {"name": "HOSTNAME", "value": "$(HOSTNAME)-1"}])
    container = podspec.validate_pod_spec(raw)["containers"][0]
    sources = {("configMap", "cfg"): {"HOST": "db", "bad-key": "1", "A": "a"}, ("file", "/etc/x.env"): {"PORT": "5432", "9LIVES": "x"},
               ("secret", "gone"): None}
    variables, skipped = units.resolve_env(container, sources, "web", "host1")
    assert list(variables) == ["HOSTNAME", "POD_NAME", "CFG_A", "CFG_HOST", "PORT", "URL", "LATER"]
    assert variables["URL"] == "http://db:5432/$(LATER)"  # a variable defined later is not expanded, as in Kubernetes
    # HOSTNAME and POD_NAME are exported, but Kubernetes does not define them for $(VAR): the reference stays.
    assert variables["HOSTNAME"] == "$(HOSTNAME)-1" and variables["POD_NAME"] == "web"
    assert sorted(skipped) == ["9LIVES", "CFG_bad-key"]
    assert all(units.valid_env_name(name) for name in variables)


def test_hostname_and_pod_name_are_exported_but_unknown_to_references():
    raw = spec_with(envFrom=[{"configMapRef": {"name": "cfg"}}],
                    env=[{"name": "A", "value": "$(POD_NAME)/$(HOSTNAME)"}, {"name": "POD_NAME", "value": "mine"}, {"name": "B", "value": "$(POD_NAME)"}])
    container = podspec.validate_pod_spec(raw)["containers"][0]
    variables, skipped, defined = units.container_env(container, {("configMap", "cfg"): {"HOSTNAME": "cfg-host"}}, "web", "host1")
    assert variables == {"HOSTNAME": "cfg-host", "POD_NAME": "mine", "A": "$(POD_NAME)/cfg-host", "B": "mine"} and skipped == []
    assert defined == ["HOSTNAME", "A", "POD_NAME", "B"]  # what command/args may reference
    variables, _skipped, defined = units.container_env(podspec.validate_pod_spec(spec_with())["containers"][0], {}, "web", "host1")
    assert variables == {"HOSTNAME": "host1", "POD_NAME": "web"} and defined == []


def test_valid_env_name():
    assert units.valid_env_name("_A1") and not units.valid_env_name("1A") and not units.valid_env_name("A-B") and not units.valid_env_name("")


def test_environment_never_goes_into_the_unit():
    content = main_unit(pod(env=[{"name": "SECRET", "value": "hunter2"}]), env_names={"main": ["SECRET"]})
    assert "hunter2" not in content and not unit_values(content, "Environment")


@pytest.mark.parametrize("bad", ["%", "%n"])
def test_percent_in_arguments_is_never_a_specifier(bad):
    line = units.exec_line(["/bin/echo", bad])
    assert re.search(r"(?<!%)%(?!%)", line.replace("%%", "")) is None
    assert parse_exec_line(line)[1] == [bad]


# --- podman containers ------------------------------------------------------------------------------


def podman_pod(**container):
    main = {"name": "main", "image": "localhost/web:v2", "imagePullPolicy": "Never", "ports": [{"containerPort": 8080, "hostPort": 8080}]}
    spec = {
        "terminationGracePeriodSeconds": 7,
        "volumes": [{"name": "data", "emptyDir": {}}],
        "containers": [dict(main, volumeMounts=[{"name": "data", "mountPath": "/data"}], **container)],
    }
    return pod(spec=spec)


def test_podman_container_is_a_notify_unit_owned_by_systemd():
    content = main_unit(podman_pod(command=["/bin/httpd", "-f"], args=["-p", "$(PORT)"], env=[{"name": "PORT", "value": "8080"}]), env_names={"main": ["PORT"]})
    assert value(content, "Type") == "notify" and value(content, "NotifyAccess") == "all"
    exe, argv = parse_exec_line(value(content, "ExecStart"), {"PORT": "8080"})
    assert exe == units.PODMAN and argv[0] == "run"
    cid = f"--cidfile={RUN}/pods/web/main/ctr-id"
    for flag in (cid, "--rm", "--replace", "--sdnotify=conmon", "--cgroups=no-conmon", "--name=hf-web.main", "--network=host", "--pull=never"):
        assert flag in argv, flag
    # Values never on the command line: podman takes them from the unit's environment file.
    assert "--env=POD_NAME" in argv and "--env=PORT" in argv and not any("8080" in a for a in argv if a.startswith("--env"))
    assert f'--mount="type=bind","source={STATE}/pods/web/volumes/data","destination=/data"' in argv
    # command[0] replaces the entrypoint; the rest of command, then args, follow the image ($(PORT) expanded by systemd).
    assert argv[argv.index('--entrypoint=["/bin/httpd"]') + 1 :] == ["localhost/web:v2", "-f", "-p", "8080"]
    # A container that died without its ExecStopPost (kill -9 of conmon's child) leaves its ID file: podman run
    # would refuse to start over it, so it goes before every start.
    assert parse_exec_line(unit_values(content, "ExecStartPre")[-1]) == ("/bin/rm", ["-f", f"{RUN}/pods/web/main/ctr-id"])
    stops = unit_values(content, "ExecStop")
    assert parse_exec_line(stops[-1]) == (units.PODMAN, ["stop", "--ignore", "--time=7", cid])
    assert value(content, "TimeoutStopSec") == "22s"
    # podman applies limits, user and volumes itself: no host-side BindPaths/User/WorkingDirectory.
    for key in ("BindPaths", "User", "WorkingDirectory", "MemoryMax"):
        assert unit_values(content, key) == []
    assert unit_values(content, "EnvironmentFile") == [f"{STATE}/pods/web/env/main.env"]


def test_podman_limits_user_and_default_entrypoint():
    content = main_unit(podman_pod(securityContext={"runAsUser": 1000, "runAsGroup": 100}, resources={"limits": {"memory": "64Mi", "cpu": "500m"}}))
    _exe, argv = parse_exec_line(value(content, "ExecStart"))
    assert "--user=1000:100" in argv and f"--memory={64 * 1024 * 1024}" in argv and "--cpus=0.5" in argv
    assert not any(a.startswith("--entrypoint") for a in argv) and argv[-1] == "localhost/web:v2"


def test_podman_exec_probes_and_handlers_run_inside_the_container():
    record = {"spec": {"runtimeClassName": "podman"}}
    assert hook.podman_prefix(record, "web", "main", {"securityContext": {"runAsUser": 7}}) == [hook.PODMAN, "exec", "--user=7", "hf-web.main"]
    assert hook.podman_prefix({"spec": {}}, "web", "main", {}) is None
    content = main_unit(podman_pod(lifecycle={"postStart": {"exec": {"command": ["/bin/touch", "/data/up"]}}}))
    posts = [parse_exec_line(v) for v in unit_values(content, "ExecStartPost")]
    assert (units.PODMAN, ["exec", "hf-web.main", "/bin/touch", "/data/up"]) in posts


# --- issue 11: systemd and podman read back what validation accepted -----------------------------------------


def test_lifecycle_exec_renders_as_plain_words_through_exec_line():
    # Item 1: the user's program is one quoted word without a prefix systemd would take (validation refused '+...').
    content = main_unit(pod(lifecycle={"postStart": {"exec": {"command": ["touch", "/tmp/a b"]}}, "preStop": {"exec": {"command": ["/bin/kill", "$$"]}}}))
    posts = unit_values(content, "ExecStartPost")
    assert parse_exec_line(posts[-1]) == ("touch", ["/tmp/a b"]) and posts[-1].startswith('"touch"')
    assert split_exec_words(value(content, "ExecStop"))[4:] == ["/bin/kill", "$$$$"]  # one '$$' after systemd's substitution
    # The renderer refuses what validation would (the backstop for values that do not come from a PodSpec).
    with pytest.raises(podspec.SpecError) as info:
        units.exec_line(["+/usr/bin/id"], field="x")
    assert info.value.path == "x"


@pytest.mark.parametrize("host_path,mount_path,sub_path", [
    ("/srv/it's", '/mnt/"quoted"', ""),
    ("/srv/a'b\"c", "/mnt/x", "d'e"),
    ("/srv/a\\b c", "/mnt/in'side \"x\":U,y", 'q"r'),
])
def test_bind_paths_with_quotes_round_trip(host_path, mount_path, sub_path):
    # Item 2: an unescaped quote made systemd drop the whole BindPaths= line: the container saw the host's directory.
    mount = {"name": "v", "mountPath": mount_path, "subPath": sub_path}
    raw = pod(spec={"volumes": [{"name": "v", "hostPath": {"path": host_path}}], "containers": [dict(MAIN, volumeMounts=[mount])]})
    source = f"{host_path}/{sub_path}" if sub_path else host_path
    assert binds(main_unit(raw)) == [("rw", source, mount_path)]


@pytest.mark.parametrize("syntax,text,rendered", [
    ("bind", "/a'b\"c:d e\tf\\g%h", "/a\\'b\\\"c\\:d\\ e\\\tf\\\\g%%h"),
    ("path", "/srv/x y'\"#;%h\\\\", "/srv/x y'\"#;%%h\\\\"),
    ("text", "hostfleet pod a%b", "hostfleet pod a%%b"),
])
def test_unit_value_escapes_each_syntax(syntax, text, rendered):
    assert units.unit_value(syntax, text, "f") == rendered


@pytest.mark.parametrize("syntax,text", [
    ("path", "/srv/x\\"), ("path", "relative"), ("text", "a\nb"), ("text", "ends \\"), ("bind", "/a\x7f"), ("path", "/\ufdd0"),
])
def test_unit_value_refuses_what_systemd_would_misread(syntax, text):
    # Item 3: one function writes every value, and refuses naming the field what its directive cannot carry.
    with pytest.raises(podspec.SpecError) as info:
        units.unit_value(syntax, text, "containers[main].workingDir")
    assert info.value.path == "containers[main].workingDir"


def test_working_dir_never_ends_a_line_in_a_backslash():
    content = main_unit(pod(workingDir="/srv/x\\\\"))
    assert value(content, "WorkingDirectory") == "/srv/x\\\\"
    with pytest.raises(podspec.SpecError):
        main_unit(pod(workingDir="/srv/x\\"))


def mount_fields(argv):
    return [dict(item.partition("=")[::2] for item in next(csv.reader([word[len("--mount="):]]))) for word in argv if word.startswith("--mount=")]


@pytest.mark.parametrize("host_path,mount_path", [("/srv/data", "/data:U"), ("/etc:/host-etc", "/etc2"), ("/a,b", '/c,d"e'), ('/q"q', "/x=y,ro")])
def test_podman_mounts_cannot_be_re_split(host_path, mount_path):
    # Item 4: --volume=SRC:DST joined paths with ':' ("/data:U" became podman's chown option); --mount is CSV-quoted.
    raw = podman_pod()
    raw["spec"]["volumes"] = [{"name": "host", "hostPath": {"path": host_path}}]
    raw["spec"]["containers"][0]["volumeMounts"] = [{"name": "host", "mountPath": mount_path, "readOnly": True}]
    _exe, argv = parse_exec_line(value(main_unit(raw), "ExecStart"))
    assert not any(word.startswith("--volume") for word in argv)
    assert mount_fields(argv) == [{"type": "bind", "source": host_path, "destination": mount_path, "ro": ""}]


def test_podman_entrypoint_is_json_so_a_bracket_is_not_a_list():
    _exe, argv = parse_exec_line(value(main_unit(podman_pod(command=['["/bin/sh", "-c", "id"]'])), "ExecStart"))
    (entry,) = [word for word in argv if word.startswith("--entrypoint=")]
    assert json.loads(entry[len("--entrypoint="):]) == ['["/bin/sh", "-c", "id"]']


def test_longest_accepted_command_line_stays_well_under_systemds_line_limit():
    # Item 5: every argument at its limit, each character escaped four times over (\x01): still under 1 MiB.
    args = ["\x01" * podspec.MAX_ARG_BYTES, "\x01" * (podspec.MAX_COMMAND_BYTES - podspec.MAX_ARG_BYTES - len("/bin/echo"))]
    content = main_unit(pod(command=["/bin/echo"], args=args))
    assert max(len(line.encode()) for line in content.splitlines()) < 1024 * 1024 * 3 // 4
    assert split_exec_words(value(content, "ExecStart"))[1:] == args


# --- issue 12: units started again and again have no start limit ----------------------------------------------


def test_every_repeatedly_started_unit_has_no_start_limit():
    # A periodSeconds: 1 probe service starts about 10 times in 10 s; systemd's default is 5 starts per 10 s.
    raw = pod(readinessProbe={"exec": {"command": ["/bin/true"]}, "periodSeconds": 1}, livenessProbe={"tcpSocket": {"port": 80}, "periodSeconds": 1})
    rendered = render(raw)
    assert len(rendered) == 5
    for unit, content in rendered.items():
        assert unit_values(content, "StartLimitIntervalSec") == ["0"], unit
        assert section_of(content, "StartLimitIntervalSec") == "[Unit]", unit


def test_podman_options_are_literal_only_command_and_args_expand():
    # Found by the oracle: Kubernetes' $$ / $(VAR) applied to the whole podman run line turned a "$$" in a path into "$".
    raw = podman_pod(workingDir="/w$$x", command=["/bin/$$sh", "$(PORT)$$"], args=["$$"], env=[{"name": "PORT", "value": "80"}])
    raw["spec"]["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/d$(PORT)", "subPath": "$$"}]
    _exe, argv = parse_exec_line(value(main_unit(raw, env_names={"main": ["PORT"]}), "ExecStart"), {"PORT": "80"})
    assert mount_fields(argv) == [{"type": "bind", "source": f"{STATE}/pods/web/volumes/data/$$", "destination": "/d$(PORT)"}]
    assert "--workdir=/w$$x" in argv and '--entrypoint=["/bin/$sh"]' in argv
    assert argv[argv.index("localhost/web:v2") + 1 :] == ["80$", "$"]
