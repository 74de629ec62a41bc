"""imagePullSecrets (issue 15): the pod's registry auth file from its Secrets (root-only, never in a unit or command
line), the spec's validation, the podman flag, and the hook's pre/exited around a pull."""

from __future__ import annotations

import base64
import json
import os
import stat

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from node_helpers import parse_exec_line, pod, unit_values

from ansible_collections.hostfleet.workloads.plugins.module_utils.node import hook, podspec, registry_auth, units
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError, validate_pod, validate_pod_spec

STATE = "/var/lib/hostfleet"


def docker_config(registry, user, password):
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return json.dumps({"auths": {registry: {"auth": token}}})


def write_secret(state_dir, name, files):
    folder = os.path.join(state_dir, "secrets", name)
    os.makedirs(folder, exist_ok=True)
    for key, text in files.items():
        with open(os.path.join(folder, key), "w") as handle:
            handle.write(text)


def image_spec(**extra):
    return dict({"containers": [{"name": "main", "image": "10.77.6.1:5000/private/app:1"}]}, **extra)


# --- the spec ---------------------------------------------------------------------------------------


def test_names_in_the_normal_form_only_when_set():
    assert validate_pod_spec(image_spec(imagePullSecrets=[{"name": "regcred"}, {"name": "other.cred"}]))["imagePullSecrets"] == ["regcred", "other.cred"]
    assert "imagePullSecrets" not in validate_pod_spec(image_spec())
    assert "imagePullSecrets" not in validate_pod_spec(image_spec(imagePullSecrets=[]))


@pytest.mark.parametrize("value,path,fragment", [
    ({"name": "regcred"}, "imagePullSecrets", "must be a list"),
    (["regcred"], "imagePullSecrets[0]", "must be a mapping"),
    ([{}], "imagePullSecrets[0].name", "is required"),
    ([{"name": "Reg_Cred"}], "imagePullSecrets[0].name", "not a valid Secret name"),
    ([{"name": "r", "namespace": "x"}], "imagePullSecrets[0].namespace", "unknown field"),
])
def test_bad_references_name_the_field(value, path, fragment):
    with pytest.raises(SpecError) as info:
        validate_pod_spec(image_spec(imagePullSecrets=value))
    assert info.value.path == f"spec.{path}" and fragment in info.value.message


def test_a_process_pod_has_no_pulls():
    with pytest.raises(SpecError) as info:
        validate_pod_spec({"containers": [{"name": "main", "command": ["/bin/true"]}], "imagePullSecrets": [{"name": "r"}]})
    assert info.value.path == "spec.imagePullSecrets" and "pulls no images" in info.value.message


def test_podman_reads_the_pods_auth_file_and_nothing_else_of_it():
    normal = validate_pod(pod(name="web", spec=image_spec(imagePullSecrets=[{"name": "regcred"}])), "pods[0]")
    content = units.render_pod(normal, "Pod/web", {}, STATE, "/usr/bin/python3", "/run/hostfleet")[units.container_unit("web", "main")]
    _exe, argv = parse_exec_line(unit_values(content, "ExecStart")[0])
    assert "--authfile=/run/hostfleet/pods/web/auth.json" in argv
    without = validate_pod(pod(name="web", spec=image_spec()), "pods[0]")
    content = units.render_pod(without, "Pod/web", {}, STATE, "/usr/bin/python3", "/run/hostfleet")[units.container_unit("web", "main")]
    assert "--authfile" not in content


# --- the auth file ----------------------------------------------------------------------------------


def test_merged_root_only_first_secret_wins_and_missing_ones_named(tmp_path):
    state = str(tmp_path / "state")
    write_secret(state, "prod_regcred", {".dockerconfigjson": docker_config("10.77.6.1:5000", "puller", "pw1")})
    write_secret(state, "prod_second", {".dockerconfigjson": json.dumps({"auths": {"10.77.6.1:5000": {"auth": "b3RoZXI6eA=="}, "quay.io": {"auth": "eDp5"}}})})
    write_secret(state, "prod_legacy", {".dockercfg": json.dumps({"legacy.example:5000": {"auth": "bDpw"}})})
    write_secret(state, "prod_opaque", {"password": "x"})
    write_secret(state, "prod_broken", {".dockerconfigjson": "{not json"})
    run = str(tmp_path / "run" / "pods" / "prod_web")
    missing = registry_auth.registry_auth_write(state, "prod_web", ["regcred", "second", "legacy", "opaque", "broken", "gone"], run)
    path = os.path.join(run, "auth.json")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(path) as handle:
        document = json.load(handle)
    assert document == {"auths": {
        "10.77.6.1:5000": {"auth": base64.b64encode(b"puller:pw1").decode()},
        "quay.io": {"auth": "eDp5"},
        "legacy.example:5000": {"auth": "bDpw"},
    }}
    assert missing == [
        "opaque (has no .dockerconfigjson key (not a kubernetes.io/dockerconfigjson Secret))",
        "broken (its .dockerconfigjson is not JSON)",
        "gone (not found)",
    ]


