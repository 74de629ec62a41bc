#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: image_id
short_description: Resolve container image references to image IDs on a host, pulling them first if asked
version_added: 0.1.0
description:
  - Returns the podman image ID of each reference, as the host has it; with O(pull=true), pulls each from its registry
    first, so the ID is the one the tag names now.
  - The workload modules use it on one node to pin a pod template to the images of its C(imagePullPolicy=Always)
    containers, so that a new image pushed under the same tag is a new revision, rolled out like any template change.
author:
  - hostfleet.workloads developers (@hostfleet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Pulls nothing; returns the IDs of the images the host has.
  diff_mode:
    support: none
  platform:
    platforms: posix
    support: full
options:
  images:
    description:
      - Image references (V(registry/name:tag), V(name@sha256:...)), held to the OCI reference grammar (as
        C(spec.containers[].image)) before podman runs; an invalid one fails the module, naming its item.
    type: list
    elements: str
    required: true
  pull:
    description: Pull each image from its registry first (C(podman pull)).
    type: bool
    default: false
  pull_secrets:
    description:
      - Names of Secrets of O(namespace) (type C(kubernetes.io/dockerconfigjson), as
        M(hostfleet.workloads.config_data) wrote them on the host) whose credentials the pulls use, as the pods'
        C(imagePullSecrets) do; held in a root-only file removed when the module ends. A missing one is a warning
        (the pull goes on without it).
    type: list
    elements: str
    default: []
  namespace:
    description: The namespace of O(pull_secrets).
    type: str
    default: default
  state_dir:
    description:
      - The node layer's state directory (where O(pull_secrets) are read), an absolute path without C(.) or C(..)
        components.
    type: path
    default: /var/lib/hostfleet
requirements:
  - podman on the host
"""

EXAMPLES = r"""
- name: What image does the tag name now?
  hostfleet.workloads.image_id:
    images: [registry.example.com/web:stable]
    pull: true
  register: web_image
"""

RETURN = r"""
images:
  description: Per reference, C(id) (the image ID) or C(error) (podman's message).
  returned: always
  type: dict
  sample:
    registry.example.com/web:stable:
      id: 79ae10c4ec6067f361b0e41ab44035d2f5e1b58afabcbf5be9ef910be52e2ea9
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostfleet.workloads.plugins.module_utils.node.images import run_image_id

ARGUMENT_SPEC = dict(
    images=dict(type="list", elements="str", required=True),
    pull=dict(type="bool", default=False),
    pull_secrets=dict(type="list", elements="str", default=[], no_log=False),
    namespace=dict(type="str", default="default"),
    state_dir=dict(type="path", default="/var/lib/hostfleet"),
)


def main():
    run_image_id(AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True))


if __name__ == "__main__":
    main()
