"""Shared fixtures of the node-layer tests: specs, systemd parser models, a systemctl-free apply.

The parsers below model what systemd 252 (Debian 12) does with what units.py renders, so that
tests can check round trips without a running systemd:

- ``parse_exec_line``: an Exec*= value -> the argv the process gets (specifiers, unquoting,
  C escapes, ``\\;``, then the exec-time ``$$``/``${VAR}`` substitution for arguments).
- ``parse_env_file``: systemd's EnvironmentFile= state machine (src/basic/env-file.c).
- ``parse_bind_paths``: BindPaths= (unquote and backslash-escape, *no* C escapes, then specifiers).
"""

from __future__ import annotations

import copy
import os
import random
import shutil

from ansible_collections.hostfleet.workloads.plugins.module_utils.node import podspec

# --- specs -------------------------------------------------------------------------------------

MAIN = {"name": "main", "command": ["/bin/sleep", "inf"]}


def pod(name="web", spec=None, labels=None, **container):
    """A raw pod entry of the pod module with one container (``container`` overrides MAIN)."""
    entry = {"name": name, "spec": spec if spec is not None else {"containers": [dict(MAIN, **container)]}}
    if labels is not None:
        entry["labels"] = labels
    return entry


def spec_with(**container):
    return {"containers": [dict(MAIN, **container)]}


def rich_pod():
    """A raw pod using (nearly) every field podspec knows: the seed of the mutation tests."""
    return {
        "name": "web-1",
        "labels": {"app": "web", "example.com/tier": "front"},
        "annotations": {"note": "x y", "n": 1, "flag": True},
        "revision": "r-1",
        "spec": {
            "restartPolicy": "OnFailure",
            "terminationGracePeriodSeconds": 10,
            "hostname": "web",
            "activeDeadlineSeconds": 100,
            "securityContext": {"runAsUser": 1000, "runAsGroup": 1000},
            "volumes": [
                {"name": "data", "hostPath": {"path": "/srv/data", "type": "DirectoryOrCreate"}},
                {"name": "scratch", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
                {"name": "cache", "emptyDir": {}},
                {"name": "claim", "persistentVolumeClaim": {"claimName": "db", "readOnly": True}},
            ],
            "containers": [
                {
                    "name": "main",
                    "command": ["/usr/bin/app", "--serve"],
                    "args": ["$(FOO)", 3, "x y"],
                    "env": [{"name": "FOO", "value": "bar"}, {"name": "DEBUG", "value": True}],
                    "envFrom": [
                        {"configMapRef": {"name": "cfg", "optional": True}, "prefix": "CFG_"},
                        {"secretRef": {"name": "sec"}},
                        {"fileRef": {"path": "/etc/app.env", "optional": True}},
                    ],
                    "workingDir": "/srv",
                    "securityContext": {"runAsNonRoot": True},
                    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": 1, "memory": "128Mi", "pids": 100}},
                    "ports": [{"name": "http", "containerPort": 8080}, {"containerPort": 9090, "hostPort": 19090, "protocol": "UDP"}],
                    "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http", "httpHeaders": [{"name": "X-A", "value": "b"}]}, "periodSeconds": 5},
                    "readinessProbe": {"tcpSocket": {"port": 8080}, "successThreshold": 2},
                    "startupProbe": {"exec": {"command": ["/bin/true"]}, "failureThreshold": 30, "terminationGracePeriodSeconds": 5},
                    "lifecycle": {"postStart": {"exec": {"command": ["/bin/true"]}}, "preStop": {"sleep": {"seconds": 5}}},
                    "volumeMounts": [
                        {"name": "data", "mountPath": "/data"},
                        {"name": "scratch", "mountPath": "/tmp/s", "subPath": "a/b"},
                        {"name": "claim", "mountPath": "/claim", "readOnly": True},
                    ],
                },
                {"name": "side", "command": ["/bin/sleep", "inf"], "lifecycle": {"preStop": {"httpGet": {"port": 81, "scheme": "HTTPS"}}}},
            ],
            "nodeSelector": {"zone": "a"},
            "tolerations": [{"key": "k", "operator": "Exists"}],
        },
    }


