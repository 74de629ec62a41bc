# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ConfigMaps and Secrets on a host: the files pods read them from. Stdlib only.

One object ``<name>`` of a kind is, under ``<state_dir>/configmaps/`` (ConfigMap) or ``<state_dir>/secrets/`` (Secret):

- ``<name>/<key>``: one file per key, for ``configMap``/``secret`` volumes (bind-mounted read-only). Files are
  replaced atomically (rename), so a mounted directory shows the new value in place, as a Kubernetes volume does.
- ``<name>.env``: ``KEY="value"`` lines for ``envFrom`` and ``env[].valueFrom`` (read by the node layer's
  converge). A value that is not one line of UTF-8 text cannot be an environment variable: it is only a file,
  and reported as ``env_omitted``.
- ``<name>.meta.json``: whether the object is immutable, and the hash of its data.

ConfigMap files are 0644 in 0755 directories; Secret files 0600 in 0700 directories, owned by root. Pods that use
an object are not restarted when it changes (as in Kubernetes): environment variables are read when a container
(re)starts, mounted files change in place.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil

from ansible_collections.hostfleet.workloads.plugins.module_utils.node import downward, fileio
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError, config_key
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.units import CONFIG_FOLDERS

# By Kubernetes kind; the folder names are the ones the pods' units read (units.CONFIG_FOLDERS).
FOLDERS = {"ConfigMap": CONFIG_FOLDERS["configMap"], "Secret": CONFIG_FOLDERS["secret"]}
# Characters str.splitlines() splits on (the node layer's reader of environment files), and NUL.
_NOT_IN_ENV = "\x00\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


class ConfigError(RuntimeError):
    """A request this host refuses before changing anything."""


