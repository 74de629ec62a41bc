"""A stdout callback for the tests: the whole run as one JSON document (ansible-core ships no json callback)."""

from __future__ import annotations

DOCUMENTATION = """
name: hf_json
type: stdout
short_description: The playbook run as JSON, for the integration tests
description: The whole run (plays, tasks with durations, per-host results, stats) printed as one JSON document.
"""

import json
import time

from ansible.plugins.callback import CallbackBase


def _plain(value):
    """2.19+ may hand over templated/tagged types and summary objects: make everything plain JSON."""
    return json.loads(json.dumps(value, default=str))


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "hf_json"

    def __init__(self, display=None):
        super().__init__(display)
        self.plays = []

    def v2_playbook_on_play_start(self, play):
        self.plays.append({"play": {"name": play.get_name()}, "tasks": []})

    def _task_start(self, task, **_kwargs):
        self.plays[-1]["tasks"].append({"task": {"name": task.get_name(), "duration": {"start": time.time(), "end": None}}, "hosts": {}})

    v2_playbook_on_task_start = _task_start
    v2_playbook_on_handler_task_start = _task_start

    def _record(self, result, **flags):
        entry = self.plays[-1]["tasks"][-1]
        data = _plain(result._result)
        data.update(flags)
        entry["hosts"][result._host.get_name()] = data
        entry["task"]["duration"]["end"] = time.time()

    def v2_runner_on_ok(self, result, **_kwargs):
        self._record(result)

    def v2_runner_on_failed(self, result, ignore_errors=False, **_kwargs):
        self._record(result, failed=True)

    def v2_runner_on_unreachable(self, result, **_kwargs):
        self._record(result, unreachable=True)

    def v2_runner_on_skipped(self, result, **_kwargs):
        self._record(result, skipped=True)

    def v2_runner_item_on_ok(self, result, **_kwargs):
        pass

    def v2_playbook_on_stats(self, stats):
        summary = {host: stats.summarize(host) for host in sorted(stats.processed)}
        self._display.display(json.dumps({"plays": self.plays, "stats": summary}, sort_keys=True, default=str))
