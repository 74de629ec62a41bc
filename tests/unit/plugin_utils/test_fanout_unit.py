"""Fan-out internals without hosts: the fork/pipe round, timeouts, crashes, result conversion, CLI passwords.

The real thing (ansible-playbook, ssh, become) is tests/integration/test_fanout.py.
"""

from __future__ import annotations

import os
import time
from types import SimpleNamespace

import pytest

from ansible_collections.hostfleet.workloads.plugins.plugin_utils import _fanout

pytestmark = [pytest.mark.both_versions]


class FakeHandler:
    """Stands in for the ansible.legacy.normal carrier: ``_execute_module`` runs ``behaviour(args)`` in the child."""

    def __init__(self, behaviour):
        self.behaviour = behaviour
        self._task = SimpleNamespace(check_mode=False)
        self._connection = SimpleNamespace(_shell=SimpleNamespace(tmpdir=None), close=lambda: None)

    def _low_level_execute_command(self, *args, **kwargs):
        return {"rc": 0, "stdout": '{"warnings": [{"event": {"msg": "from the wire"}}]}', "stderr": ""}

    def _execute_module(self, module_name=None, module_args=None, task_vars=None):
        self._low_level_execute_command()
        return self.behaviour(module_name, module_args, self._task.check_mode)

    def _remove_tmp_path(self, path):  # pragma: no cover
        pass


def _fleet(behaviours, forks=None):
    fleet = object.__new__(_fanout.Fleet)
    fleet.hosts = list(behaviours)
    fleet._forks = forks
    fleet._prepared = {}
    jobs = []
    for host, behaviour in behaviours.items():
        prep = _fanout._Prepared(SimpleNamespace(name=host), {}, None)
        prep.handler = FakeHandler(behaviour)
        prep.module_vars = {}
        fleet._prepared[host] = prep
        jobs.append((host, prep, {"n": host}))
    return fleet, jobs


def ok(module_name, args, check_mode):
    return {"changed": False, "args": args, "check_mode": check_mode, "pid": os.getpid(), "module": module_name, "invocation": {"module_args": args}}


def slow(module_name, args, check_mode):
    time.sleep(30)
    return {}  # pragma: no cover


def crash(module_name, args, check_mode):
    os._exit(3)


def unreachable(module_name, args, check_mode):
    raise _fanout.AnsibleConnectionFailure("no route to host")


def boom(module_name, args, check_mode):
    raise ValueError("bad value")


def test_round_results_per_host_in_parallel():
    fleet, jobs = _fleet({"a": ok, "b": ok, "c": unreachable, "d": boom, "e": crash})
    results = fleet._fan_out(jobs, "x.y.z", check_mode=True, timeout=None)
    assert results["a"]["args"] == {"n": "a"} and results["a"]["check_mode"] is True and results["a"]["module"] == "x.y.z"
    assert results["a"]["pid"] != os.getpid() and results["a"]["pid"] != results["b"]["pid"]
    assert "invocation" not in results["a"]
    assert results["a"]["warnings"] == ["from the wire"]
    assert results["c"] == {"unreachable": True, "msg": "no route to host", "warnings": ["from the wire"]}
    assert results["d"]["failed"] is True and "bad value" in results["d"]["msg"]
    assert results["e"]["failed"] is True and "status 3" in results["e"]["msg"]


def test_timeout_kills_only_the_slow_hosts():
    fleet, jobs = _fleet({"fast": ok, "slow": slow})
    started = time.monotonic()
    results = fleet._fan_out(jobs, "m", check_mode=None, timeout=1.5)
    assert time.monotonic() - started < 10
    assert results["fast"]["args"] == {"n": "fast"}
    assert results["slow"]["failed"] is True and results["slow"]["timedout"] is True


def test_forks_limit_still_runs_everyone():
    fleet, jobs = _fleet({f"h{i}": ok for i in range(7)}, forks=2)
    results = fleet._fan_out(jobs, "m", check_mode=None, timeout=None)
    assert sorted(results) == [f"h{i}" for i in range(7)] and all(r["args"] == {"n": h} for h, r in results.items())


