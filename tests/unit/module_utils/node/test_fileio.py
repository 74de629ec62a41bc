"""fileio.py: the one atomic write and directory maker of the node layer (issue 11 item 11)."""

from __future__ import annotations

import os
import stat

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.hostfleet.workloads.plugins.module_utils.node import configdata, converge, fileio

ROOT = os.geteuid() == 0
OTHER_UID = 4242


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def umask0():
    old = os.umask(0)
    yield
    os.umask(old)


def test_files_and_directories_get_their_modes_under_umask_0(tmp_path, umask0):
    made = fileio.ensure_dir(str(tmp_path / "a" / "b" / "c"), 0o700)
    assert (mode(tmp_path / "a"), mode(tmp_path / "a" / "b"), mode(made)) == (0o755, 0o755, 0o700)
    fileio.write_atomic(os.path.join(made, "secret"), b"pw", 0o600)
    fileio.write_atomic(os.path.join(made, "public"), "x", 0o644, fsync=False)
    assert (mode(tmp_path / "a/b/c/secret"), mode(tmp_path / "a/b/c/public")) == (0o600, 0o644)
    assert (tmp_path / "a/b/c/secret").read_bytes() == b"pw"
    assert set(os.listdir(made)) == {"secret", "public"}  # no temporary file left


def test_an_existing_directory_gets_its_mode_back(tmp_path):
    os.mkdir(tmp_path / "d")
    os.chmod(tmp_path / "d", 0o777)
    fileio.ensure_dir(str(tmp_path / "d"), 0o755)
    assert mode(tmp_path / "d") == 0o755


def test_a_symlink_planted_at_the_temporary_name_is_never_followed(tmp_path, monkeypatch):
    """The first random name is taken by another user's symlink to a file of theirs: the write goes elsewhere."""
    victim = tmp_path / "victim"
    victim.write_text("theirs")
    names = iter(["planted", "fresh"])
    monkeypatch.setattr(fileio.secrets, "token_hex", lambda n: next(names))
    os.symlink(victim, tmp_path / ".env.planted.tmp")
    fileio.write_atomic(str(tmp_path / "env"), "TOKEN=s3cret\n", 0o600)
    assert victim.read_text() == "theirs" and (tmp_path / "env").read_text() == "TOKEN=s3cret\n"
    assert mode(tmp_path / "env") == 0o600 and os.path.islink(tmp_path / ".env.planted.tmp")


def test_names_that_stay_taken_fail_the_write_rather_than_follow(tmp_path, monkeypatch):
    monkeypatch.setattr(fileio.secrets, "token_hex", lambda n: "same")
    (tmp_path / ".f.same.tmp").write_text("planted")
    with pytest.raises(FileExistsError):
        fileio.write_atomic(str(tmp_path / "f"), "x", 0o600)
    assert not (tmp_path / "f").exists() and (tmp_path / ".f.same.tmp").read_text() == "planted"


def test_a_symlink_at_the_destination_is_replaced_not_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("theirs")
    os.symlink(victim, tmp_path / "f")
    fileio.write_atomic(str(tmp_path / "f"), "ours", 0o600)
    assert victim.read_text() == "theirs" and not os.path.islink(tmp_path / "f") and (tmp_path / "f").read_text() == "ours"


@pytest.mark.parametrize("write", ["converge", "configdata"])
def test_the_old_predictable_temporary_names_cannot_redirect_a_write(tmp_path, write, monkeypatch):
    """Before the fix both writers used .<name>.<pid>.tmp opened without O_EXCL: a symlink there got the Secret."""
    victim = tmp_path / "victim"
    victim.write_text("theirs")
    target = tmp_path / "d" / "s.env"
    os.mkdir(tmp_path / "d")
    os.symlink(victim, tmp_path / "d" / f".s.env.{os.getpid()}.tmp")
    if write == "converge":
        converge._write_atomic(str(target), "TOKEN=s3cret\n", 0o600)
    else:
        plan = configdata.plan(str(tmp_path), "Secret", "s", {"TOKEN": b"s3cret"}, False, "present")
        plan.writes = {str(target): (b"TOKEN=s3cret\n", 0o600)}
        configdata.apply(plan)
    assert victim.read_text() == "theirs" and target.read_text() == "TOKEN=s3cret\n"


