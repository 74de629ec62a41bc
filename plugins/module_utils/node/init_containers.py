# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Init containers and native sidecars (Kubernetes' ``spec.initContainers``), for process and podman pods alike.

How systemd runs them (units.render_pod renders each init container as a container unit, with these changes):

- A plain init container is ``Type=oneshot`` with ``RemainAfterExit=yes``: its start job ends when its process
  exited 0, and the unit then stays active. Every container after it (later init containers, sidecars, the app
  containers) has ``After=`` and ``Requires=`` on it: none starts before it completed, a failed one (restartPolicy
  Never, ``Restart=no``) fails their start jobs, and one that crash-loops (``Restart=on-failure`` for Always and
  OnFailure, the hook's backoff in ``ExecStartPre=``) keeps them waiting. A restart of an app container (kill -9,
  a liveness failure) starts only that unit: the init units are active, so they do not run again. A restart of the
  whole pod (a reboot: the app units are enabled and pull the init units in; a changed init container, restarted by
  the converge, which systemd propagates to the units that require it) runs them again, in order.
- A sidecar (``restartPolicy: Always`` on an init container) is a long-running unit like an app container with
  ``Restart=always`` whatever the pod's policy. Those after it have ``After=`` and ``Wants=`` on it: they start once it
  started (``Type=exec``/``notify``: its process runs; with a startupProbe, once the probe passed: its
  ``ExecStartPost=`` waits for that), and a restart of the sidecar restarts nothing else. ``After=`` also orders the
  stops: stopping the pod stops the app containers first, then the sidecars in reverse order.