def test_large_results_through_the_pipe():
    big = "x" * (3 << 20)
    fleet, jobs = _fleet({"a": lambda *a: {"data": big}, "b": lambda *a: {"data": big[:10]}})
    results = fleet._fan_out(jobs, "m", check_mode=None, timeout=None)
    assert results["a"]["data"] == big and results["b"]["data"] == big[:10]


def test_plain_types():
    class Tagged(str):
        pass

    class Summary:
        def __init__(self, msg, cause=None):
            self.event = SimpleNamespace(msg=msg, help_text=None, formatted_traceback="Traceback: x", chain=SimpleNamespace(event=cause) if cause else None)

    value = {Tagged("k"): [Tagged("v"), (1, 2.5, True, None)], "s": {3}, "b": b"\xff", "w": Summary("top", SimpleNamespace(msg="cause"))}
    plain = _fanout._plain(value)
    assert plain == {"k": ["v", [1, 2.5, True, None]], "s": [3], "b": "\ufffd", "w": "top: cause"}
    assert {type(next(iter(plain))), type(plain["k"][0])} == {str}  # tags dropped
    assert _fanout._summary_text(Summary("top"), traceback=True) == "Traceback: x"
    assert _fanout._summary_text({"event": {"msg": "m", "help_text": "h"}}) == "m: h"


def test_deprecation_shapes():
    wire = {"event": {"msg": "old"}, "deprecator": {"resolved_name": "ns.coll"}, "version": "2.0.0"}
    legacy = {"msg": "older", "version": "3.0.0", "collection_name": "a.b"}
    assert _fanout._deprecation(wire) == {"msg": "old", "version": "2.0.0", "date": None, "collection_name": "ns.coll"}
    assert _fanout._deprecation(legacy) == {"msg": "older", "version": "3.0.0", "date": None, "collection_name": "a.b"}


def _action(password="", become_pass=""):
    return SimpleNamespace(_play_context=SimpleNamespace(password=password, become_pass=become_pass), _connection=SimpleNamespace(become=None))


def test_cli_passwords_taken_when_first_host_has_none(monkeypatch):
    monkeypatch.setattr(_fanout.context, "CLIARGS", {})
    assert _fanout._cli_passwords(_action("c", "b"), {"ansible_user": "u"}) == ("c", "b")
    assert _fanout._cli_passwords(_action(), {}) == (None, None)


def test_cli_passwords_not_taken_from_first_host_vars(monkeypatch, tmp_path):
    # the first host's own password is on the action's PlayContext: never hand it to the others
    monkeypatch.setattr(_fanout.multiprocessing, "current_process", SimpleNamespace)
    monkeypatch.setattr(_fanout.context, "CLIARGS", {})
    first = {"ansible_password": "mine", "ansible_become_password": "mine too"}
    assert _fanout._cli_passwords(_action("mine", "mine too"), first) == (None, None)
    # ...but the CLI password file can be read again
    pwfile = tmp_path / "pw"
    pwfile.write_text("from-cli\n")
    monkeypatch.setattr(_fanout.context, "CLIARGS", {"become_password_file": str(pwfile)})
    assert _fanout._cli_passwords(_action("mine", "mine too"), first) == (None, "from-cli")


def test_children_do_not_return_the_warnings_the_parent_displayed():
    # 2.21 keeps a task's warnings in a context that fork copies into every child (2.19 has none).
    display_utils = pytest.importorskip("ansible._internal._display_utils")
    from ansible.utils.display import Display

    def seen(module_name, args, check_mode):
        context = display_utils.DeferredWarningContext.current(optional=True)
        return {"changed": False, "inherited": len(context.get_warnings()) if context else None}

    with display_utils.DeferredWarningContext(variables={}) as context:
        Display().warning("said by the parent before the round")
        assert len(context.get_warnings()) == 1
        fleet, jobs = _fleet({"a": seen, "b": seen})
        results = fleet._fan_out(jobs, "m", check_mode=None, timeout=None)
        assert len(context.get_warnings()) == 1  # the parent's own context is untouched
    assert results["a"]["inherited"] == 0 and results["b"]["inherited"] == 0
