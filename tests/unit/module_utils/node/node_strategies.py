"""Hypothesis strategies of the node-layer tests: valid raw pods, junk values, text."""

from __future__ import annotations

from hypothesis import strategies as st

from ansible_collections.hostfleet.workloads.plugins.module_utils.node import podspec

# Text without NUL (podspec refuses NUL everywhere), surrogates (not encodable) and Unicode noncharacters (systemd refuses
# a unit file holding one).
TEXT_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00").filter(lambda c: not podspec._UNWRITABLE.match(c))
# Characters that stress quoting: systemd's and the shell's specials, whitespace, line breaks.
SPECIALS = st.sampled_from(list("$%\\\"'`;{}()# \t\n=:&|<>*?~!@^[]") + ["$(", "$$", "${", "%%", "\\\\", "\\n"])
texts = st.lists(st.one_of(TEXT_CHARS, SPECIALS), max_size=12).map("".join)

dns_labels = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,8}[a-z0-9])?", fullmatch=True)
env_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True)
port_names = st.from_regex(r"[a-z]([-a-z0-9]{0,5}[a-z0-9])?", fullmatch=True)
label_values = st.from_regex(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,6}[A-Za-z0-9])?)?", fullmatch=True)
segments = st.from_regex(r"[A-Za-z0-9_@+,=-][A-Za-z0-9_.@+,=-]{0,6}", fullmatch=True)
abs_paths = st.lists(segments, min_size=1, max_size=3).map(lambda parts: "/" + "/".join(parts))
scalar_values = st.one_of(texts, st.integers(-(10**6), 10**6), st.booleans())
argv_values = st.one_of(texts, st.integers(-(10**6), 10**6))  # booleans are refused in command lines


