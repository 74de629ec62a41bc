"""What the node layer writes to the journal for workload_info's events: converge steps and the pod hook's lines,
read back by events.parse_entries exactly as journald would store them (native protocol: KEY=value lines)."""

from __future__ import annotations

import pytest
from node_helpers import MAIN, validated

from ansible_collections.hostfleet.workloads.plugins.module_utils.node import converge, events, hook, systemctl


def as_entry(payload, at):
    entry = dict(line.split("=", 1) for line in payload.decode().splitlines())
    entry["__REALTIME_TIMESTAMP"] = str(int(at * 1e6))
    entry["_UID"] = "0"  # journald adds the sender's uid: the node module and the hook run as root
    return entry


@pytest.fixture
def sent(monkeypatch):
    """Every entry sent, as journald would store it (time = order of sending)."""
    entries = []

    def send(fields, path=events.JOURNAL_SOCKET):
        payload = "".join(f"{k}={v}\n" for k, v in fields.items()).encode()
        entries.append(as_entry(payload, len(entries) + 1))
        return True

    monkeypatch.setattr(events, "send", send)
    return entries


def test_a_converge_step_logs_each_pod_and_the_step(sent):
    events.log_converge("Deployment/web", ["web-b", "web-a"], ["web-old"], [], {"web-a": "h2", "web-b": "h2"})
    found = events.parse_entries(sent)
    assert [(e["reason"], e["pod"], e.get("revision")) for e in found] == [
        ("SuccessfulCreate", "web-a", "h2"),
        ("SuccessfulCreate", "web-b", "h2"),
        ("SuccessfulDelete", "web-old", None),
        ("RolloutStep", "", None),
    ]
    assert all(e["owner"] == "Deployment/web" for e in found)
    assert found[-1]["message"] == "Deployment/web: created web-a, web-b; deleted web-old"


def test_nothing_done_logs_nothing(sent):
    events.log_converge("Deployment/web", [], [], [], {})
    assert sent == []


def test_converge_apply_logs_the_pods_it_created(tmp_path, monkeypatch, sent):
    host = converge.Host(str(tmp_path / "state"), unit_dir=str(tmp_path / "units"), wants_dir=str(tmp_path / "wants"), run_dir=str(tmp_path / "run"))
    for verb in ("daemon_reload", "start", "restart", "stop", "reset_failed"):
        monkeypatch.setattr(systemctl, verb, lambda *args: None)
    pod = {"name": "web-1", "revision": "r1", "spec": {"containers": [MAIN]}}
    plan = converge.plan(host, "Deployment", "web", validated(pod), "present", "/usr/bin/python3")
    converge.apply(host, plan)
    assert [(e["reason"], e["pod"], e["owner"], e.get("revision")) for e in events.parse_entries(sent)] == [
        ("SuccessfulCreate", "web-1", "Deployment/web", "r1"),
        ("RolloutStep", "", "Deployment/web", None),
    ]
    sent.clear()
    converge.apply(host, converge.plan(host, "Deployment", "web", validated(pod), "present", "/usr/bin/python3"))
    assert sent == []  # a converge that changes nothing is no event


class FakeSocket:
    sent = []

    def __init__(self, *args):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def sendto(self, payload, path):
        FakeSocket.sent.append((payload, path))


def test_the_hook_writes_events_the_parser_reads(monkeypatch):
    FakeSocket.sent = []
    monkeypatch.setattr(hook.socket, "socket", FakeSocket)
    hook.event("Unhealthy", "web-1", "main", "Liveness probe failed (1/3)", "Warning")
    hook.event("BackOff", "web-1", "main", "Back-off 10s restarting failed container main", "Warning")
    assert {path for _payload, path in FakeSocket.sent} == {events.JOURNAL_SOCKET}
    found = events.parse_entries([as_entry(payload, i + 1) for i, (payload, _path) in enumerate(FakeSocket.sent)])
    assert [(e["reason"], e["type"], e["pod"], e["container"], e["message"]) for e in found] == [
        ("Unhealthy", "Warning", "web-1", "main", "Liveness probe failed (1/3)"),
        ("BackOff", "Warning", "web-1", "main", "Back-off 10s restarting failed container main"),
    ]


def test_the_hook_never_fails_for_a_lost_event(monkeypatch):
    class Broken(FakeSocket):
        def sendto(self, payload, path):
            raise OSError("no journal")

    monkeypatch.setattr(hook.socket, "socket", Broken)
    hook.event("BackOff", "web-1", "main", "x")
