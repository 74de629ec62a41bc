# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pod events and logs, read from the host's journal (stdlib only, runs on the hosts).

Events are not stored anywhere of ours: the journal already holds systemd's
own messages about each ``hf-<pod>.<container>.service`` (started, main
process exited or killed, restart scheduled with its counter, stopping), and
the node layer adds one structured entry (``SYSLOG_IDENTIFIER=hostfleet-event``,
fields ``HF_*``) where only it knows what happened: a converge step (pods
created, deleted, updated), a probe failure, a crash-loop back-off.
:func:`parse_entries` turns journal entries (``journalctl -o json``) into
Kubernetes-like events in time order; it is pure and unit-tested on captured
journal JSON. Only root's entries count (``_UID=0``, set by journald): any
local user can log lines with the event identifier. :func:`log_lines` does the same for a container's own output.
"""

from __future__ import annotations

# journalctl is the only reader of the journal in the stdlib world; the node layer calls it directly.
# pylint: disable=ansible-bad-function
import json
import math
import os
import re
import selectors
import socket
import subprocess
import time

from ansible_collections.hostfleet.workloads.plugins.module_utils.node import units as render

EVENT_IDENTIFIER = "hostfleet-event"
JOURNAL_SOCKET = "/run/systemd/journal/socket"

# systemd's catalog message IDs (systemd 252, src/systemd/sd-messages.h).
MSG_JOB_STARTING = "7d4958e842da4a758f6c1cdc7b36dcc5"  # "Starting ..."
MSG_JOB_STOPPING = "de5b426a63be47a7b6ac3eaac82e2f6f"  # "Stopping ..."
MSG_JOB_DONE_START = "39f53479d3a045ac8e11786248231fbf"  # "Started ..."
MSG_JOB_FAILED_START = "be02cf6855d2428ba40df7e9d022f03d"  # "Failed to start ..."
MSG_PROCESS_EXIT = "98e322203f7a4ed290d09fe03c09fe15"  # "Main process exited, code=..., status=..."
MSG_RESTART_SCHEDULED = "5eb03494b6584870a536b337290809b3"  # "Scheduled restart job, restart counter is at N."
MSG_UNIT_SUCCESS = "7ad2d189f7e94e70a38c781354912448"  # "Deactivated successfully." (a main process that exited 0)

SYSTEMD_EVENT_IDS = (MSG_JOB_STOPPING, MSG_JOB_DONE_START, MSG_JOB_FAILED_START, MSG_PROCESS_EXIT, MSG_RESTART_SCHEDULED, MSG_UNIT_SUCCESS)
EVENT_FIELDS = (
    "MESSAGE", "MESSAGE_ID", "SYSLOG_IDENTIFIER", "UNIT", "_PID", "_UID", "JOB_TYPE", "JOB_RESULT", "EXIT_CODE", "EXIT_STATUS", "N_RESTARTS",
    "HF_REASON", "HF_TYPE", "HF_POD", "HF_CONTAINER", "HF_OWNER", "HF_REVISION", "HF_COUNT",
)

# pod_logs follows for at most an hour: the task holds a connection to the node (and the play) meanwhile.
MAX_FOLLOW = 3600
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class EventError(ValueError):
    """A bad argument (a duration that is not one)."""


def follow_seconds(value):
    """pod_logs' ``follow``: seconds from 0 to MAX_FOLLOW (a task that reads logs must end; inf/nan are no time)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not 0 <= value <= MAX_FOLLOW:
        raise EventError(f"follow: must be a number of seconds from 0 to {MAX_FOLLOW}, got {value!r}")
    return float(value)