@st.composite
def cpu_quantities(draw, minimum=10):
    millis = draw(st.integers(minimum, 8000))
    forms = [f"{millis}m", millis / 1000 if millis % 100 == 0 else f"{millis}m"]
    if millis % 1000 == 0:
        forms.append(millis // 1000)
    return millis, draw(st.sampled_from(forms))


@st.composite
def memory_quantities(draw):
    mebibytes = draw(st.integers(1, 4096))
    return mebibytes * 2**20, draw(st.sampled_from([f"{mebibytes}Mi", mebibytes * 2**20, f"{mebibytes * 1024}Ki"]))


@st.composite
def handlers(draw, port_map, kinds=("exec", "tcpSocket", "httpGet")):
    kind = draw(st.sampled_from(kinds))
    port = draw(st.one_of(st.integers(1, 65535), st.sampled_from(sorted(port_map))) if port_map else st.integers(1, 65535))
    if kind == "exec":
        return {"exec": {"command": ["/" + draw(segments)] + draw(st.lists(argv_values, max_size=2))}}
    if kind == "tcpSocket":
        return {"tcpSocket": {"port": port}}
    if kind == "sleep":
        return {"sleep": {"seconds": draw(st.integers(0, 30))}}
    body = {"port": port, "path": "/" + draw(segments), "scheme": draw(st.sampled_from(["HTTP", "HTTPS"]))}
    if draw(st.booleans()):
        body["httpHeaders"] = [{"name": draw(st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,6}", fullmatch=True)), "value": draw(segments)}]
    return {"httpGet": body}


@st.composite
def probes(draw, port_map, kind):
    probe = draw(handlers(port_map))
    for key, low in (("initialDelaySeconds", 0), ("periodSeconds", 1), ("timeoutSeconds", 1), ("failureThreshold", 1)):
        if draw(st.booleans()):
            probe[key] = draw(st.integers(low, 100))
    if kind == "readinessProbe" and draw(st.booleans()):
        probe["successThreshold"] = draw(st.integers(1, 5))
    return probe


@st.composite
def containers(draw, name, volume_names):
    container = {"name": name, "command": ["/" + draw(segments)] + draw(st.lists(argv_values, max_size=3))}
    if draw(st.booleans()):
        container["args"] = draw(st.lists(argv_values, max_size=3))
    if draw(st.booleans()):
        container["env"] = [{"name": n, "value": draw(scalar_values)} for n in draw(st.lists(env_names, max_size=4))]
    if draw(st.booleans()):
        container["envFrom"] = draw(st.lists(st.one_of(
            st.builds(lambda n, o, p: {"configMapRef": {"name": n, "optional": o}, "prefix": p}, dns_labels, st.booleans(), st.sampled_from(["", "P_"])),
            st.builds(lambda n: {"secretRef": {"name": n}}, dns_labels),
            st.builds(lambda p: {"fileRef": {"path": p}}, abs_paths),
        ), max_size=3))
    port_map = {}
    if draw(st.booleans()):
        ports = []
        for pname in draw(st.lists(port_names, unique=True, max_size=3)):
            number = draw(st.integers(1, 65535))
            port = {"containerPort": number, "protocol": draw(st.sampled_from(["TCP", "UDP", "SCTP"]))}
            if draw(st.booleans()):
                port["name"] = pname
                port_map[pname] = number
            ports.append(port)
        container["ports"] = ports
    for kind in podspec.PROBE_KINDS:
        if draw(st.booleans()):
            container[kind] = draw(probes(port_map, kind))
    if draw(st.booleans()):
        lifecycle = {}
        if draw(st.booleans()):
            lifecycle["postStart"] = draw(handlers(port_map))
        if draw(st.booleans()):
            lifecycle["preStop"] = draw(handlers(port_map, ("exec", "tcpSocket", "httpGet", "sleep")))
        container["lifecycle"] = lifecycle
    if draw(st.booleans()):
        resources = {"requests": {}, "limits": {}}
        if draw(st.booleans()):
            millis, form = draw(cpu_quantities())
            resources["limits"]["cpu"] = form
            if draw(st.booleans()):
                resources["requests"]["cpu"] = f"{draw(st.integers(1, millis))}m"
        if draw(st.booleans()):
            resources["limits"]["memory"] = draw(memory_quantities())[1]
        if draw(st.booleans()):
            resources["limits"]["pids"] = draw(st.integers(0, 10000))
        container["resources"] = resources
    if draw(st.booleans()):
        container["workingDir"] = draw(abs_paths)
    if draw(st.booleans()):
        uid = draw(st.integers(1, 65534))
        container["securityContext"] = {"runAsUser": uid, "runAsGroup": draw(st.integers(0, 65534)), "runAsNonRoot": draw(st.booleans())}
    mounts = []
    for vname in volume_names:
        if draw(st.booleans()):
            mount = {"name": vname, "mountPath": f"/mnt/{vname}", "readOnly": draw(st.booleans())}
            if draw(st.booleans()):
                mount["subPath"] = draw(segments.filter(lambda s: s not in (".", "..")))
            mounts.append(mount)
    if mounts:
        container["volumeMounts"] = mounts
    return container


@st.composite
def valid_pods(draw):
    volumes = []
    for vname in draw(st.lists(dns_labels, unique=True, max_size=3)):
        kind = draw(st.sampled_from(["hostPath", "emptyDir", "persistentVolumeClaim"]))
        if kind == "hostPath":
            volumes.append({"name": vname, "hostPath": {"path": draw(abs_paths), "type": draw(st.sampled_from(["", "DirectoryOrCreate", "FileOrCreate"]))}})
        elif kind == "emptyDir":
            volumes.append({"name": vname, "emptyDir": draw(st.sampled_from([{}, None, {"medium": "Memory"}, {"sizeLimit": "1Gi"}]))})
        else:
            volumes.append({"name": vname, "persistentVolumeClaim": {"claimName": draw(dns_labels), "readOnly": draw(st.booleans())}})
    names = draw(st.lists(dns_labels, unique=True, min_size=1, max_size=3))
    spec = {"containers": [draw(containers(n, [v["name"] for v in volumes])) for n in names]}
    if volumes:
        spec["volumes"] = volumes
    if draw(st.booleans()):
        spec["restartPolicy"] = draw(st.sampled_from(podspec.RESTART_POLICIES))
    if draw(st.booleans()):
        spec["terminationGracePeriodSeconds"] = draw(st.integers(0, 600))
    if draw(st.booleans()):
        spec["hostname"] = draw(dns_labels)
    if draw(st.booleans()):
        spec["activeDeadlineSeconds"] = draw(st.integers(1, 10**6))
    if draw(st.booleans()):
        spec["nodeSelector"] = draw(st.dictionaries(dns_labels, dns_labels, max_size=2))
    raw = {"name": draw(dns_labels), "spec": spec}
    if draw(st.booleans()):
        raw["labels"] = draw(st.dictionaries(dns_labels, label_values, max_size=3))
    if draw(st.booleans()):
        raw["annotations"] = draw(st.dictionaries(dns_labels, scalar_values, max_size=3))
    if draw(st.booleans()):
        raw["revision"] = draw(st.from_regex(r"[A-Za-z0-9._-]{1,10}", fullmatch=True))
    return raw
