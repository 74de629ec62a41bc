"""Tiny local OCI images for podman inside lab hosts, built on the host itself: no registry.

A test image is a rootfs holding /bin/busybox (Debian's busybox-static, which the lab image
has) with a symlink for each of its applets in /bin (sh, httpd, sleep, echo, cat, true, false,
ls, mkdir, touch, kill, wget, env, grep, nc, ... but no printenv), a minimal /etc/passwd and /etc/group, /tmp, plus the
extra files a test asks for (e.g. {"/www/index.html": "v1\\n"}). It is imported with
`podman import --change 'CMD ["/bin/sh"]'` as localhost/NAME:TAG, so `podman run
--pull=never localhost/NAME:TAG /bin/httpd -f -p 8080 -h /www` works offline.

    build_image(host, name, tag, files) -> "localhost/NAME:TAG"
    build_images(hosts, name, tag, files) -> the same reference, built on every host at once

Idempotent: the image carries a label with a digest of its recipe (files, CMD, this module's
RECIPE_VERSION); a host whose NAME:TAG already has that digest is left alone (one SSH round
trip, about 0.2 s), otherwise the image is built again (about 0.5 s) and the old one removed if no
container uses it. One shell script per call, sent on stdin through labctl.ssh, so the lab
instance is the one labctl uses (HOSTFLEET_LAB_INSTANCE).
"""

from __future__ import annotations

import base64
import hashlib
import json
import posixpath
import re
import shlex
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor

from lab import labctl

# Bump when the script below changes what an image contains: hosts rebuild their images.
RECIPE_VERSION = "1"
DIGEST_LABEL = "hostfleet.lab.recipe"
CMD = ["/bin/sh"]
BUSYBOX = "/bin/busybox"  # on the lab host, from busybox-static (statically linked: runs in any rootfs)
# Applets a test may count on; the build fails if the host's busybox lacks one.
REQUIRED_APPLETS = tuple("sh httpd sleep echo cat true false ls mkdir touch kill wget env rm test grep sed ps nc".split())
PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = "root:x:0:\nnogroup:x:65534:\n"

_NAME = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")

Ssh = Callable[..., object]  # labctl.ssh's signature: (host, cmd, check=..., timeout=..., input=...)


def reference(name: str, tag: str) -> str:
    """The image reference for NAME:TAG, checked: "localhost/NAME:TAG"."""
    name = name.removeprefix("localhost/")
    if not _NAME.fullmatch(name):
        raise ValueError(f"not a valid image name: {name!r} (lower case letters, digits, '.', '_', '-', '/')")
    if not _TAG.fullmatch(tag):
        raise ValueError(f"not a valid image tag: {tag!r}")
    return f"localhost/{name}:{tag}"


def _normalized_files(files: Mapping[str, str | bytes] | None) -> dict[str, bytes]:
    result: dict[str, bytes] = {}
    for path, content in (files or {}).items():
        normal = posixpath.normpath(path)
        if not path.startswith("/") or normal in ("/", "//") or ".." in path.split("/") or "\0" in path:
            raise ValueError(f"image file paths must be absolute and inside the image: {path!r}")
        if normal == "/bin/busybox" or normal.startswith(("/proc/", "/sys/", "/dev/")):
            raise ValueError(f"an image file may not replace {path!r}")
        if normal in result:
            raise ValueError(f"image file given twice: {path!r}")
        result[normal] = content.encode() if isinstance(content, str) else bytes(content)
    return dict(sorted(result.items()))


