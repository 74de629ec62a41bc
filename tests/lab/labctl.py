"""The lab: real Debian 12 test hosts (systemd as PID 1, sshd, python3, podman) on this machine.

Each host nodeK is a `systemd-nspawn -b` machine over an overlayfs on a shared, cached
debootstrap image, in its own network namespace `hf-nodeK` with address 10.77.0.(10+K),
reached through the bridge `hfbr0` (10.77.0.1/24) on this machine. See docs/lab.md.

HOSTFLEET_LAB_INSTANCE=I (1..254, default 0) runs a separate lab beside the default one, for
parallel sessions on one machine: bridge hfbrI, 10.77.I.0/24, netns hfI-nodeK, its own lab dir.

Importing this module has no side effects. Public API (all need root, all but ssh/hosts/status
take the lab lock so concurrent callers serialize):

    up(n) -> Path       bring node1..nodeN up (idempotent), return the inventory path
    down()              stop every host and remove all the lab created (not the image cache)
    remove(name)        destroy one host and its disk; the inventory is written without it
    stop(name)          power one host off, keeping its disk (overlay upper dir)
    start(name)         boot a stopped host again on its kept disk
    ssh(name, cmd)      run a command on a host, return subprocess.CompletedProcess
    hosts()             [(name, ip)] of the hosts the lab knows (running or stopped)
    status()            [{name, ip, running, pid}]
    ensure_image()      build the cached host image if missing or stale, return its rootfs

The command line is lab.py beside this file.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

# Bump when PACKAGES or _prepare_rootfs change: cached images with another version are rebuilt.
IMAGE_VERSION = "4"
SUITE = "bookworm"
# Podman 4.3.1 for pod containers (docs/lab.md, "Podman in the hosts"), its dependencies named
# where debootstrap's resolver would choose otherwise or not at all: it takes the first of
# `crun | runc` (crun fails here; runc is configured in _prepare_podman), and a virtual package
# (container-network-stack, of golang-github-containers-common) is named by its provider, netavark.
# catatonit serves `podman run --init`; busybox-static is the userland of tests/lab/images.py.
PODMAN_PACKAGES = (
    "podman",
    "runc",
    "conmon",
    "golang-github-containers-common",
    "golang-github-containers-image",
    "netavark",
    "aardvark-dns",
    "iptables",
    "catatonit",
    "busybox-static",
)
# nftables and dnsmasq-base: Services and cluster DNS (docs/network.md).
PACKAGES = ("systemd", "systemd-sysv", "dbus", "openssh-server", "python3", "iproute2", "sudo", "procps", "curl", "nftables", "dnsmasq-base",
            *PODMAN_PACKAGES)
# Timers that would wake up in the middle of tests and do work (or try the network).
# Debian also enables podman-auto-update.service for default.target: at every boot it would
# look for updates (no registry here) and `podman image prune -f` (0.2-0.3 s per host).
MASKED_UNITS = (
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "e2scrub_all.timer",
    "fstrim.timer",
    "dpkg-db-backup.timer",
    "podman-auto-update.timer",
    "podman-auto-update.service",
)

MAX_HOSTS = 200
CGROUP_ROOTS = ("/sys/fs/cgroup/unified", "/sys/fs/cgroup/systemd")
BOOT_TIMEOUT = 120.0
STOP_TIMEOUT = 30.0
SSH_OPTIONS = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=3"
REQUIRED_TOOLS = {
    "systemd-nspawn": "systemd-container",
    "debootstrap": "debootstrap",
    "ip": "iproute2",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "setsid": "util-linux",
    "tar": "tar",
}


class LabError(RuntimeError):
    """A lab operation failed; the message says what failed and where to look."""


# ---------------------------------------------------------------- paths and hosts


def cache_dir() -> Path:
    """Where the image and the SSH key are cached (outside the repo, kept across `down`)."""
    return Path(os.environ.get("HOSTFLEET_CACHE", "/var/cache/hostfleet")) / "lab"


def instance() -> int:
    """Which lab: 0 (the default) or 1..254 from HOSTFLEET_LAB_INSTANCE; names and addresses derive from it."""
    value = os.environ.get("HOSTFLEET_LAB_INSTANCE", "0")
    if not value.isdigit() or not 0 <= int(value) <= 254:
        raise LabError(f"HOSTFLEET_LAB_INSTANCE must be 0..254, not {value!r}")
    return int(value)


def _tag() -> str:
    """Suffix that keeps another instance's names apart ('' for the default lab, so its names stay short)."""
    return str(instance() or "")


def lab_dir() -> Path:
    """Where the runtime state lives: per-host overlay dirs, logs, PIDs, inventory, ssh_config."""
    return Path(os.environ.get("HOSTFLEET_LAB_DIR", f"/var/tmp/hostfleet-lab{_tag()}"))


