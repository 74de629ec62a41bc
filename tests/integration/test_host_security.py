"""Issue 11 (items 6, 11, 12) on a real host, systemd being the judge: hostile ConfigMap values reach a pod's
environment exactly (through config_data's .env file, the node layer's reader and systemd's EnvironmentFile=
parser), a key outside Kubernetes' rule is refused, the files' modes are as documented (docs/security.md), and an
event line another local user writes with the event identifier is not an event."""

from __future__ import annotations

import base64
import json

import pytest

NODE = "node1"
POD = "sec-env"
CONFIGMAP = "sec-hostile"
DUMP = "/run/sec-env.json"
# Values an environment can carry, each of which some quoting step could get wrong.
VALUES = {
    "QUOTES": "say \"hi\" and 'bye'",
    "BACKSLASH": "C:\\path\\n\\\\end\\",
    "DOLLAR": "$HOME ${PATH} $(id) `id` $$ %h %%",
    "SPACES": "  lead and trail  ",
    "TAB": "a\tb\t",
    "CONTROL": "bell\x07 esc\x1b[0m del\x7f unit-sep\x1f",
    "HASH": "# not a comment",
    "EQUALS": "a=b=c",
    "EMPTY": "",
    "ONLY_QUOTE": '"',
    "QUOTED": '"already quoted"',
    "UNICODE": "h\u00e9llo \u2014 \u2713 \U0001d11e",
    "SHELL": "a; rm -rf / && echo $((1+1))",
}
# Values that cannot be one environment variable: files only (config_data reports them in env_omitted).
NOT_IN_ENV = {"MULTI": "line1\nline2", "CR": "a\rb"}
BINARY = {"BIN": b"a\x00b"}


def manifests():
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": CONFIGMAP},
        "data": dict(VALUES, **NOT_IN_ENV),
        "binaryData": {k: base64.b64encode(v).decode() for k, v in BINARY.items()},
    }
    dump = f"import json, os; open({DUMP!r}, 'w').write(json.dumps(dict(os.environ)))"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": POD},
        "spec": {
            "nodeName": NODE,
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "main",
                    "command": ["/usr/bin/python3", "-c", dump + "; import time; time.sleep(86400)"],
                    "envFrom": [{"configMapRef": {"name": CONFIGMAP}}],
                }
            ],
        },
    }
    return [configmap, pod]


def apply(lab, state="present"):
    run = lab.run([{"name": "apply", "hostfleet.workloads.apply": {"definition": manifests(), "state": state}, "run_once": True}])
    assert run.rc == 0, run.stdout[-4000:] + run.stderr[-2000:]
    return run


@pytest.fixture(scope="module")
def pod(lab):
    lab.ssh(NODE, f"rm -f {DUMP}")
    apply(lab, "absent")
    apply(lab)
    lab.ssh(NODE, f"for i in $(seq 100); do test -s {DUMP} && exit 0; sleep 0.2; done; exit 1")
    yield lab
    apply(lab, "absent")


def test_hostile_config_map_values_reach_the_pod_environment_exactly(pod):
    environment = json.loads(pod.ssh(NODE, f"cat {DUMP}").stdout)
    assert {k: environment.get(k) for k in VALUES} == VALUES
    assert not set(NOT_IN_ENV) & set(environment) and not set(BINARY) & set(environment)
    # ... and they are still exact as files (configMap volumes), including what the environment cannot carry.
    for key, value in dict(VALUES, **NOT_IN_ENV).items():
        got = pod.ssh(NODE, f"base64 -w0 /var/lib/hostfleet/configmaps/{CONFIGMAP}/{key}").stdout
        assert base64.b64decode(got) == value.encode(), key


def test_a_key_outside_kubernetes_rule_is_refused_by_the_host_module(pod):
    encoded = base64.b64encode(b"/tmp/evil").decode()
    pod.ssh(NODE, "rm -rf /var/lib/hostfleet/configmaps/sec-badkey*")  # what a run of an older version left
    for key in ("B\nPATH", "A=B"):
        task = {"name": "cm", "hostfleet.workloads.config_data": {"kind": "ConfigMap", "name": "sec-badkey", "files": {key: encoded}}}
        run = pod.run([task], hosts=NODE)
        result = run.result("cm", NODE)
        assert run.rc != 0 and result["msg"].startswith(f"files: {key!r} is not a valid ConfigMap/Secret key"), result
    assert pod.ssh(NODE, "ls /var/lib/hostfleet/configmaps/sec-badkey*", check=False).returncode != 0