@pytest.mark.skipif(not ROOT, reason="needs root to give a directory to another user")
def test_a_directory_or_symlink_of_another_user_is_refused(tmp_path):
    os.mkdir(tmp_path / "theirs")
    os.chown(tmp_path / "theirs", OTHER_UID, OTHER_UID)
    with pytest.raises(fileio.UnsafePathError, match="owned by uid 4242"):
        fileio.ensure_dir(str(tmp_path / "theirs"), 0o755)
    os.mkdir(tmp_path / "ours")
    os.symlink(tmp_path / "ours", tmp_path / "link")
    os.lchown(tmp_path / "link", OTHER_UID, OTHER_UID)
    with pytest.raises(fileio.UnsafePathError, match="symlink owned by uid 4242"):
        fileio.ensure_dir(str(tmp_path / "link"), 0o755)
    os.symlink(tmp_path / "ours", tmp_path / "rootlink")  # root's own symlink (a state dir moved to another disk)
    assert fileio.ensure_dir(str(tmp_path / "rootlink"), 0o755)


@pytest.mark.skipif(not ROOT, reason="needs root to chown")
def test_files_are_owned_by_root_or_the_owner_asked_for(tmp_path):
    os.chown(tmp_path, 0, OTHER_UID)  # a setgid-like group on the directory must not leak into a Secret's group
    fileio.write_atomic(str(tmp_path / "a"), "x", 0o600)
    fileio.write_atomic(str(tmp_path / "b"), "x", 0o600, uid=OTHER_UID, gid=OTHER_UID)
    assert (os.stat(tmp_path / "a").st_uid, os.stat(tmp_path / "a").st_gid) == (0, 0)
    assert (os.stat(tmp_path / "b").st_uid, os.stat(tmp_path / "b").st_gid) == (OTHER_UID, OTHER_UID)


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=300), st.sampled_from([0o600, 0o644, 0o755, 0o640]), st.sampled_from([0, 0o022, 0o077, 0o002]), st.booleans())
def test_property_content_and_mode_whatever_the_umask(tmp_path_factory, content, wanted, umask, sync):
    directory = tmp_path_factory.mktemp("w")
    old = os.umask(umask)
    try:
        fileio.write_atomic(str(directory / "f"), content, wanted, fsync=sync)
    finally:
        os.umask(old)
    assert (directory / "f").read_bytes() == content and mode(directory / "f") == wanted
    assert os.listdir(directory) == ["f"]


def test_cron_runner_records_and_lock_under_umask_0(tmp_path, umask0):
    from ansible_collections.hostfleet.workloads.plugins.module_utils.job import cron_run

    cron_run.write_json(os.path.join(cron_run.runs_dir(str(tmp_path), "c"), "c-1.json"), {"a": 1})
    with cron_run.Lock(str(tmp_path), "c"):
        pass
    assert {mode(tmp_path / "cronjobs"), mode(tmp_path / "cronjobs/c"), mode(tmp_path / "cronjobs/c/runs")} == {0o755}
    assert (mode(tmp_path / "cronjobs/c/runs/c-1.json"), mode(tmp_path / "cronjobs/c/lock")) == (0o600, 0o600)


def test_config_data_under_umask_0(tmp_path, umask0):
    for kind, name in (("Secret", "s"), ("ConfigMap", "c")):
        configdata.apply(configdata.plan(str(tmp_path / "state"), kind, name, {"K": b"v"}, False, "present"))
    state = tmp_path / "state"
    assert (mode(state), mode(state / "secrets"), mode(state / "secrets/s"), mode(state / "configmaps"), mode(state / "configmaps/c")) == (
        0o755, 0o700, 0o700, 0o755, 0o755)
    assert {mode(state / "secrets" / f) for f in ("s/K", "s.env", "s.meta.json")} == {0o600}
    assert {mode(state / "configmaps" / f) for f in ("c/K", "c.env", "c.meta.json")} == {0o644}
