"""The rendering oracle on a lab host (issue 11): systemd 252 itself reads the units back.

Hypothesis draws batches of pods with hostile strings and wrong types in every field the node layer renders
(tests/unit/module_utils/node/unit_oracle.py). Each pod is either refused by validation naming a field of the input,
or rendered; every batch's units go to one lab host in ONE ssh round trip: written to /run/systemd/system, one
daemon-reload, then D-Bus says what systemd parsed (LoadState, ExecStartEx/ExecStartPostEx/ExecStopEx with their
prefix flags, WorkingDirectory, BindPaths, StartLimitIntervalUSec), and check_pod compares it with the spec.
"""

from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path

import hypothesis
import pytest
from hypothesis import HealthCheck, Phase, given, settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "module_utils" / "node"))

from unit_oracle import SERVICE_PROPERTIES, UNIT_PROPERTIES, binds, check_pod, exec_entries, oracle_pods, outcome, parse_busctl  # noqa: E402

from lab import labctl  # noqa: E402
from lab.images import build_image  # noqa: E402

HOST = "node1"
PODS = 150
# Not hf-: the node layer on the host must never take these for pods of its own.
PREFIX = "hforacle-"

# Runs on the host: {unit: content} on stdin -> {unit: {"unit": busctl text, "service": busctl text}} on stdout.
REMOTE = r"""
import json, os, subprocess, sys
units = json.load(sys.stdin)
root = "/run/systemd/system"
def path(unit):
    return "/org/freedesktop/systemd1/unit/" + "".join(c if c.isalnum() else "_%02x" % ord(c) for c in unit)
def get(unit, interface, names):
    done = subprocess.run(["busctl", "get-property", "org.freedesktop.systemd1", path(unit), "org.freedesktop.systemd1." + interface] + names,
                          capture_output=True, text=True, errors="surrogateescape")
    return done.stdout if done.returncode == 0 else "ERROR " + done.stderr
out = {}
try:
    for unit, content in units.items():
        with open(os.path.join(root, unit), "w", encoding="utf-8") as handle:
            handle.write(content)
    subprocess.run(["systemctl", "daemon-reload"], check=True)
    for unit in units:
        out[unit] = {"unit": get(unit, "Unit", sys.argv[1].split(","))}
        if unit.endswith(".service"):
            out[unit]["service"] = get(unit, "Service", sys.argv[2].split(","))
finally:
    for unit in units:
        try:
            os.unlink(os.path.join(root, unit))
        except FileNotFoundError:
            pass
    subprocess.run(["systemctl", "daemon-reload"], check=True)
json.dump(out, sys.stdout)
"""


def systemd_readback(rendered):
    """{unit: {property: value}} as systemd on the lab host parsed ``rendered`` ({unit: content}), in one round trip."""
    sent = {PREFIX + unit[len("hf-") :]: content for unit, content in rendered.items()}
    done = labctl.ssh(HOST, ["python3", "-c", REMOTE, ",".join(UNIT_PROPERTIES), ",".join(SERVICE_PROPERTIES)], input=json.dumps(sent), timeout=120)
    raw = json.loads(done.stdout)
    result = {}
    for unit in rendered:
        texts = raw[PREFIX + unit[len("hf-") :]]
        assert not texts["unit"].startswith("ERROR"), (unit, texts)
        got = parse_busctl(texts["unit"], UNIT_PROPERTIES)
        if "service" in texts:
            assert not texts["service"].startswith("ERROR"), (unit, texts)
            service = parse_busctl(texts["service"], SERVICE_PROPERTIES)
            for key in ("ExecStartEx", "ExecStartPostEx", "ExecStopEx"):
                got[key] = exec_entries(service[key])
            for key in ("BindPaths", "BindReadOnlyPaths"):
                got[key] = binds(service[key])
            got["WorkingDirectory"] = service["WorkingDirectory"]
        result[unit] = got
    return result


