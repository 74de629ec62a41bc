# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a host's podman makes of image references: their image IDs, pulled first when asked.

The image ID (the digest of the image's config) is the same on every host that has
the image, whatever registry it came through; a manifest digest is not (a push
recompresses the layers). Controllers pin a template to the IDs of the images it
pulls, so that a new image under the same tag is a new revision.
"""

from __future__ import annotations

# Runs podman on the host: subprocess is the tool (no AnsibleModule.run_command here, the logic is also unit-tested).
# pylint: disable=ansible-bad-function
import os
import shutil
import subprocess
import tempfile

from ansible_collections.hostfleet.workloads.plugins.module_utils.node import namespaces, registry_auth
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import (
    RUNTIME_PODMAN,
    SpecError,
    clean_abs_path,
    dns_label,
    image_pull_secrets,
    image_reference,
)
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.units import PODMAN

PULL_TIMEOUT = 900
RUN_DIR = "/run/hostfleet"  # the pull's auth file lives in a 0700 folder of its own there (tmpfs, root's)


def check_references(refs, path="images"):
    """The references, each held to the image reference grammar (a leading '-' cannot pass); raises SpecError naming the item."""
    return [image_reference(ref, f"{path}[{i}]")[0] for i, ref in enumerate(refs)]


def podman_argv(ref, pull, authfile=None):
    """The podman command for one reference; '--' ends the options, so a reference is never read as one."""
    if pull:
        return [PODMAN, "pull", "--quiet"] + ([f"--authfile={authfile}"] if authfile else []) + ["--", ref]
    return [PODMAN, "image", "inspect", "--format", "{{.Id}}", "--", ref]


def image_ids(refs, pull, run=subprocess.run, authfile=None):
    """{ref: {"id": image ID} or {"error": message}}; with ``pull``, each is pulled from its registry first (with the
    credentials of ``authfile``, podman's auth file, when given)."""
    result = {}
    for ref in refs:
        argv = podman_argv(ref, pull, authfile)
        try:
            done = run(argv, capture_output=True, text=True, timeout=PULL_TIMEOUT, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            result[ref] = {"error": f"{argv[0]}: {exc}"}
            continue
        lines = done.stdout.split()
        if done.returncode == 0 and lines:
            result[ref] = {"id": lines[-1]}
        else:
            errors = [line.strip() for line in done.stderr.splitlines() if line.strip()]
            result[ref] = {"error": errors[-1] if errors else f"podman exited with {done.returncode}"}
    return result


def run_image_id(module):
    params = module.params
    try:
        refs = check_references(params["images"])
    except SpecError as exc:
        module.fail_json(msg=f"invalid image reference: {exc}", field=exc.path)
    pull = params["pull"] and not module.check_mode
    before = image_ids(refs, False) if pull else None
    auth_dir = None
    try:
        authfile = None
        if pull and params["pull_secrets"]:
            # The pods' imagePullSecrets, as their pulls use them (registry_auth.py): a root-only file of this call's own.
            clean_abs_path(params["state_dir"], "state_dir")
            namespace = dns_label(params["namespace"], "namespace")
            secrets = image_pull_secrets([{"name": name} for name in params["pull_secrets"]], "pull_secrets", RUNTIME_PODMAN)
            os.makedirs(RUN_DIR, 0o755, exist_ok=True)
            auth_dir = tempfile.mkdtemp(prefix="pull-auth.", dir=RUN_DIR)
            missing = registry_auth.registry_auth_write(params["state_dir"], namespaces.node_name(namespace, "image-id"), secrets, auth_dir)
            for problem in missing:
                module.warn(f"image pull secret {problem}: pulling without it")
            authfile = registry_auth.registry_auth_file(auth_dir)
        images = image_ids(refs, pull, authfile=authfile)
    except SpecError as exc:
        module.fail_json(msg=f"invalid argument: {exc}", field=exc.path)
    finally:
        if auth_dir is not None:
            shutil.rmtree(auth_dir, ignore_errors=True)
    failed = sorted(ref for ref, got in images.items() if "error" in got)
    changed = pull and any(images[ref].get("id") != before[ref].get("id") for ref in images)
    if failed:
        module.fail_json(msg="; ".join(f"{ref}: {images[ref]['error']}" for ref in failed), images=images, changed=changed)
    module.exit_json(changed=changed, images=images)
