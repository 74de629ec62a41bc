"""Which lab instance a pytest-xdist worker uses: one lab per worker, so workers never share hosts.

Pure (no I/O): `worker_lab(environ)` returns the environment a worker must set before anything
reads it (labctl derives its lab dir, bridge hfbrK, addresses 10.77.K.0/24 and inventory from
HOSTFLEET_LAB_INSTANCE / HOSTFLEET_LAB_DIR at each call, and every ansible-playbook, ssh or
lab.py the tests start inherits the environment).

    HOSTFLEET_LAB_INSTANCES="6,7"   worker gwN uses the N-th instance of the list
    HOSTFLEET_LAB_INSTANCE=K        otherwise worker gwN uses instance K + N
"""

from __future__ import annotations

import re
from collections.abc import Mapping

MAX_INSTANCE = 254


class WorkerLabError(ValueError):
    """The environment names no usable lab instance for this worker."""


def default_lab_dir(instance: int) -> str:
    """labctl.lab_dir() of an instance when HOSTFLEET_LAB_DIR is not set (instance 0 has no suffix)."""
    return f"/var/tmp/hostfleet-lab{instance or ''}"


def worker_index(worker: str) -> int:
    """gw0 -> 0, gw1 -> 1 (pytest-xdist's PYTEST_XDIST_WORKER)."""
    match = re.fullmatch(r"gw(\d+)", worker)
    if not match:
        raise WorkerLabError(f"PYTEST_XDIST_WORKER must look like gw0, gw1..., not {worker!r}")
    return int(match.group(1))


def _instance(text: str, name: str) -> int:
    text = text.strip()
    if not text.isdigit() or int(text) > MAX_INSTANCE:
        raise WorkerLabError(f"{name} must name lab instances 0..{MAX_INSTANCE}, not {text!r}")
    return int(text)


def worker_lab(environ: Mapping[str, str]) -> dict[str, str]:
    """The HOSTFLEET_LAB_INSTANCE/HOSTFLEET_LAB_DIR this process must use; {} outside an xdist worker.

    A HOSTFLEET_LAB_DIR that is set is kept only for the base instance (the one scripts/test locked, or
    the user's own dir); every other worker's lab lives in its instance's default dir.
    """
    worker = environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return {}
    index = worker_index(worker)
    listed = environ.get("HOSTFLEET_LAB_INSTANCES", "").strip()
    base = _instance(environ.get("HOSTFLEET_LAB_INSTANCE", "0") or "0", "HOSTFLEET_LAB_INSTANCE")
    if listed:
        instances = [_instance(part, "HOSTFLEET_LAB_INSTANCES") for part in listed.split(",")]
        if len(set(instances)) != len(instances):
            raise WorkerLabError(f"HOSTFLEET_LAB_INSTANCES lists an instance twice: {listed!r}")
        if index >= len(instances):
            raise WorkerLabError(f"worker {worker} has no lab: HOSTFLEET_LAB_INSTANCES={listed!r} names {len(instances)}")
        instance = instances[index]
    else:
        instance = base + index
        if instance > MAX_INSTANCE:
            raise WorkerLabError(f"worker {worker} has no lab: instance {base} + {index} is beyond {MAX_INSTANCE}")
    given_dir = environ.get("HOSTFLEET_LAB_DIR", "")
    lab_dir = given_dir if given_dir and instance == base else default_lab_dir(instance)
    return {"HOSTFLEET_LAB_INSTANCE": str(instance), "HOSTFLEET_LAB_DIR": lab_dir}