def env_text(raw):
    """The value as text when an environment file can carry it (UTF-8, one line, no NUL), else None."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if any(char in text for char in _NOT_IN_ENV):
        return None
    return text


def render_env(files):
    """(the ``.env`` text, the keys it cannot carry) of {key: bytes}."""
    lines, omitted = [], []
    for key in sorted(files):
        text = env_text(files[key])
        if text is None:
            omitted.append(key)
        else:
            # The node's reader strips one pair of surrounding quotes and nothing inside them.
            lines.append(f'{key}="{text}"\n')
    return "".join(lines), omitted


def data_hash(files):
    digest = hashlib.sha256()
    for key in sorted(files):
        digest.update(key.encode() + b"\0" + hashlib.sha256(files[key]).digest())
    return digest.hexdigest()


def _read(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except (FileNotFoundError, NotADirectoryError):
        return None


def _mode(path):
    try:
        return os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        return None


class Paths:
    def __init__(self, state_dir, kind, name):
        self.folder = os.path.join(state_dir.rstrip("/") or "/", FOLDERS[kind])
        self.tree = os.path.join(self.folder, name)
        self.env = os.path.join(self.folder, f"{name}.env")
        self.meta = os.path.join(self.folder, f"{name}.meta.json")

    def key(self, key):
        return os.path.join(self.tree, key)


class Plan:
    def __init__(self, kind, name):
        self.kind, self.name = kind, name
        self.secret = kind == "Secret"
        self.dirs = []  # (path, mode) to create or chmod
        self.writes = {}  # path -> (bytes, mode)
        self.chmods = {}  # path -> mode
        self.removals = []  # files
        self.tree_removal = None
        self.added, self.updated, self.removed = [], [], []
        self.env_omitted = []
        self.existed = False
        self.before = {}  # key -> bytes (for a ConfigMap's diff)
        self.after = {}

    @property
    def changed(self):
        return bool(self.dirs or self.writes or self.chmods or self.removals or self.tree_removal)

    def diff(self):
        """Keys with their values for a ConfigMap; for a Secret, key names only."""

        def text(data):
            lines = []
            for key in sorted(data):
                if self.secret:
                    lines.append(f"{key}: (value not shown)\n")
                else:
                    value = env_text(data[key])
                    shown = json.dumps(value) if value is not None else f"({len(data[key])} bytes)"
                    lines.append(f"{key}: {shown}\n")
            return "".join(lines)

        title = f"{self.kind} {self.name}"
        before, after = text(self.before), text(self.after)
        if self.secret and self.updated:
            after += "".join(f"# {key}: value changed\n" for key in sorted(self.updated))
        return {"before_header": f"{title} (on the host)", "after_header": f"{title} (requested)", "before": before, "after": after}


def _current(paths):
    """{key: bytes} of the object on the host."""
    try:
        names = sorted(os.listdir(paths.tree))
    except (FileNotFoundError, NotADirectoryError):
        return None
    result = {}
    for key in names:
        if key.startswith(".") and key.endswith(".tmp"):
            continue
        data = _read(paths.key(key))
        if data is not None:
            result[key] = data
    return result


def plan(state_dir, kind, name, files, immutable, state):
    """What to change on this host so that the object is ``files`` ({key: bytes}), or gone. Reads only."""
    paths = Paths(state_dir, kind, name)
    result = Plan(kind, name)
    result.state_dir = state_dir
    current = _current(paths)
    result.existed = current is not None or os.path.exists(paths.env)
    result.before = current or {}
    meta = None
    raw_meta = _read(paths.meta)
    if raw_meta:
        try:
            meta = json.loads(raw_meta.decode("utf-8"))
        except ValueError:
            meta = None
    if state == "absent":
        if current is not None:
            result.tree_removal = paths.tree
            result.removed = sorted(current)
        result.removals = [p for p in (paths.env, paths.meta) if os.path.lexists(p)]
        return result
    new_hash = data_hash(files)
    if meta and meta.get("immutable") and current is not None and meta.get("hash") != new_hash:
        raise ConfigError(f"{kind} {name} is immutable on this host and its data cannot change (as in Kubernetes): delete it first (state: absent)")
    result.after = dict(files)
    file_mode, dir_mode = (0o600, 0o700) if result.secret else (0o644, 0o755)
    for directory in (os.path.dirname(paths.folder), paths.folder, paths.tree):
        wanted = dir_mode if directory != os.path.dirname(paths.folder) else None
        mode = _mode(directory)
        if mode is None:
            result.dirs.append((directory, wanted if wanted is not None else 0o755))
        elif wanted is not None and mode != wanted:
            result.chmods[directory] = wanted
    for key, data in sorted(files.items()):
        before = (current or {}).get(key)
        if before is None:
            result.added.append(key)
            result.writes[paths.key(key)] = (data, file_mode)
        elif before != data:
            result.updated.append(key)
            result.writes[paths.key(key)] = (data, file_mode)
        elif _mode(paths.key(key)) != file_mode:
            result.chmods[paths.key(key)] = file_mode
    for key in sorted(set(current or {}) - set(files)):
        result.removed.append(key)
        result.removals.append(paths.key(key))
    env, result.env_omitted = render_env(files)
    meta_text = json.dumps({"kind": kind, "name": name, "immutable": bool(immutable), "hash": new_hash}, sort_keys=True) + "\n"
    for path, content in ((paths.env, env.encode("utf-8")), (paths.meta, meta_text.encode("utf-8"))):
        if _read(path) != content:
            result.writes[path] = (content, file_mode)
        elif _mode(path) != file_mode:
            result.chmods[path] = file_mode
    return result


def apply(result):
    # Directories first, each made or fixed to its mode whatever the umask (and refused if another user owns it).
    for path, mode in result.dirs:
        fileio.ensure_dir(path, mode)
    for path, mode in sorted(result.chmods.items()):
        if os.path.isdir(path) and not os.path.islink(path):
            fileio.ensure_dir(path, mode)
        else:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)  # never a mode change through a symlink
            try:
                os.fchmod(fd, mode)
            finally:
                os.close(fd)
    for path, (content, mode) in sorted(result.writes.items()):
        fileio.write_atomic(path, content, mode)
    for path in result.removals:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    if result.tree_removal:
        shutil.rmtree(result.tree_removal, ignore_errors=True)
    if result.changed and getattr(result, "state_dir", None):
        # The pods' own projections of the object (items, modes, projected volumes) follow, as the kubelet's do.
        downward.refresh_for_object(result.state_dir, result.kind, result.name)


def decode_files(encoded):
    """{key: bytes} of the module's {key: base64}; raises ConfigError naming a bad key or value.

    Keys follow Kubernetes' rule for ConfigMap/Secret keys (podspec.config_key), as the apply action checks them:
    a key is a file name and a line of the ``.env`` file, so a newline, '=', '/' or NUL in it must never get there.
    """
    files = {}
    encoded = {} if encoded is None else encoded
    if not isinstance(encoded, dict):
        raise ConfigError(f"files: must be a mapping of key to base64 value, not {type(encoded).__name__}")
    for key, value in encoded.items():
        try:
            config_key(key, "files")
        except SpecError as exc:
            raise ConfigError(str(exc)) from None
        try:
            files[key] = base64.b64decode(value, validate=True)
        except (TypeError, ValueError):
            raise ConfigError(f"files[{key!r}]: not valid base64") from None
    return files