def to_input_spec(normal):
    """Turn a PodSpec normal form back into input form (volumes as a list, envFrom refs, quantities as strings)."""
    spec = copy.deepcopy(normal)
    volumes = []
    for name, volume in normal["volumes"].items():
        kind = volume["kind"]
        if kind == "hostPath":
            volumes.append({"name": name, "hostPath": {"path": volume["path"], "type": volume["type"]}})
        elif kind == "emptyDir":
            body = {"medium": volume["medium"]}
            if "sizeLimit" in volume:
                body["sizeLimit"] = volume["sizeLimit"]
            volumes.append({"name": name, "emptyDir": body})
        else:
            volumes.append({"name": name, "persistentVolumeClaim": {"claimName": volume["claimName"], "readOnly": volume["readOnly"]}})
    spec["volumes"] = volumes
    for container in spec["containers"]:
        env_from = []
        for entry in container["envFrom"]:
            if entry["kind"] == "file":
                ref = {"fileRef": {"path": entry["path"], "optional": entry["optional"]}}
            else:
                ref = {f"{entry['kind']}Ref": {"name": entry["name"], "optional": entry["optional"]}}
            env_from.append(dict(ref, prefix=entry["prefix"]))
        container["envFrom"] = env_from
        for part in ("requests", "limits"):
            if "cpu" in container["resources"][part]:
                container["resources"][part]["cpu"] = f"{container['resources'][part]['cpu']}m"
        if container["workingDir"] is None:
            del container["workingDir"]
    return spec


def to_input_pod(normal):
    return dict(copy.deepcopy(normal), spec=to_input_spec(normal["spec"]))


def shuffled(value, rng):
    """The same structure with every mapping's key order shuffled (lists keep their order)."""
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: shuffled(v, rng) for k, v in items}
    if isinstance(value, list):
        return [shuffled(v, rng) for v in value]
    return value


def all_paths(value, base):
    """Every rendered path of a node in ``value`` ('.key' and "['key']" forms for mappings)."""
    paths = {base}
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str):
                for form in (f"{base}.{key}", f"{base}[{key!r}]"):
                    paths |= all_paths(item, form)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            paths |= all_paths(item, f"{base}[{index}]")
    return paths


