# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validate a Kubernetes PodSpec subset and return it normalised, defaults filled in.

Everything a user writes reaches unit files and command lines only through
this module, so it is strict: unknown fields are refused with their path,
names must be DNS-1123 labels, paths must be absolute and clean.
"""

# No `from __future__ import annotations` (this module has no annotations): it binds the module-level
# name `annotations`, which is the validator annotations() below, imported by name elsewhere.
import re

from ansible_collections.hostfleet.workloads.plugins.module_utils.network import dns as cluster_dns
from ansible_collections.hostfleet.workloads.plugins.module_utils.node import namespaces, quantity, security_context

# Used with fullmatch: '$' would also match before a trailing newline (the public one is anchored with \A...\Z too).
DNS1123_LABEL = re.compile(r"\A[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # what systemd accepts in environment files
_LABEL_NAME = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_PORT_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_HOST = re.compile(r"[A-Za-z0-9.:-]+")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_REVISION = re.compile(r"[A-Za-z0-9._-]{1,63}")
_DIGITS = re.compile(r"[0-9]+")  # not str.isdigit(), which is also true for '²' and other Unicode digits
# Line terminators of systemd's unit reader and the other C0 controls; tab is fine (escaped where needed).
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# systemd refuses an executable path with quotes, backslashes or control characters (string_is_safe()).
_EXEC_UNSAFE = re.compile(r"[\x00-\x1f\x7f\"'\\]")
# systemd 252 refuses a whole unit file holding a Unicode noncharacter (utf8_is_valid: "Invalid argument"), and lone
# surrogates cannot be written as UTF-8 at all.
_NONCHARACTERS = "".join(chr(plane * 0x10000 + 0xFFFE) + chr(plane * 0x10000 + 0xFFFF) for plane in range(17))
_UNWRITABLE = re.compile("[\ud800-\udfff\ufdd0-\ufdef" + _NONCHARACTERS + "]")
# ExecStart= prefixes systemd reads at the start of the first word, even inside quotes ('+' runs it as root).
EXEC_PREFIXES = "@-:+!|"
# Limits of what a unit file carries, measured on systemd 252: a unit file line of 1 MiB makes the unit fail to load
# ("No buffer space available"), and the kernel refuses an argument over 128 KiB (MAX_ARG_STRLEN). An argument or
# path is at most 4 times longer once escaped, so these keep every line well under 1 MiB.
MAX_ARG_BYTES = 64 * 1024
MAX_COMMAND_BYTES = 128 * 1024
MAX_PATH_BYTES = 4095  # PATH_MAX with its NUL: systemd drops a longer BindPaths=/WorkingDirectory= path
MAX_NAME_BYTES = 255  # NAME_MAX: systemd drops a path with a longer component (and misreads the rest of BindPaths=)
INT64_MAX = 2**63 - 1

RESTART_POLICIES = ("Always", "OnFailure", "Never")
# runtimeClassName: "process" (host processes under systemd, the default without images) or "podman" (OCI containers).
RUNTIME_PROCESS = "process"
RUNTIME_PODMAN = "podman"
RUNTIMES = (RUNTIME_PROCESS, RUNTIME_PODMAN)
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
# The Docker/OCI reference grammar (distribution/reference): [domain[:port]/]path[:tag][@digest].
_REF_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?)"
_REF_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_IMAGE_REFERENCE = re.compile(
    rf"\A(?:(?P<domain>{_REF_DOMAIN})/)?(?P<path>{_REF_COMPONENT}(?:/{_REF_COMPONENT})*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?\Z"
)
PROBE_KINDS = ("startupProbe", "livenessProbe", "readinessProbe")
# Scheduling fields are the controllers' business; the node layer type-checks them and keeps them verbatim.
SCHEDULING_FIELDS = ("nodeSelector", "affinity", "topologySpreadConstraints", "tolerations", "priorityClassName")


class SpecError(ValueError):
    """A spec problem, with the path of the offending field (e.g. spec.containers[0].name)."""

    def __init__(self, path, message):
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


def _type_name(value):
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "an integer", float: "a number"}.get(type(value), type(value).__name__)


def _expect(value, kind, path):
    names = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "an integer"}
    if kind is int and isinstance(value, bool):
        raise SpecError(path, f"must be an integer, got {_type_name(value)}")
    if not isinstance(value, kind):
        raise SpecError(path, f"must be {names[kind]}, got {_type_name(value)}")
    return value


def _known(mapping, allowed, path):
    _expect(mapping, dict, path)
    for key in mapping:
        if not isinstance(key, str):
            raise SpecError(path, f"field names must be strings, got {key!r}")
        if key not in allowed:
            raise SpecError(f"{path}.{key}", f"unknown field (allowed here: {', '.join(sorted(allowed))})")
    return mapping


def _int(mapping, key, path, default=None, minimum=None, maximum=INT64_MAX):
    if mapping.get(key) is None:
        return default
    value = _expect(mapping[key], int, f"{path}.{key}")
    if not -INT64_MAX - 1 <= value <= INT64_MAX:
        raise SpecError(f"{path}.{key}", "is out of range (a 64-bit integer)")
    if minimum is not None and value < minimum:
        raise SpecError(f"{path}.{key}", f"must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise SpecError(f"{path}.{key}", f"must be at most {maximum}, got {value}")
    return value


def _str(mapping, key, path, default=None, required=False):
    if mapping.get(key) is None:
        if required:
            raise SpecError(f"{path}.{key}", "is required")
        return default
    return _expect(mapping[key], str, f"{path}.{key}")


def _bool(mapping, key, path, default=False):
    if mapping.get(key) is None:
        return default
    return _expect(mapping[key], bool, f"{path}.{key}")


def dns_label(value, path):
    """A DNS-1123 label: lowercase alphanumerics and '-', 1 to 63 characters."""
    _expect(value, str, path)
    if not value or len(value) > 63 or not DNS1123_LABEL.fullmatch(value):
        raise SpecError(path, f"{value!r} is not a DNS-1123 label (lowercase letters, digits and '-', starting and ending alphanumeric, at most 63 characters)")
    return value


def node_name(value, path):
    """A name of the node layer (namespaces.py): a DNS-1123 label, or ``<namespace>_<label>`` outside ``default``."""
    _expect(value, str, path)
    namespace, sep, rest = value.partition(namespaces.SEPARATOR)
    if not sep:
        return dns_label(value, path)
    if namespace == namespaces.DEFAULT or not DNS1123_LABEL.fullmatch(namespace) or len(namespace) > 63:
        raise SpecError(path, f"{value!r} is not a name in a namespace (<namespace>_<name>, both DNS-1123 labels, the namespace not 'default')")
    dns_label(rest, path)
    return value


def _text(value, path):
    """str() of a scalar; integers beyond 64 bits are refused (str() of a huge int even raises ValueError on Python 3.11+)."""
    if isinstance(value, int) and not isinstance(value, bool) and not -INT64_MAX - 1 <= value <= INT64_MAX:
        raise SpecError(path, "is out of range (a 64-bit integer)")
    return str(value)


def _string_list(value, path, allow_empty=True):
    _expect(value, list, path)
    if not allow_empty and not value:
        raise SpecError(path, "must not be empty")
    for i, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, (str, int, float)):
            raise SpecError(f"{path}[{i}]", f"must be a string, got {_type_name(item)}")
        if "\x00" in _text(item, f"{path}[{i}]"):
            raise SpecError(f"{path}[{i}]", "must not contain NUL characters")
    return [str(item) for item in value]


def clean_abs_path(value, path):
    _expect(value, str, path)
    if not value.startswith("/"):
        raise SpecError(path, f"{value!r} must be an absolute path")
    parts = value.split("/")
    # A '\r' or any other control character (but tab) would end or garble the unit file line the path goes to.
    if ".." in parts or "." in parts[1:] or _CONTROL.search(value):
        raise SpecError(path, f"{value!r} must be a clean absolute path (no '.', '..' or control characters)")
    clean = "/" + "/".join(p for p in parts if p) if value != "/" else "/"
    if clean[-1] in " \t":
        # systemd strips trailing whitespace from unit file lines (WorkingDirectory=, the end of BindPaths=).
        raise SpecError(path, f"{value!r} must not end with whitespace")
    problem = unit_value_problem("bind", clean)
    if problem:
        raise SpecError(path, problem)
    return clean


def _utf8_size(text):
    return len(text.encode("utf-8", "surrogatepass"))


def _odd_trailing_backslashes(text):
    # systemd joins a unit file line ending in an odd number of backslashes with the next line.
    return (len(text) - len(text.rstrip("\\"))) % 2 == 1


def unit_value_problem(syntax, value):
    """Why systemd 252 would not read ``value`` back exactly from a unit file, or None: the rules of every value rendered.

    ``syntax`` is how the directive reads it: "word" (an Exec*= argument, C-quoted), "executable" (the program of a
    host process: Exec*='s first word, which systemd checks), "path" (WorkingDirectory=, EnvironmentFile=: raw, no
    quoting at all), "bind" (one side of BindPaths=: backslash escapes), "text" (Description= and other raw values).
    units.unit_value escapes what passes; everything else is refused, since systemd would read something else.
    """
    if not isinstance(value, str):
        return f"must be a string, got {_type_name(value)}"
    if "\x00" in value:
        return "must not contain NUL characters"
    bad = _UNWRITABLE.search(value)
    if bad:
        return f"contains U+{ord(bad.group()):04X}, which systemd refuses in unit files (a Unicode noncharacter or a surrogate)"
    size = _utf8_size(value)
    if syntax == "word":
        return f"is {size} bytes long, over the limit of {MAX_ARG_BYTES} bytes (64 KiB) per argument" if size > MAX_ARG_BYTES else None
    if syntax == "text":
        if _CONTROL.search(value) or value != value.strip(" \t") or _odd_trailing_backslashes(value) or size > MAX_ARG_BYTES:
            return "must be one line of at most 64 KiB without control characters, surrounding whitespace or a trailing backslash"
        return None
    if syntax == "executable" and "/" not in value:
        # A bare name, which systemd looks up in its search path.
        if not value or value in (".", "..") or value[0] in EXEC_PREFIXES or _EXEC_UNSAFE.search(value) or size > MAX_NAME_BYTES:
            return (
                f"{value!r} must be an absolute path or a command name: systemd refuses an empty name, quotes, backslashes or control "
                f"characters, reads a leading {' '.join(EXEC_PREFIXES)} as a prefix of its own, and names are at most {MAX_NAME_BYTES} bytes"
            )
        return None
    if not value.startswith("/"):
        return f"{value!r} must be an absolute path"
    parts = value.split("/")[1:]
    if value != "/" and any(part in ("", ".", "..") for part in parts):
        return f"{value!r} must be a normalised absolute path (no '.', '..', '//' or trailing '/')"
    if _CONTROL.search(value):
        return f"{value!r} must not contain control characters"
    if size > MAX_PATH_BYTES:
        return f"is {size} bytes long, over the limit of {MAX_PATH_BYTES} bytes for a path"
    if any(_utf8_size(part) > MAX_NAME_BYTES for part in parts):
        return f"has a path component over {MAX_NAME_BYTES} bytes"
    if syntax == "executable" and (_EXEC_UNSAFE.search(value) or value == "/"):
        return f"{value!r}: systemd refuses executable paths with quotes, backslashes or control characters, or ending in '/'"
    if value[-1] in " \t":
        return f"{value!r} must not end with whitespace (systemd strips it from unit file lines)"
    if syntax == "path" and _odd_trailing_backslashes(value):
        return f"{value!r} must not end with a backslash (systemd would join the next unit file line to it)"
    return None


def _check_argv_size(argv, path):
    size = sum(_utf8_size(word) for word in argv)
    if size > MAX_COMMAND_BYTES:
        raise SpecError(path, f"is {size} bytes long in all, over the limit of {MAX_COMMAND_BYTES} bytes (128 KiB) per command line")


def exec_command(value, path, runtime, program_may_be_name=True):
    """Every exec command (containers' command, exec probes, lifecycle exec): a non-empty list of strings systemd reads back exactly.

    In a process pod the program is what systemd (Exec*=) or the hook runs on the host: an absolute, normalised path,
    or a bare command name where ``program_may_be_name``. In a podman pod it runs inside the image (podman's
    --entrypoint, or after `podman exec NAME`), where podman resolves names: only empty names and control characters
    are refused.
    """
    argv = _string_list(value, path, allow_empty=False)
    for i, word in enumerate(argv):
        problem = unit_value_problem("word", word)
        if problem:
            raise SpecError(f"{path}[{i}]", problem)
    _check_argv_size(argv, path)
    program = argv[0]
    if runtime == RUNTIME_PODMAN:
        if not program or _CONTROL.search(program) or "\t" in program:
            raise SpecError(f"{path}[0]", f"{program!r} must be a command name or path without control characters")
    elif not program_may_be_name and not program.startswith("/"):
        raise SpecError(f"{path}[0]", f"{program!r} must be an absolute path to an executable")
    else:
        problem = unit_value_problem("executable", program)
        if problem:
            raise SpecError(f"{path}[0]", problem)
    return argv


def _label_key(key, path):
    if not isinstance(key, str) or not key:
        raise SpecError(path, "label and annotation keys must be non-empty strings")
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(prefix)):
        raise SpecError(f"{path}[{key!r}]", "key prefix must be a DNS-1123 subdomain")
    if not name or len(name) > 63 or not _LABEL_NAME.fullmatch(name):
        raise SpecError(f"{path}[{key!r}]", "key name must be 1-63 characters of [A-Za-z0-9-_.], starting and ending alphanumeric")


def labels(value, path):
    """Kubernetes labels: qualified keys, values of at most 63 label characters."""
    if value is None:
        return {}
    _expect(value, dict, path)
    result = {}
    for key, val in value.items():
        _label_key(key, path)
        if isinstance(val, bool) or not isinstance(val, (str, int, float)):
            raise SpecError(f"{path}[{key!r}]", f"label values must be strings, got {_type_name(val)}")
        val = _text(val, f"{path}[{key!r}]")
        if len(val) > 63 or not _LABEL_NAME.fullmatch(val):
            raise SpecError(f"{path}[{key!r}]", f"{val!r} is not a valid label value (at most 63 characters of [A-Za-z0-9-_.], alphanumeric at both ends)")
        result[key] = val
    return dict(sorted(result.items()))


def annotations(value, path):
    if value is None:
        return {}
    _expect(value, dict, path)
    result = {}
    for key, val in value.items():
        _label_key(key, path)
        if isinstance(val, (dict, list)) or val is None:
            raise SpecError(f"{path}[{key!r}]", "annotation values must be strings")
        result[key] = val if isinstance(val, str) else str(val).lower() if isinstance(val, bool) else _text(val, f"{path}[{key!r}]")
    return dict(sorted(result.items()))


def _port(value, path, named_ports=None):
    if isinstance(value, str) and not _DIGITS.fullmatch(value):
        if named_ports is not None and value in named_ports:
            return named_ports[value]
        raise SpecError(path, f"named port {value!r} is not declared in the container's ports")
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise SpecError(path, f"must be a port number or a port name, got {_type_name(value)}")
    # int() and str() refuse numbers of more than 4300 digits on Python 3.11+: no need to convert what is too long anyway.
    number = value if isinstance(value, int) else int(value) if len(value.lstrip("0")) <= 5 else None
    if number is None or not 1 <= number <= 65535:
        raise SpecError(path, f"port {number} is outside 1-65535" if number is not None and abs(number) < 10**9 else "port number is outside 1-65535")
    return number


def _host(mapping, path):
    host = _str(mapping, "host", path, default="127.0.0.1")
    if not _HOST.fullmatch(host):
        raise SpecError(f"{path}.host", f"{host!r} is not a host name or address")
    return host


PROBE_FIELDS = ("initialDelaySeconds", "periodSeconds", "timeoutSeconds", "successThreshold", "failureThreshold", "terminationGracePeriodSeconds")


def _handler(value, path, named_ports, kinds, runtime, extra_fields=()):
    """exec / httpGet / tcpSocket (/ sleep for preStop): exactly one; probes also take PROBE_FIELDS."""
    _known(value, set(kinds) | set(extra_fields), path)
    present = [k for k in kinds if value.get(k) is not None]
    if len(present) != 1:
        raise SpecError(path, f"exactly one of {', '.join(kinds)} must be set")
    kind = present[0]
    body = value[kind]
    sub = f"{path}.{kind}"
    if kind == "exec":
        _known(body, {"command"}, sub)
        return {
            "exec": {
                "command": exec_command(body.get("command"), f"{sub}.command", runtime)
                if body.get("command") is not None
                else _missing(f"{sub}.command")
            }
        }
    if kind == "httpGet":
        _known(body, {"path", "port", "host", "scheme", "httpHeaders"}, sub)
        if body.get("port") is None:
            raise SpecError(f"{sub}.port", "is required")
        scheme = _str(body, "scheme", sub, default="HTTP")
        if scheme not in ("HTTP", "HTTPS"):
            raise SpecError(f"{sub}.scheme", f"must be HTTP or HTTPS, got {scheme!r}")
        url_path = _str(body, "path", sub, default="/")
        if not url_path.startswith("/") or any(c in url_path for c in "\r\n \x00"):
            raise SpecError(f"{sub}.path", f"{url_path!r} must start with '/' and contain no spaces or line breaks")
        headers = []
        for i, header in enumerate(_expect(_or_empty(body.get("httpHeaders"), list), list, f"{sub}.httpHeaders")):
            hpath = f"{sub}.httpHeaders[{i}]"
            _known(header, {"name", "value"}, hpath)
            name = _str(header, "name", hpath, required=True)
            val = _str(header, "value", hpath, default="")
            if not _HEADER_NAME.fullmatch(name) or any(c in val for c in "\r\n\x00"):
                raise SpecError(hpath, "header names must be tokens and values must not contain line breaks")
            headers.append({"name": name, "value": val})
        return {
            "httpGet": {
                "path": url_path,
                "port": _port(body["port"], f"{sub}.port", named_ports),
                "host": _host(body, sub),
                "scheme": scheme,
                "httpHeaders": headers,
            }
        }
    if kind == "tcpSocket":
        _known(body, {"port", "host"}, sub)
        if body.get("port") is None:
            raise SpecError(f"{sub}.port", "is required")
        return {"tcpSocket": {"port": _port(body["port"], f"{sub}.port", named_ports), "host": _host(body, sub)}}
    if kind == "grpc":
        return {"grpc": grpc_probe_action(body, sub)}
    _known(body, {"seconds"}, sub)
    return {"sleep": {"seconds": _int(body, "seconds", sub, minimum=0) if body.get("seconds") is not None else _missing(f"{sub}.seconds")}}


def _missing(path):
    raise SpecError(path, "is required")


# A service name rides in one HTTP/2 DATA frame of the health check (node/grpc_probe.py GRPC_MAX_SERVICE_BYTES).
GRPC_MAX_SERVICE_BYTES = 16000


def grpc_probe_action(body, path):
    """A probe's grpc action (Kubernetes' GRPCAction): port, a number (no named ports), and service, default ''."""
    _known(body, {"port", "service"}, path)
    port = _int(body, "port", path) if body.get("port") is not None else _missing(f"{path}.port")
    if not 1 <= port <= 65535:
        raise SpecError(f"{path}.port", "must be between 1 and 65535, inclusive")
    service = _str(body, "service", path, default="")
    try:
        size = len(service.encode("utf-8"))
    except UnicodeEncodeError:
        raise SpecError(f"{path}.service", "must be valid Unicode text (no lone surrogates)") from None
    if size > GRPC_MAX_SERVICE_BYTES:
        raise SpecError(f"{path}.service", f"must be at most {GRPC_MAX_SERVICE_BYTES} bytes (it is sent in one HTTP/2 frame)")
    return {"port": port, "service": service}


def _or_empty(value, kind):
    # Not `value or []`: a falsy value of the wrong type ("", 0, false) must reach the type check.
    return kind() if value is None else value


def _probe(value, path, named_ports, kind, runtime):
    result = _handler(value, path, named_ports, ("exec", "httpGet", "tcpSocket", "grpc"), runtime, PROBE_FIELDS)
    result["initialDelaySeconds"] = _int(value, "initialDelaySeconds", path, default=0, minimum=0)
    result["periodSeconds"] = _int(value, "periodSeconds", path, default=10, minimum=1)
    result["timeoutSeconds"] = _int(value, "timeoutSeconds", path, default=1, minimum=1)
    result["successThreshold"] = _int(value, "successThreshold", path, default=1, minimum=1)
    result["failureThreshold"] = _int(value, "failureThreshold", path, default=3, minimum=1)
    if kind != "readinessProbe" and result["successThreshold"] != 1:
        raise SpecError(f"{path}.successThreshold", f"must be 1 for {kind}")
    if value.get("terminationGracePeriodSeconds") is not None:
        if kind == "readinessProbe":
            raise SpecError(f"{path}.terminationGracePeriodSeconds", "is not allowed on a readinessProbe")
        result["terminationGracePeriodSeconds"] = _int(value, "terminationGracePeriodSeconds", path, minimum=1)
    return result


def _security_context(value, path):
    """A container's securityContext, normalised (security_context.py: only the fields set to a non-default value)."""
    return security_context.container_context(value, path)


