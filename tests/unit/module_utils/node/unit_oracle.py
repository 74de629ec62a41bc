"""The rendering oracle (issue 11): random pods in, and what systemd reads back must be what the spec says.

Shared by the pure test (test_unit_oracle_model.py: the unit files read back through node_helpers' models of
systemd's parsers) and the lab test (tests/integration/test_unit_oracle.py: systemd 252 itself loads the units and
D-Bus reports what it parsed). Either validation refuses a pod naming a field of the input, or every unit loads and:

- a process container's ExecStart= is its command and args (Kubernetes' $(VAR) expansion, then systemd's own
  substitution at exec time), its WorkingDirectory= is workingDir, its BindPaths=/BindReadOnlyPaths= are its mounts;
- a podman container's `podman run` carries the same through --mount (podman's CSV), --entrypoint (JSON), --workdir;
- lifecycle exec commands are ExecStartPost=/ExecStop= words exactly (no systemd prefix or flag taken from them);
- every unit that is started repeatedly (container, probe timer and service) has no start limit.
"""

from __future__ import annotations

import csv
import json
import re

import node_helpers
from hypothesis import strategies as st
from node_helpers import all_paths, parse_bind_paths, split_exec_words
from node_strategies import TEXT_CHARS

from ansible_collections.hostfleet.workloads.plugins.module_utils.node import podspec, units
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError

STATE = "/var/lib/hostfleet"
RUN = "/run/hostfleet"
PY = "/usr/bin/python3"
OWNER = "Deployment/oracle"
IMAGE = "localhost/oracle:v1"
EXEC_PROPERTIES = ("ExecStartEx", "ExecStartPostEx", "ExecStopEx")
SERVICE_PROPERTIES = EXEC_PROPERTIES + ("WorkingDirectory", "BindPaths", "BindReadOnlyPaths")
UNIT_PROPERTIES = ("LoadState", "StartLimitIntervalUSec")

# --- random pods --------------------------------------------------------------------------------------

# Characters each syntax treats specially, Unicode that is fine and Unicode that is not (noncharacters).
NASTY = list("'\"\\:,%$;= \t{}()#!@+-|&*?~`") + ["$(", "$$", "${", "%%", "\\\\", "\n", "\r", "\x01", "\x7f", "\u0085", "é", "\u2028", "\ufeff", "日本"]
RARE = ["\ufdd0", "\uffff", "\x00"]
# Printable troublemakers a path may hold (validation must accept these, and systemd read them back).
PATH_CHARS = list("'\"\\:,%$;= {}()#!@+-|&*?~`abcxyz019_.") + ["\t", "\u0085", "é", "\u2028", "\ufeff", "日本"]


def _one_in(n, usual, unusual):
    """``usual`` mostly, ``unusual`` about once in n draws: most pods must pass validation to be read back."""
    return st.sampled_from(range(n)).flatmap(lambda i: unusual if i == 0 else usual)


