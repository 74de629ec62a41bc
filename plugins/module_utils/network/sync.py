# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The network sync of a host: ``hostfleet-net sync STATE_DIR`` (docs/network.md, "Service data path").

A standalone stdlib script, installed as ``<state_dir>/bin/hostfleet-net`` (install_script) with the collection
modules it imports embedded, as the pod hook is. Under a lock it reads node.json (absent: nothing to do), the Service
files, the local pod records and their live readiness (the hook's runtime files); renders the whole nftables table
``ip hostfleet`` (nftables.py, pure) and replaces it in one ``nft -f`` transaction only when it changed; then
refreshes the cluster DNS records (dns.py). Run by the pod hook on every readiness transition, by the pod converge
after it applied, by the service task and by the cluster_network task (run_sync), and at boot. Cheap when nothing
changed: a few small reads and one compare, no ``nft`` call.
"""

from __future__ import annotations

# A standalone script (also a library for the node code): print, sys.exit and subprocess are its tools.
# pylint: disable=ansible-bad-function
import fcntl
import importlib
import json
import os
import re
import sys

from ansible_collections.hostfleet.workloads.plugins.module_utils.network import config, dns, nftables, services

SCRIPT_NAME = "hostfleet-net"
RUN_DIR = "/run/hostfleet"
LOCK_FILE = "sync.lock"
# What the last successful sync loaded into the kernel; in /run so that a reboot (an empty ruleset) loads it again.
APPLIED_FILE = "nftables.applied"
NFT = "nft"


def script_path(state_dir):
    return os.path.join(state_dir, "bin", SCRIPT_NAME)


def applied_path(run_dir=RUN_DIR):
    return os.path.join(run_dir, "network", APPLIED_FILE)


def _read_json(path):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


# The mark the pod converge puts in a container's runtime dir before it stops a pod it deletes.
TERMINATING = "terminating"


def container_ready(rdir, container):
    """Live readiness of one container from the hook's runtime files (the rule of node/status.py, without systemd:
    the hook's post/exited keep ``running`` current, its probes keep ``ready``/``startup_ok``; a pod the converge is
    deleting is marked ``terminating`` before its containers are stopped, and is no longer ready)."""
    status = _read_json(os.path.join(rdir, "status.json")) or {}
    if not status.get("running") or status.get("fenced"):
        return False, False
    if os.path.exists(os.path.join(rdir, TERMINATING)):
        return True, False
    if container.get("readinessProbe"):
        return True, os.path.exists(os.path.join(rdir, "ready"))
    if container.get("startupProbe"):
        return True, os.path.exists(os.path.join(rdir, "startup_ok"))
    return True, True


def namespace_of(pod):
    # The node layer's pod name is <namespace>_<name> outside 'default' (node/namespaces.py; '_' is in no DNS label).
    namespace, sep, _rest = pod.partition("_")
    return namespace if sep else "default"


def local_pods(state_dir, node_config, run_dir=RUN_DIR):
    """The pods of this host with an address: [{pod, namespace, ip, ready, running, labels, hostname, subdomain, spec,
    host_network}], sorted by name. A pod on the host's network has the node's address."""
    base = os.path.join(state_dir, "pods")
    try:
        names = sorted(os.listdir(base))
    except FileNotFoundError:
        return []
    result = []
    for name in names:
        record = _read_json(os.path.join(base, name, "pod.json"))
        if not isinstance(record, dict) or not isinstance(record.get("spec"), dict):
            continue
        spec = record["spec"]
        network = record.get("network") if isinstance(record.get("network"), dict) else None
        running, ready = True, True
        # The app containers and the sidecars (init containers with restartPolicy Always: node/init_containers.py).
        sidecars = [c for c in spec.get("initContainers") or [] if isinstance(c, dict) and c.get("restartPolicy") == "Always"]
        for container in (spec.get("containers") or []) + sidecars:
            if not isinstance(container, dict) or not isinstance(container.get("name"), str):
                running = ready = False
                continue
            c_running, c_ready = container_ready(os.path.join(run_dir, "pods", name, container["name"]), container)
            running, ready = running and c_running, ready and c_ready
        if not spec.get("containers"):
            running = ready = False
        result.append(
            {
                "pod": name,
                "namespace": record.get("namespace") or namespace_of(name),
                "ip": network.get("ip") if network else node_config["address"],
                "ready": ready,
                "running": running,
                "labels": record.get("labels") or {},
                "hostname": spec.get("hostname"),
                "subdomain": spec.get("subdomain"),
                "spec": spec,
                "host_network": network is None,
            }
        )
    return result


def _apply(text, nft=NFT):
    import subprocess  # only when something changed: a no-op sync does without its import time

    done = subprocess.run([nft, "-f", "-"], input=text, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"nft -f failed ({done.returncode}): {done.stderr.strip()}")


def _write_atomic(path, text):
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def _table_loaded(nft=NFT):
    """Whether the kernel holds our table (something else, such as `nft flush ruleset`, may have removed it)."""
    import subprocess

    done = subprocess.run([nft, "list", "table", "ip", "hostfleet"], stdin=subprocess.DEVNULL, capture_output=True, check=False)
    return done.returncode == 0


def sync(state_dir, run_dir=RUN_DIR, nft=NFT, verify=False):
    """One sync of this host's Service data path and DNS records; returns {"changed", "nftables_changed",
    "dns_changed", "problems"}. Raises (config.NetworkConfigError, services.ServiceFileError, RuntimeError) when
    node.json or a Service file is bad or nft refuses the ruleset: nothing is changed then.

    The table is loaded when its text differs from the one last loaded; with ``verify`` also when the kernel no
    longer holds it (the tasks verify; the pod hook, run at every readiness change, trusts its record)."""
    node_config = config.read_node_config(state_dir)
    if node_config is None:
        return {"changed": False, "nftables_changed": False, "dns_changed": False, "problems": [], "skipped": "no node.json"}
    os.makedirs(config.network_dir(state_dir), mode=0o755, exist_ok=True)
    with open(os.path.join(config.network_dir(state_dir), LOCK_FILE), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # Read again under the lock: a writer may have replaced it meanwhile.
        node_config = config.read_node_config(state_dir)
        if node_config is None:
            return {"changed": False, "nftables_changed": False, "dns_changed": False, "problems": [], "skipped": "no node.json"}
        service_list = services.load_services(state_dir)
        pods = local_pods(state_dir, node_config, run_dir)
        text, problems = nftables.render(node_config, service_list, pods)
        path = applied_path(run_dir)
        try:
            with open(path) as handle:
                before = handle.read()
        except OSError:
            before = None
        nft_changed = before != text or (verify and not _table_loaded(nft))
        if nft_changed:
            _apply(text, nft)
            _write_atomic(path, text)
        dns_pods = [{k: pod[k] for k in ("pod", "namespace", "ip", "ready", "labels", "hostname", "subdomain")} for pod in pods if not pod["host_network"]]
        refreshed = dns.refresh(state_dir, node_config, service_list, dns_pods)
        problems = list(problems) + list(refreshed.get("problems") or [])
        return {"changed": nft_changed or refreshed["changed"], "nftables_changed": nft_changed, "dns_changed": refreshed["changed"], "problems": problems}


def run_sync(state_dir, run_dir=RUN_DIR, nft=NFT):
    """For the node code (cluster_network, service and pod converges, in the module's process): sync(), the same
    lock and result as the installed script's, and the kernel's table is checked (verify)."""
    return sync(state_dir, run_dir, nft, verify=True)


# ---------------------------------------------------------------- the installed script

_IMPORT = re.compile(r"^from (ansible_collections\.hostfleet\.workloads\.plugins\.module_utils(?:\.\w+)*) import ([\w, ]+)$", re.M)
_PACKAGE = "ansible_collections.hostfleet.workloads.plugins.module_utils"

# Put before this module's own source in the installed script: an importer of the embedded modules, so that the
# imports above work unchanged without the collection on the host (and no module's names clash with another's).
_PRELUDE = '''
import sys as _sys
from importlib.machinery import ModuleSpec as _ModuleSpec


class _Embedded:
    # Not importlib.abc's classes: importing those costs more than the whole sync (importlib.resources, pathlib).
    def find_spec(self, name, path=None, target=None):
        if name in _EMBEDDED:
            return _ModuleSpec(name, self, is_package=False)
        if any(module.startswith(name + ".") for module in _EMBEDDED):
            return _ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        source = _EMBEDDED.get(module.__name__)
        if source is not None:
            exec(compile(source, "<embedded " + module.__name__ + ">", "exec"), module.__dict__)  # noqa: S102 - our own modules


_sys.meta_path.insert(0, _Embedded())
'''


def _module_source(module_name):
    """The source of a module of this collection (by its dotted name), through its loader: the node code runs from
    Ansible's zipped payload as well as from a checkout."""
    module = importlib.import_module(module_name)
    loader = getattr(module, "__loader__", None)
    source = loader.get_source(module_name) if loader is not None and hasattr(loader, "get_source") else None
    if source is None:
        with open(module.__file__) as handle:
            source = handle.read()
    return source


def _is_module(name):
    try:
        module = importlib.import_module(name)
    except ImportError:
        return False
    return not hasattr(module, "__path__")  # a package: its names are not modules of their own


def _imports(source):
    """Dotted names of the collection modules ``source`` imports (``from <package> import a, b``: a and b when they
    are modules, else the package's module itself)."""
    names = []
    for package, items in _IMPORT.findall(source):
        for item in (part.strip() for part in items.split(",")):
            candidate = f"{package}.{item}"
            names.append(candidate if _is_module(candidate) else package)
    return names


def script_source():
    """This module's own source as a standalone script, with every collection module it needs embedded."""
    own = _module_source(f"{_PACKAGE}.network.sync")
    embedded, todo = {}, _imports(own)
    while todo:
        name = todo.pop()
        if name in embedded:
            continue
        embedded[name] = _module_source(name)
        todo.extend(_imports(embedded[name]))
    future = "from __future__ import annotations\n"
    body = own.replace(future, "", 1)
    table = "_EMBEDDED = {\n" + "".join(f"    {name!r}: {embedded[name]!r},\n" for name in sorted(embedded)) + "}\n"
    return "#!/usr/bin/python3\n# Generated by hostfleet.workloads from module_utils/network/sync.py: do not edit.\n" + future + table + _PRELUDE + body


def install_script(state_dir, python=None):  # noqa: ARG001 - callers say which interpreter runs it; the content must not depend on it
    """Install ``<state_dir>/bin/hostfleet-net`` when it differs; True when it was written. Its content is the same
    whoever installs it (the pod converge, the service and cluster_network tasks), so that none rewrites it after
    another: the hook runs it with its own interpreter (``python -I -S``)."""
    source = script_source()
    path = script_path(state_dir)
    try:
        with open(path) as handle:
            if handle.read() == source:
                return False
    except OSError:
        pass
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as handle:
        handle.write(source)
    os.chmod(tmp, 0o755)
    os.replace(tmp, path)
    return True


def main(argv):
    if len(argv) not in (2, 3) or argv[0] != "sync":
        print(f"usage: {SCRIPT_NAME} sync STATE_DIR [RUN_DIR]", file=sys.stderr)
        return 2
    try:
        result = sync(argv[1], argv[2] if len(argv) == 3 else RUN_DIR)
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"{SCRIPT_NAME}: {exc}", file=sys.stderr)
        return 1
    for problem in result["problems"]:
        print(f"{SCRIPT_NAME}: {problem}", file=sys.stderr)
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
