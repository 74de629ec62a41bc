"""A local image registry for the lab: Debian's docker-registry (distribution 2.8) on the lab's bridge address.

No public registry is reachable here, so tests that pull images push them to this one from a
lab host first. The hosts reach it at <bridge IP>:5000 over plain HTTP: `start` writes a
registries.conf.d entry marking it insecure on each host, `stop` removes it and the registry.

    with Registry(hosts) as registry:
        ref = registry.push("node1", "localhost/web:v1", "web:latest")   # -> "10.77.0.1:5000/web:latest"
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from lab import labctl

BINARY = "/usr/bin/docker-registry"
PORT = 5000
CONF_D = "/etc/containers/registries.conf.d/50-hostfleet-lab-registry.conf"


class Registry:
    def __init__(self, hosts, ssh=labctl.ssh, htpasswd=None):
        """``htpasswd``: "user:bcrypt-hash" lines: the registry then asks for those credentials (docker-registry's
        auth.htpasswd, HTTP basic auth), pulls and pushes alike."""
        self.hosts = list(hosts)
        self.htpasswd = htpasswd
        self.ssh = ssh
        self.address = f"{labctl.bridge_ip()}:{PORT}"
        self.process = None
        self.dir = None

    def __enter__(self):
        if not Path(BINARY).exists():
            raise labctl.LabError(f"{BINARY} is missing: scripts/setup installs the docker-registry package")
        self.dir = Path(tempfile.mkdtemp(prefix="hostfleet-registry."))
        config = self.dir / "config.yml"
        config.write_text(
            "version: 0.1\nlog: {level: warn}\n"
            f"storage: {{filesystem: {{rootdirectory: {self.dir / 'data'}}}, delete: {{enabled: true}}}}\n"
            f'http: {{addr: "{self.address}"}}\n'
        )
        if self.htpasswd:
            (self.dir / "htpasswd").write_text(self.htpasswd)
            with config.open("a") as handle:
                handle.write(f"auth: {{htpasswd: {{realm: hostfleet-lab, path: {self.dir / 'htpasswd'}}}}}\n")
        log = open(self.dir / "log", "w")  # noqa: SIM115 - the registry writes to it until stop
        self.process = subprocess.Popen([BINARY, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://{self.address}/v2/", timeout=1).read()
                break
            except urllib.error.HTTPError as exc:
                if exc.code == 401 and self.htpasswd:
                    break  # up, and asking for credentials
                raise
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.__exit__(None, None, None)
                    raise labctl.LabError(f"the registry did not come up on {self.address}: {(self.dir / 'log').read_text()[-2000:]}") from None
                time.sleep(0.1)
        entry = f'[[registry]]\nlocation = "{self.address}"\ninsecure = true\n'
        for host in self.hosts:
            self.ssh(host, f"mkdir -p {Path(CONF_D).parent} && cat > {CONF_D}", input=entry)
        return self

    def __exit__(self, *exc):
        for host in self.hosts:
            self.ssh(host, f"rm -f {CONF_D}", check=False)
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)

    def push(self, host, local_ref, name_tag, creds=None):
        """Push the host's image local_ref as <registry>/name_tag (``creds``: "user:password" of a registry with
        htpasswd); returns that reference."""
        ref = f"{self.address}/{name_tag}"
        login = f"--creds {shlex.quote(creds)} " if creds else ""
        self.ssh(host, f"podman tag {local_ref} {ref} && podman push --quiet {login}{ref} && podman rmi {ref} >/dev/null")
        return ref