def _resources(value, path):
    """requests/limits, Kubernetes' validation; ephemeral-storage and extended resources enter the normal form only when
    set (they are the controllers' placement: see CPU_MIN_QUOTA_MILLIS and resource_warnings for the CPU limit clamp)."""
    if value is None:
        return {"requests": {}, "limits": {}}
    _known(value, {"requests", "limits"}, path)
    result = {}
    raws = {}
    for part in ("requests", "limits"):
        section = _expect(_or_empty(value.get(part), dict), dict, f"{path}.{part}")
        parsed = {}
        for key, raw in section.items():
            field = f"{path}.{part}.{key}"
            _resource_name(key, part, field)
            try:
                if key == "cpu":
                    parsed[key] = quantity.cpu_millis(raw)
                elif key in ("memory", "ephemeral-storage"):
                    parsed[key] = quantity.memory_bytes(raw)
                elif key == "pids":
                    parsed[key] = quantity.count(raw)
                else:
                    parsed[key] = _extended_count(raw)
            except quantity.QuantityError as exc:
                raise SpecError(field, str(exc)) from None
            if key == "memory" and part == "limits" and parsed[key] < 4096:
                raise SpecError(field, "must be at least 4Ki")
        result[part] = parsed
        raws[part] = dict(section)
    # As in Kubernetes, a limit without a request implies an equal request (pids is a limit only).
    for key, limit in result["limits"].items():
        if key != "pids" and key not in result["requests"]:
            result["requests"][key] = limit
            raws["requests"][key] = raws["limits"][key]
    for key, request in result["requests"].items():
        limit = result["limits"].get(key)
        extended = "/" in key
        if limit is None:
            if extended:
                raise SpecError(f"{path}.limits.{key}", "Limit must be set for non overcommitable resources")
        elif extended and request != limit:
            raise SpecError(f"{path}.requests.{key}", f"must be equal to {key} limit of {_quantity_text(raws['limits'][key])}")
        elif request > limit:
            if key in ("cpu", "memory"):
                raise SpecError(f"{path}.requests.{key}", "must be less than or equal to the limit")
            raise SpecError(f"{path}.requests.{key}", f"must be less than or equal to {key} limit of {_quantity_text(raws['limits'][key])}")
    return result


