"""tests/integration/service_sampler.py offline: its client and pod server on loopback, and the report's figures."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from integration.service_sampler import CLIENT, SERVER, Request, ServiceReport  # noqa: E402


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_client_counts_answers_and_refusals_and_ends_with_its_stdin(tmp_path):
    port = free_port()
    pod = f"unit-{os.getpid()}"
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port), "0"], env=dict(os.environ, POD_NAME=pod, VERSION="v7", MARKER_DIR=str(tmp_path)))
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        client = subprocess.Popen([sys.executable, "-u", "-c", CLIENT, "127.0.0.1", str(port), "/", "0.1", "1"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        time.sleep(0.65)
        server.kill()
        server.wait()
        time.sleep(0.45)
        client.stdin.close()
        lines = [json.loads(line) for line in client.stdout]
        assert client.wait(timeout=5) == 0
    finally:
        server.kill()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ready", "started"]
    answered = [line for line in lines if line["ok"]]
    refused = [line for line in lines if not line["ok"]]
    assert len(answered) >= 3 and len(refused) >= 2, lines
    assert {(line["pod"], line["version"]) for line in answered} == {(pod, "v7")}
    # The request in flight when the server is killed may be reset rather than refused (seen on a loaded machine).
    assert sum("ConnectionRefusedError" in line["error"] for line in refused) >= len(refused) - 1, refused
    assert all(any(kind in line["error"] for kind in ("ConnectionRefusedError", "ConnectionResetError", "RemoteDisconnected")) for line in refused), refused
    # One request every 0.1 s, numbered in order of sending; the answers all came before the refusals.
    seqs = sorted(line["seq"] for line in lines)
    assert seqs == list(range(len(lines)))
    assert max(line["t"] for line in answered) < min(line["t"] for line in refused)


outcomes = st.lists(st.tuples(st.sampled_from(["node1", "node2"]), st.booleans()), max_size=60)


def report_of(outcomes_list):
    requests = [Request(host, i, 100.0 + i * 0.2, ok, pod="p" if ok else None) for i, (host, ok) in enumerate(outcomes_list)]
    return ServiceReport(sorted(requests, key=lambda r: (r.host, r.t)), 100.0, 100.0 + len(requests) * 0.2, hosts=["node1", "node2"])


@given(outcomes)
def test_longest_failure_run_is_the_longest_streak_on_one_host(outcomes_list):
    report = report_of(outcomes_list)
    longest = 0
    for host in ("node1", "node2"):
        streak = 0
        for h, ok in outcomes_list:
            if h != host:
                continue
            streak = 0 if ok else streak + 1
            longest = max(longest, streak)
    run, seconds, host = report.longest_failure_run
    assert run == longest
    assert (host is None) == (longest == 0)
    assert seconds >= 0.0


@given(outcomes, st.sampled_from([0.5, 1.0, 3.0]))
def test_windows_cover_every_request_once_and_success_rate_matches(outcomes_list, seconds):
    report = report_of(outcomes_list)
    windows = report.windows(seconds)
    assert sum(total for _start, total, _failed in windows) == len(outcomes_list)
    assert sum(failed for _start, _total, failed in windows) == sum(1 for _h, ok in outcomes_list if not ok)
    if outcomes_list:
        assert abs(report.success_rate - sum(1 for _h, ok in outcomes_list if ok) / len(outcomes_list)) < 1e-9


def test_tails_after_a_fault():
    t0 = 100.0
    requests = [
        Request("node1", 0, t0 - 0.5, False),  # before the fault: not counted
        Request("node1", 1, t0 + 0.3, False),
        Request("node1", 2, t0 + 1.1, True, pod="a"),
        Request("node2", 0, t0 + 0.7, True, pod="a"),
        Request("node2", 1, t0 + 1.5, True, pod="b"),
        Request("node2", 2, t0 + 20, False),  # beyond the horizon
    ]
    report = ServiceReport(requests, t0 - 1, t0 + 30, hosts=["node1", "node2"])
    assert {h: round(t, 6) for h, t in report.last_failure_after(t0, horizon=10).items()} == {"node1": 0.3, "node2": 0.0}
    assert {h: round(t, 6) for h, t in report.last_answer_by("a", t0).items()} == {"node1": 1.1, "node2": 0.7}
    assert report.answered_by(t0, t0 + 2) == {"a": 2, "b": 1}
    try:
        report.part(t0, t0 + 2).assert_success(0.999, window=5.0, min_requests=1)
    except AssertionError as exc:
        assert "windows" in str(exc)
    else:
        raise AssertionError("a window with a failure passed a 99.9 % budget")
