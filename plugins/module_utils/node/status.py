# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A pod's status, Kubernetes-style, from one `list-units` and the hook's runtime files."""

from __future__ import annotations

import json
import os

from ansible_collections.hostfleet.workloads.plugins.module_utils.node import init_containers, namespaces
from ansible_collections.hostfleet.workloads.plugins.module_utils.node import units as render


def _json(path):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def container_status(pod, container, units, host, now):
    unit = render.container_unit(pod, container["name"])
    load, active, sub = units.get(unit, ("not-found", "inactive", "dead"))
    rdir = host.runtime_dir(pod, container["name"])
    status = _json(os.path.join(rdir, "status.json")) or {}
    ready_file = _json(os.path.join(rdir, "ready"))
    startup_ok = _json(os.path.join(rdir, "startup_ok"))
    last_exit = status.get("last_exit")
    running = active == "active" and sub == "running" and bool(status.get("running"))
    ready_since = None
    if running:
        if container.get("readinessProbe"):
            ready_since = ready_file.get("since") if ready_file else None
        elif container.get("startupProbe"):
            ready_since = max(status.get("started_at") or now, startup_ok["since"]) if startup_ok else None
        else:
            ready_since = status.get("started_at")
    backing_off = active == "activating" and (sub == "auto-restart" or (status.get("backoff_until") or 0) > now)
    image_error = status.get("image_error") if not running else None
    if running:
        state = {"running": {"startedAt": status.get("started_at")}}
    elif status.get("fenced") and active != "active":
        # Held at boot by the pre hook (fence.py) until a run keeps or removes the pod.
        state = {"waiting": {"reason": status["fenced"].get("reason"), "message": status["fenced"].get("message", "")}}
    elif image_error:
        # As the kubelet: ErrImagePull, then ImagePullBackOff while the next try waits.
        reason = "ImagePullBackOff" if backing_off and image_error.get("reason") == "ErrImagePull" else image_error.get("reason")
        state = {"waiting": {"reason": reason, "message": image_error.get("message", "")}}
    elif backing_off:
        state = {"waiting": {"reason": "CrashLoopBackOff", "until": status.get("backoff_until")}}
    elif active in ("activating", "reloading") or (active == "active" and not status.get("running")):
        state = {"waiting": {"reason": "ContainerCreating"}}
    elif last_exit:
        state = {"terminated": {"exitCode": last_exit.get("exit_code"), "reason": last_exit.get("reason"), "finishedAt": last_exit.get("finished_at")}}
    else:
        state = {"waiting": {"reason": "ContainerCreating" if load == "loaded" else "NotLoaded"}}
    result = {
        "name": container["name"],
        "unit": unit,
        "unit_state": f"{active}/{sub}",
        "state": state,
        "ready": ready_since is not None,
        "ready_since": ready_since,
        "started": running,
        "restart_count": max(0, (status.get("starts") or 0) - 1),
        "last_exit_code": last_exit.get("exit_code") if last_exit else None,
        "last_exit_reason": last_exit.get("reason") if last_exit else None,
        "last_exit_at": last_exit.get("finished_at") if last_exit else None,
    }
    if container.get("image") is not None:
        result["image"] = container["image"]
        # podman writes the container's ID there (--cidfile); a recreated container has a new one.
        try:
            with open(os.path.join(rdir, "ctr-id")) as handle:
                result["container_id"] = handle.read().strip() if running else None
        except OSError:
            result["container_id"] = None
    return result


def pod_phase(containers):
    """Kubernetes' pod phase from container states."""
    states = [next(iter(c["state"])) for c in containers]
    if all(s == "terminated" for s in states):
        codes = [c["state"]["terminated"]["exitCode"] for c in containers]
        return "Succeeded" if all(code == 0 for code in codes) else "Failed"
    if any(s == "running" for s in states) or any(c["restart_count"] > 0 or c["last_exit_code"] is not None for c in containers):
        return "Running"
    return "Pending"


def _other_requests(containers):
    """The containers' requests other than cpu and memory (ephemeral-storage, extended resources), summed by name."""
    total = {}
    for container in containers:
        for key, amount in container["resources"]["requests"].items():
            if key not in ("cpu", "memory") and isinstance(amount, int) and not isinstance(amount, bool):
                total[key] = total.get(key, 0) + amount
    return total


def pod_status(record, units, host, now):
    spec = record["spec"]
    containers = [container_status(record["name"], c, units, host, now) for c in spec["containers"]]
    ready = all(c["ready"] for c in containers)
    # What `kubectl get pods` shows in STATUS when a container waits for a reason of its own.
    waiting = [c["state"]["waiting"] for c in containers if c["state"].get("waiting", {}).get("reason") not in (None, "ContainerCreating")]
    exits = sorted((c for c in containers if c["last_exit_code"] is not None), key=lambda c: c["last_exit_at"] or 0)
    # Init containers and sidecars (init_containers.py): a pod without any keeps exactly the status below.
    inits = [init_containers.init_container_status(record["name"], c, units, host, now, container_status) for c in init_containers.init_list(spec)]
    return init_containers.with_init_status(spec, {
        "name": record["name"],
        # The node layer's name is <namespace>_<name> outside `default` (namespaces.py); records of before have no key.
        "namespace": record.get("namespace") or namespaces.namespace_of(record["name"]),
        "owner": record.get("owner"),
        "labels": record.get("labels", {}),
        "annotations": record.get("annotations", {}),
        "revision": record.get("revision", ""),
        "spec_hash": record.get("spec_hash"),
        "created": record.get("created"),
        "phase": pod_phase(containers),
        "ready": ready,
        "ready_since": max(c["ready_since"] for c in containers) if ready else None,
        "restart_count": sum(c["restart_count"] for c in containers),
        "last_exit_code": exits[-1]["last_exit_code"] if exits else None,
        "units": sorted(c["unit"] for c in containers),
        # Its own address on the node's pod network (podnet.py); null for a pod on the host's network.
        "pod_ip": (record.get("network") or {}).get("ip"),
        "containers": containers,
        # A pod that said hostNetwork: true on a node with a pod network takes its containerPorts (podspec).
        "host_ports": sorted(
            {
                (p.get("protocol", "TCP"), p.get("hostPort") or p["containerPort"])
                for c in spec["containers"]
                for p in c.get("ports", [])
                if p.get("hostPort") or (spec.get("hostNetwork") is True and p.get("containerPort"))
            }
        ),
        "requests": {
            "cpu": sum(c["resources"]["requests"].get("cpu", 0) for c in spec["containers"]),
            "memory": sum(c["resources"]["requests"].get("memory", 0) for c in spec["containers"]),
            # ephemeral-storage and extended resources (nvidia.com/gpu), only when requested: the scheduler counts them.
            **_other_requests(spec["containers"]),
        },
        "reason": waiting[0]["reason"] if waiting else None,
        "message": waiting[0].get("message") if waiting else None,
    }, inits)