def test_default_namespace_secrets_and_an_empty_file_when_none(tmp_path):
    state = str(tmp_path / "state")
    run = str(tmp_path / "run" / "pods" / "web")
    assert registry_auth.registry_auth_write(state, "web", ["regcred"], run) == ["regcred (not found)"]
    with open(os.path.join(run, "auth.json")) as handle:
        assert json.load(handle) == {"auths": {}}  # podman refuses an --authfile that does not exist
    write_secret(state, "regcred", {".dockerconfigjson": docker_config("r.example", "u", "p")})
    assert registry_auth.registry_auth_write(state, "web", ["regcred"], run) == []
    with open(os.path.join(run, "auth.json")) as handle:
        assert list(json.load(handle)["auths"]) == ["r.example"]


def test_a_link_planted_at_the_temporary_name_is_not_followed(tmp_path):
    state = str(tmp_path / "state")
    run = tmp_path / "run" / "pods" / "web"
    run.mkdir(parents=True)
    target = tmp_path / "elsewhere"
    target.write_text("untouched")
    (run / "auth.json.tmp").symlink_to(target)
    write_secret(state, "regcred", {".dockerconfigjson": docker_config("r.example", "u", "p")})
    registry_auth.registry_auth_write(state, "web", ["regcred"], str(run))
    assert target.read_text() == "untouched" and not (run / "auth.json").is_symlink()


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.from_regex(r"\A[a-z0-9.]{1,20}(:[0-9]{1,5})?\Z"), st.text(max_size=30), max_size=4), st.data())
def test_the_file_holds_exactly_the_secrets_credentials(tmp_path_factory, registries, data):
    state = str(tmp_path_factory.mktemp("s"))
    passwords = {r: data.draw(st.text(max_size=20)) for r in registries}
    write_secret(state, "regcred", {".dockerconfigjson": json.dumps({"auths": {r: {"auth": base64.b64encode(f"{u}:{passwords[r]}".encode()).decode()}
                                                                               for r, u in registries.items()}})})
    run = os.path.join(state, "run")
    assert registry_auth.registry_auth_write(state, "web", ["regcred"], run) == []
    with open(os.path.join(run, "auth.json")) as handle:
        got = json.load(handle)["auths"]
    assert {r: base64.b64decode(e["auth"]).decode() for r, e in got.items()} == {r: f"{u}:{passwords[r]}" for r, u in registries.items()}


# --- the hook -----------------------------------------------------------------------------------------


@pytest.fixture
def hook_pod(tmp_path, monkeypatch):
    monkeypatch.setattr(hook, "RUN_DIR", str(tmp_path / "run"))
    events = []
    monkeypatch.setattr(hook, "event", lambda reason, pod, container, message, event_type="Normal": events.append((reason, message)))
    monkeypatch.setattr(hook, "network_sync", lambda state_dir: None)
    state = tmp_path / "state"

    def setup(spec):
        record = {"name": "web", "spec": podspec.validate_pod_spec(spec)}
        (state / "pods" / "web").mkdir(parents=True, exist_ok=True)
        (state / "pods" / "web" / "pod.json").write_text(json.dumps(record))
        return str(state), tmp_path / "run" / "web"

    return setup, events


def test_pre_writes_the_file_and_says_what_is_missing(hook_pod):
    setup, events = hook_pod
    state, pod_run = setup(image_spec(imagePullSecrets=[{"name": "regcred"}, {"name": "gone"}]))
    write_secret(state, "regcred", {".dockerconfigjson": docker_config("r.example", "u", "p")})
    hook.cmd_pre(state, "web", "main")
    assert json.loads((pod_run / "auth.json").read_text())["auths"] == {"r.example": {"auth": base64.b64encode(b"u:p").decode()}}
    status = json.loads((pod_run / "main" / "status.json").read_text())
    assert status["pull_secrets_missing"] == ["gone (not found)"]
    assert events == [("FailedToRetrieveImagePullSecret",
                       "Unable to retrieve some image pull secrets (gone (not found)); attempting to pull the image may not succeed.")]
    # The credentials are in the auth file only: not in the status, not in any event.
    assert "dTpw" not in json.dumps(status) + json.dumps(events)