def parse_duration(text):
    """Seconds of a kubectl-style duration (``90s``, ``5m``, ``1h30m``, ``2d``; a bare number is seconds)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        if not math.isfinite(text) or text < 0:
            raise EventError(f"a duration is a finite number of seconds, 0 or more, got {text!r}")
        return float(text)
    value = str(text).strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", value):
        return float(value)
    parts = _DURATION.findall(value)
    if not value or "".join(n + u for n, u in parts) != value:
        raise EventError(f"not a duration: {text!r} (examples: 90s, 5m, 1h30m, 2d)")
    return sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)


# -- writing: one structured journal entry ---------------------------------------------------------


def journal_fields(reason, message, pod="", container="", owner="", event_type="Normal", **extra):
    """The fields of one hostfleet event entry (journald's native protocol: KEY=value, one per line)."""
    fields = {
        "MESSAGE": message,
        "SYSLOG_IDENTIFIER": EVENT_IDENTIFIER,
        "PRIORITY": "4" if event_type == "Warning" else "6",
        "HF_REASON": reason,
        "HF_TYPE": event_type,
        "HF_POD": pod,
        "HF_CONTAINER": container,
        "HF_OWNER": owner,
    }
    for key, value in extra.items():
        fields[f"HF_{key.upper()}"] = value
    return {k: str(v).replace("\n", " ") for k, v in fields.items() if v not in (None, "")}


def send(fields, path=JOURNAL_SOCKET):
    """Send one entry to journald; never raises (an event lost must not fail a converge)."""
    payload = "".join(f"{key}={value}\n" for key, value in fields.items()).encode("utf-8", "replace")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(payload, path)
        return True
    except OSError:
        return False


def log_converge(owner, created, deleted, updated, revisions):
    """The node's share of a controller step: one entry per pod created, deleted or updated, and one for the step."""
    for name in sorted(created):
        send(journal_fields("SuccessfulCreate", f"Created pod: {name}", name, owner=owner, revision=revisions.get(name) or ""))
    for name in sorted(deleted):
        send(journal_fields("SuccessfulDelete", f"Deleted pod: {name}", name, owner=owner))
    for name in sorted(updated):
        send(journal_fields("Updated", f"Updated pod: {name}", name, owner=owner, revision=revisions.get(name) or ""))
    if created or deleted or updated:
        parts = [f"{label} {', '.join(sorted(names))}" for label, names in (("created", created), ("deleted", deleted), ("updated", updated)) if names]
        send(journal_fields("RolloutStep", f"{owner}: {'; '.join(parts)}", owner=owner, created=",".join(sorted(created)), deleted=",".join(sorted(deleted))))


# -- reading: journal entries to events ------------------------------------------------------------


def _time(entry):
    try:
        return int(entry.get("__REALTIME_TIMESTAMP")) / 1e6
    except (TypeError, ValueError):
        return None


def _text(value):
    """journalctl prints a field that is not valid UTF-8 as a list of bytes."""
    if isinstance(value, list):
        return bytes(b for b in value if isinstance(b, int) and 0 <= b < 256).decode("utf-8", "replace")
    return "" if value is None else str(value)


def _signal_name(number):
    import signal

    try:
        return signal.Signals(int(number)).name
    except (TypeError, ValueError):
        return str(number)


def _container_unit(unit):
    """(pod, container) for a container's service unit; None for probe units and anything else."""
    parsed = render.parse_unit_name(unit or "")
    if not parsed or parsed[2] is not None or parsed[3] != "service":
        return None
    return parsed[0], parsed[1]


def trusted(entry):
    """Whether root wrote the entry: ``_UID`` is set by journald (fields starting with '_' cannot be sent), while any
    local user can send ``SYSLOG_IDENTIFIER=hostfleet-event`` and ``HF_*`` fields (``logger``, ``systemd-cat``)."""
    return _text(entry.get("_UID")) == "0"


def parse_entries(entries):
    """Kubernetes-like events from journal entries (dicts of ``journalctl -o json``), oldest first.

    Each event: ``time`` (epoch seconds), ``type`` (Normal/Warning), ``reason``, ``message``, ``pod``,
    ``container`` (may be empty), ``owner`` ("Kind/name" when the entry knows it), and ``count`` for restarts.
    A container's end that follows a stop the node asked for (``Stopping ...``) is part of that stop
    (reason ``Killing``), not a crash.
    """
    events = []
    stopping = set()  # units the node asked systemd to stop: their end is no crash
    exited = set()  # units whose main process just ended: systemd's "Failed to start" that follows says it again
    probe_kills = set()  # (pod, container) a probe is restarting: systemd's "Stopping" that follows says it again
    for entry in sorted(entries, key=lambda e: (_time(e) or 0.0, _text(e.get("__CURSOR")))):
        at = _time(entry)
        if at is None or not trusted(entry):
            continue
        if _text(entry.get("SYSLOG_IDENTIFIER")) == EVENT_IDENTIFIER:
            reason = _text(entry.get("HF_REASON"))
            if not reason:
                continue
            event = {
                "time": at,
                "type": _text(entry.get("HF_TYPE")) or "Normal",
                "reason": reason,
                "message": _text(entry.get("MESSAGE")),
                "pod": _text(entry.get("HF_POD")),
                "container": _text(entry.get("HF_CONTAINER")),
                "owner": _text(entry.get("HF_OWNER")),
            }
            if entry.get("HF_COUNT") is not None:
                try:
                    event["count"] = int(_text(entry.get("HF_COUNT")))
                except ValueError:
                    pass
            if entry.get("HF_REVISION"):
                event["revision"] = _text(entry.get("HF_REVISION"))
            if reason == "Killing" and event["container"]:
                probe_kills.add((event["pod"], event["container"]))
            events.append(event)
            continue
        if _text(entry.get("_PID")) != "1":
            continue  # only systemd itself speaks about units with these message IDs
        unit = _text(entry.get("UNIT"))
        target = _container_unit(unit)
        if target is None:
            continue
        pod, container = target
        message_id = _text(entry.get("MESSAGE_ID"))
        job_type = _text(entry.get("JOB_TYPE"))
        base = {"time": at, "pod": pod, "container": container, "owner": ""}
        if message_id == MSG_JOB_STOPPING or (message_id == MSG_JOB_STARTING and job_type == "stop"):
            stopping.add(unit)
            if target in probe_kills:
                probe_kills.discard(target)
                continue
            events.append(dict(base, type="Normal", reason="Killing", message=f"Stopping container {container}"))
        elif message_id == MSG_JOB_DONE_START and _text(entry.get("JOB_RESULT")) == "done":
            stopping.discard(unit)
            exited.discard(unit)
            events.append(dict(base, type="Normal", reason="Started", message=f"Started container {container}"))
        elif message_id == MSG_JOB_FAILED_START:
            if unit in exited:
                exited.discard(unit)
                continue
            events.append(dict(base, type="Warning", reason="Failed", message=f"Container {container} failed to start"))
        elif message_id == MSG_PROCESS_EXIT:
            if unit in stopping:
                continue
            exited.add(unit)
            code, status = _text(entry.get("EXIT_CODE")), _text(entry.get("EXIT_STATUS"))
            if code == "exited" and status == "0":
                events.append(dict(base, type="Normal", reason="Completed", message=f"Container {container} exited with code 0"))
            elif code == "exited":
                events.append(dict(base, type="Warning", reason="Error", message=f"Container {container} exited with code {status}"))
            else:
                signal_name = _signal_name(status)
                events.append(dict(base, type="Warning", reason="Killed", message=f"Container {container} was killed by signal {signal_name} ({code})"))
        elif message_id == MSG_UNIT_SUCCESS:
            if unit in stopping:
                stopping.discard(unit)
                continue
            events.append(dict(base, type="Normal", reason="Completed", message=f"Container {container} exited with code 0"))
        elif message_id == MSG_RESTART_SCHEDULED:
            try:
                count = int(_text(entry.get("N_RESTARTS")))
            except ValueError:
                count = None
            event = dict(base, type="Normal", reason="Restarted", message=f"Restarting container {container}" + (f" (restart {count})" if count else ""))
            if count is not None:
                event["count"] = count
            events.append(event)
    return events


def mark_rescheduled(events):
    """A pod created on one node after it was created on another (a StatefulSet identity, or any name reused)
    is rescheduled: its SuccessfulCreate becomes Rescheduled. ``events`` carry ``node``; returns a new list."""
    first_node = {}
    result = []
    for event in sorted(events, key=lambda e: e["time"]):
        if event.get("reason") == "SuccessfulCreate" and event.get("pod"):
            previous = first_node.get(event["pod"])
            if previous is not None and previous != event.get("node"):
                event = dict(event, reason="Rescheduled", message=f"Pod {event['pod']} rescheduled from {previous} to {event.get('node')}")
            first_node[event["pod"]] = event.get("node")
        result.append(event)
    return result


def log_lines(entries, units):
    """A pod's own output from journal entries: ``{time, container, message}`` in time order.

    Only what the container's processes wrote (the unit's stdout/stderr, or podman's journald log
    driver): systemd's messages about the unit, the hook's lines, hostfleet events and the podman
    CLI's lines are left out.
    """
    lines = []
    for entry in sorted(entries, key=lambda e: (_time(e) or 0.0, _text(e.get("__CURSOR")))):
        unit = _text(entry.get("_SYSTEMD_UNIT"))
        if unit not in units or _text(entry.get("_PID")) == "1":
            continue
        if _text(entry.get("SYSLOG_IDENTIFIER")) == EVENT_IDENTIFIER or "hostfleet-hook" in _text(entry.get("_CMDLINE")):
            continue
        comm = _text(entry.get("_COMM"))
        # An image container: the podman CLI's own lines (its events, the container ID that `run -d` prints) are not
        # the container's; the container's output comes from conmon's journald log driver, with CONTAINER_NAME.
        if comm == "podman" or (comm == "conmon" and not entry.get("CONTAINER_NAME")):
            continue
        at = _time(entry)
        if at is None:
            continue
        message = _text(entry.get("MESSAGE"))
        if entry.get("CONTAINER_NAME") and message.endswith("\n"):
            message = message[:-1]  # conmon passes the line with its newline; journald's stdout streams drop it
        lines.append({"time": at, "container": units[unit], "message": message})
    return lines


# -- reading the journal ---------------------------------------------------------------------------


def _journal(argv):
    """(entries, cursor of the last entry or None) of one journalctl -o json --show-cursor run."""
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    if done.returncode not in (0, 1):
        raise OSError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.decode('utf-8', 'replace').strip()}")
    text = done.stdout.decode("utf-8", "replace")
    cursor = None
    for line in text.splitlines():
        if line.startswith("-- cursor: "):
            cursor = line[len("-- cursor: ") :].strip()
    return parse_json_lines(text), cursor