nasty_text = _one_in(
    8,
    st.lists(st.one_of(TEXT_CHARS, st.sampled_from(NASTY)), max_size=10).map("".join),
    st.lists(st.one_of(TEXT_CHARS, st.sampled_from(NASTY), st.sampled_from(RARE)), max_size=6).map("".join),
)
# Now and then over a limit: an argument of 64 KiB + 1 (in bytes), or exactly at it.
long_text = st.sampled_from(["a" * (podspec.MAX_ARG_BYTES + 1), "é" * 32769, "b" * 65536])
good_segment = st.lists(st.sampled_from(PATH_CHARS), min_size=1, max_size=8).map("".join).filter(lambda x: x not in (".", "..") and x[-1] not in " \t")
bad_segment = st.one_of(st.sampled_from([".", "..", "", "y" * 256, "é" * 128, "a\nb", "\x7f", "\ufdd0", "b\x00"]), st.text(max_size=4))
segment = _one_in(10, good_segment, bad_segment)
PATH_ENDS = ["/", "\\", "\\\\", " ", "//", "/."]
good_paths = st.builds(lambda parts: "/" + "/".join(parts), st.lists(good_segment, min_size=1, max_size=3))
nasty_paths = _one_in(
    6,
    good_paths,
    st.one_of(
        st.builds(lambda parts, end: "/" + "/".join(parts) + end, st.lists(segment, min_size=1, max_size=3), st.sampled_from(PATH_ENDS)),
        st.sampled_from(["/", "/srv/x\\", "/data:U", "/etc:/host-etc", "/a'b", '/a"b', "/a%b", "/" + "/".join(["z" * 250] * 17)]),
        nasty_text,
    ),
)
programs = _one_in(
    5,
    st.builds(lambda p: "/usr/bin/" + p, good_segment.filter(lambda x: not podspec._EXEC_UNSAFE.search(x))),
    st.one_of(
        st.sampled_from(["/bin/echo", "+/usr/bin/id", "./hook.sh", "", "/bin/ec'ho", "/bin/", "/bin/a\nb", "-/bin/true", "echo", "@/bin/x", "/usr//bin/id"]),
        st.just("/a$$b"),
        nasty_paths,
        nasty_text,
    ),
)
# Random types where strings are expected: validation must name the field.
junk = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**20), st.floats(allow_nan=False), st.just({"a": 1}), st.just([1]))
words = _one_in(10, nasty_text, st.one_of(st.integers(-(10**6), 10**6), long_text, junk))


def maybe_junk(strategy):
    return _one_in(20, strategy, junk)


@st.composite
def exec_commands(draw):
    return draw(maybe_junk(st.builds(lambda p, rest: [p] + rest, programs, st.lists(words, max_size=3))))


@st.composite
def oracle_pods(draw, name):
    """A raw pod whose every node-rendered string field may be hostile (or of the wrong type)."""
    podman = draw(st.booleans())
    volumes = []
    for i in range(draw(st.integers(0, 2))):
        kind = draw(st.sampled_from(["hostPath", "emptyDir"]))
        body = {"path": draw(maybe_junk(nasty_paths))} if kind == "hostPath" else {}
        volumes.append({"name": f"v{i}", kind: body})
    env = draw(st.lists(st.tuples(st.from_regex(r"[A-Z][A-Z0-9_]{0,3}", fullmatch=True), st.text(TEXT_CHARS, max_size=5)), max_size=2))
    container = {"name": "main", "env": [{"name": n, "value": v} for n, v in env]}
    if podman:
        container["image"] = IMAGE
        container["imagePullPolicy"] = "Never"
        if draw(st.booleans()):
            container["command"] = draw(exec_commands())
    else:
        container["command"] = draw(exec_commands())
    if draw(st.booleans()):
        container["args"] = draw(maybe_junk(st.lists(words, max_size=4)))
    if draw(st.booleans()):
        container["workingDir"] = draw(maybe_junk(nasty_paths))
    mounts = []
    for volume in volumes:
        mount = {"name": volume["name"], "mountPath": draw(maybe_junk(nasty_paths))}
        if draw(st.booleans()):
            mount["subPath"] = draw(maybe_junk(st.one_of(segment, nasty_text)))
        if draw(st.booleans()):
            mount["readOnly"] = True
        mounts.append(mount)
    if mounts:
        container["volumeMounts"] = mounts
    lifecycle = {}
    for hook in ("postStart", "preStop"):
        if draw(st.booleans()):
            lifecycle[hook] = {"exec": {"command": draw(exec_commands())}}
    if lifecycle:
        container["lifecycle"] = lifecycle
    if draw(st.booleans()):
        container["readinessProbe"] = {"exec": {"command": draw(exec_commands())}, "periodSeconds": draw(st.integers(1, 5))}
    if draw(st.booleans()):
        container["livenessProbe"] = {"tcpSocket": {"port": 8080}, "periodSeconds": 1}
    if draw(st.booleans()):
        container["securityContext"] = {"runAsUser": draw(st.integers(1, 65534)), "runAsNonRoot": True}
    spec = {"containers": [container], "terminationGracePeriodSeconds": draw(st.integers(0, 30))}
    if volumes:
        spec["volumes"] = volumes
    return {"name": name, "spec": spec}


# --- what systemd must read back ------------------------------------------------------------------------