def bridge() -> str:
    return f"hfbr{instance()}"


def bridge_ip() -> str:
    return f"10.77.{instance()}.1"


def _cgroup_name() -> str:
    return f"hostfleet-lab{_tag()}"


def key_path() -> Path:
    return cache_dir() / "id_ed25519"


def inventory_path() -> Path:
    return lab_dir() / "inventory.ini"


def ssh_config_path() -> Path:
    return lab_dir() / "ssh_config"


@dataclass(frozen=True)
class Host:
    """One lab host; every name and address derives from its index K (nodeK)."""

    index: int

    @classmethod
    def named(cls, name: str) -> Host:
        match = re.fullmatch(r"node([1-9][0-9]*)", name)
        if not match or int(match.group(1)) > MAX_HOSTS:
            raise LabError(f"no such lab host name: {name!r} (expected node1..node{MAX_HOSTS})")
        return cls(int(match.group(1)))

    @property
    def name(self) -> str:
        return f"node{self.index}"

    @property
    def ip(self) -> str:
        return f"10.77.{instance()}.{10 + self.index}"

    @property
    def netns(self) -> str:
        return f"hf{_tag()}-{self.name}"

    @property
    def veth(self) -> str:
        return f"hfv{_tag()}-{self.name}"

    # Fixed MACs: a host that comes back keeps its MAC, so neighbour caches stay valid and
    # the first packets after `start` are not lost to a stale ARP entry.
    @property
    def mac(self) -> str:
        return f"02:77:{instance():02x}:00:00:{10 + self.index:02x}"

    @property
    def veth_mac(self) -> str:
        return f"02:77:{instance():02x}:ff:00:{10 + self.index:02x}"

    @property
    def dir(self) -> Path:
        return lab_dir() / "hosts" / self.name

    @property
    def upper(self) -> Path:
        return self.dir / "upper"

    @property
    def work(self) -> Path:
        return self.dir / "work"

    @property
    def merged(self) -> Path:
        return self.dir / "merged"

    @property
    def containers(self) -> Path:
        return self.dir / "containers"

    @property
    def log(self) -> Path:
        return self.dir / "console.log"

    @property
    def cgroups(self) -> list[Path]:
        return [Path(root) / _cgroup_name() / self.name for root in CGROUP_ROOTS]


# ---------------------------------------------------------------- small helpers


def _say(message: str) -> None:
    print(f"lab: {message}", file=sys.stderr, flush=True)


