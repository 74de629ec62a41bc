# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A host back from a long absence does not serve the pods the control plane may have replaced (node side of eviction).

Kubernetes never restarts a pod the control plane has replaced: the kubelet asks the API server first. Here no
daemon of ours runs on the hosts, so the host decides alone, at the first start of each container after a boot:

- a heartbeat (``hostfleet-heartbeat.timer``, every HEARTBEAT_SECONDS, installed by the node layer) keeps the last
  time the host was up in ``<state>/node/heartbeat.json``; the first beat of a boot keeps the previous boot's last one;
- a pod that existed before this boot is FENCED (its containers are not started, status Pending, reason NodeFenced)
  when it belongs to a StatefulSet (an identity may have been started elsewhere, whatever the timing: it never runs
  twice), or to a Deployment or ReplicaSet and the host was away longer than the eviction timeout: the grace its
  last run used before replacing an unreachable node's pods (the owner record's ``fleet.grace``, default
  DEFAULT_EVICTION_SECONDS as Kubernetes' node-monitor grace). Away means from the last heartbeat to the boot, so
  a reboot within the timeout (less one heartbeat period) keeps serving its pods at once;
- other pods (DaemonSets, Jobs, bare pods) are never replaced elsewhere: never fenced;
- the next run that acts on the pod's owner on this host lifts the fence (``/run/hostfleet/unfenced/<pod>``, for
  this boot) of the pods it keeps and starts them; the pods it replaced it removes. Until then they stay down.

Stdlib only: the hook script carries this file's code inlined (converge.hook_script_source).
"""

from __future__ import annotations

import json
import os
import time
import uuid

# Inlined by the node layer when it installs the hook script (converge.hook_script_source): one atomic-write helper.
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.fileio import ensure_dir, write_atomic

HEARTBEAT_SECONDS = 5
DEFAULT_EVICTION_SECONDS = 40.0
FENCE_RUN_DIR = "/run/hostfleet"
ALWAYS_FENCED_KINDS = ("StatefulSet",)
# The kinds that replace an unreachable node's pods (the registry's replaces_unreachable; tests/unit/test_registry.py).
TIMED_KINDS = ("Deployment", "ReplicaSet", "ReplicationController")
FENCE_REASON = "NodeFenced"


# -- pure --------------------------------------------------------------------------------------------


def next_heartbeat(stored, boot, now):
    """The heartbeat file after a beat at ``now`` in boot ``boot``: the first beat of a boot keeps the last of the previous one."""
    if isinstance(stored, dict) and stored.get("boot") == boot:
        return dict(stored, at=now)
    previous = None
    if isinstance(stored, dict) and isinstance(stored.get("at"), (int, float)):
        previous = {"boot": stored.get("boot"), "last": stored["at"]}
    return {"boot": boot, "at": now, "previous": previous}


def last_beat_before(stored, boot):
    """The last heartbeat of the boot before ``boot`` (None when unknown)."""
    if not isinstance(stored, dict):
        return None
    if stored.get("boot") == boot:
        previous = stored.get("previous") or {}
        last = previous.get("last") if isinstance(previous, dict) else None
    else:
        last = stored.get("at")
    return float(last) if isinstance(last, (int, float)) else None


def fence_reason(kind, created, booted_at, last_beat, timeout):
    """Why a pod of ``kind`` created at ``created`` must not start again in this boot, or None. Pure."""
    if not isinstance(created, (int, float)) or created >= booted_at:
        return None  # created in this boot, by a run
    if kind in ALWAYS_FENCED_KINDS:
        return "this host rebooted: a StatefulSet identity waits for the control plane's next run (it may run elsewhere)"
    if kind in TIMED_KINDS and last_beat is not None:
        away = booted_at - last_beat
        if away > timeout:
            return f"this host was away {away:.0f} s, longer than the eviction timeout ({timeout:g} s): the pod may have been replaced"
    return None


def eviction_timeout(owner_record):
    """The grace the owner's last run used before replacing an unreachable node's pods (its record's ``fleet.grace``)."""
    grace = ((owner_record or {}).get("fleet") or {}).get("grace") if isinstance(owner_record, dict) else None
    return float(grace) if isinstance(grace, (int, float)) and not isinstance(grace, bool) and grace >= 0 else DEFAULT_EVICTION_SECONDS


# -- this host ---------------------------------------------------------------------------------------


def heartbeat_path(state_dir):
    return os.path.join(state_dir, "node", "heartbeat.json")


def unfenced_path(pod, run_dir=FENCE_RUN_DIR):
    return os.path.join(run_dir, "unfenced", pod)


def _read_json(path):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def boot_time():
    """When this host (or container) booted, epoch seconds: the start of its PID 1."""
    with open("/proc/stat") as handle:
        btime = next(int(line.split()[1]) for line in handle if line.startswith("btime "))
    with open("/proc/1/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return btime + int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22, starttime, in clock ticks since the kernel's boot


def boot_id(run_dir=FENCE_RUN_DIR, create=True):
    """A token of this boot, kept on the runtime tmpfs (the kernel's boot_id is shared by containers on one kernel).

    None without ``create`` when nothing made one yet in this boot (then no heartbeat of this boot exists either)."""
    path = os.path.join(run_dir, "boot-id")
    try:
        with open(path) as handle:
            return handle.read().strip()
    except FileNotFoundError:
        if not create:
            return None
    ensure_dir(run_dir, 0o755)
    token = uuid.uuid4().hex
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    except FileExistsError:  # another first caller of this boot won
        with open(path) as handle:
            return handle.read().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(token)
    return token


def beat(state_dir, run_dir=FENCE_RUN_DIR):
    """One heartbeat (the timer's service)."""
    path = heartbeat_path(state_dir)
    ensure_dir(os.path.dirname(path), 0o755)
    # No fsync: a lost beat only makes the host look away longer, which fences more, never less.
    write_atomic(path, json.dumps(next_heartbeat(_read_json(path), boot_id(run_dir), time.time()), sort_keys=True), 0o644, fsync=False)


def pod_fence(state_dir, pod, run_dir=FENCE_RUN_DIR):
    """Why ``pod`` must not start on this host in this boot, or None."""
    if os.path.exists(unfenced_path(pod, run_dir)):
        return None
    record = _read_json(os.path.join(state_dir, "pods", pod, "pod.json")) or {}
    owner = record.get("owner") or {}
    kind, name = owner.get("kind"), owner.get("name")
    if kind not in ALWAYS_FENCED_KINDS + TIMED_KINDS or not name:
        return None
    booted_at = boot_time()
    if not isinstance(record.get("created"), (int, float)) or record["created"] >= booted_at:
        return None
    owner_record = _read_json(os.path.join(state_dir, "owners", f"{kind.lower()}.{name}.json"))
    # The heartbeat before the boot token: a beat of this boot is only ever written after its token exists.
    stored = _read_json(heartbeat_path(state_dir))
    last = last_beat_before(stored, boot_id(run_dir, create=False))
    return fence_reason(kind, record.get("created"), booted_at, last, eviction_timeout(owner_record))


def unfence(pod, run_dir=FENCE_RUN_DIR):
    """The control plane keeps ``pod`` here: it may start again in this boot."""
    path = unfenced_path(pod, run_dir)
    ensure_dir(os.path.dirname(path), 0o755)
    write_atomic(path, "", 0o644, fsync=False)