def draw_pods(count, seed):
    """``count`` random pods from hypothesis (generation only: the lab round trip is one, for all of them)."""
    pods = []

    @hypothesis.seed(seed)
    @settings(max_examples=count, deadline=None, database=None, phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(oracle_pods("oracle"))
    def collect(raw):
        pods.append(dict(raw, name=f"oracle-{len(pods)}"))

    collect()
    return pods


def test_systemd_reads_back_what_the_spec_says_or_validation_names_the_field(lab):
    seed = int(os.environ.get("HOSTFLEET_ORACLE_SEED") or random.randrange(2**32))
    pods = draw_pods(PODS, seed)
    accepted = []
    for raw in pods:
        kind, result = outcome(raw)
        if kind == "rendered":
            accepted.append((raw, result))
    # Enough of them reach systemd for the run to mean something (about one in four pass validation).
    assert len(accepted) >= PODS // 10, f"only {len(accepted)} of {PODS} pods passed validation (HOSTFLEET_ORACLE_SEED={seed})"
    readback = systemd_readback({unit: content for _raw, (_normal, rendered, _values) in accepted for unit, content in rendered.items()})
    for raw, (normal, rendered, values) in accepted:
        try:
            check_pod(normal, rendered, values, {unit: readback[unit] for unit in rendered})
        except AssertionError as error:
            raise AssertionError(f"systemd read back something else than the spec says (HOSTFLEET_ORACLE_SEED={seed}): {error}\npod: {raw!r}") from None


# --- the same on a running pod: systemd and podman mount what the spec says (items 2 and 4), 1 s probes (issue 12) ---

OWNER = "it-oracle"
SCRATCH = "/tmp/hf-oracle"
# Quotes drop a whole BindPaths= line unless escaped; ':' and ',' re-split podman's --volume (":U" is its chown option).
HOST_DIR = f"{SCRATCH}/it's \"q\" a,b:c %h"
MOUNT = "/mnt/in'side \"x\":U,y"


def pod_run(lab, pods, state="present"):
    args = {"owner": OWNER, "pods": pods, "state": state, "wait": state == "present", "wait_timeout": 60}
    return lab.run([{"name": "p", "hostfleet.workloads.pod": args}], hosts=HOST)


@pytest.fixture
def scratch(lab):
    lab.ssh(HOST, ["sh", "-c", 'mkdir -p "$1" "$2" && echo from-host > "$1/f" && echo etc-dir > "$2/g"', "sh", HOST_DIR, f"{SCRATCH}/etc:/host-etc"])
    yield
    pod_run(lab, [], state="absent")
    lab.ssh(HOST, f"rm -rf {SCRATCH} /run/hf-oracle-copied", check=False)


def test_process_container_gets_its_volume_whatever_quotes_its_paths_hold(lab, scratch):
    pod = {
        "name": "it-oracle-proc",
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "volumes": [{"name": "data", "hostPath": {"path": HOST_DIR}}],
            "containers": [
                {
                    "name": "main",
                    # What the container sees at the mount, copied to where the test can read it.
                    "command": ["/bin/sh", "-c", 'cat "$1/f" > /run/hf-oracle-copied; exec sleep infinity', "sh", MOUNT],
                    "volumeMounts": [{"name": "data", "mountPath": MOUNT, "readOnly": True}],
                }
            ],
        },
    }
    run = pod_run(lab, [pod])
    assert run.rc == 0, run.stdout[-3000:]
    copied = lab.ssh(HOST, "for i in $(seq 50); do [ -s /run/hf-oracle-copied ] && break; sleep 0.1; done; cat /run/hf-oracle-copied", check=False)
    assert copied.stdout == "from-host\n", copied.stdout + copied.stderr
    shown = lab.ssh(HOST, "systemctl show -p BindReadOnlyPaths hf-it-oracle-proc.main.service").stdout
    assert MOUNT in shown


def test_podman_mounts_paths_with_colons_commas_and_quotes_as_they_are(lab, scratch):
    image = build_image(HOST, "oracle", "v1", {})
    pod = {
        "name": "it-oracle-podman",
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "volumes": [
                {"name": "data", "hostPath": {"path": HOST_DIR}},
                {"name": "etc", "hostPath": {"path": f"{SCRATCH}/etc:/host-etc"}},
            ],
            "containers": [
                {
                    "name": "main",
                    "image": image,
                    "imagePullPolicy": "Never",
                    "command": ["/bin/sleep", "1000000"],
                    "volumeMounts": [{"name": "data", "mountPath": "/data:U"}, {"name": "etc", "mountPath": MOUNT, "readOnly": True}],
                    # Ready only when both files are where the spec mounts them (podman exec inside the container).
                    "readinessProbe": {
                        "exec": {"command": ["/bin/sh", "-c", 'cat "/data:U/f" "$0/g"', MOUNT]},
                        "periodSeconds": 1,
                        "timeoutSeconds": 10,
                    },
                }
            ],
        },
    }
    run = pod_run(lab, [pod])
    assert run.rc == 0, run.stdout[-3000:]
    mounts = json.loads(lab.ssh(HOST, "podman inspect --format '{{json .Mounts}}' hf-it-oracle-podman.main").stdout)
    assert sorted((m["Source"], m["Destination"], m["RW"]) for m in mounts) == sorted([(HOST_DIR, "/data:U", True), (f"{SCRATCH}/etc:/host-etc", MOUNT, False)])
    # ":U" stayed a directory name: podman did not chown the host's directory.
    assert lab.ssh(HOST, ["stat", "-c", "%u", HOST_DIR]).stdout.strip() == "0"


def test_a_one_second_probe_never_hits_the_start_limit(lab, scratch):
    """Issue 12: periodSeconds 1 starts the probe service about 10 times in 10 s; systemd's default limit is 5."""
    pod = {
        "name": "it-oracle-probe",
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "main",
                    "command": ["/bin/sleep", "infinity"],
                    "readinessProbe": {"exec": {"command": ["/bin/true"]}, "periodSeconds": 1},
                    "livenessProbe": {"tcpSocket": {"port": 1}, "periodSeconds": 1, "failureThreshold": 1000},
                }
            ],
        },
    }
    run = pod_run(lab, [pod])
    assert run.rc == 0, run.stdout[-3000:]
    units = " ".join(f"hf-it-oracle-probe.main.{kind}.service" for kind in ("readiness", "liveness"))
    since = lab.ssh(HOST, "date +%s.%N").stdout.strip()
    # Sampled every half second for 15 s, on the host in one round trip.
    states = lab.ssh(HOST, f"for i in $(seq 30); do systemctl show -p Result --value {units} | tr '\\n' ' '; echo; sleep 0.5; done", timeout=60).stdout
    assert "start-limit-hit" not in states, states
    readiness, liveness = (f"hf-it-oracle-probe.main.{kind}.service" for kind in ("readiness", "liveness"))
    journal = lab.ssh(HOST, f"journalctl -q -o cat --since=@{since} -u {readiness} -u {liveness}").stdout
    assert "Start request repeated too quickly" not in journal, journal[-2000:]
    # More starts than the default limit allows (5 in 10 s), even on a loaded host.
    finished = [line for line in journal.splitlines() if line.startswith(f"Finished {readiness}")]
    assert len(finished) >= 6, journal[-2000:]