def _run(argv: list[str], check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("stdin", None if "input" in kwargs else subprocess.DEVNULL)
    proc = subprocess.run(argv, text=True, capture_output=True, check=False, **kwargs)
    if check and proc.returncode != 0:
        raise LabError(f"`{shlex.join(argv)}` failed (exit {proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def _write_file(path: Path, text: str, mode: int = 0o644) -> None:
    """Write atomically, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    tmp.chmod(mode)
    os.replace(tmp, path)


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextlib.contextmanager
def _flock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _check_prerequisites() -> None:
    if os.geteuid() != 0:
        raise LabError("the lab needs root (network namespaces, mounts, cgroups)")
    missing = sorted({pkg for tool, pkg in REQUIRED_TOOLS.items() if shutil.which(tool) is None})
    if missing:
        raise LabError(f"missing tools; install them with: apt-get install -y {' '.join(missing)}")
    for root in CGROUP_ROOTS:
        if not Path(root, "cgroup.procs").exists():
            raise LabError(f"{root} is not a mounted cgroup hierarchy; the lab expects cgroup v1 hybrid with cgroup2 at /sys/fs/cgroup/unified")


class Mount(NamedTuple):
    point: str
    fstype: str
    options: str  # the super block options (overlayfs: lowerdir=...,upperdir=...)


def _mounts() -> list[Mount]:
    """Every mount in our mount namespace."""
    result = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, right = line.split(" - ", 1)
        point = left.split()[4].encode().decode("unicode_escape")  # \040 etc.
        fstype, _source, options = right.split(" ", 2)
        result.append(Mount(point, fstype, options))
    return result


def _is_mounted(path: Path) -> bool:
    return any(mount.point == str(path) for mount in _mounts())


def _link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


# ---------------------------------------------------------------- image


def apt_mirror() -> str:
    """The Debian mirror apt already uses for bookworm main (HOSTFLEET_LAB_MIRROR overrides)."""
    if os.environ.get("HOSTFLEET_LAB_MIRROR"):
        return os.environ["HOSTFLEET_LAB_MIRROR"]
    apt = Path("/etc/apt")
    for path in [apt / "sources.list", *sorted((apt / "sources.list.d").glob("*.list"))]:
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            # deb [options] URI suite components...
            match = re.match(r"\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s+(.*)", line)
            if match and match.group(2) == SUITE and "main" in match.group(3).split():
                return match.group(1)
    for path in sorted((apt / "sources.list.d").glob("*.sources")):
        for stanza in re.split(r"\n\s*\n", path.read_text()):
            fields: dict[str, str] = {}
            key = None
            for line in stanza.splitlines():
                if line.startswith("#") or not line.strip():
                    continue
                if line[0].isspace() and key:
                    fields[key] += " " + line.strip()
                elif ":" in line:
                    key, value = line.split(":", 1)
                    key = key.strip().lower()
                    fields[key] = value.strip()
            if (
                "deb" in fields.get("types", "").split()
                and SUITE in fields.get("suites", "").split()
                and "main" in fields.get("components", "").split()
                and fields.get("enabled", "yes").lower() != "no"
                and fields.get("uris")
            ):
                return fields["uris"].split()[0]
    raise LabError("found no apt source for Debian bookworm main in /etc/apt; set HOSTFLEET_LAB_MIRROR")


def _ensure_keypair() -> str:
    key = key_path()
    if not key.exists() or not key.with_suffix(".pub").exists():
        key.unlink(missing_ok=True)
        key.with_suffix(".pub").unlink(missing_ok=True)
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hostfleet-lab", "-f", str(key)])
    key.chmod(0o600)
    return key.with_suffix(".pub").read_text().strip()


def _digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:12]


def _debootstrap_base(target: Path) -> None:
    mirror = apt_mirror()
    log = cache_dir() / "debootstrap.log"
    _say(f"building the host image: debootstrap {SUITE} from {mirror} (about a minute; log: {log})")
    argv = ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(target), mirror]
    with open(log, "w") as handle:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        raise LabError(f"debootstrap failed (exit {proc.returncode}); last lines of {log}:\n{_tail(log)}")


def _prepare_rootfs(root: Path, pubkey: str) -> None:
    """Turn a fresh debootstrap tree into a lab host image (bump IMAGE_VERSION when editing)."""
    etc = root / "etc"
    # Identity: each host gets its own machine-id and hostname at launch, never the build machine's.
    _write_file(etc / "machine-id", "", mode=0o444)
    for stale in (etc / "hostname", root / "var/lib/dbus/machine-id"):
        stale.unlink(missing_ok=True)
    _write_file(etc / "hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
    # No DNS server can be reached: an empty resolver config makes lookups fail at once instead of timing out.
    (etc / "resolv.conf").unlink(missing_ok=True)
    _write_file(etc / "resolv.conf", "# lab host: no DNS (no route out); lab names are in /etc/hosts\noptions timeout:1 attempts:1\n")
    for unit in MASKED_UNITS:
        link = etc / "systemd/system" / unit
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")
    # Keep journals small: upper dirs survive stop/start and many boots.
    _write_file(etc / "systemd/journald.conf.d/hostfleet-lab.conf", "[Journal]\nSystemMaxUse=16M\n")

    # sshd: root by key only, and nothing slow at login (DNS, motd, lastlog, mail).
    ssh_dir = root / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    _write_file(ssh_dir / "authorized_keys", pubkey + "\n", mode=0o600)
    _write_file(
        etc / "ssh/sshd_config.d/hostfleet-lab.conf",
        "# lab host (first value wins: this file is included before the defaults)\n"
        "PermitRootLogin prohibit-password\n"
        "PubkeyAuthentication yes\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "UseDNS no\n"
        "PrintMotd no\n"
        "PrintLastLog no\n"
        # Ansible forks and test suites open many connections at once.
        "MaxStartups 100:30:200\n"
        "MaxSessions 100\n",
    )
    sshd_config = etc / "ssh/sshd_config"
    # The client's LANG/LC_* would name locales the minimal image lacks, and every shell would warn.
    _write_file(sshd_config, re.sub(r"(?m)^(AcceptEnv\b)", r"# \1", sshd_config.read_text()))
    pam_sshd = etc / "pam.d/sshd"
    _write_file(pam_sshd, re.sub(r"(?m)^(session\s+\S+\s+pam_(motd|mail)\.so.*)$", r"# \1", pam_sshd.read_text()))
    _write_file(etc / "motd", "")

    # Root's shell: nothing to do for non-interactive shells (ssh commands, Ansible), no `mesg n` warning.
    _write_file(root / "root/.bashrc", '# lab host: keep non-interactive shells free of work\n[ -z "$PS1" ] && return\nPS1=\'\\h:\\w\\$ \'\n')
    _write_file(root / "root/.profile", '# lab host: minimal login profile\nif [ -n "$BASH_VERSION" ] && [ -f ~/.bashrc ]; then . ~/.bashrc; fi\n')
    _write_file(root / "root/.hushlogin", "")

    _prepare_podman(etc)


# Podman's engine config in the hosts (docs/lab.md, "Podman in the hosts"): crun 1.8.1 fails in this VM on
# setrlimit(RLIM_MEMLOCK), and no pids cgroup controller reaches the hosts, so no pids limit.
CONTAINERS_CONF = """\
# lab host: podman settings that work inside systemd-nspawn on this VM (tests/lab/labctl.py)
[containers]
pids_limit = 0

[engine]
runtime = "runc"
"""
# Written only where the packages shipped none: no registry is reachable, images are local
# (`podman import`, tests/lab/images.py), and an unqualified name never goes out.
REGISTRIES_CONF = 'unqualified-search-registries = []\nshort-name-mode = "disabled"\n'
POLICY_JSON = '{"default": [{"type": "insecureAcceptAnything"}]}\n'


def _prepare_podman(etc: Path) -> None:
    containers = etc / "containers"
    _write_file(containers / "containers.conf", CONTAINERS_CONF)
    for name, default in (("registries.conf", REGISTRIES_CONF), ("policy.json", POLICY_JSON)):
        if not (containers / name).is_file():
            _write_file(containers / name, default)


def _images_in_use() -> set[str]:
    used = set()
    for mount in _mounts():
        if mount.fstype == "overlay":
            used.update(re.findall(r"lowerdir=([^,]+)", mount.options))
    # Stopped hosts keep their image too: look at this lab and at every default-placed instance.
    state_files = {*(lab_dir() / "hosts").glob("*/state.json"), *Path("/var/tmp").glob("hostfleet-lab*/hosts/*/state.json")}
    for state_file in state_files:
        with contextlib.suppress(OSError, ValueError):
            used.add(json.loads(state_file.read_text()).get("lower", ""))
    return used


def _remove_stale_images(keep: set[Path]) -> None:
    cache = cache_dir()
    in_use = _images_in_use()
    for path in cache.glob("rootfs-*"):
        rootfs = cache / path.name.removesuffix(".stamp")
        if rootfs in keep or str(rootfs) in in_use:
            continue
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    for path in cache.glob("base-*.tar*"):
        if path not in keep:
            path.unlink()


def ensure_image(rebuild: bool = False) -> Path:
    """Build the host image if missing or stale (or always with rebuild); return its rootfs dir.

    The debootstrap result is kept as a tarball, so a change of _prepare_rootfs only costs an
    extraction; the prepared rootfs is the overlay lower dir shared by all hosts.
    """
    _check_prerequisites()
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    with _flock(cache / ".lock"):
        pubkey = _ensure_keypair()
        rootfs = cache / f"rootfs-{_digest(IMAGE_VERSION, SUITE, PACKAGES, pubkey)}"
        stamp = rootfs.with_name(rootfs.name + ".stamp")
        base = cache / f"base-{_digest(SUITE, PACKAGES)}.tar"
        if rootfs.is_dir() and stamp.exists() and not rebuild:
            _remove_stale_images(keep={rootfs, base})  # older images, once no host uses them
            return rootfs
        if rebuild and str(rootfs) in _images_in_use():
            raise LabError("the current image is in use by lab hosts; run `lab.py down` before rebuilding it")
        started = time.monotonic()
        tmp = cache / "rootfs.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        if base.exists() and not rebuild:
            tmp.mkdir()
            _run(["tar", "-C", str(tmp), "--numeric-owner", "--xattrs", "--xattrs-include=*", "-xf", str(base)])
        else:
            _debootstrap_base(tmp)
            _run(["tar", "-C", str(tmp), "--numeric-owner", "--xattrs", "--xattrs-include=*", "-cf", f"{base}.tmp", "."])
            os.replace(f"{base}.tmp", base)
        _prepare_rootfs(tmp, pubkey)
        stamp.unlink(missing_ok=True)
        shutil.rmtree(rootfs, ignore_errors=True)
        tmp.rename(rootfs)
        _write_file(stamp, json.dumps({"version": IMAGE_VERSION, "suite": SUITE, "packages": PACKAGES, "built": time.ctime()}) + "\n")
        _remove_stale_images(keep={rootfs, base})
        _say(f"image ready in {time.monotonic() - started:.1f} s: {rootfs}")
        return rootfs


# ---------------------------------------------------------------- host state


def _state(host: Host) -> dict:
    try:
        return json.loads((host.dir / "state.json").read_text())
    except (OSError, ValueError):
        return {}


def _save_state(host: Host, **fields) -> None:
    _write_file(host.dir / "state.json", json.dumps({**_state(host), **fields}) + "\n")


def _exited(pid: int) -> bool:
    """True once pid is gone or a zombie (PID 1 of this machine reaps orphans only lazily)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def _alive(pid: int | None, host: Host) -> bool:
    """True if pid is still this host's systemd-nspawn (not a zombie, not a recycled PID, not another lab's)."""
    if not pid or _exited(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return os.path.basename(cmdline[0]) == b"systemd-nspawn" and str(host.merged).encode() in cmdline


def _running_pid(host: Host) -> int | None:
    pid = _state(host).get("pid")
    return pid if _alive(pid, host) else None


def _defined_hosts() -> list[Host]:
    hosts_dir = lab_dir() / "hosts"
    found = [Host.named(p.name) for p in hosts_dir.glob("node*") if p.is_dir() and re.fullmatch(r"node[1-9][0-9]*", p.name)] if hosts_dir.is_dir() else []
    return sorted(found, key=lambda h: h.index)


def _leftover_hosts() -> list[Host]:
    """Hosts known by state dir or by any resource named after them (after a crash or a lost state dir)."""
    names = {h.name for h in _defined_hosts()}
    names.update(p.name.split("-", 1)[1] for p in Path("/run/netns").glob(f"hf{_tag()}-node*"))
    names.update(p.name.split("-", 1)[1] for p in Path("/sys/class/net").glob(f"hfv{_tag()}-node*"))
    for root in CGROUP_ROOTS:
        names.update(p.name for p in Path(root, _cgroup_name()).glob("node*"))
    prefix = str(lab_dir() / "hosts") + "/"
    names.update(m.point[len(prefix) :].split("/")[0] for m in _mounts() if m.point.startswith(prefix))
    return sorted((Host.named(n) for n in names if re.fullmatch(r"node[1-9][0-9]*", n)), key=lambda h: h.index)


# ---------------------------------------------------------------- network


def _ensure_bridge() -> bool:
    """Create the bridge (hfbr0 with 10.77.0.1/24) if missing; return True if this call created it."""
    name = bridge()
    created = not _link_exists(name)
    if created:
        # A fixed MAC: otherwise the bridge takes its lowest port's MAC, which changes as hosts come and go.
        _run(["ip", "link", "add", name, "address", f"02:77:{instance():02x}:00:00:01", "type", "bridge"])
    _run(["ip", "addr", "replace", f"{bridge_ip()}/24", "dev", name])
    # The hosts must never reach past this machine: refuse to forward what comes in from the bridge.
    Path(f"/proc/sys/net/ipv4/conf/{name}/forwarding").write_text("0\n")
    _run(["ip", "link", "set", name, "up"])
    return created


def _remove_bridge() -> None:
    if _link_exists(bridge()):
        _run(["ip", "link", "del", bridge()], check=False)


def _remove_network(host: Host) -> None:
    # Delete the veth explicitly: netns teardown is asynchronous, and a quick down/up would
    # otherwise hit "RTNETLINK answers: File exists" on the same veth name.
    if _link_exists(host.veth):
        _run(["ip", "link", "del", host.veth], check=False)
    if Path("/run/netns", host.netns).exists():
        _run(["ip", "netns", "del", host.netns], check=False)


def _create_network(host: Host) -> None:
    _remove_network(host)
    _run(["ip", "netns", "add", host.netns])
    _run(["ip", "link", "add", host.veth, "address", host.veth_mac, "type", "veth", "peer", "name", "eth0", "address", host.mac, "netns", host.netns])
    _run(["ip", "link", "set", host.veth, "master", bridge(), "up"])
    batch = f"link set lo up\naddr add {host.ip}/24 dev eth0\nlink set eth0 up\nroute add default via {bridge_ip()}\n"
    _run(["ip", "-n", host.netns, "-batch", "-"], input=batch)


# ---------------------------------------------------------------- one host's life


# Runs detached: records its PID, joins the host's cgroups, then becomes systemd-nspawn (same PID).
_LAUNCHER = 'echo $$ >"$1" && echo $$ >"$2/cgroup.procs" && echo $$ >"$3/cgroup.procs" && shift 3 && exec "$@"'


def _nspawn_argv(host: Host) -> list[str]:
    return [
        "systemd-nspawn",
        "-q",
        "-b",
        "-D",
        str(host.merged),
        f"--machine={host.name}",
        "--register=no",
        "--keep-unit",
        f"--network-namespace-path=/run/netns/{host.netns}",
        "--private-network",
        "--console=read-only",
        "--link-journal=no",
        # For podman inside the hosts: keyring and device-cgroup BPF syscalls (harmless otherwise).
        "--system-call-filter=@keyring bpf",
        # overlay-on-overlay fails, so container storage lives on a plain directory of this machine.
        f"--bind={host.containers}:/var/lib/containers",
    ]


def _personalize(host: Host) -> None:
    """Per-host identity, written through the merged tree so it lands in the host's upper dir."""
    root = host.merged
    _write_file(root / "etc/hostname", host.name + "\n")
    _write_file(root / "etc/hosts", f"127.0.0.1\tlocalhost\n{host.ip}\t{host.name}\n::1\tlocalhost ip6-localhost ip6-loopback\n")
    machine_id = root / "etc/machine-id"
    if not machine_id.read_text().strip():
        # Stable across stop/start, like a real host's (journal dirs, facts).
        _write_file(machine_id, uuid.uuid4().hex + "\n", mode=0o444)


def _launch(host: Host, lower: Path) -> None:
    """Set up one host's disk, network and cgroups and start its systemd-nspawn, without waiting for boot."""
    if re.search(r"[,:\s]", str(host.dir) + str(lower)):
        raise LabError(f"paths for overlayfs must not contain commas, colons or spaces: {host.dir}, {lower}")
    for path in (host.upper, host.work, host.merged, host.containers):
        path.mkdir(parents=True, exist_ok=True)
    _save_state(host, lower=str(lower), pid=None)
    if not _is_mounted(host.merged):
        _run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={lower},upperdir={host.upper},workdir={host.work}", str(host.merged)])
    _personalize(host)
    _create_network(host)
    # Each nspawn in its own cgroups: with --keep-unit they otherwise share /payload and /supervisor and collide.
    for cgroup in host.cgroups:
        cgroup.mkdir(parents=True, exist_ok=True)
    pid_file = host.dir / "pid"
    pid_file.unlink(missing_ok=True)
    env = {**os.environ, "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY": "1"}
    with open(host.log, "a") as log:
        log.write(f"\n=== {time.strftime('%F %T')} lab: starting {host.name} ===\n")
        log.flush()
        argv = ["setsid", "-f", "sh", "-c", _LAUNCHER, "hostfleet-lab-launch", str(pid_file), *map(str, host.cgroups), *_nspawn_argv(host)]
        subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, check=True)
    # Wait until the launcher has recorded its PID and exec'd systemd-nspawn (only then does _alive see it).
    deadline = time.monotonic() + 10
    while True:
        text = pid_file.read_text() if pid_file.exists() else ""
        if text.endswith("\n"):
            pid = int(text)
            if _alive(pid, host):
                _save_state(host, pid=pid)
                return
            if _exited(pid):
                raise LabError(f"{host.name}: systemd-nspawn exited at once; see {host.log}:\n{_tail(host.log)}")
        if time.monotonic() > deadline:
            raise LabError(f"{host.name}: systemd-nspawn did not start; see {host.log}:\n{_tail(host.log)}")
        time.sleep(0.01)


def _wait_ready(host: Host, deadline: float) -> None:
    """Wait until the host answers SSH and systemd finished booting (running or degraded)."""
    pid = _state(host).get("pid")
    # Poll the SSH port first: cheap, and it notices at once when nspawn died.
    while True:
        if not _alive(pid, host):
            raise LabError(f"{host.name}: systemd-nspawn exited during boot; last lines of {host.log}:\n{_tail(host.log)}")
        try:
            with socket.create_connection((host.ip, 22), timeout=0.5):
                break
        except OSError:
            if time.monotonic() > deadline:
                raise LabError(f"{host.name}: sshd did not listen on {host.ip}:22 within {BOOT_TIMEOUT:.0f} s; see {host.log}") from None
            time.sleep(0.02)
    while True:
        if not _alive(pid, host):
            raise LabError(f"{host.name}: systemd-nspawn exited during boot; last lines of {host.log}:\n{_tail(host.log)}")
        try:
            proc = ssh(host.name, "systemctl is-system-running --wait", check=False, timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            jobs = ssh(host.name, "systemctl list-jobs --no-pager", check=False, timeout=10).stdout.strip()
            raise LabError(f"{host.name}: boot did not finish within {BOOT_TIMEOUT:.0f} s; pending jobs:\n{jobs}") from None
        state = proc.stdout.strip()
        if state == "running":
            return
        if state == "degraded":
            failed = ssh(host.name, "systemctl --failed --no-legend --plain", check=False).stdout.strip()
            _say(f"{host.name}: degraded; failed units:\n{failed}")
            return
        if proc.returncode != 255 or time.monotonic() > deadline:  # 255: ssh itself failed, try again
            raise LabError(f"{host.name}: system state {state!r} (ssh exit {proc.returncode}: {proc.stderr.strip()})")
        time.sleep(0.1)


def _kill_cgroup_processes(host: Host) -> None:
    """SIGKILL what is left in the host's own cgroups (the guest's processes), until they are empty."""
    for _attempt in range(100):
        pids = set()
        for cgroup in host.cgroups:
            for procs in cgroup.glob("**/cgroup.procs") if cgroup.is_dir() else []:
                with contextlib.suppress(OSError):
                    pids.update(int(p) for p in procs.read_text().split())
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
    raise LabError(f"{host.name}: processes survive SIGKILL in {host.cgroups}")


def _remove_cgroups(host: Host) -> None:
    for cgroup in host.cgroups:
        if cgroup.is_dir():
            for dirpath, _dirs, _files in sorted(os.walk(cgroup), key=lambda entry: -len(entry[0])):
                with contextlib.suppress(OSError):
                    os.rmdir(dirpath)


def _power_off(hosts: list[Host], graceful: bool = True) -> None:
    """Stop hosts in parallel and free their mounts, network and cgroups; keep their dirs (disks).

    Not graceful: kill at once (used when undoing a boot: a guest killed early in boot has no
    signal handlers yet and would ignore the shutdown request until STOP_TIMEOUT).
    """
    pids = {host: _running_pid(host) for host in hosts}
    for pid in pids.values():
        if pid:
            # nspawn turns SIGTERM into SIGRTMIN+3 for the guest's systemd: an orderly shutdown.
            os.kill(pid, signal.SIGTERM if graceful else signal.SIGKILL)
    deadline = time.monotonic() + (STOP_TIMEOUT if graceful else 5)
    while any(_alive(pid, host) for host, pid in pids.items()) and time.monotonic() < deadline:
        time.sleep(0.05)
    for host, pid in pids.items():
        if _alive(pid, host):
            if graceful:
                _say(f"{host.name}: no clean shutdown within {STOP_TIMEOUT:.0f} s, killing it")
            os.kill(pid, signal.SIGKILL)
    for host in hosts:
        _kill_cgroup_processes(host)
        if _is_mounted(host.merged):
            if _run(["umount", str(host.merged)], check=False).returncode != 0:
                _run(["umount", "-l", str(host.merged)])
        _remove_network(host)
        _remove_cgroups(host)
        if host.dir.is_dir():
            _save_state(host, pid=None)


def _destroy(hosts: list[Host], graceful: bool = True) -> None:
    """Power hosts off and delete their dirs (disks, logs)."""
    _power_off(hosts, graceful)
    for host in hosts:
        if _is_mounted(host.merged):  # never recurse into a live overlay
            raise LabError(f"{host.merged} is still mounted; not deleting {host.dir}")
        shutil.rmtree(host.dir, ignore_errors=True)


def _write_access_files() -> None:
    """inventory.ini for Ansible and ssh_config for `ssh -F`, listing every known host."""
    hosts = _defined_hosts()
    key = key_path()
    inventory = ["# Written by tests/lab/lab.py: the lab's test hosts (docs/lab.md).", "[lab]"]
    inventory += [
        f"{h.name} ansible_host={h.ip} ansible_user=root ansible_ssh_private_key_file={key} "
        # ansible_ssh_timeout: Ansible puts its own `-o ConnectTimeout=10` first and ssh keeps the first value.
        # 8 s: a stopped host is found unreachable quickly, a loaded CI machine is not mistaken for one.
        f"ansible_python_interpreter=/usr/bin/python3 ansible_ssh_timeout=8 ansible_ssh_common_args='{SSH_OPTIONS}'"
        for h in hosts
    ]
    _write_file(inventory_path(), "\n".join(inventory) + "\n")
    config = ["# Written by tests/lab/lab.py: ssh -F THIS_FILE nodeK COMMAND"]
    for h in hosts:
        config += [f"Host {h.name}", f"    HostName {h.ip}"]
    config += [
        "Host *",
        "    User root",
        f"    IdentityFile {key}",
        "    IdentitiesOnly yes",
        "    BatchMode yes",
        "    StrictHostKeyChecking no",
        "    UserKnownHostsFile /dev/null",
        "    GlobalKnownHostsFile /dev/null",
        "    LogLevel ERROR",
        "    ConnectTimeout 3",
        # A stopped host vanishes without closing connections: give up on them within seconds.
        "    ServerAliveInterval 2",
        "    ServerAliveCountMax 3",
    ]
    _write_file(ssh_config_path(), "\n".join(config) + "\n")


def _boot(hosts: list[Host], lower: Path, fresh: set[Host]) -> None:
    """Launch hosts and wait for all of them; on any failure undo this boot and raise.

    Hosts in `fresh` were created by this call and are deleted on failure; the others had a
    disk already, which is kept.
    """
    try:
        for host in hosts:
            recorded = Path(_state(host).get("lower") or lower)
            if not recorded.is_dir():
                _say(f"{host.name}: its image {recorded} is gone; booting its kept disk on {lower}")
                recorded = lower
            _launch(host, recorded)
        _write_access_files()
        deadline = time.monotonic() + BOOT_TIMEOUT
        with ThreadPoolExecutor(max_workers=max(1, len(hosts))) as pool:
            futures = [pool.submit(_wait_ready, host, deadline) for host in hosts]
            errors = [str(f.exception()) for f in futures if f.exception()]
        if errors:
            raise LabError("\n".join(errors))
    except BaseException:
        _say("boot failed: undoing it")
        undos = (
            lambda: _power_off([h for h in hosts if h not in fresh], graceful=False),
            lambda: _destroy([h for h in hosts if h in fresh], graceful=False),
            _write_access_files,
        )
        for undo in undos:
            try:
                undo()
            except Exception as exc:  # keep undoing; the original error is the one to report
                _say(f"while undoing: {exc}")
        raise


# ---------------------------------------------------------------- public API


def up(n: int) -> Path:
    """Bring node1..nodeN up (keeping hosts already running, booting stopped ones on their kept
    disks), wait until every one runs systemd and answers SSH, and return the inventory path."""
    if not 1 <= n <= MAX_HOSTS:
        raise LabError(f"number of hosts must be 1..{MAX_HOSTS}, not {n}")
    _check_prerequisites()
    with _flock(lab_dir() / ".lock"):
        lower = ensure_image()
        wanted = [Host(i) for i in range(1, n + 1)]
        to_boot = [h for h in wanted if not _running_pid(h)]
        fresh = {h for h in to_boot if not h.dir.exists()}
        bridge_created = _ensure_bridge()
        try:
            if to_boot:
                _boot(to_boot, lower, fresh)
            _write_access_files()
        except BaseException:
            if bridge_created and not any(_running_pid(h) for h in _defined_hosts()):
                _remove_bridge()
            raise
        return inventory_path()


def down() -> None:
    """Stop every host and remove everything the lab created (the image cache stays)."""
    _check_prerequisites()
    with _flock(lab_dir() / ".lock"):
        _destroy(_leftover_hosts())
        for path in (inventory_path(), ssh_config_path()):
            path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            (lab_dir() / "hosts").rmdir()
        for root in CGROUP_ROOTS:
            with contextlib.suppress(OSError):
                Path(root, _cgroup_name()).rmdir()
        _remove_bridge()


def remove(name: str) -> None:
    """Destroy one host and its disk, and rewrite the inventory without it (the others keep running)."""
    host = Host.named(name)
    _check_prerequisites()
    with _flock(lab_dir() / ".lock"):
        _destroy([host])
        _write_access_files()


def stop(name: str) -> None:
    """Power one host off. Its disk (overlay upper dir) is kept; its IP stops answering."""
    host = Host.named(name)
    _check_prerequisites()
    with _flock(lab_dir() / ".lock"):
        if not host.dir.is_dir():
            raise LabError(f"{name} is not a lab host (run `lab.py up N` first)")
        _power_off([host])


def start(name: str) -> None:
    """Boot a stopped host again on its kept disk and wait until it is ready (no-op if running)."""
    host = Host.named(name)
    _check_prerequisites()
    with _flock(lab_dir() / ".lock"):
        if not host.dir.is_dir():
            raise LabError(f"{name} is not a lab host (run `lab.py up N` first)")
        if _running_pid(host):
            return
        lower = ensure_image()
        _ensure_bridge()
        _boot([host], lower, fresh=set())


def ssh(name: str, cmd: str | list[str], check: bool = True, timeout: float = 120, input: str | None = None) -> subprocess.CompletedProcess:
    """Run cmd (a shell string, or an argv list that gets quoted) on a host as root over SSH.

    Returns the CompletedProcess (text stdout/stderr); with check, a non-zero exit raises LabError.
    """
    command = cmd if isinstance(cmd, str) else shlex.join(cmd)
    argv = ["ssh", "-F", str(ssh_config_path()), name, command]
    stdin = None if input is not None else subprocess.DEVNULL
    proc = subprocess.run(argv, text=True, capture_output=True, timeout=timeout, input=input, stdin=stdin, check=False)
    if check and proc.returncode != 0:
        raise LabError(f"ssh {name} {command!r}: exit {proc.returncode}\nstdout: {proc.stdout.strip()}\nstderr: {proc.stderr.strip()}")
    return proc


def hosts() -> list[tuple[str, str]]:
    """(name, ip) of every host the lab knows, running or stopped."""
    return [(h.name, h.ip) for h in _defined_hosts()]


def status() -> list[dict]:
    """Per known host: name, ip, running (bool), pid (or None)."""
    result = []
    for host in _defined_hosts():
        pid = _running_pid(host)
        result.append({"name": host.name, "ip": host.ip, "running": pid is not None, "pid": pid})
    return result