def names_real_field(error, raw, base):
    """The error names a field of the input (or a missing field, one step, of an existing mapping)."""
    paths = all_paths(raw, base)
    if error.path in paths:
        return True
    return any(error.path.startswith(p) and re.fullmatch(r"\.[A-Za-z]+|\[\d+\]", error.path[len(p):]) for p in paths)


def render(raw, base="pods[0]"):
    """(normal form, {unit: content}, {container: env values}) or the SpecError of validation or rendering."""
    normal = podspec.validate_pod(raw, base)
    values = {}
    names = {}
    for container in normal["spec"]["containers"]:
        variables, _skipped, defined = units.container_env(container, {}, normal["name"], normal["name"])
        values[container["name"]] = variables
        names[container["name"]] = defined
    return normal, units.render_pod(normal, OWNER, names, STATE, PY, RUN), values


def systemd_substitute(word, env):
    """systemd's exec-time substitution (replace_env_argv) of one stored argument (argv[1:]): $$, ${NAME} and $NAME."""
    out, i = [], 0
    while i < len(word):
        if word.startswith("$$", i):
            out.append("$")
            i += 2
        elif word.startswith("${", i) and word.find("}", i + 2) >= 0:
            end = word.find("}", i + 2)
            out.append(env.get(word[i + 2 : end], ""))
            i = end + 1
        elif word[i] == "$" and re.match(r"[A-Za-z_]", word[i + 1 : i + 2]):
            name = re.match(r"[A-Za-z0-9_]+", word[i + 1 :]).group()
            out.append(env.get(name, ""))
            i += 1 + len(name)
        else:
            out.append(word[i])
            i += 1
    return "".join(out)


def _mount_flags(word):
    fields = next(csv.reader([word[len("--mount=") :]]))
    result = {}
    for item in fields:
        key, _sep, value = item.partition("=")
        result[key] = value
    return result


def check_pod(normal, rendered, values, readback):
    """Assert that systemd's ``readback`` ({unit: {property: value}}) of the ``rendered`` units means ``normal``."""
    name = normal["name"]
    spec = normal["spec"]
    podman = units.is_podman(spec)
    for unit in rendered:
        got = readback[unit]
        assert got["LoadState"] == "loaded", (unit, got, rendered[unit])
        assert got["StartLimitIntervalUSec"] == 0, (unit, "is started repeatedly and must have no start limit")
    for container in spec["containers"]:
        cname = container["name"]
        got = readback[units.container_unit(name, cname)]
        env = values[cname]
        # Only the user's names are known to Kubernetes' $(VAR) (HOSTNAME and POD_NAME are exported, not defined).
        defined = {item["name"]: env[item["name"]] for item in container["env"]}
        (start,) = got["ExecStartEx"]
        path, argv, flags = start
        assert flags == [], (cname, start)
        sources = _mounts(normal, container)
        if podman:
            argv = [systemd_substitute(word, env) for word in argv]
            assert path == units.PODMAN and argv[:2] == [units.PODMAN, "run"], argv
            image_at = argv.index(IMAGE)
            options = argv[2:image_at]
            mounts = [_mount_flags(word) for word in options if word.startswith("--mount=")]
            expected = [dict({"type": "bind", "source": s, "destination": d}, **({"ro": ""} if ro else {})) for s, d, ro in sources]
            assert mounts == expected, (mounts, expected)
            entry = [json.loads(word[len("--entrypoint=") :]) for word in options if word.startswith("--entrypoint=")]
            assert entry == ([[units.expand(container["command"][0], {})]] if container["command"] else []), entry
            workdir = [word[len("--workdir=") :] for word in options if word.startswith("--workdir=")]
            assert workdir == ([container["workingDir"]] if container["workingDir"] else []), workdir
            assert argv[image_at + 1 :] == [units.expand(w, defined) for w in container["command"][1:] + container["args"]]
        else:
            command = container["command"] + container["args"]
            assert path == units.expand(command[0], {}), (path, command)
            assert argv[0] == path and [systemd_substitute(w, env) for w in argv[1:]] == [units.expand(w, defined) for w in command[1:]], (argv, command)
            assert got["WorkingDirectory"] == (container["workingDir"] or "/")
            assert got["BindPaths"] == [(s, d) for s, d, ro in sources if not ro]
            assert got["BindReadOnlyPaths"] == [(s, d) for s, d, ro in sources if ro]
        lifecycle = container["lifecycle"]
        prefix = units.podman_exec(name, cname, container["securityContext"], []) if podman else []
        post_start = (lifecycle.get("postStart") or {}).get("exec")
        if post_start:
            user = [entry for entry in got["ExecStartPostEx"] if entry[2] == []]
            expected = prefix + post_start["command"]
            # systemd 252 substitutes $ in the arguments at exec time, never in argv[0] (tried on a lab host).
            assert [(p, a[:1] + [systemd_substitute(w, env) for w in a[1:]]) for p, a, _f in user] == [(expected[0], expected)]
        pre_stop = (lifecycle.get("preStop") or {}).get("exec")
        if pre_stop:
            user = [entry for entry in got["ExecStopEx"] if entry[1][:2] == ["/bin/sh", "-c"]]
            assert len(user) == 1 and user[0][2] == [], got["ExecStopEx"]
            assert [systemd_substitute(w, env) for w in user[0][1][4:]] == prefix + pre_stop["command"]