- When the app containers of a pod with restartPolicy Never/OnFailure are done for good (a Job's pod), the hook
  stops the sidecars (hook.stop_sidecars_when_done), and the pod is Succeeded or Failed by its app containers alone.

The pod hook (a standalone script) keeps its own copy of the few rules it needs (which containers are sidecars).
"""

from __future__ import annotations

import json
import os

from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError, _expect, _or_empty

ROLE_APP = "app"
ROLE_INIT = "init"
ROLE_SIDECAR = "sidecar"
# What Kubernetes refuses on an init container that is not a sidecar (they never run long enough to mean anything).
NOT_FOR_PLAIN_INIT = ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe")
# The only restartPolicy of a container Kubernetes (1.29+) takes: Always, which makes an init container a sidecar.
SIDECAR_POLICY = "Always"


def validate(value, path, app_names, validate_container):
    """The normal form of ``spec.initContainers``: a list (empty when absent) of containers in the normal form of
    ``validate_container(item, path)`` (podspec's, for every container), plus ``restartPolicy: Always`` on a sidecar.

    Kubernetes' rules: names unique across init and app containers (``app_names``), restartPolicy only Always, no
    lifecycle nor probes on a plain init container (a sidecar may have them).
    """
    items = _expect(_or_empty(value, list), list, f"{path}.initContainers")
    names = set(app_names)
    result = []
    for i, item in enumerate(items):
        ipath = f"{path}.initContainers[{i}]"
        _expect(item, dict, ipath)
        policy = item.get("restartPolicy")
        if policy is not None and policy != SIDECAR_POLICY:
            raise SpecError(f"{ipath}.restartPolicy", f"Unsupported value: {policy!r}: supported values: Always (a sidecar container)")
        if policy is None:
            for field in NOT_FOR_PLAIN_INIT:
                if item.get(field) is not None:
                    raise SpecError(f"{ipath}.{field}", "may not be set for init containers without restartPolicy: Always (only a sidecar has it)")
        normal = validate_container({key: v for key, v in item.items() if key != "restartPolicy"}, ipath)
        for j, port in enumerate(normal["ports"]):
            if port.get("hostPort"):
                # The node's host port checks and forwarding read the app containers' ports: refused, not ignored.
                raise SpecError(f"{ipath}.ports[{j}].hostPort", "is not supported on init containers (put the port on an app container)")
        if normal["name"] in names:
            raise SpecError(f"{ipath}.name", f"duplicate container name {normal['name']!r} (names are unique across initContainers and containers)")
        names.add(normal["name"])
        if policy is not None:
            normal["restartPolicy"] = SIDECAR_POLICY
        result.append(normal)
    return result


def init_list(spec):
    return spec.get("initContainers") or []


def is_sidecar(container):
    return container.get("restartPolicy") == SIDECAR_POLICY


def pod_containers(spec):
    """Every container of the pod in start order: the init containers (sidecars among them), then the app containers."""
    return list(init_list(spec)) + list(spec["containers"])


def role(spec, name):
    for container in init_list(spec):
        if container["name"] == name:
            return ROLE_SIDECAR if is_sidecar(container) else ROLE_INIT
    return ROLE_APP


def unit_dependencies(spec, name, unit_of):
    """The [Unit] lines that order container ``name`` after the init containers before it (``unit_of(container name)``
    is a container's unit): After= each of them; Requires= a plain one (its failure fails this start), Wants= a sidecar
    (its restarts are its own); a sidecar's PropagatesStopTo= the containers after it. Nothing for a pod without init
    containers: its units stay as they were."""
    before = []
    for container in init_list(spec):
        if container["name"] == name:
            break
        before.append(container)
    lines = []
    if role(spec, name) == ROLE_SIDECAR:
        # A stop of the sidecar (the pod's units stopped in one systemctl call, in any order) also stops the containers
        # after it, in the same transaction: After= then stops them first. Its own restarts propagate nothing.
        after = [c["name"] for c in pod_containers(spec)][len(before) + 1:]
        lines.append(f"PropagatesStopTo={' '.join(unit_of(c) for c in after)}\n")
    if not before:
        return lines
    lines.append(f"After={' '.join(unit_of(c['name']) for c in before)}\n")
    plain = [unit_of(c["name"]) for c in before if not is_sidecar(c)]
    sidecars = [unit_of(c["name"]) for c in before if is_sidecar(c)]
    if plain:
        lines.append(f"Requires={' '.join(plain)}\n")
    if sidecars:
        lines.append(f"Wants={' '.join(sidecars)}\n")
    return lines


def attached(podman_run):
    """The ``podman run`` of a plain init container: in the foreground (no ``-d``, no ``--sdnotify``), so that the
    oneshot unit's process is the container's life and its exit status is the container's."""
    return [word for word in podman_run if word not in ("-d", "--sdnotify=conmon")]


def oneshot_start(start, init_started):
    """The start lines of a plain init container's [Service]: Type=oneshot instead of the app container's type, and
    ``init_started`` (the hook's ``init-start``, which records the start once the backoff is over) right before the
    container's ExecStart=."""
    kept = [line for line in start if not line.startswith(("Type=", "NotifyAccess=", "SuccessExitStatus="))]
    first = next(i for i, line in enumerate(kept) if line.startswith("ExecStart="))
    return ["Type=oneshot\n", "RemainAfterExit=yes\n"] + kept[:first] + [init_started] + kept[first:]


def restart_setting(spec, container):
    """systemd's Restart= of a container: a sidecar always; a plain init container on failure unless the pod says
    Never (Kubernetes re-runs a failed init container for Always and OnFailure); an app container by the pod's policy."""
    kind = role(spec, container["name"])
    if kind == ROLE_SIDECAR:
        return "always"
    if kind == ROLE_INIT:
        return "no" if spec["restartPolicy"] == "Never" else "on-failure"
    return {"Always": "always", "OnFailure": "on-failure", "Never": "no"}[spec["restartPolicy"]]


def initializing(spec, pod, observed_units, unit_of):
    """Whether an init container of the pod is still on its way (its unit activating, or deactivating between two
    tries: its ExecStopPost= hook runs before the restart): its app containers are then inactive with a start job
    waiting, not down (a re-run of the converge must not start them again)."""
    return any(observed_units.get(unit_of(pod, c["name"]), ("", "", ""))[1] in ("activating", "deactivating") for c in init_list(spec))


def _json(path):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def init_container_status(pod, container, units, host, now, base_status):
    """Status of one init container, as Kubernetes' ``status.initContainerStatuses[]``.

    A sidecar is a container like the app's (``base_status``, status.container_status), started once its startup
    probe passed. A plain init container runs while its oneshot unit is in its start (``activating/start`` once the
    hook's init-start recorded it), and is terminated Completed once it exited 0 (the hook's init-done).
    """
    result = base_status(pod, container, units, host, now)
    rdir = host.runtime_dir(pod, container["name"])
    runtime = _json(os.path.join(rdir, "status.json")) or {}
    if is_sidecar(container):
        if container.get("startupProbe") and _json(os.path.join(rdir, "startup_ok")) is None:
            result["started"] = False
        return result
    waiting = result["state"].get("waiting") or {}
    if runtime.get("completed") and not runtime.get("running"):
        result["state"] = {"terminated": {"exitCode": 0, "reason": "Completed", "finishedAt": runtime["completed"]}}
    elif result["unit_state"] == "activating/start" and runtime.get("running") and waiting.get("reason") in (None, "ContainerCreating"):
        result["state"] = {"running": {"startedAt": runtime.get("started_at")}}
        result["started"] = True
    # Kubernetes reports a plain init container not ready (it serves nothing); readiness is the pod's containers'.
    result["ready"], result["ready_since"] = False, None
    return result


def _init_progress(spec, statuses):
    """(number of init containers done, the pod's status text while initializing or None once initialized, whether an
    init container failed for good), as ``kubectl get pods`` prints it: Init:N/M, Init:<reason> for a waiting or failed
    init container. Only a plain init container fails the pod (a sidecar restarts whatever the pod's policy)."""
    total = len(statuses)
    for done, container in enumerate(init_list(spec)):
        status = statuses[done]
        state = status["state"]
        if is_sidecar(container):
            if status["started"]:
                continue
        elif state.get("terminated", {}).get("exitCode") == 0 and state["terminated"].get("reason") == "Completed":
            continue
        if "terminated" in state:
            return done, f"Init:{state['terminated'].get('reason') or 'Error'}", not is_sidecar(container)
        reason = (state.get("waiting") or {}).get("reason")
        if reason not in (None, "ContainerCreating", "PodInitializing"):
            return done, f"Init:{reason}", False
        return done, f"Init:{done}/{total}", False
    return total, None, False


def with_init_status(spec, pod_status, init_statuses):
    """``pod_status`` (status.pod_status's, from the app containers) completed with the init containers' part.

    Adds ``init_containers`` (their statuses) and ``init_status`` (Init:N/M, Init:CrashLoopBackOff, Init:Error,
    PodInitializing, or None). The phase is Pending while initializing, Failed when an init container failed with
    restartPolicy Never; the pod is ready when its app containers and its sidecars are.
    """
    if not init_list(spec):
        return pod_status
    result = dict(pod_status)
    apps = pod_status["containers"]
    done, text, failed = _init_progress(spec, init_statuses)
    if text is not None and any(c["started"] or c["last_exit_code"] is not None for c in apps):
        # Initialized once the app containers ran (Kubernetes' Initialized condition stays true): sidecars stopped
        # after a Job pod's containers completed, or restarting meanwhile, do not make it initialize again.
        done, text, failed = len(init_statuses), None, False
    result["init_containers"] = init_statuses
    result["sidecars"] = [c["name"] for c in init_list(spec) if is_sidecar(c)]
    result["restart_count"] = pod_status["restart_count"] + sum(s["restart_count"] for s in init_statuses)
    sidecars_ready = all(init_statuses[i]["ready"] for i, c in enumerate(init_list(spec)) if is_sidecar(c))
    if text is not None:
        result["phase"] = "Failed" if failed and spec["restartPolicy"] == "Never" else "Pending"
        result["ready"], result["ready_since"] = False, None
        result["reason"], result["message"] = text, None
    else:
        if all("waiting" in c["state"] and not c["started"] and c["last_exit_code"] is None for c in apps):
            text = "PodInitializing"
        if not sidecars_ready:
            result["ready"], result["ready_since"] = False, None
    result["init_status"] = text
    result["initialized"] = done == len(init_statuses)
    return result


def indexed(spec):
    """(list name, index, container) of every container of the pod, for messages naming the field."""
    return [("initContainers", i, c) for i, c in enumerate(init_list(spec))] + [("containers", i, c) for i, c in enumerate(spec["containers"])]


def waits_for_startup(spec, container):
    """Whether the start of ``container`` lasts until its startup probe passed: a sidecar's with a startupProbe (the
    next init container, or the app containers, start once the sidecar started, as Kubernetes')."""
    return bool(container.get("startupProbe")) and role(spec, container["name"]) == ROLE_SIDECAR


def units_to_start(spec, name, unit_of):
    """The units to start so that container ``name`` runs again: its own for an app container; for an init container or
    a sidecar, the app containers' (their start pulls in every init container, in order)."""
    if role(spec, name) == ROLE_APP:
        return {unit_of(name)}
    return {unit_of(c["name"]) for c in spec.get("containers") or ()}