# The kubelet's smallest CFS quota is 1 ms per 100 ms period (MinQuotaPeriod): a CPU limit below 10m gets it.
CPU_MIN_QUOTA_MILLIS = 10
_EXTENDED_RESOURCE_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")


def _quantity_text(raw):
    return raw if isinstance(raw, str) else str(raw)


def _resource_name(key, part, field):
    """Kubernetes' validateContainerResourceName, with what hosts cannot do refused (hugepages)."""
    if not isinstance(key, str):
        raise SpecError(field, "resource names must be strings")
    if key.startswith("hugepages-"):
        raise SpecError(field, "huge pages are not supported on hosts: systemd and podman have no hugetlb limit, and nothing reserves the pages for a pod")
    if "/" not in key:
        allowed = ("cpu", "memory", "ephemeral-storage", "pids") if part == "limits" else ("cpu", "memory", "ephemeral-storage")
        if key not in allowed:
            message = f"unknown field: must be a standard resource for containers ({', '.join(allowed)}) or an extended resource (<domain>/<name>)"
            raise SpecError(field, message)
        return
    domain, _sep, name = key.partition("/")
    # IsExtendedResourceName: 'requests.' + name must be a qualified name; the kubernetes.io domains are native, not extended.
    if (
        not _DNS1123_SUBDOMAIN.fullmatch(f"requests.{domain}")
        or len(f"requests.{domain}") > 253
        or len(name) > 63
        or not _EXTENDED_RESOURCE_NAME.fullmatch(name)
    ):
        raise SpecError(field, "doesn't follow extended resource name standard")
    if domain == "kubernetes.io" or domain.endswith(".kubernetes.io"):
        raise SpecError(field, "must be a standard resource for containers: kubernetes.io names hosts do not know are not extended resources")


