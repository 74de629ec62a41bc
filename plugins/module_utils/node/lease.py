# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One writer per workload: this node's share of a workload's lease.

A run that changes a workload (a Deployment, a Job...) holds its lease on a
strict majority of the workload's nodes; every act it makes on a node carries
the lease (holder and fencing token) and the node refuses an act whose lease
is not the current one there. The controller side (plugin_utils/lease.py)
counts the majority; this file is what one node keeps and decides.

Per workload, ``<state_dir>/leases/<kind>.<name>.json`` holds the current lease
(holder id, its description, token, expiry on this node's clock, when it was
granted) and the highest token this node ever granted for the workload with
its holder (the high-water mark). A token no higher than that mark is refused
unless it is the mark's own holder asking again: a run whose lease was taken
over (it stalled, its laptop slept) can never act again, even after the newer
holder released the lease. Every read-modify-write happens under an exclusive
flock of a root-only lock file; files are written atomically, mode 0600.

``decide`` is the whole state machine, pure (state, request, now) → (state,
reply); ``apply`` is the same under the lock, on disk.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import time

from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError

OPS = ("read", "acquire", "release")
MAX_DURATION = 3600
HOLDER_ID = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
# A workload's kind and node-layer name (namespaces.py: <namespace>_<name>, two labels of up to 63 characters).
OWNER_ID = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")
LOCK_FILE = ".lock"


def validate(request, path="lease", ops=OPS):
    """The lease argument of pod/pod_info, checked field by field (SpecError names the field)."""
    if not isinstance(request, dict):
        raise SpecError(path, "must be a dict with holder, token, duration and op")
    unknown = sorted(set(request) - {"kind", "name", "holder", "token", "duration", "op", "description"})
    if unknown:
        raise SpecError(f"{path}.{unknown[0]}", "unknown field (expected kind, name, holder, token, duration, op, description)")
    for key in ("kind", "name"):
        if request.get(key) is not None and not (isinstance(request[key], str) and OWNER_ID.match(request[key])):
            raise SpecError(f"{path}.{key}", "must be 1-128 letters, digits, '.', '_' or '-'")
    op = request.get("op", "acquire")
    if op not in ops:
        raise SpecError(f"{path}.op", f"must be one of {', '.join(ops)}, got {op!r}")
    holder = request.get("holder")
    if not isinstance(holder, str) or not HOLDER_ID.match(holder):
        raise SpecError(f"{path}.holder", "must be 1-64 letters, digits, '.', '_' or '-'")
    token = request.get("token")
    if isinstance(token, bool) or not isinstance(token, int) or token < 1:
        raise SpecError(f"{path}.token", f"must be a positive integer, got {token!r}")
    duration = request.get("duration", 30)
    if isinstance(duration, bool) or not isinstance(duration, (int, float)) or not 1 <= duration <= MAX_DURATION:
        raise SpecError(f"{path}.duration", f"must be between 1 and {MAX_DURATION} seconds, got {duration!r}")
    description = request.get("description", "")
    if not isinstance(description, str) or len(description) > 500:
        raise SpecError(f"{path}.description", "must be a string of at most 500 characters")
    return {
        "kind": request.get("kind"),
        "name": request.get("name"),
        "op": op,
        "holder": holder,
        "token": token,
        "duration": float(duration),
        "description": description,
    }


def current(state, now):
    """The unexpired lease in ``state``, or None."""
    lease = (state or {}).get("lease")
    return lease if lease and lease.get("expires", 0) > now else None


