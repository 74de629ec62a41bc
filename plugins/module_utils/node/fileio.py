# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Files and directories of the node layer's state, with explicit modes whatever the umask. Stdlib only.

Every file under ``/var/lib/hostfleet`` and ``/run/hostfleet`` is written by ``write_atomic`` and every
directory made by ``ensure_dir``: the process's umask (``umask 0`` in a login shell, in ``become``) never decides
a mode, and another local user cannot redirect a write (the temporary file is created with ``O_EXCL|O_NOFOLLOW``
under a random name, so a file or symlink planted in its place makes the call fail, never followed).

Durability, one policy: ``write_atomic(..., fsync=True)`` (the default) returns once the file's data and its
directory entry are on disk. ``fsync=False`` is for callers that sync once after a batch of writes (the node
layer's converge calls ``os.sync()`` after all its files) and for files on tmpfs (``/run``).

The pod hook is a standalone script: the node layer installs it with this module's code in place of its import
(``converge.hook_script_source``), so this module imports nothing outside the standard library and must not use
``from __future__`` beyond the line below (which is dropped there).
"""

from __future__ import annotations

import os
import secrets
import stat


class UnsafePathError(OSError):
    """A directory the node layer would write into is a symlink or is owned by another user."""


def ensure_dir(path, mode=0o755, parents_mode=0o755):
    """Make ``path`` a directory of mode ``mode`` owned by this process's user, whatever the umask.

    Missing parents are created with ``parents_mode``; existing parents are left as they are. An existing ``path``
    gets ``mode``; it is refused (UnsafePathError) when it is a symlink owned by another user or a directory owned
    by another user (root's own symlinks, e.g. a state directory moved to another disk, are followed).
    """
    path = os.path.abspath(path)
    missing = []
    probe = path
    while not os.path.lexists(probe):
        missing.append(probe)
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    for directory in reversed(missing):
        wanted = mode if directory == path else parents_mode
        try:
            os.mkdir(directory, wanted)
        except FileExistsError:
            pass  # made meanwhile by someone else: checked below when it is ours to check
        else:
            os.chmod(directory, wanted)  # mkdir's mode went through the umask
    euid = os.geteuid()
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        if info.st_uid not in (euid, 0):
            raise UnsafePathError(f"{path} is a symlink owned by uid {info.st_uid}: refusing to write through it")
        info = os.stat(path)
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafePathError(f"{path} is not a directory")
    if info.st_uid != euid:
        raise UnsafePathError(f"{path} is owned by uid {info.st_uid}, not {euid}: refusing to write into it")
    if stat.S_IMODE(info.st_mode) != mode:
        os.chmod(path, mode)
    return path


def write_atomic(path, content, mode, fsync=True, uid=None, gid=None):
    """Replace ``path`` with ``content`` (str as UTF-8, or bytes): readers see the old file or the new one.

    The temporary file is created next to ``path`` with its final ``mode`` (a Secret is never readable by others,
    not even for a moment), ``fchmod``-ed (the umask), ``fchown``-ed to ``uid``/``gid`` when running as root
    (default root), then renamed over ``path``; rename replaces a symlink at ``path``, never follows it. The
    directory must exist (``ensure_dir``). See the module docstring for ``fsync``.
    """
    data = content.encode("utf-8") if isinstance(content, str) else content
    directory = os.path.dirname(path) or "."
    for attempt in range(8):
        tmp = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(8)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
            break
        except FileExistsError:
            if attempt == 7:
                raise  # something keeps planting files at random names: never write through them
    try:
        try:
            os.fchmod(fd, mode)
            if os.geteuid() == 0:
                os.fchown(fd, 0 if uid is None else uid, 0 if gid is None else gid)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    if fsync:
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