def _mounts(normal, container):
    result = []
    for mount in container["volumeMounts"]:
        volume = dict(normal["spec"]["volumes"][mount["name"]], name=mount["name"])
        source = units.volume_source(volume, STATE, normal["name"], RUN)
        if mount["subPath"]:
            source = source.rstrip("/") + "/" + mount["subPath"]
        result.append((source, mount["mountPath"], bool(mount["readOnly"])))
    return result


def outcome(raw, base="pods[0]"):
    """("refused", error) after checking the error names a real field, or ("rendered", (normal, units, values))."""
    try:
        return "rendered", render(raw, base)
    except SpecError as error:
        assert error.message, error
        # Render-time errors name container-relative fields (containers[main]...); validation's name input fields.
        assert names_real_field(error, raw, base) or error.path.startswith("containers[main]."), (error.path, error.message)
        return "refused", error


# --- systemd's readback: busctl's text output ------------------------------------------------------------

_BUSCTL_ESCAPES = {"\\": b"\\", '"': b'"', "'": b"'", "n": b"\n", "t": b"\t", "r": b"\r", "a": b"\a", "b": b"\b", "f": b"\f", "v": b"\v"}


def _busctl_tokens(text):
    tokens, i = [], 0
    while i < len(text):
        char = text[i]
        if char in " \n":
            i += 1
        elif char == '"':
            out = bytearray()
            i += 1
            while text[i] != '"':
                if text[i] == "\\":
                    if text[i + 1] in "01234567":
                        out.append(int(text[i + 1 : i + 4], 8))
                        i += 4
                    else:
                        out += _BUSCTL_ESCAPES[text[i + 1]]
                        i += 2
                else:
                    out += text[i].encode("utf-8")
                    i += 1
            tokens.append(("s", out.decode("utf-8")))
            i += 1
        else:
            end = i
            while end < len(text) and text[end] not in " \n":
                end += 1
            tokens.append(("w", text[i:end]))
            i = end
    return tokens


def _split_signature(sig):
    """'sasb' -> ['s', 'as', 'b']; structs kept whole."""
    out, i = [], 0
    while i < len(sig):
        start = i
        while sig[i] == "a":
            i += 1
        if sig[i] == "(":
            depth = 0
            while True:
                depth += {"(": 1, ")": -1}.get(sig[i], 0)
                i += 1
                if depth == 0:
                    break
        else:
            i += 1
        out.append(sig[start:i])
    return out


def _parse_value(sig, tokens, pos):
    if sig.startswith("a"):
        count = int(tokens[pos][1])
        pos += 1
        items = []
        for _attempt in range(count):
            item, pos = _parse_value(sig[1:], tokens, pos)
            items.append(item)
        return items, pos
    if sig.startswith("("):
        members = []
        for member in _split_signature(sig[1:-1]):
            value, pos = _parse_value(member, tokens, pos)
            members.append(value)
        return tuple(members), pos
    kind, text = tokens[pos]
    if sig == "s":
        assert kind == "s", (sig, tokens[pos])
        return text, pos + 1
    if sig == "b":
        return text == "true", pos + 1
    return int(text), pos + 1


