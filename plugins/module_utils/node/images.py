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
import subprocess

from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError, image_reference
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.units import PODMAN

PULL_TIMEOUT = 900


def check_references(refs, path="images"):
    """The references, each held to the image reference grammar (a leading '-' cannot pass); raises SpecError naming the item."""
    return [image_reference(ref, f"{path}[{i}]")[0] for i, ref in enumerate(refs)]


def podman_argv(ref, pull):
    """The podman command for one reference; '--' ends the options, so a reference is never read as one."""
    if pull:
        return [PODMAN, "pull", "--quiet", "--", ref]
    return [PODMAN, "image", "inspect", "--format", "{{.Id}}", "--", ref]


def image_ids(refs, pull, run=subprocess.run):
    """{ref: {"id": image ID} or {"error": message}}; with ``pull``, each is pulled from its registry first."""
    result = {}
    for ref in refs:
        argv = podman_argv(ref, pull)
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
    images = image_ids(refs, pull)
    failed = sorted(ref for ref, got in images.items() if "error" in got)
    changed = pull and any(images[ref].get("id") != before[ref].get("id") for ref in images)
    if failed:
        module.fail_json(msg="; ".join(f"{ref}: {images[ref]['error']}" for ref in failed), images=images, changed=changed)
    module.exit_json(changed=changed, images=images)