def recipe_digest(files: Mapping[str, str | bytes] | None = None) -> str:
    """What identifies an image's content: the recipe version, its CMD and its extra files."""
    normalized = _normalized_files(files)
    payload = json.dumps([RECIPE_VERSION, CMD, {path: hashlib.sha256(data).hexdigest() for path, data in normalized.items()}])
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def build_script(ref: str, files: Mapping[str, str | bytes] | None = None) -> str:
    """The shell script that builds ref on a host (unless it is there with the same recipe).

    Prints "unchanged" or "built" as its last line.
    """
    normalized = _normalized_files(files)
    digest = recipe_digest(files)
    q = shlex.quote
    lines = [
        "set -eu",
        f"ref={q(ref)}",
        f"digest={q(digest)}",
        f"""have=$(podman image inspect --format '{{{{index .Labels "{DIGEST_LABEL}"}}}}' "$ref" </dev/null 2>/dev/null || true)""",
        'if [ "$have" = "$digest" ]; then echo unchanged; exit 0; fi',
        "old=$(podman image inspect --format '{{.Id}}' \"$ref\" </dev/null 2>/dev/null || true)",
        "work=$(mktemp -d /var/tmp/hostfleet-image.XXXXXX)",
        "trap 'rm -rf \"$work\"' EXIT",
        'root="$work/rootfs"',
        'mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/root" "$root/proc" "$root/sys" "$root/dev"',
        'chmod 1777 "$root/tmp"',
        'chmod 700 "$root/root"',
        f'cp {q(BUSYBOX)} "$root/bin/busybox"',
        'for applet in $("$root/bin/busybox" --list); do',
        '    [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"',
        "done",
        f"for applet in {' '.join(REQUIRED_APPLETS)}; do",
        '    [ -e "$root/bin/$applet" ] || { echo "busybox has no applet $applet" >&2; exit 1; }',
        "done",
        f'printf %s {q(PASSWD)} >"$root/etc/passwd"',
        f'printf %s {q(GROUP)} >"$root/etc/group"',
    ]
    for number, (path, data) in enumerate(normalized.items()):
        target = f'"$root"{q(path)}'
        mode = "755" if data.startswith(b"#!") else "644"
        marker = f"HOSTFLEET_FILE_{number}"
        encoded = base64.encodebytes(data).decode()
        lines += [
            f'mkdir -p "$root"{q(posixpath.dirname(path))}',
            f"rm -f {target}",  # never write through an applet symlink into /bin/busybox
            f"base64 -d >{target} <<'{marker}'\n{encoded}{marker}",
            f"chmod {mode} {target}",
        ]
    change_cmd = "CMD " + json.dumps(CMD)
    lines += [
        'tar -C "$root" --numeric-owner --owner=0 --group=0 -cf "$work/rootfs.tar" .',
        f'podman import --quiet --change {q(change_cmd)} --change "LABEL {DIGEST_LABEL}=$digest" "$work/rootfs.tar" "$ref" </dev/null >/dev/null',
        # The image the tag pointed to before is left untagged: remove it unless a container uses it.
        'if [ -n "$old" ]; then podman rmi "$old" </dev/null >/dev/null 2>&1 || true; fi',
        "echo built",
    ]
    return "\n".join(lines) + "\n"


def build_image(host: str, name: str, tag: str = "latest", files: Mapping[str, str | bytes] | None = None, ssh: Ssh = labctl.ssh) -> str:
    """Make sure localhost/NAME:TAG exists on host with exactly these extra files; return its reference.

    files maps absolute paths in the image to their content (str or bytes; a content starting
    with "#!" gets mode 755, others 644). The command is /bin/sh. Raises labctl.LabError if the
    build fails on the host. ssh is labctl.ssh (tests may pass another runner).
    """
    ref = reference(name, tag)
    ssh(host, "sh -s", check=True, timeout=120, input=build_script(ref, files))
    return ref


def build_images(hosts: Iterable[str], name: str, tag: str = "latest", files: Mapping[str, str | bytes] | None = None, ssh: Ssh = labctl.ssh) -> str:
    """build_image on every host in parallel; return the reference."""
    hosts = list(hosts)
    ref = reference(name, tag)
    if hosts:
        with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
            for future in [pool.submit(build_image, host, name, tag, files, ssh) for host in hosts]:
                future.result()
    return ref