def _extended_count(raw):
    """An extended resource's quantity: a non-negative whole number ('1', 2, '1000m'), as Kubernetes asks."""
    number = quantity.parse_quantity(raw)
    if number != number.to_integral_value():
        raise quantity.QuantityError("must be an integer")
    if number > INT64_MAX:
        raise quantity.QuantityError("is out of range")
    return int(number)


def resource_warnings(spec, path="spec"):
    """Warnings about a valid normal form's resources, for the task result (never part of the normal form): CPU limits
    below the kubelet's minimum quota are clamped to it, as the kubelet does."""
    warnings = []
    for container in spec.get("containers", ()):
        cpu = container["resources"]["limits"].get("cpu")
        if cpu == 0:
            warnings.append(f"{path}.containers[{container['name']}].resources.limits.cpu: 0 sets no CPU quota (the kubelet's reading of a zero limit)")
        elif cpu is not None and cpu < CPU_MIN_QUOTA_MILLIS:
            warnings.append(
                f"{path}.containers[{container['name']}].resources.limits.cpu: {cpu}m is below the smallest CPU quota "
                f"(1 ms per 100 ms period): clamped to {CPU_MIN_QUOTA_MILLIS}m, as the kubelet does"
            )
    return warnings


def _env(value, path):
    result = []
    seen = {}
    for i, item in enumerate(_expect(_or_empty(value, list), list, path)):
        ipath = f"{path}[{i}]"
        _known(item, {"name", "value", "valueFrom"}, ipath)
        name = _str(item, "name", ipath, required=True)
        if not _ENV_NAME.fullmatch(name):
            raise SpecError(f"{ipath}.name", f"{name!r} is not a valid environment variable name")
        if item.get("valueFrom") is not None:
            if item.get("value") not in (None, ""):
                raise SpecError(f"{ipath}.valueFrom", "may not be specified when `value` is not empty")
            entry = {"name": name, "valueFrom": _value_from(item["valueFrom"], f"{ipath}.valueFrom")}
            if name in seen:
                result[seen[name]] = entry
            else:
                seen[name] = len(result)
                result.append(entry)
            continue
        val = item.get("value")
        if val is None:
            val = ""
        if isinstance(val, (dict, list)):
            raise SpecError(f"{ipath}.value", "must be a string (use valueFrom for a ConfigMap or Secret key)")
        val = str(val).lower() if isinstance(val, bool) else _text(val, f"{ipath}.value")
        if "\x00" in val:
            raise SpecError(f"{ipath}.value", "must not contain NUL characters")
        if name in seen:
            result[seen[name]] = {"name": name, "value": val}  # the last one wins, as in Kubernetes
        else:
            seen[name] = len(result)
            result.append({"name": name, "value": val})
    return result


# A ConfigMap or Secret key: the same rules as Kubernetes' (IsConfigMapKey), so it is also a safe file name.
_CONFIG_KEY = re.compile(r"[-._a-zA-Z0-9]+")


def config_key(value, path):
    """A ConfigMap/Secret data key: [-._a-zA-Z0-9]+, at most 253 characters, not '.', '..' or starting with '..'."""
    _expect(value, str, path)
    if not value or len(value) > 253 or not _CONFIG_KEY.fullmatch(value) or value in (".", "..") or value.startswith(".."):
        raise SpecError(path, f"{value!r} is not a valid ConfigMap/Secret key ([-._a-zA-Z0-9]+, at most 253 characters, not starting with '..')")
    return value