def parse_busctl(text, names):
    """`busctl get-property ... NAME...` output -> {name: value} (strings exactly, whatever bytes they hold)."""
    tokens = _busctl_tokens(text)
    result, pos = {}, 0
    for name in names:
        sig = tokens[pos][1]
        value, pos = _parse_value(sig, tokens, pos + 1)
        result[name] = value
    assert pos == len(tokens), (text, pos, len(tokens))
    return result


def exec_entries(value):
    """a(sasasttttuii) of Exec*Ex -> [(path, argv, flags)]."""
    return [(entry[0], entry[1], entry[2]) for entry in value]


def binds(value):
    """a(ssbt) -> [(source, destination)] (the ignore-missing flag is never set by the renderer)."""
    assert all(not entry[2] for entry in value), value
    return [(entry[0], entry[1]) for entry in value]


# --- a model of what systemd 252 reads from the unit files (the pure test's stand-in for the lab) -------------

_PREFIX_FLAGS = {"-": "ignore-failure", "+": "privileged", "!": "no-setuid", ":": "no-env-expand"}


def _logical_lines(content):
    lines = content.split("\n")
    for line in lines:
        assert "\r" not in line, f"a carriage return splits a unit file line: {line!r}"
        assert (len(line) - len(line.rstrip("\\"))) % 2 == 0, f"a line ending in a backslash joins the next one: {line!r}"
        assert len(line.encode("utf-8")) < 1024 * 1024, "a unit file line of 1 MiB fails to load"
        assert not podspec._UNWRITABLE.search(line), f"systemd refuses a unit file holding {line!r}"
    return lines


def _exec_entry(rvalue):
    words = split_exec_words(rvalue)
    first, flags, replaces_argv0 = words[0], [], False
    while first and first[0] in "-+!:@":
        if first[0] == "@":
            replaces_argv0 = True
        elif first.startswith("!!"):
            flags.append("ambient")
            first = first[1:]
        else:
            flags.append(_PREFIX_FLAGS[first[0]])
        first = first[1:]
    assert first and not podspec._EXEC_UNSAFE.search(first) and not first.endswith("/"), f"bad-setting: executable {first!r}"
    assert first.startswith("/") or "/" not in first, f"bad-setting: neither a name nor an absolute path: {first!r}"
    path = re.sub("/+", "/", first)
    path = "/".join(part for part in path.split("/") if part != ".") if first.startswith("/") else first
    return path, (words[1:] if replaces_argv0 else [first] + words[1:]), flags


def _checked_path(path):
    assert len(path.encode("utf-8")) < 4096 and all(len(part.encode("utf-8")) <= 255 for part in path.split("/")), f"path too long: {path[:80]!r}"
    return path


def model_readback(rendered):
    """{unit: {property: value}} as systemd 252 would load ``rendered``, per node_helpers' models of its parsers."""
    result = {}
    for unit, content in rendered.items():
        got = {"LoadState": "loaded", "StartLimitIntervalUSec": 10_000_000, "WorkingDirectory": "", "BindPaths": [], "BindReadOnlyPaths": []}
        got.update({prop: [] for prop in EXEC_PROPERTIES})
        for line in _logical_lines(content):
            key, sep, rvalue = line.partition("=")
            if not sep or line.startswith("#"):
                continue
            rvalue = rvalue.strip(" \t")
            if key == "StartLimitIntervalSec":
                got[key.replace("Sec", "USec")] = 0 if rvalue == "0" else None
            elif key in ("ExecStart", "ExecStartPost", "ExecStop"):
                got[key + "Ex"].append(_exec_entry(rvalue))
            elif key == "WorkingDirectory":
                got[key] = _checked_path(node_helpers._specifiers(rvalue))
            elif key in ("BindPaths", "BindReadOnlyPaths"):
                source, destination = parse_bind_paths(rvalue)
                got[key].append((_checked_path(source), _checked_path(destination)))
        result[unit] = got
    return result