def parse_json_lines(text):
    """journalctl -o json output (one object per line); anything else is skipped."""
    entries = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                entries.append(json.loads(line))
            except ValueError:
                continue
    return entries


def read_events(since=None, journalctl="journalctl"):
    """Events of every hostfleet pod on this host since ``since`` (epoch seconds), oldest first."""
    argv = [journalctl, "-o", "json", "--no-pager", "--quiet", f"--output-fields={','.join(EVENT_FIELDS)}"]
    if since is not None:
        argv.append(f"--since=@{since:.6f}")
    # Only the messages the parser reads (a probe every second makes systemd log its runs all the time).
    for message_id in SYSTEMD_EVENT_IDS:
        argv += [f"MESSAGE_ID={message_id}"]
    # Root's entries only (parse_entries checks again): other users can write entries with any other field.
    argv += ["_PID=1", "_UID=0", "+", f"SYSLOG_IDENTIFIER={EVENT_IDENTIFIER}", "_UID=0"]
    return parse_entries(_journal(argv)[0])


def read_logs(units, since=None, tail=None, follow=0.0, journalctl="journalctl"):
    """The output of ``units`` ({unit: container}): the last ``tail`` lines since ``since``, then the lines written
    within the next ``follow`` seconds. Returns lines in time order."""
    matches = []
    for unit in sorted(units):
        if matches:
            matches.append("+")
        matches.append(f"_SYSTEMD_UNIT={unit}")
    argv = [journalctl, "-o", "json", "--no-pager", "--quiet"]
    history = argv + ([f"--since=@{since:.6f}"] if since is not None else []) + ["--show-cursor"] + matches
    entries, cursor = _journal(history)
    lines = log_lines(entries, units)
    if tail is not None:
        lines = lines[-tail:] if tail > 0 else []
    if follow > 0:
        # From the last entry read on: nothing is missed or read twice between the two calls.
        start = [f"--after-cursor={cursor}"] if cursor else ["--lines=0"]
        lines += log_lines(_follow(argv + ["--follow"] + start + matches, follow), units)
    return lines


def _follow(argv, seconds):
    """The entries ``journalctl --follow`` prints within ``seconds``."""
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    chunks = []
    deadline = time.monotonic() + seconds
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                if not selector.select(timeout=left):
                    continue
                chunk = os.read(process.stdout.fileno(), 65536)
                if not chunk:
                    break
                chunks.append(chunk)
    finally:
        process.kill()
        process.wait()
        process.stdout.close()
    text = b"".join(chunks).decode("utf-8", "replace")
    if not text.endswith("\n"):
        text = text.rpartition("\n")[0]  # a line cut by the end of the follow
    return parse_json_lines(text)
