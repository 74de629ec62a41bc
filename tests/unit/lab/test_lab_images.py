"""tests/lab/images.py offline: the build script runs here against a fake podman and a fake busybox."""

import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from lab import images  # noqa: E402

FAKE_PODMAN = """\
#!{python}
# A stand-in for podman: one image slot kept in $FAKE_PODMAN_STATE, every call logged.
import os, shutil, sys
state = os.environ["FAKE_PODMAN_STATE"]
args = sys.argv[1:]
with open(os.path.join(state, "calls"), "a") as log:
    log.write(" ".join(args) + "\\n")
def read(name):
    with open(os.path.join(state, name)) as handle:
        return handle.read()
if args[:2] == ["image", "inspect"]:
    if not os.path.exists(os.path.join(state, "image.tar")):
        sys.exit(125)
    print(read("label") if "Labels" in args[3] else read("id"))
elif args[:1] == ["import"]:
    changes = [args[i + 1] for i, arg in enumerate(args) if arg == "--change"]
    label = next(c for c in changes if c.startswith("LABEL "))
    with open(os.path.join(state, "changes"), "w") as handle:
        handle.write("\\n".join(changes))
    with open(os.path.join(state, "label"), "w") as handle:
        handle.write(label.split("=", 1)[1])
    count = len(os.listdir(state))
    with open(os.path.join(state, "id"), "w") as handle:
        handle.write(f"id{{count}}")
    shutil.copy(args[-2], os.path.join(state, "image.tar"))
elif args[:1] == ["rmi"]:
    pass
else:
    sys.exit(f"fake podman: unexpected {{args}}")
"""

APPLETS = ["sh", "httpd", "sleep", "echo", "cat", "true", "false", "ls", "mkdir", "touch", "kill", "wget", "env", "rm", "test", "grep", "sed", "ps", "nc"]