def _downward():
    # Imported when used: downward.py imports this module's validators.
    from ansible_collections.hostfleet.workloads.plugins.module_utils.node import downward

    return downward


def _field_ref(ref, path):
    """env[].valueFrom.fieldRef: Kubernetes' field paths and messages (node/downward.py, which also gives the values)."""
    from ansible_collections.hostfleet.workloads.plugins.module_utils.node import downward

    return downward.field_ref(ref, path)


def _value_from(value, path):
    """env[].valueFrom: configMapKeyRef or secretKeyRef (the files under <state_dir>/configmaps|secrets on the host), fieldRef
    or resourceFieldRef (the downward API, node/downward.py)."""
    _expect(value, dict, path)
    for key in ("fileKeyRef",):
        if value.get(key) is not None:
            raise SpecError(f"{path}.{key}", "is not supported on hosts (only configMapKeyRef, secretKeyRef, fieldRef and resourceFieldRef are)")
    kinds = ("configMapKeyRef", "secretKeyRef", "fieldRef", "resourceFieldRef")
    _known(value, set(kinds), path)
    sources = [k for k in kinds if value.get(k) is not None]
    if not sources:
        raise SpecError(path, "is empty: set configMapKeyRef, secretKeyRef, fieldRef or resourceFieldRef (any other source is an unknown field on hosts)")
    if len(sources) != 1:
        raise SpecError(path, "may not have more than one field specified at a time")
    kind = sources[0]
    if kind == "fieldRef":
        return _field_ref(_expect(value[kind], dict, f"{path}.fieldRef"), f"{path}.fieldRef")
    if kind == "resourceFieldRef":
        from ansible_collections.hostfleet.workloads.plugins.module_utils.node import downward

        return downward.resource_field_ref(value[kind], f"{path}.resourceFieldRef")
    ref = value[kind]
    rpath = f"{path}.{kind}"
    _known(ref, {"name", "key", "optional"}, rpath)
    return {
        "kind": "configMap" if kind == "configMapKeyRef" else "secret",
        "name": dns_label(ref.get("name") if ref.get("name") is not None else _missing(f"{rpath}.name"), f"{rpath}.name"),
        "key": config_key(ref.get("key") if ref.get("key") is not None else _missing(f"{rpath}.key"), f"{rpath}.key"),
        "optional": _bool(ref, "optional", rpath),
    }


def _value_from_sources(env, env_from):
    """envFrom entries (flagged ``keysOnly``) that make the node read the ConfigMaps/Secrets that env[].valueFrom names.

    They import no variable themselves (units.container_env skips them) and are optional: a missing source or key
    that is not optional is reported by units.container_env, naming the variable.
    """
    have = {(e["kind"], e.get("name")) for e in env_from if not e.get("keysOnly")}
    extra = []
    for item in env:
        ref = item.get("valueFrom")
        if ref is None or ref["kind"] in ("field", "resource") or (ref["kind"], ref["name"]) in have:
            continue
        have.add((ref["kind"], ref["name"]))
        extra.append({"kind": ref["kind"], "name": ref["name"], "optional": True, "prefix": "", "keysOnly": True})
    return extra


def _env_from(value, path):
    result = []
    for i, item in enumerate(_expect(_or_empty(value, list), list, path)):
        ipath = f"{path}[{i}]"
        _known(item, {"configMapRef", "secretRef", "fileRef", "prefix"}, ipath)
        sources = [k for k in ("configMapRef", "secretRef", "fileRef") if item.get(k) is not None]
        if len(sources) != 1:
            raise SpecError(ipath, "exactly one of configMapRef, secretRef, fileRef must be set")
        kind = sources[0]
        ref = item[kind]
        rpath = f"{ipath}.{kind}"
        prefix = _str(item, "prefix", ipath, default="")
        if prefix and not _ENV_NAME.fullmatch(prefix):
            raise SpecError(f"{ipath}.prefix", f"{prefix!r} is not a valid environment variable prefix")
        if kind == "fileRef":
            _known(ref, {"path", "optional"}, rpath)
            entry = {"kind": "file", "path": clean_abs_path(ref.get("path") if ref.get("path") is not None else _missing(f"{rpath}.path"), f"{rpath}.path")}
        else:
            _known(ref, {"name", "optional"}, rpath)
            entry = {
                "kind": "configMap" if kind == "configMapRef" else "secret",
                "name": dns_label(ref.get("name") if ref.get("name") is not None else _missing(f"{rpath}.name"), f"{rpath}.name"),
            }
        entry["optional"] = _bool(ref, "optional", rpath)
        entry["prefix"] = prefix
        result.append(entry)
    return result


VOLUME_SOURCES = ("hostPath", "emptyDir", "persistentVolumeClaim", "configMap", "secret", "downwardAPI", "projected")


def _config_volume(kind, body, path):
    """A configMap/secret volume, mounted read-only: the node's file tree of the object (one file per key, ConfigMap
    files 0644, Secret files 0600 and root's), or, with ``items`` or another ``defaultMode``, the pod's own projection
    of it (node/downward.py: keys to paths, modes)."""
    from ansible_collections.hostfleet.workloads.plugins.module_utils.node import downward

    name_field = "name" if kind == "configMap" else "secretName"
    _known(body, {name_field, "optional", "defaultMode", "items"}, path)
    ref = body.get(name_field)
    result = {
        "kind": kind,
        "sourceName": dns_label(ref if ref is not None else _missing(f"{path}.{name_field}"), f"{path}.{name_field}"),
        "optional": _bool(body, "optional", path),
        "readOnly": True,
    }
    return downward.config_volume_extras(kind, body, path, result)


