# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the kinds that keep revisions do with the images their templates pull."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options: {}
notes:
  - "Image pulls: a container with C(imagePullPolicy: Always) (the default for a V(:latest) or untagged image) is
    resolved on one node at every run (C(podman pull), through M(hostfleet.workloads.image_id)) and the template is pinned
    to the image ID in the annotation C(hostfleet.io/image-ids): a new image pushed under the same tag is a new revision,
    handled like any template change, and the same image changes nothing. Other policies never pull at a run. A pull
    that fails on every node stops the task before anything changes. In check mode nothing is pulled (the image IDs the
    nodes have are used)."
"""
