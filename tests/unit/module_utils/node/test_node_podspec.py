"""podspec: defaults, accepted forms, and errors that name the exact offending field."""

from __future__ import annotations

import copy
import json

import pytest
from node_helpers import MAIN, pod, rich_pod, spec_with

from ansible_collections.hostfleet.workloads.plugins.module_utils.node import podspec
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError, validate_pod, validate_pod_spec


def spec_error(raw, path="spec"):
    with pytest.raises(SpecError) as info:
        validate_pod_spec(raw, path)
    return info.value


def pod_error(raw):
    with pytest.raises(SpecError) as info:
        validate_pod(raw, "pods[0]")
    return info.value


def container(raw_spec):
    return validate_pod_spec(raw_spec)["containers"][0]


# --- defaults ------------------------------------------------------------------------------------


def test_pod_and_container_defaults():
    normal = validate_pod(pod(), "pods[0]")
    assert normal == {
        "name": "web",
        "labels": {},
        "annotations": {},
        "revision": "",
        "spec": {
            "containers": [
                {
                    "name": "main",
                    "command": ["/bin/sleep", "inf"],
                    "args": [],
                    "env": [],
                    "envFrom": [],
                    "workingDir": None,
                    "securityContext": {},
                    "resources": {"requests": {}, "limits": {}},
                    "ports": [],
                    "volumeMounts": [],
                    "lifecycle": {},
                }
            ],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "volumes": {},
        },
    }


def test_explicit_nulls_mean_defaults():
    nulls = dict.fromkeys(("args", "env", "envFrom", "workingDir", "resources", "ports", "volumeMounts", "securityContext", "lifecycle", "livenessProbe"))
    raw = {"containers": [dict(MAIN, **nulls)],
           "restartPolicy": None, "terminationGracePeriodSeconds": None, "volumes": None, "hostname": None}
    assert validate_pod_spec(raw) == validate_pod_spec(spec_with())


@pytest.mark.parametrize("kind", ["livenessProbe", "readinessProbe", "startupProbe"])
@pytest.mark.parametrize("handler", [{"exec": {"command": ["/bin/true"]}}, {"tcpSocket": {"port": 80}}, {"httpGet": {"port": 80}}])
def test_probe_defaults(kind, handler):
    probe = container(spec_with(**{kind: handler}))[kind]
    assert {k: probe[k] for k in ("initialDelaySeconds", "periodSeconds", "timeoutSeconds", "successThreshold", "failureThreshold")} == {
        "initialDelaySeconds": 0, "periodSeconds": 10, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3}
    assert "terminationGracePeriodSeconds" not in probe


def test_handler_defaults():
    c = container(spec_with(livenessProbe={"httpGet": {"port": 80}}, readinessProbe={"tcpSocket": {"port": 81}}))
    assert c["livenessProbe"]["httpGet"] == {"path": "/", "port": 80, "host": "127.0.0.1", "scheme": "HTTP", "httpHeaders": []}
    assert c["readinessProbe"]["tcpSocket"] == {"port": 81, "host": "127.0.0.1"}


def test_volume_and_mount_defaults():
    raw = {"volumes": [{"name": "a", "hostPath": {"path": "/srv/a"}}, {"name": "b", "emptyDir": None},
                       {"name": "c", "persistentVolumeClaim": {"claimName": "c"}}],
           "containers": [dict(MAIN, volumeMounts=[{"name": "a", "mountPath": "/a"}])]}
    normal = validate_pod_spec(raw)
    assert normal["volumes"] == {
        "a": {"kind": "hostPath", "path": "/srv/a", "type": ""},
        "b": {"kind": "emptyDir", "medium": ""},
        "c": {"kind": "persistentVolumeClaim", "claimName": "c", "readOnly": False},
    }
    assert normal["containers"][0]["volumeMounts"] == [{"name": "a", "mountPath": "/a", "readOnly": False, "subPath": ""}]