@pytest.fixture
def host(tmp_path, monkeypatch):
    """A fake lab host: build scripts run here with `sh -s`, podman and busybox are fakes."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    podman = bin_dir / "podman"
    podman.write_text(FAKE_PODMAN.format(python=sys.executable))
    podman.chmod(0o755)
    busybox = tmp_path / "busybox"
    busybox.write_text("#!/bin/sh\n[ \"$1\" = --list ] && printf '%s\\n' busybox " + " ".join(APPLETS) + "\n")
    busybox.chmod(0o755)
    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv("FAKE_PODMAN_STATE", str(state))
    monkeypatch.setattr(images, "BUSYBOX", str(busybox))
    calls = []

    def ssh(name, cmd, check=True, timeout=120, input=None):
        calls.append((name, cmd))
        proc = subprocess.run(["sh", "-c", cmd], input=input, text=True, capture_output=True, timeout=timeout, check=False)
        if check and proc.returncode:
            raise RuntimeError(proc.stderr)
        return proc

    class Host:
        pass

    result = Host()
    result.ssh, result.calls, result.state = ssh, calls, state
    return result


def members(state: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(state / "image.tar") as tar:
        return {m.name.removeprefix("./"): m for m in tar.getmembers()}


def content(state: Path, name: str) -> bytes:
    with tarfile.open(state / "image.tar") as tar:
        return tar.extractfile(f"./{name}").read()


def podman_calls(state: Path) -> list[str]:
    return (state / "calls").read_text().splitlines()


def test_build_then_unchanged_then_rebuilt(host):
    files = {"/www/index.html": "v1\n", "/bin/app.sh": "#!/bin/sh\necho app\n", "/data/blob": b"\x00\xff\n"}
    ref = images.build_image("node1", "test", "v1", files, ssh=host.ssh)
    assert ref == "localhost/test:v1"
    assert host.calls == [("node1", "sh -s")]
    tar = members(host.state)
    assert tar["bin/busybox"].isfile()
    for applet in images.REQUIRED_APPLETS:
        assert tar[f"bin/{applet}"].issym() and tar[f"bin/{applet}"].linkname == "busybox"
    assert content(host.state, "www/index.html") == b"v1\n"
    assert content(host.state, "data/blob") == b"\x00\xff\n"
    assert stat.S_IMODE(tar["www/index.html"].mode) == 0o644
    assert stat.S_IMODE(tar["bin/app.sh"].mode) == 0o755
    assert stat.S_IMODE(tar["tmp"].mode) == 0o1777
    assert {m.uid for m in tar.values()} == {0}
    assert content(host.state, "etc/passwd").startswith(b"root:x:0:0:")
    changes = (host.state / "changes").read_text().splitlines()
    assert changes == ['CMD ["/bin/sh"]', f"LABEL {images.DIGEST_LABEL}={images.recipe_digest(files)}"]

    # Same recipe: only the label is looked at.
    before = len(podman_calls(host.state))
    images.build_image("node1", "test", "v1", dict(reversed(list(files.items()))), ssh=host.ssh)
    assert len(podman_calls(host.state)) == before + 1
    assert podman_calls(host.state)[-1].startswith("image inspect")

    # Another content: built again, and the image the tag had is removed.
    old_id = (host.state / "id").read_text()
    images.build_image("node1", "test", "v1", {**files, "/www/index.html": "v2\n"}, ssh=host.ssh)
    assert content(host.state, "www/index.html") == b"v2\n"
    assert podman_calls(host.state)[-1] == f"rmi {old_id}"


def test_a_file_replaces_an_applet_not_busybox(host):
    images.build_image("node1", "test", "v1", {"/bin/sh": "#!/bin/busybox ash\n"}, ssh=host.ssh)
    tar = members(host.state)
    assert tar["bin/sh"].isfile() and content(host.state, "bin/sh") == b"#!/bin/busybox ash\n"
    assert content(host.state, "bin/busybox") == Path(images.BUSYBOX).read_bytes()


def test_build_fails_without_an_applet(host, tmp_path):
    Path(images.BUSYBOX).write_text('#!/bin/sh\n[ "$1" = --list ] && echo sh\n')
    with pytest.raises(RuntimeError, match="busybox has no applet httpd"):
        images.build_image("node1", "test", "v1", ssh=host.ssh)


def test_build_images_on_every_host(host):
    assert images.build_images(["node1", "node2"], "web", "1.0", {"/a": "x"}, ssh=host.ssh) == "localhost/web:1.0"
    assert sorted(host.calls) == [("node1", "sh -s"), ("node2", "sh -s")]


def test_script_is_valid_sh_with_awkward_content():
    files = {"/odd name/it's.txt": "HOSTFLEET_FILE_0\n$(touch /tmp/pwned) `x` 'q' \"d\"\n", "/empty": ""}
    script = images.build_script("localhost/x:y", files)
    assert subprocess.run(["sh", "-n"], input=script, text=True, check=False).returncode == 0
    assert "$(touch" not in script  # contents travel base64-encoded


@pytest.mark.parametrize(
    ("name", "tag", "expected"),
    [("test", "v1", "localhost/test:v1"), ("localhost/a/b-c.d", "1.2_3", "localhost/a/b-c.d:1.2_3")],
)
def test_reference(name, tag, expected):
    assert images.reference(name, tag) == expected


@pytest.mark.parametrize(("name", "tag"), [("Test", "v1"), ("a b", "v1"), ("", "v1"), ("a", ""), ("a", "-x"), ("a", "x" * 129), ("a/", "v")])
def test_reference_rejects(name, tag):
    with pytest.raises(ValueError):
        images.reference(name, tag)


@pytest.mark.parametrize("path", ["relative", "/", "/../etc/x", "/a/../../b", "/bin/busybox", "/proc/x", "/dev/null", "/a\0b"])
def test_files_rejected(path):
    with pytest.raises(ValueError):
        images.recipe_digest({path: "x"})


def test_files_given_twice_rejected():
    with pytest.raises(ValueError, match="twice"):
        images.recipe_digest({"/a/b": "1", "/a//b": "2"})


def test_digest_follows_content_not_order():
    base = images.recipe_digest({"/a": "1", "/b": "2"})
    assert base == images.recipe_digest({"/b": "2", "/a": "1"}) == images.recipe_digest({"/a": b"1", "/b": "2"})
    assert base != images.recipe_digest({"/a": "1", "/b": "3"})
    assert base != images.recipe_digest({"/a": "1", "/c": "2"})
    assert images.recipe_digest() == images.recipe_digest({})
