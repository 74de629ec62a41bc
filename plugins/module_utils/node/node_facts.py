# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What this host is, as raw facts: the source of its well-known and feature node labels.

Read on the host (stdlib only) from uname, ``/proc/cpuinfo``, ``/sys/bus/pci/devices``, ``/sys/class/dmi/id``
and ``/etc/os-release``; the controller turns them into labels (``plugin_utils/scheduler/well_known_labels.py``),
so the label rules change without touching hosts. None of this changes while the host is up (a kernel, a CPU or a
PCI device changes with a reboot, a hot-plug aside), so the facts are gathered once per boot and kept in
``/run/hostfleet/node-facts.json`` (volatile: a reboot reads them again; removing the file does too).

Every reader is best effort: a fact that cannot be read is left out (its label then is missing), never an error.
"""

from __future__ import annotations

import json
import os
import platform

from ansible_collections.hostfleet.workloads.plugins.module_utils.node import fileio

# Bumped when the facts' shape changes: a cache of another version is read again.
FACTS_VERSION = 1
CACHE_NAME = "node-facts.json"
RUN_DIR = "/run/hostfleet"
BOOT_ID = "/proc/sys/kernel/random/boot_id"
PCI_DEVICES = "/sys/bus/pci/devices"
DMI_PRODUCT_NAME = "/sys/class/dmi/id/product_name"
OS_RELEASE = ("/etc/os-release", "/usr/lib/os-release")
CPUINFO = "/proc/cpuinfo"
# Reading stops after the first processor's block: the flags are the same on every CPU, and on a large machine
# the whole file costs a system call per CPU.
_CPUINFO_MAX_LINES = 200
_MAX_PCI_DEVICES = 4096
_MAX_TEXT = 256


def _read(path):
    """The first line of a small text file, stripped; None when it cannot be read."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read(_MAX_TEXT).split("\n", 1)[0].strip()
    except OSError:
        return None


def _cpu(path=CPUINFO):
    """(flags, vendor) of the first processor: ``flags`` (x86) or ``Features`` (arm), ``vendor_id`` or ``CPU implementer``."""
    flags = None
    vendor = None
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle):
                if number >= _CPUINFO_MAX_LINES or (not line.strip() and flags is not None):
                    break
                key, sep, value = line.partition(":")
                if not sep:
                    continue
                key = key.strip()
                if key in ("flags", "Features") and flags is None:
                    flags = sorted(set(value.split()))
                elif key in ("vendor_id", "CPU implementer") and vendor is None:
                    vendor = value.strip()
    except OSError:
        pass
    return flags, vendor


def _pci(base=PCI_DEVICES):
    """The distinct (class, vendor) of the PCI devices: class as 6 hex digits, vendor as 4 (sysfs' ``0x030000``,
    ``0x10de``). None when the bus cannot be listed (no PCI, or no /sys)."""
    try:
        names = sorted(os.listdir(base))[:_MAX_PCI_DEVICES]
    except OSError:
        return None
    found = set()
    for name in names:
        device_class = _read(os.path.join(base, name, "class"))
        vendor = _read(os.path.join(base, name, "vendor"))
        if not device_class or not vendor:
            continue
        device_class = device_class.lower()
        vendor = vendor.lower()
        device_class = device_class[2:] if device_class.startswith("0x") else device_class
        vendor = vendor[2:] if vendor.startswith("0x") else vendor
        found.add((device_class, vendor))
    return [{"class": c, "vendor": v} for c, v in sorted(found)]


def _os_release(paths=OS_RELEASE):
    """``ID`` and ``VERSION_ID`` of os-release(5), unquoted."""
    for path in paths:
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                lines = handle.read(16384).splitlines()
        except OSError:
            continue
        result = {}
        for line in lines:
            key, sep, value = line.partition("=")
            if sep and key in ("ID", "VERSION_ID"):
                value = value.strip()
                if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                    value = value[1:-1]
                result[key] = value
        return result
    return None


def gather(root=""):
    """Read the facts now. ``root`` prefixes the /proc, /sys and /etc paths (tests)."""
    uname = platform.uname()
    facts = {"version": FACTS_VERSION, "os": (uname.system or "").lower() or None, "machine": uname.machine or None, "kernel": uname.release or None}
    flags, vendor = _cpu(root + CPUINFO)
    facts["cpu_flags"] = flags
    facts["cpu_vendor"] = vendor
    facts["pci_devices"] = _pci(root + PCI_DEVICES)
    facts["product_name"] = _read(root + DMI_PRODUCT_NAME)
    facts["os_release"] = _os_release(tuple(root + p for p in OS_RELEASE))
    return {key: value for key, value in facts.items() if value is not None}


def facts(run_dir=RUN_DIR, boot_id_path=BOOT_ID, gather_facts=gather):
    """The facts, from this boot's cache in ``run_dir`` when there is one, else gathered and cached.

    Never raises for want of a file: a cache that cannot be read is gathered again, one that cannot be written is
    not kept (the facts are still returned).
    """
    boot_id = _read(boot_id_path)
    path = os.path.join(run_dir, CACHE_NAME)
    if boot_id:
        try:
            with open(path, encoding="utf-8") as handle:
                cached = json.load(handle)
            if isinstance(cached, dict) and cached.get("boot_id") == boot_id and (cached.get("facts") or {}).get("version") == FACTS_VERSION:
                return cached["facts"]
        except (OSError, ValueError):
            pass
    gathered = gather_facts()
    if boot_id:
        try:
            fileio.ensure_dir(run_dir)
            fileio.write_atomic(path, json.dumps({"boot_id": boot_id, "facts": gathered}, sort_keys=True), 0o644, fsync=False)
        except OSError:
            pass  # a read-only /run: the facts are read again next time
    return gathered
