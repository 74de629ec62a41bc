# Copyright: (c) 2026, hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test-only fleet action: drives hostfleet.workloads' Fleet (plugins/plugin_utils/_fanout.py) over the play's hosts.

Options: ``hosts`` (pattern), ``module`` (FQCN), ``args`` (same for all hosts) or ``args_per_host``, ``rounds``,
``check_mode``, ``timeout``, ``vars`` (names of host vars to return), ``dest`` (write the JSON report there).
"""

from __future__ import annotations

import json
import time

from ansible.plugins.action import ActionBase

from ansible_collections.hostfleet.workloads.plugins.plugin_utils._fanout import Fleet


class ActionModule(ActionBase):
    BYPASS_HOST_LOOP = True
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        opts = self._task.args
        hosts = Fleet.select(self, task_vars, opts.get("hosts"))
        rounds = int(opts.get("rounds", 1))
        report = {"hosts": hosts, "round_seconds": [], "rounds": []}
        started = time.monotonic()
        with Fleet(self, task_vars, hosts) as fleet:
            report["setup_seconds"] = time.monotonic() - started
            report["groups"] = {h: fleet.groups_of(h) for h in hosts}
            report["vars"] = {h: {n: fleet.host_vars(h).get(n) for n in opts.get("vars", [])} for h in hosts}
            per_host = opts.get("args_per_host") or {h: opts.get("args", {}) for h in hosts}
            for number in range(rounds):
                t0 = time.monotonic()
                res = fleet.run_module(opts.get("module", "ansible.builtin.ping"), per_host,
                                       check_mode=opts.get("check_mode"), timeout=opts.get("timeout"))
                report["round_seconds"].append(time.monotonic() - t0)
                report["last_round"] = number + 1
                report["rounds"].append(res)
            fleet.emit_warnings(report["rounds"][-1])
        report["results"] = report["rounds"][-1] if report["rounds"] else {}
        if not opts.get("keep_rounds"):
            report["rounds"] = []
        if opts.get("dest"):
            with open(opts["dest"], "w", encoding="utf-8") as f:
                json.dump(report, f, indent=1, sort_keys=True)
        result.update(changed=False, fleet=report)
        return result