def test_ports_and_env_from_defaults():
    c = container(spec_with(ports=[{"containerPort": 80}], envFrom=[{"configMapRef": {"name": "cfg"}}]))
    assert c["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert c["envFrom"] == [{"kind": "configMap", "name": "cfg", "optional": False, "prefix": ""}]


# --- accepted forms -------------------------------------------------------------------------------


def test_rich_pod_normal_form():
    normal = validate_pod(rich_pod(), "pods[0]")
    spec = normal["spec"]
    main, side = spec["containers"]
    assert normal["labels"] == {"app": "web", "example.com/tier": "front"}
    assert normal["annotations"] == {"flag": "true", "n": "1", "note": "x y"}
    assert spec["restartPolicy"] == "OnFailure" and spec["terminationGracePeriodSeconds"] == 10
    assert spec["hostname"] == "web" and spec["activeDeadlineSeconds"] == 100
    assert spec["nodeSelector"] == {"zone": "a"} and spec["tolerations"] == [{"key": "k", "operator": "Exists"}]
    assert main["args"] == ["$(FOO)", "3", "x y"]
    assert main["env"] == [{"name": "FOO", "value": "bar"}, {"name": "DEBUG", "value": "true"}]
    assert main["envFrom"] == [
        {"kind": "configMap", "name": "cfg", "optional": True, "prefix": "CFG_"},
        {"kind": "secret", "name": "sec", "optional": False, "prefix": ""},
        {"kind": "file", "path": "/etc/app.env", "optional": True, "prefix": ""},
    ]
    # The pod's securityContext is merged into each container's.
    assert main["securityContext"] == {"runAsUser": 1000, "runAsGroup": 1000, "runAsNonRoot": True}
    assert side["securityContext"] == {"runAsUser": 1000, "runAsGroup": 1000}
    assert main["resources"] == {"requests": {"cpu": 100, "memory": 64 * 2**20}, "limits": {"cpu": 1000, "memory": 128 * 2**20, "pids": 100}}
    assert main["livenessProbe"]["httpGet"]["port"] == 8080  # the named port "http"
    assert main["livenessProbe"]["periodSeconds"] == 5
    assert main["readinessProbe"]["successThreshold"] == 2
    assert main["startupProbe"]["terminationGracePeriodSeconds"] == 5
    assert main["lifecycle"] == {"postStart": {"exec": {"command": ["/bin/true"]}}, "preStop": {"sleep": {"seconds": 5}}}
    assert side["lifecycle"]["preStop"]["httpGet"]["scheme"] == "HTTPS"
    assert main["ports"] == [{"containerPort": 8080, "protocol": "TCP", "name": "http"}, {"containerPort": 9090, "protocol": "UDP", "hostPort": 19090}]
    assert spec["volumes"]["scratch"] == {"kind": "emptyDir", "medium": "Memory", "sizeLimit": 64 * 2**20}
    assert main["volumeMounts"][1] == {"name": "scratch", "mountPath": "/tmp/s", "readOnly": False, "subPath": "a/b"}
    json.dumps(normal)  # plain JSON types only


def test_validation_does_not_mutate_its_input():
    raw = rich_pod()
    before = copy.deepcopy(raw)
    validate_pod(raw, "pods[0]")
    assert raw == before


def test_named_ports_resolve_in_probes_and_lifecycle():
    raw = spec_with(ports=[{"name": "http", "containerPort": 8080}, {"name": "admin", "containerPort": "9000"}],
                    readinessProbe={"tcpSocket": {"port": "admin"}},
                    livenessProbe={"httpGet": {"port": "8081"}},
                    lifecycle={"postStart": {"httpGet": {"port": "http"}}, "preStop": {"tcpSocket": {"port": "admin"}}})
    c = container(raw)
    assert c["ports"][1]["containerPort"] == 9000
    assert c["readinessProbe"]["tcpSocket"]["port"] == 9000
    assert c["livenessProbe"]["httpGet"]["port"] == 8081
    assert c["lifecycle"]["postStart"]["httpGet"]["port"] == 8080
    assert c["lifecycle"]["preStop"]["tcpSocket"]["port"] == 9000


def test_limit_implies_request_and_pids_are_limits_only():
    c = container(spec_with(resources={"limits": {"cpu": "250m", "memory": "1Gi", "pids": 0}}))
    assert c["resources"] == {"requests": {"cpu": 250, "memory": 2**30}, "limits": {"cpu": 250, "memory": 2**30, "pids": 0}}
    c = container(spec_with(resources={"requests": {"cpu": 0.5}}))
    assert c["resources"] == {"requests": {"cpu": 500}, "limits": {}}


def test_env_values_and_duplicates():
    c = container(spec_with(env=[{"name": "A", "value": 1}, {"name": "B", "value": False}, {"name": "C"}, {"name": "A", "value": "last"},
                                 {"name": "_x9", "value": 1.5}]))
    # The last definition wins but keeps the first one's position, as in Kubernetes.
    assert c["env"] == [{"name": "A", "value": "last"}, {"name": "B", "value": "false"}, {"name": "C", "value": ""}, {"name": "_x9", "value": "1.5"}]


def test_paths_are_normalised():
    raw = {"volumes": [{"name": "v", "hostPath": {"path": "//srv//data/"}}],
           "containers": [dict(MAIN, workingDir="/srv/", volumeMounts=[{"name": "v", "mountPath": "/mnt//x/", "subPath": "a/b//"}])]}
    normal = validate_pod_spec(raw)
    assert normal["volumes"]["v"]["path"] == "/srv/data"
    assert normal["containers"][0]["workingDir"] == "/srv"
    assert normal["containers"][0]["volumeMounts"][0]["mountPath"] == "/mnt/x"
    assert normal["containers"][0]["volumeMounts"][0]["subPath"] == "a/b"
    assert podspec.clean_abs_path("/", "p") == "/"


def test_dns_label_accepts_63_characters():
    assert podspec.dns_label("a" * 63, "x") == "a" * 63
    assert validate_pod(pod(name="a-1-b"), "pods[0]")["name"] == "a-1-b"
    assert validate_pod(pod(name="0"), "pods[0]")["name"] == "0"


def test_labels_and_annotations():
    assert podspec.labels({"b": 1, "a": "x.y_z-1", "example.com/k": ""}, "l") == {"a": "x.y_z-1", "b": "1", "example.com/k": ""}
    assert list(podspec.labels({"b": "1", "a": "2"}, "l")) == ["a", "b"]  # sorted
    assert podspec.annotations({"a": False, "b": 2.5, "c": "free text\nwith lines"}, "a") == {"a": "false", "b": "2.5", "c": "free text\nwith lines"}


# --- errors with their exact path ----------------------------------------------------------------

UNKNOWN_FIELDS = [
    ("spec", lambda s: s.update(foo=1), "spec.foo"),
    ("pod security", lambda s: s.update(securityContext={"supplementalGroupsPolicy": "Strict"}), "spec.securityContext.supplementalGroupsPolicy"),
    ("container", lambda s: s["containers"][0].update(stdin=True), "spec.containers[0].stdin"),
    ("container security", lambda s: s["containers"][0].update(securityContext={"sysctls": []}), "spec.containers[0].securityContext.sysctls"),
    ("resources", lambda s: s["containers"][0].update(resources={"claims": []}), "spec.containers[0].resources.claims"),
    ("limits", lambda s: s["containers"][0].update(resources={"limits": {"gpu": 1}}), "spec.containers[0].resources.limits.gpu"),
    ("pids request", lambda s: s["containers"][0].update(resources={"requests": {"pids": 1}}), "spec.containers[0].resources.requests.pids"),
    ("env", lambda s: s["containers"][0].update(env=[{"name": "A", "valueFrom": {}}]), "spec.containers[0].env[0].valueFrom"),
    ("envFrom", lambda s: s["containers"][0].update(envFrom=[{"configMapRef": {"name": "c"}, "foo": 1}]), "spec.containers[0].envFrom[0].foo"),
    ("configMapRef", lambda s: s["containers"][0].update(envFrom=[{"configMapRef": {"name": "c", "key": "k"}}]),
     "spec.containers[0].envFrom[0].configMapRef.key"),
    ("secretRef", lambda s: s["containers"][0].update(envFrom=[{"secretRef": {"name": "c", "path": "/x"}}]), "spec.containers[0].envFrom[0].secretRef.path"),
    ("fileRef", lambda s: s["containers"][0].update(envFrom=[{"fileRef": {"path": "/x", "name": "c"}}]), "spec.containers[0].envFrom[0].fileRef.name"),
    ("port", lambda s: s["containers"][0].update(ports=[{"containerPort": 80, "hostIP": "1.2.3.4"}]), "spec.containers[0].ports[0].hostIP"),
    ("probe", lambda s: s["containers"][0].update(livenessProbe={"grpc": {"port": 1}, "socket": {}}), "spec.containers[0].livenessProbe.socket"),
    ("exec", lambda s: s["containers"][0].update(startupProbe={"exec": {"command": ["/x"], "shell": True}}), "spec.containers[0].startupProbe.exec.shell"),
    ("httpGet", lambda s: s["containers"][0].update(readinessProbe={"httpGet": {"port": 1, "query": "x"}}), "spec.containers[0].readinessProbe.httpGet.query"),
    ("header", lambda s: s["containers"][0].update(readinessProbe={"httpGet": {"port": 1, "httpHeaders": [{"name": "a", "x": 1}]}}),
     "spec.containers[0].readinessProbe.httpGet.httpHeaders[0].x"),
    ("tcpSocket", lambda s: s["containers"][0].update(livenessProbe={"tcpSocket": {"port": 1, "tls": True}}), "spec.containers[0].livenessProbe.tcpSocket.tls"),
    ("lifecycle", lambda s: s["containers"][0].update(lifecycle={"onCrash": {}}), "spec.containers[0].lifecycle.onCrash"),
    ("sleep", lambda s: s["containers"][0].update(lifecycle={"preStop": {"sleep": {"seconds": 1, "ms": 1}}}), "spec.containers[0].lifecycle.preStop.sleep.ms"),
    ("sleep in postStart", lambda s: s["containers"][0].update(lifecycle={"postStart": {"sleep": {"seconds": 1}}}),
     "spec.containers[0].lifecycle.postStart.sleep"),
    ("volumeMount", lambda s: s["containers"][0].update(volumeMounts=[{"name": "v", "mountPath": "/v", "mountPropagation": "x"}]),
     "spec.containers[0].volumeMounts[0].mountPropagation"),
    ("volume", lambda s: s.update(volumes=[{"name": "v", "nfs": {}}]), "spec.volumes[0].nfs"),
    ("hostPath", lambda s: s.update(volumes=[{"name": "v", "hostPath": {"path": "/v", "readOnly": True}}]), "spec.volumes[0].hostPath.readOnly"),
    ("emptyDir", lambda s: s.update(volumes=[{"name": "v", "emptyDir": {"size": 1}}]), "spec.volumes[0].emptyDir.size"),
    ("pvc", lambda s: s.update(volumes=[{"name": "v", "persistentVolumeClaim": {"claimName": "c", "x": 1}}]), "spec.volumes[0].persistentVolumeClaim.x"),
]


@pytest.mark.parametrize("mutate,path", [pytest.param(m, p, id=i) for i, m, p in UNKNOWN_FIELDS])
def test_unknown_fields_are_refused_with_their_path(mutate, path):
    raw = spec_with()
    mutate(raw)
    error = spec_error(raw)
    assert error.path == path
    assert "unknown field" in error.message


def test_unknown_pod_field_and_non_string_keys():
    assert pod_error(dict(pod(), kind="Pod")).path == "pods[0].kind"
    error = spec_error({"containers": [MAIN], 1: "x"})
    assert error.path == "spec" and "field names must be strings" in error.message


BAD_NAMES = ["../x", "a;b", "A", "a.b", "a" * 64, "", "-a", "a-", "a b", "a/b", "$(x)", "a\x00", "é", "a_b"]


@pytest.mark.parametrize("name", BAD_NAMES)
@pytest.mark.parametrize("where", ["pod", "container", "volume", "claim", "configMap", "secret", "hostname"])
def test_non_dns_names_are_refused(where, name):
    if where == "pod" and name == "a_b":
        pytest.skip("a pod's node-layer name may be <namespace>_<name> (test_namespaces.py)")
    raw = pod()
    spec = raw["spec"]
    expected = {
        "pod": "pods[0].name",
        "container": "pods[0].spec.containers[0].name",
        "volume": "pods[0].spec.volumes[0].name",
        "claim": "pods[0].spec.volumes[0].persistentVolumeClaim.claimName",
        "configMap": "pods[0].spec.containers[0].envFrom[0].configMapRef.name",
        "secret": "pods[0].spec.containers[0].envFrom[0].secretRef.name",
        "hostname": "pods[0].spec.hostname",
    }[where]
    if where == "pod":
        raw["name"] = name
    elif where == "container":
        spec["containers"][0]["name"] = name
    elif where == "volume":
        spec["volumes"] = [{"name": name, "emptyDir": {}}]
    elif where == "claim":
        spec["volumes"] = [{"name": "v", "persistentVolumeClaim": {"claimName": name}}]
    elif where == "configMap":
        spec["containers"][0]["envFrom"] = [{"configMapRef": {"name": name}}]
    elif where == "secret":
        spec["containers"][0]["envFrom"] = [{"secretRef": {"name": name}}]
    else:
        spec["hostname"] = name
    error = pod_error(raw)
    assert error.path == expected
    assert "DNS-1123" in error.message or "is required" in error.message


@pytest.mark.parametrize("name", [None, 1, True, ["a"], {"a": 1}])
def test_names_of_the_wrong_type(name):
    error = pod_error(pod(name=name))
    assert error.path == "pods[0].name"
    assert ("is required" if name is None else "must be a string") in error.message


BAD_PATHS = ["data", "", "..", "/a/../b", "/a/./b", "/..", "/a/..", "/a\x00b", "/a\nb", "./a", "~/a"]


@pytest.mark.parametrize("value", BAD_PATHS)
@pytest.mark.parametrize("where", ["hostPath", "workingDir", "mountPath", "fileRef"])
def test_bad_paths_are_refused(where, value):
    raw = spec_with()
    c = raw["containers"][0]
    if where == "hostPath":
        raw["volumes"] = [{"name": "v", "hostPath": {"path": value}}]
        expected = "spec.volumes[0].hostPath.path"
    elif where == "workingDir":
        c["workingDir"] = value
        expected = "spec.containers[0].workingDir"
    elif where == "mountPath":
        raw["volumes"] = [{"name": "v", "emptyDir": {}}]
        c["volumeMounts"] = [{"name": "v", "mountPath": value}]
        expected = "spec.containers[0].volumeMounts[0].mountPath"
    else:
        c["envFrom"] = [{"fileRef": {"path": value}}]
        expected = "spec.containers[0].envFrom[0].fileRef.path"
    assert spec_error(raw).path == expected


@pytest.mark.parametrize("sub_path", ["/abs", "..", "../x", "a/../../x", "a/..", "a\x00b", "a\nb"])
def test_bad_sub_paths(sub_path):
    raw = {"volumes": [{"name": "v", "emptyDir": {}}], "containers": [dict(MAIN, volumeMounts=[{"name": "v", "mountPath": "/v", "subPath": sub_path}])]}
    assert spec_error(raw).path == "spec.containers[0].volumeMounts[0].subPath"


def test_mount_paths_root_and_twice():
    vols = [{"name": "v", "emptyDir": {}}]
    assert spec_error({"volumes": vols, "containers": [dict(MAIN, volumeMounts=[{"name": "v", "mountPath": "/"}])]}).path == \
        "spec.containers[0].volumeMounts[0].mountPath"
    error = spec_error({"volumes": vols, "containers": [dict(MAIN, volumeMounts=[{"name": "v", "mountPath": "/v"}, {"name": "v", "mountPath": "/v/"}])]})
    assert error.path == "spec.containers[0].volumeMounts[1].mountPath" and "twice" in error.message


@pytest.mark.parametrize("part,key,value,fragment", [
    ("limits", "cpu", "abc", "not a quantity"),
    ("limits", "cpu", "-1", "not a quantity"),
    ("limits", "cpu", "1.5.5", "not a quantity"),
    ("limits", "cpu", "500x", "not a quantity"),
    ("limits", "cpu", True, "boolean"),
    ("limits", "cpu", [], "must be a quantity"),
    ("limits", "memory", "1Ki", "at least 4Ki"),
    ("limits", "memory", "12 Mi", "not a quantity"),
    ("limits", "memory", "1MB", "not a quantity"),
    ("requests", "memory", None, None),
    ("limits", "pids", "10", "non-negative integer"),
    ("limits", "pids", -1, "non-negative integer"),
    ("limits", "pids", 1.0, "non-negative integer"),
])
def test_bad_quantities(part, key, value, fragment):
    raw = spec_with(resources={part: {key: value}})
    if fragment is None:  # a null quantity is not a quantity either
        fragment = "must be a quantity"
    error = spec_error(raw)
    assert error.path == f"spec.containers[0].resources.{part}.{key}"
    assert fragment in error.message


def test_requests_above_limits_and_bad_size_limit():
    error = spec_error(spec_with(resources={"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}))
    assert error.path == "spec.containers[0].resources.requests.cpu"
    assert spec_error({"volumes": [{"name": "v", "emptyDir": {"sizeLimit": "lots"}}], "containers": [MAIN]}).path == "spec.volumes[0].emptyDir.sizeLimit"


@pytest.mark.parametrize("kind", ["livenessProbe", "readinessProbe", "startupProbe"])
@pytest.mark.parametrize("handlers", [
    {"exec": {"command": ["/bin/true"]}, "tcpSocket": {"port": 1}},
    {"httpGet": {"port": 1}, "tcpSocket": {"port": 1}},
    {"exec": {"command": ["/bin/true"]}, "httpGet": {"port": 1}},
    {},
    {"periodSeconds": 5},
])
def test_probes_need_exactly_one_handler(kind, handlers):
    error = spec_error(spec_with(**{kind: handlers}))
    assert error.path == f"spec.containers[0].{kind}"
    assert "exactly one of exec, httpGet, tcpSocket" in error.message


def test_lifecycle_needs_exactly_one_handler():
    error = spec_error(spec_with(lifecycle={"preStop": {"sleep": {"seconds": 1}, "exec": {"command": ["/x"]}}}))
    assert error.path == "spec.containers[0].lifecycle.preStop"


@pytest.mark.parametrize("probe,path,fragment", [
    ({"tcpSocket": {"port": "nope"}}, "readinessProbe.tcpSocket.port", "not declared"),
    ({"tcpSocket": {"port": 0}}, "readinessProbe.tcpSocket.port", "outside 1-65535"),
    ({"tcpSocket": {"port": 65536}}, "readinessProbe.tcpSocket.port", "outside 1-65535"),
    ({"tcpSocket": {"port": True}}, "readinessProbe.tcpSocket.port", "port number or a port name"),
    ({"tcpSocket": {"port": 1.5}}, "readinessProbe.tcpSocket.port", "port number or a port name"),
    ({"tcpSocket": {}}, "readinessProbe.tcpSocket.port", "is required"),
    ({"tcpSocket": {"port": 1, "host": "a b"}}, "readinessProbe.tcpSocket.host", "not a host"),
    ({"httpGet": {"port": 1, "scheme": "FTP"}}, "readinessProbe.httpGet.scheme", "HTTP or HTTPS"),
    ({"httpGet": {"port": 1, "path": "health"}}, "readinessProbe.httpGet.path", "must start with '/'"),
    ({"httpGet": {"port": 1, "path": "/a b"}}, "readinessProbe.httpGet.path", "no spaces"),
    ({"httpGet": {"port": 1, "httpHeaders": [{"name": "a b"}]}}, "readinessProbe.httpGet.httpHeaders[0]", "tokens"),
    ({"httpGet": {"port": 1, "httpHeaders": [{"name": "a", "value": "x\r\ny: z"}]}}, "readinessProbe.httpGet.httpHeaders[0]", "line breaks"),
    ({"httpGet": {"port": 1, "httpHeaders": [{"value": "v"}]}}, "readinessProbe.httpGet.httpHeaders[0].name", "is required"),
    ({"exec": {}}, "readinessProbe.exec.command", "is required"),
    ({"exec": {"command": []}}, "readinessProbe.exec.command", "must not be empty"),
    ({"exec": {"command": "/bin/true"}}, "readinessProbe.exec.command", "must be a list"),
    ({"exec": {"command": ["/bin/true"]}, "periodSeconds": 0}, "readinessProbe.periodSeconds", "at least 1"),
    ({"exec": {"command": ["/bin/true"]}, "timeoutSeconds": 0}, "readinessProbe.timeoutSeconds", "at least 1"),
    ({"exec": {"command": ["/bin/true"]}, "initialDelaySeconds": -1}, "readinessProbe.initialDelaySeconds", "at least 0"),
    ({"exec": {"command": ["/bin/true"]}, "failureThreshold": "3"}, "readinessProbe.failureThreshold", "must be an integer"),
    ({"exec": {"command": ["/bin/true"]}, "terminationGracePeriodSeconds": 5}, "readinessProbe.terminationGracePeriodSeconds", "not allowed"),
])
def test_probe_field_errors(probe, path, fragment):
    error = spec_error(spec_with(ports=[{"name": "http", "containerPort": 80}], readinessProbe=probe))
    assert error.path == f"spec.containers[0].{path}"
    assert fragment in error.message


@pytest.mark.parametrize("kind", ["livenessProbe", "startupProbe"])
def test_success_threshold_is_one_except_for_readiness(kind):
    error = spec_error(spec_with(**{kind: {"tcpSocket": {"port": 1}, "successThreshold": 2}}))
    assert error.path == f"spec.containers[0].{kind}.successThreshold"
    assert container(spec_with(readinessProbe={"tcpSocket": {"port": 1}, "successThreshold": 2}))["readinessProbe"]["successThreshold"] == 2


@pytest.mark.parametrize("ports,path,fragment", [
    ([{"name": "http", "containerPort": 80}, {"name": "http", "containerPort": 81}], "ports[1].name", "duplicate port name"),
    ([{"name": "a" * 16, "containerPort": 80}], "ports[0].name", "not a valid port name"),
    ([{"name": "HTTP", "containerPort": 80}], "ports[0].name", "not a valid port name"),
    ([{"containerPort": 80, "protocol": "ICMP"}], "ports[0].protocol", "TCP, UDP or SCTP"),
    ([{"containerPort": "http"}], "ports[0].containerPort", "not declared"),
    ([{"name": "x"}], "ports[0].containerPort", "is required"),
    ([{"containerPort": 80, "hostPort": 0}], "ports[0].hostPort", "outside"),
])
def test_port_errors(ports, path, fragment):
    error = spec_error(spec_with(ports=ports))
    assert error.path == f"spec.containers[0].{path}"
    assert fragment in error.message


def test_duplicate_names():
    error = spec_error({"containers": [MAIN, dict(MAIN)]})
    assert error.path == "spec.containers[1].name" and "duplicate container name" in error.message
    error = spec_error({"volumes": [{"name": "v", "emptyDir": {}}, {"name": "v", "emptyDir": {}}], "containers": [MAIN]})
    assert error.path == "spec.volumes[1].name" and "duplicate volume name" in error.message


def test_volume_mount_of_an_undeclared_volume():
    mounts = [{"name": "v", "mountPath": "/v"}, {"name": "w", "mountPath": "/w"}]
    raw = {"volumes": [{"name": "v", "emptyDir": {}}], "containers": [dict(MAIN, volumeMounts=mounts)]}
    error = spec_error(raw)
    assert error.path == "spec.containers[0].volumeMounts[1].name"
    assert "'w' is not declared" in error.message


@pytest.mark.parametrize("volume,path", [
    ({"name": "v"}, "spec.volumes[0]"),
    ({"name": "v", "emptyDir": {}, "hostPath": {"path": "/x"}}, "spec.volumes[0]"),
    ({"emptyDir": {}}, "spec.volumes[0].name"),
    ({"name": "v", "hostPath": {"path": "/x", "type": "Weird"}}, "spec.volumes[0].hostPath.type"),
    ({"name": "v", "hostPath": {}}, "spec.volumes[0].hostPath.path"),
    ({"name": "v", "hostPath": None}, "spec.volumes[0].hostPath.path"),
    ({"name": "v", "emptyDir": {"medium": "HugePages"}}, "spec.volumes[0].emptyDir.medium"),
    ({"name": "v", "persistentVolumeClaim": {}}, "spec.volumes[0].persistentVolumeClaim.claimName"),
    ({"name": "v", "persistentVolumeClaim": {"claimName": "c", "readOnly": "yes"}}, "spec.volumes[0].persistentVolumeClaim.readOnly"),
    ("v", "spec.volumes[0]"),
])
def test_volume_errors(volume, path):
    assert spec_error({"volumes": [volume], "containers": [MAIN]}).path == path


@pytest.mark.parametrize("name", ["A-B", "1A", "A.B", "A B", "", "Ä", "A=B", "A$"])
def test_env_names_systemd_cannot_carry(name):
    error = spec_error(spec_with(env=[{"name": "OK", "value": "1"}, {"name": name, "value": "x"}]))
    assert error.path == "spec.containers[0].env[1].name"


def test_env_errors():
    assert spec_error(spec_with(env=[{"value": "x"}])).path == "spec.containers[0].env[0].name"
    assert spec_error(spec_with(env=[{"name": "A", "value": "a\x00b"}])).path == "spec.containers[0].env[0].value"
    assert spec_error(spec_with(env=[{"name": "A", "value": {"x": 1}}])).path == "spec.containers[0].env[0].value"
    assert spec_error(spec_with(env={"A": "b"})).path == "spec.containers[0].env"
    assert spec_error(spec_with(envFrom=[{"configMapRef": {"name": "c"}, "prefix": "1-"}])).path == "spec.containers[0].envFrom[0].prefix"
    assert spec_error(spec_with(envFrom=[{"prefix": "P_"}])).path == "spec.containers[0].envFrom[0]"
    assert spec_error(spec_with(envFrom=[{"configMapRef": {"name": "c"}, "secretRef": {"name": "s"}}])).path == "spec.containers[0].envFrom[0]"
    assert spec_error(spec_with(envFrom=[{"fileRef": {}}])).path == "spec.containers[0].envFrom[0].fileRef.path"
    assert spec_error(spec_with(envFrom=[{"secretRef": {"name": "s", "optional": "no"}}])).path == "spec.containers[0].envFrom[0].secretRef.optional"


def image_spec(**container):
    return {"containers": [dict({"name": "main", "image": "localhost/web:v1"}, **container)]}


@pytest.mark.parametrize(
    "reference,policy",
    [
        ("localhost/web:v1", "IfNotPresent"),
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("docker.io/library/nginx:1.27", "IfNotPresent"),
        ("registry.example.com:5000/team/app:2.0.1-rc_1", "IfNotPresent"),
        ("quay.io/a/b@sha256:" + "ab" * 32, "IfNotPresent"),
        ("10.77.0.1:5000/x__y.z-w:t", "IfNotPresent"),
    ],
)
def test_image_containers_run_under_podman_with_kubernetes_pull_defaults(reference, policy):
    normal = validate_pod_spec(image_spec(image=reference))
    assert normal["runtimeClassName"] == "podman"
    assert normal["containers"][0]["image"] == reference
    assert normal["containers"][0]["imagePullPolicy"] == policy
    assert normal["containers"][0]["command"] == []  # the image's entrypoint


@pytest.mark.parametrize("reference", ["Nginx", "nginx:", "nginx::1", "web/", "/web", "web:v1 ", "a@sha256:12", "a b", "", "web:" + "x" * 129, "-web"])
def test_image_references_that_do_not_parse_are_refused(reference):
    error = spec_error(image_spec(image=reference))
    assert error.path == "spec.containers[0].image" and "valid image reference" in error.message


def test_runtime_is_explicit_or_inferred_and_consistent():
    process = validate_pod_spec(spec_with())
    assert "runtimeClassName" not in process  # process pods keep their normal form (and revision hashes)
    assert validate_pod_spec(dict(image_spec(), runtimeClassName="podman"))["runtimeClassName"] == "podman"
    assert spec_error(dict(spec_with(image="web:v1"), runtimeClassName="process")).path == "spec.containers[0].image"
    assert spec_error({"runtimeClassName": "podman", "containers": [{"name": "main", "command": ["/bin/true"]}]}).path == "spec.containers[0].image"
    assert spec_error(dict(image_spec(), runtimeClassName="kata")).path == "spec.runtimeClassName"
    assert spec_error(spec_with(imagePullPolicy="Never")).path == "spec.containers[0].imagePullPolicy"
    assert spec_error(image_spec(imagePullPolicy="Sometimes")).path == "spec.containers[0].imagePullPolicy"
    assert container(spec_with(image=None))["name"] == "main"  # an explicit null is fine


def test_image_container_command_need_not_be_a_host_path_and_host_ports_are_the_host_network():
    normal = validate_pod_spec(image_spec(command=["httpd"], args=["-f"], ports=[{"containerPort": 8080, "hostPort": 8080}]))
    assert normal["containers"][0]["command"] == ["httpd"]
    error = spec_error(image_spec(ports=[{"containerPort": 8080, "hostPort": 80}]))
    assert error.path == "spec.containers[0].ports[0].hostPort" and "host's network" in error.message


def test_host_network_is_the_only_network_and_saying_so_changes_nothing():
    for spec in (spec_with(), image_spec()):
        assert validate_pod_spec(dict(spec, hostNetwork=True)) == validate_pod_spec(spec)
        error = spec_error(dict(spec, hostNetwork=False))
        assert error.path == "spec.hostNetwork" and "not supported" in error.message
    assert spec_error(dict(image_spec(), hostNetwork="yes")).path == "spec.hostNetwork"


@pytest.mark.parametrize("change,path,fragment", [
    ({"command": None}, "command", "is required"),
    ({"command": []}, "command", "must not be empty"),
    ({"command": ["sleep", "1"]}, "command[0]", "absolute path"),
    ({"command": ["/bin/sleep", "a\x00"]}, "command[1]", "NUL"),
    ({"command": ["/bin/sleep", {"a": 1}]}, "command[1]", "must be a string"),
    ({"command": ["/bin/sleep", None]}, "command[1]", "must be a string"),
    ({"command": ["/bin/sleep", True]}, "command[1]", "must be a string"),
    ({"args": ["ok", ["x"]]}, "args[1]", "must be a string"),
    ({"args": "a b"}, "args", "must be a list"),
    ({"securityContext": {"runAsNonRoot": True}}, "securityContext.runAsNonRoot", "non-zero runAsUser"),
    ({"securityContext": {"runAsNonRoot": True, "runAsUser": 0}}, "securityContext.runAsNonRoot", "non-zero runAsUser"),
    ({"securityContext": {"runAsUser": -1}}, "securityContext.runAsUser", "at least 0"),
    ({"securityContext": {"runAsGroup": 4294967295}}, "securityContext.runAsGroup", "at most 4294967294"),
    ({"securityContext": {"runAsUser": "1000"}}, "securityContext.runAsUser", "must be an integer"),
    ({"securityContext": {"runAsNonRoot": "yes"}}, "securityContext.runAsNonRoot", "must be a boolean"),
    ({"workingDir": 1}, "workingDir", "must be a string"),
    ({"lifecycle": {"preStop": {"sleep": {}}}}, "lifecycle.preStop.sleep.seconds", "is required"),
    ({"lifecycle": {"preStop": {"sleep": {"seconds": -1}}}}, "lifecycle.preStop.sleep.seconds", "at least 0"),
    ({"lifecycle": []}, "lifecycle", "must be a mapping"),
])
def test_container_field_errors(change, path, fragment):
    error = spec_error(spec_with(**change))
    assert error.path == f"spec.containers[0].{path}"
    assert fragment in error.message


@pytest.mark.parametrize("raw,path,fragment", [
    ({"containers": [MAIN], "restartPolicy": "Sometimes"}, "spec.restartPolicy", "Always, OnFailure, Never"),
    ({"containers": [MAIN], "restartPolicy": "always"}, "spec.restartPolicy", "Always, OnFailure, Never"),
    ({"containers": [MAIN], "terminationGracePeriodSeconds": -1}, "spec.terminationGracePeriodSeconds", "at least 0"),
    ({"containers": [MAIN], "terminationGracePeriodSeconds": "30"}, "spec.terminationGracePeriodSeconds", "must be an integer, got a string"),
    ({"containers": [MAIN], "terminationGracePeriodSeconds": True}, "spec.terminationGracePeriodSeconds", "must be an integer, got a boolean"),
    ({"containers": [MAIN], "terminationGracePeriodSeconds": 1.5}, "spec.terminationGracePeriodSeconds", "must be an integer, got a number"),
    ({"containers": [MAIN], "activeDeadlineSeconds": 0}, "spec.activeDeadlineSeconds", "at least 1"),
    ({"containers": []}, "spec.containers", "at least one container"),
    ({}, "spec.containers", "is required"),
    ({"containers": MAIN}, "spec.containers", "must be a list"),
    ({"containers": ["main"]}, "spec.containers[0]", "must be a mapping"),
    ({"containers": [MAIN], "volumes": {"v": {}}}, "spec.volumes", "must be a list"),
    ({"containers": [MAIN], "securityContext": {"runAsUser": True}}, "spec.securityContext.runAsUser", "got a boolean"),
    ([MAIN], "spec", "must be a mapping"),
])
def test_pod_spec_field_errors(raw, path, fragment):
    error = spec_error(raw)
    assert error.path == path
    assert fragment in error.message


@pytest.mark.parametrize("change,path", [
    ({"labels": {"bad key": "x"}}, "pods[0].labels['bad key']"),
    ({"labels": {"a": "x" * 64}}, "pods[0].labels['a']"),
    ({"labels": {"a": "-x"}}, "pods[0].labels['a']"),
    ({"labels": {"a": ["x"]}}, "pods[0].labels['a']"),
    ({"labels": {"a": True}}, "pods[0].labels['a']"),
    ({"labels": {"Bad_Prefix/a": "x"}}, "pods[0].labels['Bad_Prefix/a']"),
    ({"labels": {"": "x"}}, "pods[0].labels"),
    ({"labels": ["a"]}, "pods[0].labels"),
    ({"annotations": {"a": {"b": 1}}}, "pods[0].annotations['a']"),
    ({"annotations": {"a": None}}, "pods[0].annotations['a']"),
    ({"revision": "bad rev!"}, "pods[0].revision"),
    ({"revision": "r" * 64}, "pods[0].revision"),
    ({"revision": 1}, "pods[0].revision"),
    ({"spec": None}, "pods[0].spec"),
])
def test_pod_entry_errors(change, path):
    assert pod_error(dict(pod(), **change)).path == path


# --- bugs ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw,path", [
    (pod(name="web\n"), "pods[0].name"),
    (pod(env=[{"name": "FOO\n", "value": "x"}]), "pods[0].spec.containers[0].env[0].name"),
    (pod(labels={"app": "web\n"}), "pods[0].labels['app']"),
    (dict(pod(), revision="r1\n"), "pods[0].revision"),
    (pod(ports=[{"name": "http\n", "containerPort": 80}]), "pods[0].spec.containers[0].ports[0].name"),
    (pod(readinessProbe={"tcpSocket": {"port": 80, "host": "localhost\n"}}), "pods[0].spec.containers[0].readinessProbe.tcpSocket.host"),
])
def test_trailing_newline_is_not_a_valid_name(raw, path):
    assert pod_error(raw).path == path


def test_unicode_digit_port_is_a_spec_error():
    error = spec_error(spec_with(ports=[{"containerPort": "²"}]))
    assert error.path == "spec.containers[0].ports[0].containerPort"


@pytest.mark.parametrize("key,value", [("cpu", "1e999999"), ("memory", "1e" + "9" * 5000), ("memory", "1e5000")])
def test_absurd_quantities_are_spec_errors(key, value):
    assert spec_error(spec_with(resources={"limits": {key: value}})).path == f"spec.containers[0].resources.limits.{key}"


@pytest.mark.parametrize("change,path", [
    ({"args": ""}, "spec.containers[0].args"),
    ({"env": 0}, "spec.containers[0].env"),
    ({"ports": False}, "spec.containers[0].ports"),
    ({"volumeMounts": ""}, "spec.containers[0].volumeMounts"),
    ({"resources": {"limits": []}}, "spec.containers[0].resources.limits"),
    ({"livenessProbe": {"httpGet": {"port": 1, "httpHeaders": ""}}}, "spec.containers[0].livenessProbe.httpGet.httpHeaders"),
])
def test_falsy_values_of_the_wrong_type_are_refused(change, path):
    assert spec_error(spec_with(**change)).path == path


def test_pod_level_run_as_non_root_error_names_the_pod_field():
    raw = {"securityContext": {"runAsNonRoot": True}, "containers": [MAIN]}
    assert spec_error(raw).path == "spec.securityContext.runAsNonRoot"


def test_label_key_with_empty_prefix():
    assert pod_error(pod(labels={"/app": "x"})).path == "pods[0].labels['/app']"


@pytest.mark.parametrize("command0", ["/opt/a\\b", '/opt/a"b', "/opt/a'b", "/opt/a\tb", "/opt/a\x01b"])
def test_executable_paths_systemd_refuses(command0):
    assert spec_error(spec_with(command=[command0])).path == "spec.containers[0].command[0]"


def test_carriage_return_in_paths():
    assert spec_error(spec_with(workingDir="/srv/a\rb")).path == "spec.containers[0].workingDir"


def test_lifecycle_handlers_refuse_probe_fields():
    error = spec_error(spec_with(lifecycle={"postStart": {"exec": {"command": ["/bin/true"]}, "periodSeconds": 5}}))
    assert error.path == "spec.containers[0].lifecycle.postStart.periodSeconds"


def test_container_level_run_as_non_root_error_names_the_container_field():
    raw = {"securityContext": {"runAsNonRoot": True}, "containers": [dict(MAIN, securityContext={"runAsNonRoot": True})]}
    assert spec_error(raw).path == "spec.containers[0].securityContext.runAsNonRoot"
    assert validate_pod_spec({"securityContext": {"runAsNonRoot": True}, "containers": [dict(MAIN, securityContext={"runAsUser": 1000})]})


HUGE = 10**5000  # str() of it raises ValueError on Python 3.11+


@pytest.mark.parametrize("change,path", [
    ({"args": [HUGE]}, "spec.containers[0].args[0]"),
    ({"env": [{"name": "A", "value": HUGE}]}, "spec.containers[0].env[0].value"),
    ({"ports": [{"containerPort": HUGE}]}, "spec.containers[0].ports[0].containerPort"),
    ({"ports": [{"containerPort": "9" * 5000}]}, "spec.containers[0].ports[0].containerPort"),
    ({"resources": {"limits": {"pids": HUGE}}}, "spec.containers[0].resources.limits.pids"),
    ({"resources": {"limits": {"memory": HUGE}}}, "spec.containers[0].resources.limits.memory"),
    ({"resources": {"limits": {"memory": 2**63}}}, "spec.containers[0].resources.limits.memory"),
    ({"resources": {"limits": {"cpu": "9223372036854776"}}}, "spec.containers[0].resources.limits.cpu"),
    ({"livenessProbe": {"tcpSocket": {"port": 1}, "periodSeconds": HUGE}}, "spec.containers[0].livenessProbe.periodSeconds"),
    ({"lifecycle": {"preStop": {"sleep": {"seconds": 2**63}}}}, "spec.containers[0].lifecycle.preStop.sleep.seconds"),
])
def test_huge_integers_are_spec_errors(change, path):
    assert spec_error(spec_with(**change)).path == path


def test_huge_integers_in_pod_fields():
    assert spec_error({"terminationGracePeriodSeconds": HUGE, "containers": [MAIN]}).path == "spec.terminationGracePeriodSeconds"
    assert pod_error(pod(labels={"a": HUGE})).path == "pods[0].labels['a']"
    assert pod_error(dict(pod(), annotations={"a": HUGE})).path == "pods[0].annotations['a']"


@pytest.mark.parametrize("value", ["/srv/a ", "/srv/a\t", "/srv/a /"])
def test_paths_ending_in_whitespace(value):
    # systemd strips trailing whitespace from unit file lines: WorkingDirectory= would name another directory.
    assert spec_error(spec_with(workingDir=value)).path == "spec.containers[0].workingDir"


@pytest.mark.parametrize("sub_path", ["a\rb", "a\x1bb", "a ", "a\t/"])
def test_sub_paths_with_control_characters_or_trailing_whitespace(sub_path):
    raw = {"volumes": [{"name": "v", "emptyDir": {}}], "containers": [dict(MAIN, volumeMounts=[{"name": "v", "mountPath": "/v", "subPath": sub_path}])]}
    assert spec_error(raw).path == "spec.containers[0].volumeMounts[0].subPath"


@pytest.mark.parametrize("command0", ["/opt/app/", "/opt/a\x7fb"])
def test_more_executable_paths_systemd_refuses(command0):
    assert spec_error(spec_with(command=[command0])).path == "spec.containers[0].command[0]"


def test_tabs_and_spaces_inside_paths_are_fine():
    assert container(spec_with(workingDir="/srv/my dir\t1"))["workingDir"] == "/srv/my dir\t1"


# --- issue 11: what validation accepts, systemd and podman read back unchanged --------------------------------

HOOKS = ("postStart", "preStop")


@pytest.mark.parametrize("hook", HOOKS)
@pytest.mark.parametrize("program", ["+/usr/bin/id", "-/bin/true", "@/bin/x", "!/bin/x", ":/bin/x", "+id", "./hook.sh", "", "/bin/ec'ho", "/bin/", "/bin/a\nb",
                                     "/usr//bin/id", "/usr/./bin/id", "/a\\b", "id\x01"])
def test_lifecycle_exec_programs_are_checked_like_the_containers_command(hook, program):
    # Issue 11 item 1: systemd reads a leading + (root!) - @ ! : as its own prefix even inside quotes, and refuses the
    # others (bad-setting: the pod never starts). The error names the field.
    raw = spec_with(securityContext={"runAsUser": 1000, "runAsNonRoot": True}, lifecycle={hook: {"exec": {"command": [program, "x"]}}})
    assert spec_error(raw).path == f"spec.containers[0].lifecycle.{hook}.exec.command[0]"


@pytest.mark.parametrize("program", ["+/usr/bin/id", "./hook.sh", "", "/bin/ec'ho"])
def test_exec_probe_programs_are_checked_the_same_way(program):
    raw = spec_with(livenessProbe={"exec": {"command": [program]}})
    assert spec_error(raw).path == "spec.containers[0].livenessProbe.exec.command[0]"


def test_hooks_and_probes_may_name_a_command_as_before():
    # systemd 252 (and the hook for probes) look a bare name up in their search path: Kubernetes' usual `cat /tmp/ready`.
    normal = container(spec_with(lifecycle={"postStart": {"exec": {"command": ["touch", "/tmp/x"]}}}, readinessProbe={"exec": {"command": ["cat", "/tmp/x"]}}))
    assert normal["lifecycle"]["postStart"]["exec"]["command"] == ["touch", "/tmp/x"]
    # A container's own program stays an absolute path, as before.
    assert "absolute path" in spec_error(spec_with(command=["sleep", "1"])).message


def test_image_containers_programs_run_inside_the_image():
    # podman resolves names in the image, after fixed words (podman exec NAME ...) or as --entrypoint JSON: any name
    # goes but an empty one or control characters.
    raw = {"containers": [{"name": "c", "image": "localhost/x:v1", "command": ["sh", "-c", "x"], "lifecycle": {"postStart": {"exec": {"command": ["+x"]}}}}]}
    assert container(raw)["command"] == ["sh", "-c", "x"]
    for program in ("", "a\nb"):
        raw["containers"][0]["lifecycle"] = {"preStop": {"exec": {"command": [program]}}}
        assert spec_error(raw).path == "spec.containers[0].lifecycle.preStop.exec.command[0]"


@pytest.mark.parametrize("working_dir", ["/srv/x\\", "/srv/x\\\\\\"])
def test_working_dir_ending_in_a_backslash(working_dir):
    # Issue 11 item 3: raw in WorkingDirectory=, an odd number of trailing backslashes joins the next unit file line.
    assert spec_error(spec_with(workingDir=working_dir)).path == "spec.containers[0].workingDir"
    assert container(spec_with(workingDir="/srv/x\\\\"))["workingDir"] == "/srv/x\\\\"


@pytest.mark.parametrize("text", ["\ufdd0", "\uffff", "\U0010fffe"])
def test_unicode_noncharacters_make_systemd_refuse_the_unit(text):
    assert spec_error(spec_with(args=["a" + text])).path == "spec.containers[0].args[0]"
    assert spec_error(spec_with(workingDir="/srv/" + text)).path == "spec.containers[0].workingDir"


def test_over_long_values_are_refused_with_the_limit():
    # Issue 11 item 5: one argument of 1 MiB makes the unit fail to load ("No buffer space available").
    error = spec_error(spec_with(args=["x", "a" * (podspec.MAX_ARG_BYTES + 1)]))
    assert error.path == "spec.containers[0].args[1]" and "65536 bytes" in error.message
    assert container(spec_with(args=["a" * podspec.MAX_ARG_BYTES]))["args"] == ["a" * podspec.MAX_ARG_BYTES]
    # Bytes, not characters.
    assert spec_error(spec_with(args=["é" * (podspec.MAX_ARG_BYTES // 2 + 1)])).path == "spec.containers[0].args[0]"
    error = spec_error(spec_with(args=["a" * podspec.MAX_ARG_BYTES] * 2))
    assert error.path == "spec.containers[0].args" and "131072 bytes" in error.message
    hook = {"postStart": {"exec": {"command": ["/bin/true", "a" * (podspec.MAX_ARG_BYTES + 1)]}}}
    assert spec_error(spec_with(lifecycle=hook)).path == "spec.containers[0].lifecycle.postStart.exec.command[1]"


@pytest.mark.parametrize("path", ["/" + "a" * 256, "/" + "/".join(["b" * 255] * 16), "/x/" + "é" * 128])
def test_paths_over_systemd_limits(path):
    # PATH_MAX and NAME_MAX: systemd ignores such a BindPaths= path (a 256-byte component even made it read the
    # destination as the source) or refuses the unit.
    assert spec_error(spec_with(workingDir=path)).path == "spec.containers[0].workingDir"
    raw = {"volumes": [{"name": "v", "hostPath": {"path": path}}], "containers": [MAIN]}
    assert spec_error(raw).path == "spec.volumes[0].hostPath.path"
    assert spec_error(spec_with(command=[path])).path == "spec.containers[0].command[0]"


def test_sub_path_appended_to_a_host_path_over_the_limit():
    raw = {
        "volumes": [{"name": "v", "hostPath": {"path": "/" + "/".join(["h" * 200] * 19)}}],
        "containers": [dict(MAIN, volumeMounts=[{"name": "v", "mountPath": "/v", "subPath": "s" * 200 + "/" + "t" * 200}])],
    }
    assert spec_error(raw).path == "spec.containers[0].volumeMounts[0].subPath"


def test_sub_path_is_normalised():
    raw = {"volumes": [{"name": "v", "emptyDir": {}}], "containers": [dict(MAIN, volumeMounts=[{"name": "v", "mountPath": "/v", "subPath": "./a//b/./c/"}])]}
    assert container(raw)["volumeMounts"][0]["subPath"] == "a/b/c"


@pytest.mark.parametrize("value", ["/a'b", '/a"b', "/a:b,c", "/a b\tc", "/%h$x", "/a\\b", "/é\u2028\u0085"])
def test_paths_systemd_can_carry_are_accepted(value):
    main = dict(MAIN, workingDir=value, volumeMounts=[{"name": "v", "mountPath": value}])
    raw = {"volumes": [{"name": "v", "hostPath": {"path": value}}], "containers": [main]}
    normal = validate_pod_spec(raw)
    assert normal["volumes"]["v"]["path"] == normal["containers"][0]["workingDir"] == normal["containers"][0]["volumeMounts"][0]["mountPath"] == value