def _volumes(value, path):
    result = {}
    for i, item in enumerate(_expect(_or_empty(value, list), list, path)):
        ipath = f"{path}[{i}]"
        _known(item, {"name"} | set(VOLUME_SOURCES), ipath)
        name = dns_label(item.get("name") if item.get("name") is not None else _missing(f"{ipath}.name"), f"{ipath}.name")
        if name in result:
            raise SpecError(f"{ipath}.name", f"duplicate volume name {name!r}")
        sources = [k for k in VOLUME_SOURCES if k in item]
        if len(sources) != 1:
            raise SpecError(ipath, f"exactly one of {', '.join(VOLUME_SOURCES)} must be set")
        kind = sources[0]
        body = item[kind] if item[kind] is not None else {}
        bpath = f"{ipath}.{kind}"
        if kind == "hostPath":
            _known(body, {"path", "type"}, bpath)
            host_type = _str(body, "type", bpath, default="")
            allowed = ("", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice", "BlockDevice")
            if host_type not in allowed:
                raise SpecError(f"{bpath}.type", f"must be one of {', '.join(repr(a) for a in allowed)}")
            result[name] = {
                "kind": "hostPath",
                "path": clean_abs_path(body.get("path") if body.get("path") is not None else _missing(f"{bpath}.path"), f"{bpath}.path"),
                "type": host_type,
            }
        elif kind == "emptyDir":
            _known(body, {"medium", "sizeLimit"}, bpath)
            medium = _str(body, "medium", bpath, default="")
            if medium not in ("", "Memory"):
                raise SpecError(f"{bpath}.medium", "must be '' or 'Memory'")
            entry = {"kind": "emptyDir", "medium": medium}
            if body.get("sizeLimit") is not None:
                try:
                    entry["sizeLimit"] = quantity.memory_bytes(body["sizeLimit"])
                except quantity.QuantityError as exc:
                    raise SpecError(f"{bpath}.sizeLimit", str(exc)) from None
            result[name] = entry
        elif kind in ("configMap", "secret"):
            result[name] = _config_volume(kind, body, bpath)
        elif kind in ("downwardAPI", "projected"):
            from ansible_collections.hostfleet.workloads.plugins.module_utils.node import downward

            result[name] = downward.downward_volume(body, bpath) if kind == "downwardAPI" else downward.projected_volume(body, bpath)
        else:
            _known(body, {"claimName", "readOnly"}, bpath)
            claim = dns_label(body.get("claimName") if body.get("claimName") is not None else _missing(f"{bpath}.claimName"), f"{bpath}.claimName")
            result[name] = {"kind": "persistentVolumeClaim", "claimName": claim, "readOnly": _bool(body, "readOnly", bpath)}
    return result


def _ports(value, path):
    result = []
    names = {}
    for i, item in enumerate(_expect(_or_empty(value, list), list, path)):
        ipath = f"{path}[{i}]"
        _known(item, {"name", "containerPort", "hostPort", "protocol"}, ipath)
        port = _port(item.get("containerPort") if item.get("containerPort") is not None else _missing(f"{ipath}.containerPort"), f"{ipath}.containerPort")
        entry = {"containerPort": port, "protocol": _str(item, "protocol", ipath, default="TCP")}
        if entry["protocol"] not in ("TCP", "UDP", "SCTP"):
            raise SpecError(f"{ipath}.protocol", "must be TCP, UDP or SCTP")
        if item.get("hostPort") is not None:
            entry["hostPort"] = _port(item["hostPort"], f"{ipath}.hostPort")
        name = _str(item, "name", ipath)
        if name is not None:
            if len(name) > 15 or not _PORT_NAME.fullmatch(name):
                raise SpecError(f"{ipath}.name", f"{name!r} is not a valid port name (at most 15 lowercase alphanumerics and '-')")
            if name in names:
                raise SpecError(f"{ipath}.name", f"duplicate port name {name!r}")
            names[name] = port
            entry["name"] = name
        result.append(entry)
    return result, names


CONTAINER_FIELDS = {
    "name",
    "command",
    "args",
    "env",
    "envFrom",
    "workingDir",
    "securityContext",
    "resources",
    "ports",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "lifecycle",
    "volumeMounts",
}


def _working_dir(value, path, runtime):
    clean = clean_abs_path(value, path)
    # A process's WorkingDirectory= is read raw (no quoting); podman's --workdir is a command line word.
    problem = unit_value_problem("path", clean) if runtime == RUNTIME_PROCESS else None
    if problem:
        raise SpecError(path, problem)
    return clean


def image_reference(value, path):
    """A container image reference, checked against the OCI/Docker grammar; returns (image, tag or None, digest or None)."""
    _expect(value, str, path)
    match = _IMAGE_REFERENCE.match(value)
    if not match or len(value) > 4096:
        raise SpecError(path, f"{value!r} is not a valid image reference ([registry[:port]/]name[:tag][@digest], name in lowercase)")
    return value, match.group("tag"), match.group("digest")


def _container(value, path, volumes, pod_security, pod_path, runtime, host_network=True):
    _known(value, CONTAINER_FIELDS | {"image", "imagePullPolicy"}, path)
    name = dns_label(value.get("name") if value.get("name") is not None else _missing(f"{path}.name"), f"{path}.name")
    image = None
    if runtime == RUNTIME_PODMAN:
        if value.get("image") is None:
            raise SpecError(f"{path}.image", "is required: the pod runs OCI containers (runtimeClassName podman)")
        image, tag, digest = image_reference(value["image"], f"{path}.image")
        # Kubernetes' default: Always for ':latest' or no tag, IfNotPresent otherwise.
        default_policy = "Always" if (tag in (None, "latest") and digest is None) else "IfNotPresent"
        pull_policy = _str(value, "imagePullPolicy", path, default=default_policy)
        if pull_policy not in PULL_POLICIES:
            raise SpecError(f"{path}.imagePullPolicy", f"Unsupported value: {pull_policy!r}: supported values: {', '.join(PULL_POLICIES)}")
    elif value.get("image") is not None:
        raise SpecError(f"{path}.image", "needs the podman runtime: this pod's runtimeClassName is 'process' (host processes)")
    elif value.get("imagePullPolicy") is not None:
        raise SpecError(f"{path}.imagePullPolicy", "is only for image containers (runtimeClassName podman)")
    if image is None and value.get("command") is None:
        raise SpecError(f"{path}.command", "is required for a process container")
    command = exec_command(value["command"], f"{path}.command", runtime, program_may_be_name=False) if value.get("command") is not None else []
    args = _string_list(_or_empty(value.get("args"), list), f"{path}.args")
    for i, word in enumerate(args):
        problem = unit_value_problem("word", word)
        if problem:
            raise SpecError(f"{path}.args[{i}]", problem)
    _check_argv_size(command + args, f"{path}.args" if args else f"{path}.command")
    ports, named_ports = _ports(value.get("ports"), f"{path}.ports")
    if image is not None and host_network:
        for i, port in enumerate(ports):
            if port.get("hostPort") is not None and port["hostPort"] != port["containerPort"]:
                raise SpecError(
                    f"{path}.ports[{i}].hostPort",
                    f"must equal containerPort ({port['containerPort']}): containers use the host's network (as hostNetwork: true)",
                )
    own_security = _security_context(value.get("securityContext"), f"{path}.securityContext")
    security = security_context.merge(pod_security, own_security)
    security_context.check_container(security, own_security, path, pod_path, runtime)
    working_dir = value.get("workingDir")
    env = _env(value.get("env"), f"{path}.env")
    env_from = _env_from(value.get("envFrom"), f"{path}.envFrom")
    result = {
        "name": name,
        "command": command,
        "args": args,
        "env": env,
        "envFrom": env_from + _value_from_sources(env, env_from),
        "workingDir": _working_dir(working_dir, f"{path}.workingDir", runtime) if working_dir is not None else None,
        "securityContext": security,
        "resources": _resources(value.get("resources"), f"{path}.resources"),
        "ports": ports,
        "volumeMounts": [],
        "lifecycle": {},
    }
    if image is not None:
        result["image"] = image
        result["imagePullPolicy"] = pull_policy
    for kind in PROBE_KINDS:
        if value.get(kind) is not None:
            result[kind] = _probe(value[kind], f"{path}.{kind}", named_ports, kind, runtime)
    lifecycle = value.get("lifecycle")
    if lifecycle is not None:
        _known(lifecycle, {"postStart", "preStop"}, f"{path}.lifecycle")
        if lifecycle.get("postStart") is not None:
            result["lifecycle"]["postStart"] = _handler(
                lifecycle["postStart"], f"{path}.lifecycle.postStart", named_ports, ("exec", "httpGet", "tcpSocket"), runtime
            )
        if lifecycle.get("preStop") is not None:
            result["lifecycle"]["preStop"] = _handler(
                lifecycle["preStop"], f"{path}.lifecycle.preStop", named_ports, ("exec", "httpGet", "tcpSocket", "sleep"), runtime
            )
    mount_paths = set()
    for i, mount in enumerate(_expect(_or_empty(value.get("volumeMounts"), list), list, f"{path}.volumeMounts")):
        mpath = f"{path}.volumeMounts[{i}]"
        _known(mount, {"name", "mountPath", "readOnly", "subPath"}, mpath)
        vol = _str(mount, "name", mpath, required=True)
        if vol not in volumes:
            raise SpecError(f"{mpath}.name", f"volume {vol!r} is not declared in spec.volumes")
        target = clean_abs_path(mount.get("mountPath") if mount.get("mountPath") is not None else _missing(f"{mpath}.mountPath"), f"{mpath}.mountPath")
        if target == "/":
            raise SpecError(f"{mpath}.mountPath", "must not be '/'")
        if target in mount_paths:
            raise SpecError(f"{mpath}.mountPath", f"{target!r} is mounted twice")
        mount_paths.add(target)
        sub_path = _str(mount, "subPath", mpath, default="")
        if sub_path and (sub_path.startswith("/") or ".." in sub_path.split("/") or _CONTROL.search(sub_path) or sub_path.rstrip("/")[-1:] in (" ", "\t")):
            raise SpecError(f"{mpath}.subPath", f"{sub_path!r} must be a relative path without '..', control characters or trailing whitespace")
        # Normalised ('a/./b//c' is 'a/b/c'), as systemd would read it, and checked as the path it is appended to.
        sub_path = "/".join(part for part in sub_path.split("/") if part not in ("", "."))
        if sub_path:
            # Other volumes live under the node's state folder: room is kept for it (render_pod checks the real path).
            base = volumes[vol]["path"] if volumes[vol]["kind"] == "hostPath" else "/" + "x" * 200
            problem = unit_value_problem("bind", f"{base.rstrip('/')}/{sub_path}")
            if problem:
                raise SpecError(f"{mpath}.subPath", f"{sub_path!r}, appended to the volume's host path: {problem}")
        result["volumeMounts"].append({"name": vol, "mountPath": target, "readOnly": _bool(mount, "readOnly", mpath), "subPath": sub_path})
    return result


POD_FIELDS = {
    "containers",
    "restartPolicy",
    "terminationGracePeriodSeconds",
    "volumes",
    "securityContext",
    "hostname",
    "activeDeadlineSeconds",
    "runtimeClassName",
    "hostNetwork",
    "subdomain",
    "dnsPolicy",
    "dnsConfig",
    "initContainers",
    "imagePullSecrets",
    "serviceAccountName",
    "hostPID",
    "hostIPC",
    "shareProcessNamespace",
} | set(SCHEDULING_FIELDS)


TOLERATION_OPERATORS = ("Equal", "Exists")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def _check_scheduling_fields(spec, path):
    """The scheduling fields are kept verbatim, for the controllers, but never of any shape: Kubernetes' types and,
    for tolerations and priorityClassName (no preemption on hosts), its validation. The controllers parse
    nodeSelector, affinity, topologySpreadConstraints and tolerations further (scheduler/constraints.py; tolerations
    against the nodes' taints, scheduler/taints.py)."""
    labels(spec.get("nodeSelector"), f"{path}.nodeSelector")
    if spec.get("affinity") is not None:
        _expect(spec["affinity"], dict, f"{path}.affinity")
    spread_path = f"{path}.topologySpreadConstraints"
    for i, item in enumerate(_expect(_or_empty(spec.get("topologySpreadConstraints"), list), list, spread_path)):
        _expect(item, dict, f"{spread_path}[{i}]")
    for i, item in enumerate(_expect(_or_empty(spec.get("tolerations"), list), list, f"{path}.tolerations")):
        tpath = f"{path}.tolerations[{i}]"
        _known(item, {"key", "operator", "value", "effect", "tolerationSeconds"}, tpath)
        key = _str(item, "key", tpath, default="")
        operator = _str(item, "operator", tpath, default="") or "Equal"
        value = _str(item, "value", tpath, default="")
        effect = _str(item, "effect", tpath, default="")
        if operator not in TOLERATION_OPERATORS:
            raise SpecError(f"{tpath}.operator", f"Unsupported value: {operator!r}: supported values: {', '.join(TOLERATION_OPERATORS)}")
        if key:
            try:
                _label_key(key, f"{tpath}.key")
            except SpecError as exc:
                raise SpecError(f"{tpath}.key", exc.message) from None
        elif operator != "Exists":
            raise SpecError(f"{tpath}.operator", "must be Exists when key is empty (which tolerates every taint)")
        if operator == "Exists" and value:
            raise SpecError(f"{tpath}.value", "must be empty when operator is Exists")
        if value and (len(value) > 63 or not _LABEL_NAME.fullmatch(value)):
            raise SpecError(f"{tpath}.value", f"{value!r} is not a valid label value (at most 63 characters of [A-Za-z0-9-_.], alphanumeric at both ends)")
        if effect and effect not in TAINT_EFFECTS:
            raise SpecError(f"{tpath}.effect", f"Unsupported value: {effect!r}: supported values: {', '.join(TAINT_EFFECTS)}")
        if _int(item, "tolerationSeconds", tpath) is not None and effect != "NoExecute":
            raise SpecError(f"{tpath}.tolerationSeconds", "is only for effect NoExecute")
    priority_class = _str(spec, "priorityClassName", path)
    if priority_class is not None and (len(priority_class) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(priority_class)):
        message = f"{priority_class!r} is not a DNS-1123 subdomain (lowercase letters, digits, '-' and '.', at most 253 characters)"
        raise SpecError(f"{path}.priorityClassName", message)


def validate_pod_spec(spec, path="spec", pod_network=False):
    """Validate a PodSpec and return its normal form (plain JSON types, defaults filled in).

    With ``pod_network`` (the node has one: the pod module's pod_network), a pod without ``hostNetwork: true`` gets
    its own network namespace, and its normal form says ``hostNetwork: false``; without, every pod uses the host's
    network and the normal form is as it always was. ``pod_network=None``: not known here (a controller's template,
    the nodes decide): an explicit ``hostNetwork: false`` is taken and kept, every other normal form is as without.
    Raises SpecError naming the first offending field.
    """
    _known(spec, POD_FIELDS, path)
    restart_policy = _str(spec, "restartPolicy", path, default="Always")
    if restart_policy not in RESTART_POLICIES:
        raise SpecError(f"{path}.restartPolicy", f"must be one of {', '.join(RESTART_POLICIES)}, got {restart_policy!r}")
    volumes = _volumes(spec.get("volumes"), f"{path}.volumes")
    pod_security, pod_security_only = security_context.pod_context(spec.get("securityContext"), f"{path}.securityContext")
    containers = _expect(spec.get("containers") if spec.get("containers") is not None else _missing(f"{path}.containers"), list, f"{path}.containers")
    if not containers:
        raise SpecError(f"{path}.containers", "must contain at least one container")
    runtime = _str(spec, "runtimeClassName", path)
    if runtime is None:
        # Inferred: OCI containers when the containers name images.
        runtime = RUNTIME_PODMAN if any(isinstance(c, dict) and c.get("image") is not None for c in containers) else RUNTIME_PROCESS
        # ... or the init containers do (a pod's containers all run under one runtime).
        init_items = spec.get("initContainers") if isinstance(spec.get("initContainers"), list) else []
        if any(isinstance(c, dict) and c.get("image") is not None for c in init_items):
            runtime = RUNTIME_PODMAN
    elif runtime not in RUNTIMES:
        raise SpecError(f"{path}.runtimeClassName", f"Unsupported value: {runtime!r}: supported values: {', '.join(RUNTIMES)}")
    # Without a pod network, every pod uses its host's network namespace (its containers share it and reach each other
    # on localhost); a private pod network would change what a port means, so asking for one is refused, never ignored.
    host_network = _bool(spec, "hostNetwork", path, default=not pod_network)
    if pod_network is False and host_network is not True:
        raise SpecError(
            f"{path}.hostNetwork",
            "false is not supported without the node's pod network (the pod module's pod_network option): pods use their host's network "
            "(hostNetwork: true); remove the field or set it to true",
        )
    # A hostPort of a pod on the pod network is forwarded from the host to the pod (nftables, module_utils/network).
    result_containers = []
    names = set()
    for i, container in enumerate(containers):
        normal = _container(container, f"{path}.containers[{i}]", volumes, pod_security, path, runtime, host_network)
        if normal["name"] in names:
            raise SpecError(f"{path}.containers[{i}].name", f"duplicate container name {normal['name']!r}")
        names.add(normal["name"])
        result_containers.append(normal)
    # Init containers and sidecars (init_containers.py): in the normal form only when there are any.
    from ansible_collections.hostfleet.workloads.plugins.module_utils.node import init_containers

    init_normal = init_containers.validate(
        spec.get("initContainers"), path, names, lambda item, ipath: _container(item, ipath, volumes, pod_security, path, runtime, host_network)
    )
    result = {
        "containers": result_containers,
        "restartPolicy": restart_policy,
        "terminationGracePeriodSeconds": _int(spec, "terminationGracePeriodSeconds", path, default=30, minimum=0),
        "volumes": volumes,
    }
    if not host_network:
        # Only then: a host-network pod's normal form stays as it was.
        result["hostNetwork"] = False
    elif pod_network:
        # Said on a node with a pod network: the containers' ports are then the host's (hostPort defaults to containerPort).
        result["hostNetwork"] = True
    if init_normal:
        result["initContainers"] = init_normal
    if runtime == RUNTIME_PODMAN:
        # Only then: a process pod's normal form (and so every existing revision hash) stays as it was.
        result["runtimeClassName"] = runtime
    pull_secrets = image_pull_secrets(spec.get("imagePullSecrets"), f"{path}.imagePullSecrets", runtime)
    if pull_secrets:
        # Only then, as every new field (node/registry_auth.py makes them podman's auth file for this pod's pulls).
        result["imagePullSecrets"] = pull_secrets
    # fsGroup, supplementalGroups, sysctls, hostPID/hostIPC/shareProcessNamespace: only what is set (security_context.py).
    if pod_security_only:
        result["securityContext"] = pod_security_only
    surely_host_network = host_network if pod_network is not None else spec.get("hostNetwork") is True
    result.update(security_context.pod_fields(spec, path, runtime, surely_host_network, pod_security_only))
    if spec.get("hostname") is not None:
        result["hostname"] = dns_label(spec["hostname"], f"{path}.hostname")
    # Cluster DNS (network/dns.py): only what is set is kept, so a spec without them keeps its hash.
    if spec.get("subdomain") not in (None, ""):
        result["subdomain"] = dns_label(spec["subdomain"], f"{path}.subdomain")
    try:
        # Only an explicit hostNetwork: true counts here: where a pod runs is the node's to say (the converge checks again).
        cluster_dns.check_pod_dns(spec.get("dnsPolicy"), spec.get("dnsConfig"), spec.get("hostNetwork") is True, path)
    except cluster_dns.DnsError as exc:
        field, _sep, message = str(exc).partition(": ")
        raise SpecError(field, message) from None
    if spec.get("dnsPolicy") not in (None, "ClusterFirst"):
        result["dnsPolicy"] = spec["dnsPolicy"]
    if spec.get("dnsConfig"):
        result["dnsConfig"] = spec["dnsConfig"]
    deadline = _int(spec, "activeDeadlineSeconds", path, minimum=1)
    if deadline is not None:
        result["activeDeadlineSeconds"] = deadline
    _downward().check_references(result, path)
    service_account = _str(spec, "serviceAccountName", path)
    if service_account not in (None, "") and (len(service_account) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(service_account)):
        message = f"{service_account!r} is not a DNS-1123 subdomain (lowercase letters, digits, '-' and '.', at most 253 characters)"
        raise SpecError(f"{path}.serviceAccountName", message)
    if service_account and _downward().uses_service_account(result):
        # Only when a fieldRef reads it (there is no API server to authenticate to): every other spec keeps its hash.
        result["serviceAccountName"] = service_account
    _check_scheduling_fields(spec, path)
    for key in SCHEDULING_FIELDS:
        if spec.get(key) is not None:
            result[key] = spec[key]
    return result


def image_pull_secrets(value, path, runtime):
    """imagePullSecrets: the names of Secrets of the pod's namespace (LocalObjectReference), for image pods only."""
    names = []
    for i, item in enumerate(_expect(_or_empty(value, list), list, path)):
        ipath = f"{path}[{i}]"
        _known(item, {"name"}, ipath)
        name = _str(item, "name", ipath, required=True)
        if len(name) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(name):
            raise SpecError(f"{ipath}.name", f"{name!r} is not a valid Secret name (a DNS-1123 subdomain: lowercase letters, digits, '-' and '.')")
        names.append(name)
    if names and runtime != RUNTIME_PODMAN:
        raise SpecError(path, "is only for image containers (runtimeClassName podman): a process pod pulls no images")
    return names


def validate_pod(pod, path, pod_network=False):
    """A pod entry of the node module: name, labels, annotations, revision, spec (see validate_pod_spec for ``pod_network``)."""
    _known(pod, {"name", "labels", "annotations", "revision", "spec"}, path)
    name = node_name(pod.get("name") if pod.get("name") is not None else _missing(f"{path}.name"), f"{path}.name")
    revision = _str(pod, "revision", path, default="")
    if revision and not _REVISION.fullmatch(revision):
        raise SpecError(f"{path}.revision", f"{revision!r} must be 1-63 characters of [A-Za-z0-9._-]")
    return {
        "name": name,
        "labels": labels(pod.get("labels"), f"{path}.labels"),
        "annotations": annotations(pod.get("annotations"), f"{path}.annotations"),
        "revision": revision,
        "spec": validate_pod_spec(pod.get("spec") if pod.get("spec") is not None else _missing(f"{path}.spec"), f"{path}.spec", pod_network),
    }