def test_a_failed_pull_names_the_missing_secrets(hook_pod, monkeypatch):
    setup, _events = hook_pod
    state, pod_run = setup(image_spec(imagePullSecrets=[{"name": "gone"}]))
    hook.cmd_pre(state, "web", "main")
    monkeypatch.setattr(hook, "unit_error_line", lambda unit: "Error: initializing source docker://10.77.6.1:5000/private/app:1: "
                        "reading manifest 1 in 10.77.6.1:5000/private/app: unauthorized: authentication required")
    monkeypatch.setattr(hook, "image_exists", lambda image: False)
    monkeypatch.setenv("EXIT_CODE", "exited")
    monkeypatch.setenv("EXIT_STATUS", "125")
    hook.cmd_exited(state, "web", "main")
    error = json.loads((pod_run / "main" / "status.json").read_text())["image_error"]
    assert error["reason"] == "ErrImagePull"
    assert error["message"].endswith("unauthorized: authentication required (image pull secrets not retrieved: gone (not found))")


def test_pods_without_pull_secrets_get_no_file(hook_pod):
    setup, events = hook_pod
    state, pod_run = setup(image_spec())
    hook.cmd_pre(state, "web", "main")
    assert not (pod_run / "auth.json").exists() and events == []


# --- the controllers' pin of Always images pulls with the template's Secrets (image_id) -----------------------------


class FakeModule:
    def __init__(self, params, check_mode=False):
        self.params = params
        self.check_mode = check_mode
        self.warnings = []
        self.result = None

    def warn(self, message):
        self.warnings.append(message)

    def exit_json(self, **result):
        self.result = result
        raise SystemExit(0)

    def fail_json(self, **result):
        self.result = dict(result, failed=True)
        raise SystemExit(1)


def test_image_id_pulls_with_the_pull_secrets_and_removes_their_file(tmp_path, monkeypatch):
    from ansible_collections.hostfleet.workloads.plugins.module_utils.node import images

    state = str(tmp_path / "state")
    write_secret(state, "prod_regcred", {".dockerconfigjson": docker_config("r.example", "u", "p")})
    monkeypatch.setattr(images, "RUN_DIR", str(tmp_path / "run"))
    seen = []

    def run(argv, **kwargs):
        auth = [a for a in argv if a.startswith("--authfile=")]
        if auth:
            path = auth[0].split("=", 1)[1]
            seen.append((argv[1], json.loads(open(path).read()), stat.S_IMODE(os.stat(path).st_mode), stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode)))
        else:
            seen.append((argv[1], None, None, None))
        return images.subprocess.CompletedProcess(argv, 0, stdout="a" * 64 + "\n", stderr="")

    real = images.image_ids
    monkeypatch.setattr(images, "image_ids", lambda refs, pull, authfile=None: real(refs, pull, run=run, authfile=authfile))
    module = FakeModule({"images": ["r.example/app:latest"], "pull": True, "pull_secrets": ["regcred", "gone"], "namespace": "prod", "state_dir": state})
    with pytest.raises(SystemExit):
        images.run_image_id(module)
    assert module.result["images"] == {"r.example/app:latest": {"id": "a" * 64}}
    # inspect before, without credentials; the pull with the Secret's, from a 0600 file in a 0700 folder of its own
    assert seen[0] == ("image", None, None, None)
    assert seen[1] == ("pull", {"auths": {"r.example": {"auth": base64.b64encode(b"u:p").decode()}}}, 0o600, 0o700)
    assert module.warnings == ["image pull secret gone (not found): pulling without it"]
    assert os.listdir(tmp_path / "run") == []  # removed when the module ends


def test_workloads_pass_the_templates_pull_secrets_to_the_pin():
    from ansible_collections.hostfleet.workloads.plugins.plugin_utils.workload_action import pull_secrets, pulled_images
    from ansible_collections.hostfleet.workloads.plugins.plugin_utils.workload_task import IMAGE_MODULE, WorkloadTask

    template = {"spec": {"imagePullSecrets": [{"name": "regcred"}], "containers": [{"name": "app", "image": "r.example/app:latest"}]}}
    assert pulled_images(template) == ["r.example/app:latest"] and pull_secrets(template) == ["regcred"]

    class Fleet:
        hosts = ["a"]
        asked = []

        def run_module(self, module, args_per_host, check_mode=None):
            self.asked.append((module, args_per_host))
            return {h: {"images": {ref: {"id": "x"} for ref in args["images"]}} for h, args in args_per_host.items()}

    fleet = Fleet()
    task = WorkloadTask(fleet, "Deployment", "web", "/srv/hf", check_mode=False)
    task.resolve_images(pulled_images(template), pull_secrets(template), "prod")
    task.resolve_images(["r.example/other:latest"])
    assert fleet.asked == [
        (IMAGE_MODULE, {"a": {"images": ["r.example/app:latest"], "pull": True, "pull_secrets": ["regcred"], "namespace": "prod", "state_dir": "/srv/hf"}}),
        (IMAGE_MODULE, {"a": {"images": ["r.example/other:latest"], "pull": True}}),  # as before without Secrets
    ]