def decide(state, request, now):
    """(new state, reply) for one validated request on one node. Pure: ``now`` is this node's clock.

    acquire: granted when no other holder's lease is current here and either the holder already holds it here
      (a renewal; a higher token from the same holder replaces its own) or the token is above this node's
      high-water mark (or equals it and the mark is this holder's: its own lease that lapsed, never taken since).
    release: drops the lease if it is this holder's with this token.
    read: changes nothing.
    """
    state = dict(state or {})
    hwm = int(state.get("hwm") or 0)
    hwm_holder = state.get("hwm_holder")
    lease = current(state, now)
    holder, token = request["holder"], request["token"]
    op = request["op"]
    granted = False
    if op == "acquire":
        if lease is not None and lease["holder"] != holder:
            reason = "held"
        elif lease is not None and token < lease["token"]:
            reason = "stale"
        elif lease is None and not (token > hwm or (token == hwm and hwm_holder == holder)):
            reason = "stale"
        else:
            reason = "renewed" if lease is not None and lease["token"] == token else "granted"
            granted = True
            state["lease"] = {
                "holder": holder,
                "description": request.get("description") or "",
                "token": token,
                "granted_at": lease["granted_at"] if lease is not None else now,
                "expires": now + request["duration"],
            }
            if token > hwm:
                state["hwm"], state["hwm_holder"] = token, holder
    elif op == "release":
        if lease is not None and lease["holder"] == holder and lease["token"] == token:
            state["lease"] = None
            reason = "released"
        else:
            reason = "not-held"
    else:
        reason = "read"
    return state, reply(state, now, granted, reason)


def reply(state, now, granted=False, reason="read"):
    """What the node answers: the outcome, and the current lease in times relative to now (clocks differ)."""
    lease = current(state, now)
    return {
        "granted": granted,
        "reason": reason,
        "hwm": int(state.get("hwm") or 0),
        "holder": None
        if lease is None
        else {
            "id": lease["holder"],
            "description": lease.get("description") or "",
            "token": lease["token"],
            "held_for": round(now - lease["granted_at"], 1),
            "expires_in": round(lease["expires"] - now, 1),
        },
    }


def lease_dir(state_dir):
    return os.path.join(state_dir, "leases")


def lease_path(state_dir, kind, name):
    return os.path.join(lease_dir(state_dir), f"{kind.lower()}.{name}.json")


def _load(path):
    try:
        with open(path) as handle:
            state = json.load(handle)
    except FileNotFoundError:
        return {}
    except ValueError:
        # A torn or hand-edited file: the lease is void, but keep refusing tokens we may have granted (the
        # high-water mark is lost, so refuse everything until a new holder comes with a token above "now in ms").
        return {"hwm": int(time.time() * 1000), "hwm_holder": None, "torn": True}
    return state if isinstance(state, dict) else {}


def _store(path, state, durable):
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(state, handle, sort_keys=True)
            if durable:
                # A new holder or token must survive a crash of the node (the high-water mark is the fence).
                handle.flush()
                os.fsync(handle.fileno())
    except BaseException:
        os.unlink(tmp)
        raise
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def apply(state_dir, kind, name, request, now=None, check_mode=False):
    """Run ``decide`` on this node's lease file under the lock; in check mode the answer of a read."""
    directory = lease_dir(state_dir)
    path = lease_path(state_dir, kind, name)
    if (check_mode or request["op"] == "read") and not os.path.exists(path):
        return reply({}, time.time() if now is None else now)  # never leased here: nothing to lock
    os.makedirs(directory, mode=0o700, exist_ok=True)
    lock = os.open(os.path.join(directory, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        before = _load(path)
        if before.pop("torn", False) and not check_mode:
            _store(path, before, True)  # once: a mark that moved with the clock at every read would refuse every token
        at = time.time() if now is None else now
        if check_mode:
            return reply(before, at)
        after, answer = decide(before, request, at)
        if after != before:
            old, new = before.get("lease") or {}, after.get("lease") or {}
            durable = (old.get("holder"), old.get("token"), before.get("hwm")) != (new.get("holder"), new.get("token"), after.get("hwm"))
            _store(path, after, durable)
        return answer
    finally:
        os.close(lock)  # closing the descriptor releases the flock


def describe(holder):
    """One line about a holder from a reply, for messages."""
    text = holder.get("description") or holder.get("id")
    return f"{text} (since {holder.get('held_for', 0):.0f} s, expires in {max(holder.get('expires_in', 0), 0):.0f} s unless renewed)"
