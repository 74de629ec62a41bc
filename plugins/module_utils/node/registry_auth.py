# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""imagePullSecrets: a pod's registry credentials, as podman's auth file for that pod's pulls only.

The Secrets are the ones config_data applied on the host (``<state_dir>/secrets/<name>/<key>``, root-only), of
type ``kubernetes.io/dockerconfigjson`` (key ``.dockerconfigjson``, ``{"auths": {registry: {...}}}``, the format of
podman's auth files) or the older ``kubernetes.io/dockercfg`` (key ``.dockercfg``, the ``auths`` map alone). The hook's
``pre`` merges them before every start of an image container, as the kubelet reads them at every pull (a changed
Secret counts from the next start), into ``/run/hostfleet/pods/<pod>/auth.json`` (0600, root), which only that pod's
``podman run --authfile=`` reads. Credentials never reach a unit file, a command line, a log or a task result.

A missing or unreadable Secret is left out and named (the kubelet's FailedToRetrieveImagePullSecret): the pull goes
on without it and fails if the registry needs it (ErrImagePull, its message naming the missing Secrets).

The pod hook carries this file's code inlined (converge.hook_script_source): stdlib only, every top-level name
prefixed (registry_auth_/REGISTRY_AUTH_) so it cannot clash with the hook's own.
"""

from __future__ import annotations

import json
import os

REGISTRY_AUTH_FILE_NAME = "auth.json"
# Kubernetes' keys of the two secret types, in the order the kubelet reads them.
REGISTRY_AUTH_KEYS = (".dockerconfigjson", ".dockercfg")
REGISTRY_AUTH_MAX_BYTES = 1024 * 1024  # a Secret's limit in Kubernetes


def registry_auth_file(pod_run_dir):
    """The pod's auth file, in its runtime directory (``<run_dir>/pods/<pod>``)."""
    return os.path.join(pod_run_dir, REGISTRY_AUTH_FILE_NAME)


def registry_auth_secret_dir(state_dir, pod, secret):
    """Where config_data keeps Secret ``secret`` of the pod's namespace: node names as namespaces.node_name makes them
    (``<namespace>_<name>`` outside ``default``; a pod's node name carries its namespace the same way)."""
    namespace, sep, _name = pod.partition("_")
    return os.path.join(state_dir, "secrets", f"{namespace}_{secret}" if sep else secret)


def registry_auth_entries(secret_dir):
    """{registry: entry} of one Secret's files, or a reason it has none (a str)."""
    for key in REGISTRY_AUTH_KEYS:
        path = os.path.join(secret_dir, key)
        try:
            with open(path, "rb") as handle:
                raw = handle.read(REGISTRY_AUTH_MAX_BYTES + 1)
        except FileNotFoundError:
            continue
        except OSError as exc:
            return f"cannot be read ({exc.strerror})"
        try:
            document = json.loads(raw.decode("utf-8"))
        except ValueError:
            return f"its {key} is not JSON"
        if key == ".dockerconfigjson":
            auths = document.get("auths") if isinstance(document, dict) else None
        else:
            auths = document
        if not isinstance(auths, dict) or not all(isinstance(entry, dict) for entry in auths.values()):
            return f"its {key} has no auths mapping of registry to credentials"
        return auths
    if not os.path.isdir(secret_dir):
        return "not found"
    return "has no .dockerconfigjson key (not a kubernetes.io/dockerconfigjson Secret)"


def registry_auth_merge(state_dir, pod, secrets):
    """(the auth file's document, [(secret, reason)] of the Secrets left out). For a registry named by several
    Secrets the first listed wins (podman takes one credential per registry)."""
    auths, problems = {}, []
    for secret in secrets:
        entries = registry_auth_entries(registry_auth_secret_dir(state_dir, pod, secret))
        if isinstance(entries, str):
            problems.append((secret, entries))
            continue
        for registry, entry in entries.items():
            auths.setdefault(registry, entry)
    return {"auths": auths}, problems


def registry_auth_write(state_dir, pod, secrets, pod_run_dir):
    """Write the pod's auth file (root-only, atomically, also when empty: podman refuses a missing --authfile);
    returns the Secrets left out, as "name (reason)"."""
    document, problems = registry_auth_merge(state_dir, pod, secrets)
    os.makedirs(pod_run_dir, mode=0o755, exist_ok=True)
    path = registry_auth_file(pod_run_dir)
    temporary = f"{path}.tmp"
    # O_EXCL after an unlink: never through a link someone left there; 0600 from the start, never readable by others.
    try:
        os.unlink(temporary)
    except FileNotFoundError:
        pass
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(document, handle, sort_keys=True)
    os.chmod(temporary, 0o600)  # whatever the umask
    os.replace(temporary, path)
    return [f"{secret} ({reason})" for secret, reason in problems]
