# Copyright: (c) 2026, hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test-only module: reports who/where it runs, check mode, and optionally warns, fails or sleeps."""

from __future__ import annotations

import os
import pwd
import socket
import sys
import time

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(
        argument_spec={
            "tag": {"type": "str"},
            "warn": {"type": "str"},
            "deprecate": {"type": "str"},
            "fail": {"type": "bool", "default": False},
            "crash": {"type": "bool", "default": False},
            "sleep": {"type": "float", "default": 0},
        },
        supports_check_mode=True,
    )
    p = module.params
    if p["crash"]:
        raise RuntimeError("crashed on purpose")
    if p["sleep"]:
        time.sleep(p["sleep"])
    if p["warn"]:
        module.warn(p["warn"])
    if p["deprecate"]:
        module.deprecate(p["deprecate"], version="10.0.0", collection_name="hostfleet.workloads")
    out = {
        "changed": False,
        "tag": p["tag"],
        "check_mode": module.check_mode,
        "user": pwd.getpwuid(os.geteuid()).pw_name,
        "uid": os.geteuid(),
        "python": sys.executable,
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "env_ssh": os.environ.get("SSH_CONNECTION", ""),
    }
    if p["fail"]:
        module.fail_json(msg="asked to fail", **out)
    module.exit_json(**out)


if __name__ == "__main__":
    main()
