# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The few systemctl calls the node layer makes, each batched over many units.

State is read with ONE `list-units` for every hostfleet unit: `systemctl show`
per unit costs 4-5 ms each and grows with the number of pods.
"""

from __future__ import annotations

# The node layer batches systemctl calls itself, outside AnsibleModule (converge is also used without a module).
# pylint: disable=ansible-bad-function
import subprocess


class SystemctlError(RuntimeError):
    pass


def _run(args, check=True):
    done = subprocess.run(["systemctl"] + args, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    out = done.stdout.decode("utf-8", "replace")
    err = done.stderr.decode("utf-8", "replace")
    if check and done.returncode != 0:
        raise SystemctlError(f"systemctl {' '.join(args)} failed ({done.returncode}): {err.strip() or out.strip()}")
    return done.returncode, out, err


def parse_list_units(text):
    """{unit: (load, active, sub)} from `list-units --plain --no-legend --full` output."""
    states = {}
    for line in text.splitlines():
        fields = line.split(None, 4)
        if len(fields) >= 4:
            unit = fields[0].lstrip("●* ")
            states[unit] = (fields[1], fields[2], fields[3])
    return states


def list_units(pattern):
    _rc, out, _err = _run(["list-units", "--all", "--plain", "--no-legend", "--no-pager", "--full", pattern])
    return parse_list_units(out)


def daemon_reload():
    _run(["daemon-reload"])


def start(units):
    """Start (no wait: crash-loop backoff and postStart may take long; state is observed after)."""
    if units:
        _run(["start", "--no-block"] + sorted(units))


def restart(units):
    if units:
        _run(["restart", "--no-block"] + sorted(units))


def stop(units):
    """Stop and wait: the grace period and preStop run before the unit files go away."""
    if units:
        _run(["stop"] + sorted(units))


def reset_failed(units):
    if units:
        _run(["reset-failed"] + sorted(units), check=False)
