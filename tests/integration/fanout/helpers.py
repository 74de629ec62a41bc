"""Helpers for tests/integration/test_fanout.py: run probe.yml (the test-only fleet_probe action) and read its report.

The ansible-playbook used is the one next to the running Python (so the venv that runs pytest is the
ansible-core under test); tests/conftest.py has already exposed the repo as hostfleet.workloads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROBE = HERE / "probe.yml"
REPO = HERE.parents[2]
BIN = Path(sys.executable).parent
READY_FLAG = Path("/tmp/hostfleet-lab-ready")
LAB_SCRIPT = REPO / "tests" / "lab" / "lab.py"


@dataclass
class ProbeRun:
    rc: int
    stdout: str
    stderr: str
    report: dict

    @property
    def results(self) -> dict:
        return self.report.get("results", {})

    def explain(self) -> str:
        return f"rc={self.rc}\n--- stdout\n{self.stdout[-6000:]}\n--- stderr\n{self.stderr[-4000:]}\n--- results\n{json.dumps(self.results, indent=1)[:6000]}"


def ansible_version() -> str:
    out = subprocess.run([str(BIN / "ansible"), "--version"], capture_output=True, text=True, check=True).stdout
    return out.split("[core ", 1)[1].split("]", 1)[0]


def run_probe(tmp: Path, inventory: str | Path, extra_vars: dict | None = None, args: list[str] | None = None,
              env: dict | None = None, timeout: float = 600) -> ProbeRun:
    """Run probe.yml once; ``inventory`` is a path or INI text. Returns the fleet_probe report (empty if none)."""
    tmp.mkdir(parents=True, exist_ok=True)
    if isinstance(inventory, str):
        inv = tmp / ("inventory.yml" if inventory.lstrip().startswith(("#", "all:")) else "inventory.ini")
        inv.write_text(inventory)
    else:
        inv = inventory
    dest = tmp / f"report-{time.monotonic_ns()}.json"
    evars = dict(extra_vars or {}, probe_dest=str(dest))
    cmd = [str(BIN / "ansible-playbook"), "-i", str(inv), str(PROBE), "-e", json.dumps(evars), *(args or [])]
    run_env = dict(os.environ, ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
                   ANSIBLE_RETRY_FILES_ENABLED="False", ANSIBLE_LOCAL_TEMP=str(tmp / "ansible-local"))
    run_env.update(env or {})
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=run_env, stdin=subprocess.DEVNULL, cwd=str(tmp),
                          check=False)
    report = json.loads(dest.read_text()) if dest.exists() else {}
    return ProbeRun(done.returncode, done.stdout, done.stderr, report)


def lab_inventory() -> Path | None:
    """Bring the shared lab up (idempotent, never down) and return its inventory; None when there is no lab here.

    While the lab is being built by someone else, set HOSTFLEET_LAB_WAIT=<seconds> to wait for READY_FLAG."""
    wait = float(os.environ.get("HOSTFLEET_LAB_WAIT", "0"))
    deadline = time.monotonic() + wait
    while wait and not READY_FLAG.exists() and time.monotonic() < deadline:
        time.sleep(min(30.0, max(0.0, deadline - time.monotonic())))
    if wait and not READY_FLAG.exists():
        return None
    try:
        done = subprocess.run(["python3", str(LAB_SCRIPT), "up", "3"], capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL,
                              check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    path = Path(done.stdout.strip().splitlines()[-1])
    return path if path.exists() else None


def lab_hosts(inventory: Path) -> dict[str, dict[str, str]]:
    """{name: {var: value}} of the lab inventory's host lines (the lab writes one host per line)."""
    import shlex

    hosts = {}
    for line in inventory.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "[", ";")):
            continue
        name, *pairs = shlex.split(line)
        hosts[name] = dict(p.split("=", 1) for p in pairs)
    return hosts


def host_line(name: str, hostvars: dict[str, str]) -> str:
    return name + "".join(f" {k}={_quote(v)}" for k, v in hostvars.items())


def _quote(value: str) -> str:
    if not any(c in value for c in " '\""):
        return value
    return f'"{value}"' if "'" in value else f"'{value}'"
