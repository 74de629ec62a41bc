#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: config_data
short_description: The host side of a ConfigMap or Secret, the files pods read it from
version_added: 0.3.0
description:
  - Writes, or removes, one ConfigMap or Secret on the host it runs on, as the files that the pods of the node layer
    read. M(hostfleet.workloads.apply) calls it on every node for each ConfigMap and Secret document; use that
    module unless you build your own orchestration.
  - "A ConfigMap C(<name>) is C(<state_dir>/configmaps/<name>/<key>) (one file per key, mode 0644, for C(configMap)
    volumes), C(<state_dir>/configmaps/<name>.env) (C(KEY=\"value\") lines, for C(envFrom.configMapRef) and
    C(env[].valueFrom.configMapKeyRef)) and C(<name>.meta.json). A Secret is the same under
    C(<state_dir>/secrets/), every file mode 0600 and every directory 0700, owned by root."
  - Files are replaced atomically, so a mounted directory shows new values in place; pods are not restarted (as in
    Kubernetes, environment variables are read when a container starts).
  - Values that are not one line of UTF-8 text are files only (an environment file cannot carry them); their keys are
    returned in RV(env_omitted).
author:
  - hostfleet.workloads developers (@hostfleet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: A ConfigMap's keys and values; a Secret's key names only, never its values.
  platform:
    platforms: posix
    support: full
options:
  kind:
    description: ConfigMap or Secret.
    type: str
    required: true
    choices: [ConfigMap, Secret]
  name:
    description: The object's name (a DNS-1123 label), or C(<namespace>_<name>) for one outside the V(default) namespace.
    type: str
    required: true
  state:
    description: V(present) writes the object's files (and removes keys no longer listed), V(absent) removes them.
    type: str
    default: present
    choices: [present, absent]
  files:
    description:
      - "The object's data, C({key: base64 value}). Keys follow Kubernetes' rules for ConfigMap and Secret keys
        (C([-._a-zA-Z0-9]+), at most 253 characters, not V(.) or V(..) or starting with V(..)): any other key fails
        the task, naming it, before anything changes. Values are never logged."
    type: dict
    default: {}
  immutable:
    description:
      - As Kubernetes' C(immutable), the data of the object cannot change on the host once written (delete it first).
    type: bool
    default: false
  state_dir:
    description: The node layer's state directory, an absolute path without C(.) or C(..) components.
    type: path
    default: /var/lib/hostfleet
seealso:
  - module: hostfleet.workloads.apply
"""

EXAMPLES = r"""
- name: A ConfigMap on this host
  hostfleet.workloads.config_data:
    kind: ConfigMap
    name: web-config
    files:
      LOG_LEVEL: "{{ 'debug' | b64encode }}"
"""

RETURN = r"""
data_keys:
  description: The keys of the object on the host after the call (names only).
  returned: success
  type: list
  elements: str
added:
  description: Keys written for the first time.
  returned: success
  type: list
  elements: str
updated:
  description: Keys whose value changed.
  returned: success
  type: list
  elements: str
removed:
  description: Keys removed.
  returned: success
  type: list
  elements: str
env_omitted:
  description: Keys whose values are not one line of UTF-8 text, which are files only (not in the environment file).
  returned: success
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostfleet.workloads.plugins.module_utils.apply_args import CONFIG_DATA_ARGS
from ansible_collections.hostfleet.workloads.plugins.module_utils.node import configdata
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError, clean_abs_path, node_name


def main():
    module = AnsibleModule(argument_spec=CONFIG_DATA_ARGS, supports_check_mode=True)
    params = module.params
    try:
        node_name(params["name"], "name")  # <namespace>_<name> outside default (node/namespaces.py)
        clean_abs_path(params["state_dir"], "state_dir")
        files = configdata.decode_files(params["files"]) if params["state"] == "present" else {}
        plan = configdata.plan(params["state_dir"], params["kind"], params["name"], files, params["immutable"], params["state"])
    except (SpecError, configdata.ConfigError) as exc:
        module.fail_json(msg=str(exc))
    if plan.changed and not module.check_mode:
        configdata.apply(plan)
    result = {
        "changed": plan.changed,
        "data_keys": sorted(files) if params["state"] == "present" else [],
        "added": plan.added,
        "updated": plan.updated,
        "removed": plan.removed,
        "env_omitted": plan.env_omitted,
    }
    if module._diff and plan.changed:
        result["diff"] = plan.diff()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
