"""The CronJob runner installed on a host carries every module it imports.

The runner (``<state>/bin/hostfleet-cron``) runs between playbook runs with only the files ``cron_setup.runner_files``
wrote under ``<state>/lib``: a node-layer module that starts importing another (as converge did with fence.py) must
bring it along, or every scheduled run fails at import.
"""

from __future__ import annotations

import os
import subprocess
import sys

from ansible_collections.hostfleet.workloads.plugins.module_utils.job import cron_setup


def test_the_runner_imports_with_only_the_files_it_carries(tmp_path):
    state_dir = str(tmp_path / "state")
    for path, content in cron_setup.runner_files(state_dir).items():
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            handle.write(content)
    lib = os.path.join(state_dir, "lib")
    # -I -S: no site-packages and no PYTHONPATH, so nothing but the carried files (and the stdlib) can be imported.
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", f"import sys; sys.path.insert(0, {lib!r}); "
         # cron_run imports the node layer inside the functions that drive a run: import what they import too.
         "import ansible_collections.hostfleet.workloads.plugins.module_utils.job.cron_run; "
         "from ansible_collections.hostfleet.workloads.plugins.module_utils.node import converge, podnet, systemctl; "
         "from ansible_collections.hostfleet.workloads.plugins.module_utils.network import config; "
         # The runs' converges run the network sync (converge imports it optionally: it must be there) and install
         # its script, whose source is read from these same files.
         "assert converge.network_sync is not None, 'the network sync is not carried'; "
         "assert 'def sync(' in converge.network_sync.script_source()"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
