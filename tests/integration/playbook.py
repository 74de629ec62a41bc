"""Run ansible-playbook against the lab and read its results as data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from lab import labctl

BIN = Path(sys.executable).parent
CALLBACKS = Path(__file__).resolve().parent / "callback_plugins"


@dataclass
class PlaybookRun:
    rc: int
    stdout: str
    stderr: str
    data: dict = field(default_factory=dict)

    def results(self, task_name):
        """{host: result} of the task with this name (the last play that has it)."""
        found = {}
        for play in self.data.get("plays", []):
            for task in play.get("tasks", []):
                if task["task"]["name"] == task_name:
                    found = task["hosts"]
        if not found:
            raise KeyError(f"no task named {task_name!r} in the run:\n{self.stdout[-3000:]}\n{self.stderr[-3000:]}")
        return found

    def result(self, task_name, host):
        return self.results(task_name)[host]


class Lab:
    def __init__(self, inventory: Path, hosts: list[str]):
        self.inventory = inventory
        self.hosts = hosts

    def ssh(self, host, command, check=True, timeout=30):
        done = labctl.ssh(host, command, check=False, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"{host}: {command!r} failed ({done.returncode}): {done.stdout}{done.stderr}")
        return done

    def run(self, tasks, hosts="lab", check=False, diff=False, extra_args=(), gather_facts=False, timeout=600, env=None, host_vars=None) -> PlaybookRun:
        """Run one play of these tasks with the hf_json callback; every task must have a name.

        ``host_vars`` ({host: {var: value}}) are added to the lab's inventory for this run only.
        """
        play = [{"name": "test", "hosts": hosts, "gather_facts": gather_facts, "tasks": tasks}]
        with tempfile.TemporaryDirectory(prefix="hf-play-") as tmp:
            path = Path(tmp) / "play.yml"
            path.write_text(yaml.safe_dump(play, sort_keys=False))
            inventory = self.inventory
            if host_vars:
                inventory = Path(tmp) / "inventory" / "hosts.ini"
                (inventory.parent / "host_vars").mkdir(parents=True)
                inventory.write_text(self.inventory.read_text())
                for host, variables in host_vars.items():
                    (inventory.parent / "host_vars" / f"{host}.yml").write_text(yaml.safe_dump(variables))
            args = [str(BIN / "ansible-playbook"), "-i", str(inventory), str(path)]
            if check:
                args.append("--check")
            if diff:
                args.append("--diff")
            args += list(extra_args)
            run_env = dict(
                os.environ,
                ANSIBLE_STDOUT_CALLBACK="hf_json",
                ANSIBLE_CALLBACK_PLUGINS=str(CALLBACKS),
                ANSIBLE_HOST_KEY_CHECKING="False",
                ANSIBLE_PIPELINING="True",
                ANSIBLE_FORCE_COLOR="0",
                ANSIBLE_NOCOLOR="1",
            )
            run_env.update(env or {})
            done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=run_env, stdin=subprocess.DEVNULL, check=False)
        try:
            data = json.loads(done.stdout[done.stdout.index("{") :])
        except ValueError:
            data = {}
        return PlaybookRun(done.returncode, done.stdout, done.stderr, data)


def dedent(text):
    return textwrap.dedent(text).lstrip()