def test_state_files_and_directories_have_the_documented_modes(pod):
    """What docs/security.md says, as the host shows it (owner:group mode)."""
    secret = {"name": "sec-secret", "hostfleet.workloads.config_data": {"kind": "Secret", "name": "sec-secret", "files": {"K": "dg=="}}}
    gone = {"name": "gone", "hostfleet.workloads.config_data": {"kind": "Secret", "name": "sec-secret", "state": "absent"}}
    run = pod.run([secret], hosts=NODE)
    assert run.rc == 0, run.stdout[-3000:]
    try:
        paths = [
            "/var/lib/hostfleet", "/var/lib/hostfleet/pods", f"/var/lib/hostfleet/pods/{POD}", f"/var/lib/hostfleet/pods/{POD}/env",
            f"/var/lib/hostfleet/pods/{POD}/env/main.env", f"/var/lib/hostfleet/pods/{POD}/pod.json", "/var/lib/hostfleet/bin/hostfleet-hook",
            "/var/lib/hostfleet/configmaps", f"/var/lib/hostfleet/configmaps/{CONFIGMAP}.env", "/var/lib/hostfleet/secrets",
            "/var/lib/hostfleet/secrets/sec-secret", "/var/lib/hostfleet/secrets/sec-secret/K", "/var/lib/hostfleet/secrets/sec-secret.env",
            "/run/hostfleet", f"/run/hostfleet/pods/{POD}/main", f"/run/hostfleet/pods/{POD}/main/status.json",
        ]
        lines = pod.ssh(NODE, "stat -c '%n %U:%G %a' " + " ".join(paths)).stdout.splitlines()
        modes = {line.split()[0]: tuple(line.split()[1:]) for line in lines}
    finally:
        pod.run([gone], hosts=NODE)
    root = "root:root"
    assert modes == {
        "/var/lib/hostfleet": (root, "755"), "/var/lib/hostfleet/pods": (root, "755"), f"/var/lib/hostfleet/pods/{POD}": (root, "755"),
        f"/var/lib/hostfleet/pods/{POD}/env": (root, "755"), f"/var/lib/hostfleet/pods/{POD}/env/main.env": (root, "600"),
        f"/var/lib/hostfleet/pods/{POD}/pod.json": (root, "600"), "/var/lib/hostfleet/bin/hostfleet-hook": (root, "755"),
        "/var/lib/hostfleet/configmaps": (root, "755"), f"/var/lib/hostfleet/configmaps/{CONFIGMAP}.env": (root, "644"),
        "/var/lib/hostfleet/secrets": (root, "700"), "/var/lib/hostfleet/secrets/sec-secret": (root, "700"),
        "/var/lib/hostfleet/secrets/sec-secret/K": (root, "600"), "/var/lib/hostfleet/secrets/sec-secret.env": (root, "600"),
        "/run/hostfleet": (root, "755"), f"/run/hostfleet/pods/{POD}/main": (root, "755"), f"/run/hostfleet/pods/{POD}/main/status.json": (root, "644"),
    }


def send_event(lab, user, reason):
    """One journal entry with the event identifier and HF_* fields, written by ``user`` (logger --journald)."""
    fields = {"MESSAGE": f"{reason} for {POD}", "SYSLOG_IDENTIFIER": "hostfleet-event", "PRIORITY": "4", "HF_REASON": reason, "HF_TYPE": "Warning",
              "HF_POD": POD, "HF_CONTAINER": "main", "HF_OWNER": f"Pod/{POD}", "_UID": "0"}  # _UID: journald must drop it
    text = "".join(f"{k}={v}\\n" for k, v in fields.items())
    lab.ssh(NODE, f"printf '{text}' > /tmp/sec-event && chmod 644 /tmp/sec-event && su {user} -s /bin/sh -c 'logger --journald=/tmp/sec-event'")


def test_an_event_line_written_by_another_user_is_not_an_event(pod):
    # Any free uid: other tests may have made uid 1000 on a lab that lives through the suite.
    pod.ssh(NODE, "id mallory >/dev/null 2>&1 || useradd -M mallory")
    mallory_uid = pod.ssh(NODE, "id -u mallory").stdout.strip()
    send_event(pod, "mallory", "ForgedByMallory")
    send_event(pod, "root", "SentByRoot")
    pod.ssh(NODE, "journalctl --sync")
    run = pod.run([{"name": "info", "hostfleet.workloads.workload_info": {"kind": ["Pod"], "name": POD, "events": True, "events_since": "10m"},
                    "run_once": True}])
    assert run.rc == 0, run.stdout[-3000:]
    reasons = {e["reason"] for e in run.result("info", pod.hosts[0])["events"]}
    # The journal holds both lines; only root's is an event.
    journal = pod.ssh(NODE, "journalctl -o json SYSLOG_IDENTIFIER=hostfleet-event HF_POD=" + POD + " --output-fields=HF_REASON,_UID").stdout
    by_reason = {json.loads(line)["HF_REASON"]: json.loads(line)["_UID"] for line in journal.splitlines() if line.startswith("{")}
    assert by_reason["ForgedByMallory"] == mallory_uid != "0" and by_reason["SentByRoot"] == "0"
    assert "SentByRoot" in reasons and "ForgedByMallory" not in reasons