def node_paths(value, trail=()):
    """Every node of ``value`` as a tuple of keys/indexes (for mutations)."""
    result = [trail]
    if isinstance(value, dict):
        for key, item in value.items():
            result += node_paths(item, trail + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            result += node_paths(item, trail + (index,))
    return result


def get_at(value, trail):
    for step in trail:
        value = value[step]
    return value


# --- systemd models ------------------------------------------------------------------------------

_C_ESCAPES = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v", "s": " "}


def _cunescape(text, i):
    """One C escape at text[i] == '\\' -> (character, next index)."""
    nxt = text[i + 1] if i + 1 < len(text) else ""
    if nxt in _C_ESCAPES and nxt:
        return _C_ESCAPES[nxt], i + 2
    if nxt == "x":
        return chr(int(text[i + 2:i + 4], 16)), i + 4
    raise AssertionError(f"escape systemd does not know: {text[i:i + 2]!r} in {text!r}")


def _specifiers(text):
    out, i = [], 0
    while i < len(text):
        if text[i] == "%":
            if text[i + 1:i + 2] != "%":
                raise AssertionError(f"unescaped specifier {text[i:i + 2]!r} in {text!r}")
            out.append("%")
            i += 2
            continue
        out.append(text[i])
        i += 1
    return "".join(out)


def _replace_env(word, env):
    if word.startswith("$") and word[1:2] not in ("{", "$"):
        raise AssertionError(f"{word!r} is a braceless $VAR word that systemd would split or drop")
    out, i = [], 0
    while i < len(word):
        if word.startswith("$$", i):
            out.append("$")
            i += 2
        elif word.startswith("${", i):
            end = word.find("}", i + 2)
            if end < 0:
                out.append(word[i:])
                break
            out.append(env.get(word[i + 2:end], ""))
            i = end + 1
        else:
            out.append(word[i])
            i += 1
    return "".join(out)


def split_exec_words(rvalue):
    """Exec*= value -> words as systemd's unit loader stores them (before exec-time $ substitution)."""
    if "\n" in rvalue or "\r" in rvalue:
        raise AssertionError(f"line terminator inside a unit file value: {rvalue!r}")
    text = _specifiers(rvalue)
    words, i, n = [], 0, len(text)
    while True:
        while i < n and text[i] in " \t":
            i += 1
        if i >= n:
            return words
        if text.startswith("\\;", i) and (i + 2 == n or text[i + 2] in " \t"):
            words.append(";")
            i += 2
            continue
        word = []
        while i < n and text[i] not in " \t":
            char = text[i]
            if char == '"':
                i += 1
                while True:
                    if i >= n:
                        raise AssertionError(f"unbalanced quoting in {rvalue!r}")
                    char = text[i]
                    if char == '"':
                        i += 1
                        break
                    if char == "\\":
                        char, i = _cunescape(text, i)
                    else:
                        i += 1
                    word.append(char)
            elif char == "\\":
                char, i = _cunescape(text, i)
                word.append(char)
            elif char == "'":
                raise AssertionError(f"bare single quote in {rvalue!r}")
            else:
                word.append(char)
                i += 1
        words.append("".join(word))


def parse_exec_line(rvalue, env=None):
    """Exec*= value -> (executable path, argv[1:] after exec-time substitution with ``env``)."""
    words = split_exec_words(rvalue)
    return words[0], [_replace_env(w, env or {}) for w in words[1:]]


def parse_env_file(text):
    """systemd's EnvironmentFile= parser (the states of src/basic/env-file.c that can occur)."""
    env = {}
    state, key, value = "PRE_KEY", [], []
    for char in text:
        if state == "PRE_KEY":
            if char in "#;":
                state = "COMMENT"
            elif char not in " \t\n\r":
                state, key = "KEY", [char]
        elif state == "KEY":
            if char in "\n\r":
                state, key = "PRE_KEY", []
            elif char == "=":
                state, value = "PRE_VALUE", []
            else:
                key.append(char)
        elif state == "PRE_VALUE":
            if char in "\n\r":
                env["".join(key).rstrip()] = "".join(value)
                state = "PRE_KEY"
            elif char == '"':
                state = "DQ"
            elif char == "'":
                state = "SQ"
            elif char not in " \t":
                raise AssertionError("unquoted values are not produced by render_env_file")
        elif state == "DQ":
            if char == '"':
                state = "PRE_VALUE"
            elif char == "\\":
                state = "DQ_ESCAPE"
            else:
                value.append(char)
        elif state == "DQ_ESCAPE":
            state = "DQ"
            if char in '"\\`$':
                value.append(char)
            elif char != "\n":
                value += ["\\", char]
        elif state == "SQ":
            if char == "'":
                state = "PRE_VALUE"
            else:
                value.append(char)
        elif state == "COMMENT":
            if char in "\n\r":
                state = "PRE_KEY"
    if state in ("PRE_VALUE", "DQ", "DQ_ESCAPE", "SQ"):
        env["".join(key).rstrip()] = "".join(value)
    return env


def parse_bind_paths(rvalue):
    """One BindPaths= pair -> (source, destination): no C escapes, a backslash takes the next character."""
    if "\n" in rvalue or "\r" in rvalue:
        raise AssertionError(f"line terminator inside a unit file value: {rvalue!r}")
    tokens, seps, current, quote, i = [], [], [], None, 0
    while i < len(rvalue):
        char = rvalue[i]
        if quote:
            if char == quote:
                quote = None
            elif char == "\\" and i + 1 < len(rvalue):
                i += 1
                current.append(rvalue[i])
            else:
                current.append(char)
        elif char == "\\" and i + 1 < len(rvalue):
            i += 1
            current.append(rvalue[i])
        elif char in "\"'":
            quote = char
        elif char in ": \t":
            tokens.append("".join(current))
            seps.append(char)
            current = []
        else:
            current.append(char)
        i += 1
    tokens.append("".join(current))
    if quote or seps != [":"]:
        raise AssertionError(f"expected exactly one SOURCE:DESTINATION in {rvalue!r}, got {tokens!r} separated by {seps!r}")
    return _specifiers(tokens[0]), _specifiers(tokens[1])


def unit_values(content, key):
    """Values of ``key=`` lines of a unit file (after splitting lines as systemd does)."""
    lines = content.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return [line[len(key) + 1:] for line in lines if line.startswith(key + "=")]


# --- a systemctl-free apply ------------------------------------------------------------------------


def write_plan(host, plan):
    """What converge.apply does on disk, without systemctl (this machine's PID 1 is not systemd)."""
    for path in plan.removals:
        if os.path.lexists(path):
            os.unlink(path)
    for path, target in plan.links.items():
        if target is None and os.path.lexists(path):
            os.unlink(path)
    for path in plan.tree_removals:
        shutil.rmtree(path, ignore_errors=True)
    for path, (content, mode) in plan.writes.items():
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            handle.write(content)
        os.chmod(path, mode)
    for path, target in plan.links.items():
        if target is not None:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if os.path.lexists(path):
                os.unlink(path)
            os.symlink(target, path)
    for path, _uid, _gid, is_file in plan.volume_dirs:
        if is_file:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            open(path, "a").close()
        else:
            os.makedirs(path, exist_ok=True)
    for pod_name, container in plan.reset_runtime:
        rdir = host.runtime_dir(pod_name, container)
        os.makedirs(rdir, exist_ok=True)
        open(os.path.join(rdir, "reset"), "w").close()


def validated(*raw_pods):
    return [podspec.validate_pod(p, f"pods[{i}]") for i, p in enumerate(raw_pods)]


def rng(seed=0):
    return random.Random(seed)
