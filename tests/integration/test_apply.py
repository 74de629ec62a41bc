"""hostfleet.workloads.apply on the lab's 3 hosts: a directory of real-world Kubernetes manifests, applied unchanged.

The manifests (tests/integration/manifests/app/) are written as for a cluster (all in the default namespace, since
a pod reads only its own namespace's ConfigMaps and Secrets; test_apply_kinds.py applies a namespaced claim): service accounts,
probes, resources, a StatefulSet with volumeClaimTemplates, a DaemonSet with a nodeSelector, a Job, a CronJob, a
ConfigMap and a Secret used through env, envFrom and volumes.
"""

from __future__ import annotations

import base64
import re
import shutil
from pathlib import Path

import pytest
import yaml

MANIFESTS = Path(__file__).resolve().parent / "manifests" / "app"
# node1 and node2 carry gpu=true, as in test_daemonset.py: the DaemonSet's nodeSelector picks them.
LABELS = {"node1": {"hostfleet_node_labels": {"gpu": "true"}}, "node2": {"hostfleet_node_labels": {"gpu": "true"}}, "node3": {}}
PLAIN_SECRET = "s3cr3t-Plain-Value-4711"
BASE64_SECRET_VALUE = "t0ken-Base64-Value-0815"
SECRETS = [PLAIN_SECRET, BASE64_SECRET_VALUE, base64.b64encode(PLAIN_SECRET.encode()).decode(), base64.b64encode(BASE64_SECRET_VALUE.encode()).decode()]
WORKLOAD_UNITS = "hf-k8s-*"


def apply(lab, src=MANIFESTS, state="present", check=False, diff=False, extra_args=(), env=None):
    task = {"name": "apply", "hostfleet.workloads.apply": {"src": str(src), "state": state, "wait_timeout": 180}, "run_once": True}
    run = lab.run([task], check=check, diff=diff, extra_args=extra_args, env=env, host_vars=LABELS)
    return run


def result_of(lab, run):
    return run.result("apply", lab.hosts[0])


def by_kind(result):
    return {(o["kind"], o["name"]): o for o in result["objects"]}


def host_state(lab):
    """What the node layer has on each host: units (with their state), files under the state dir, with mtimes."""
    state = {}
    for host in lab.hosts:
        # Containers' units and their state (not the probes' oneshot runs, which come and go every period).
        units = lab.ssh(
            host,
            f"systemctl list-units '{WORKLOAD_UNITS}' --all --no-legend --plain | awk '{{print $1, $3}}' "
            "| grep -Ev '[.](readiness|liveness|startup)[.]service ' | sort",
            check=False,
        ).stdout
        files = lab.ssh(
            host,
            "find /var/lib/hostfleet/configmaps /var/lib/hostfleet/secrets /var/lib/hostfleet/owners /var/lib/hostfleet/volumes "
            "/etc/systemd/system \\( -path '*/hf-*' -o -path '*/hfcron-*' -o -path '/var/lib/hostfleet/*' \\) -printf '%p %m %s %T@\\n' 2>/dev/null | sort",
            check=False,
        ).stdout
        state[host] = (units, files)
    return state


@pytest.fixture(scope="module")
def fleet(lab):
    def clean():
        apply(lab, state="absent")
        for host in lab.hosts:
            lab.ssh(host, "rm -rf /var/lib/hostfleet/volumes/data-k8s-db-*", check=False)

    clean()
    yield lab
    clean()


def test_real_world_manifests_apply_unchanged_and_reapply_changes_nothing(fleet):
    run = apply(fleet)
    assert run.rc == 0, run.stdout[-4000:] + run.stderr[-2000:]
    res = result_of(fleet, run)
    objects = by_kind(res)
    assert [o["kind"] for o in res["objects"]] == ["ConfigMap", "Secret", "StatefulSet", "Deployment", "DaemonSet", "Job", "CronJob"]
    assert all(o["changed"] for o in res["objects"] if o["kind"] not in ("ConfigMap", "Secret")) or res["changed"]
    # Fields without meaning on hosts are reported, with their document.
    ignored = res["ignored_fields"]
    assert any(line.endswith("(Deployment k8s-web): spec.template.spec.serviceAccountName") for line in ignored)
    assert any(line.endswith("(DaemonSet k8s-agent): spec.template.spec.imagePullSecrets") for line in ignored)
    assert "spec.template.spec.containers[0].terminationMessagePath" in objects[("Deployment", "k8s-web")]["ignored_fields"]
    # The StatefulSet: 2 identities with their volumes; the DaemonSet on the gpu nodes only; the Job complete.
    assert objects[("StatefulSet", "k8s-db")]["status"]["readyReplicas"] == 2
    assert objects[("DaemonSet", "k8s-agent")]["status"]["numberReady"] == 2
    assert objects[("Job", "k8s-migrate")]["status"]["succeeded"] == 1
    assert len(objects[("CronJob", "k8s-report")]["nodes"]) == 1
    running_agents = "systemctl list-units 'hf-k8s-agent-*.agent.service' --state=running --no-legend --plain | wc -l"
    agents = {h: fleet.ssh(h, running_agents).stdout.strip() for h in fleet.hosts}
    assert agents == {"node1": "1", "node2": "1", "node3": "0"}

    # On the hosts: env from configMapKeyRef/secretKeyRef/envFrom, the configMap volume served by the probe's URL.
    web_hosts = []
    for host in fleet.hosts:
        units = fleet.ssh(host, "systemctl list-units 'hf-k8s-web-*.http.service' --state=running --no-legend --plain | cut -d' ' -f1").stdout.split()
        for unit in units:
            web_hosts.append(host)
            env = fleet.ssh(host, f"tr '\\0' '\\n' < /proc/$(systemctl show -p MainPID --value {unit})/environ").stdout.splitlines()
            assert "GREETING=hello from a ConfigMap" in env
            assert "CFG_LOG_LEVEL=info" in env
            assert f"DB_PASSWORD={PLAIN_SECRET}" in env
            fetch = "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:18081/index.html').read().decode())"
            page = fleet.ssh(host, f'python3 -c "{fetch}"').stdout
            assert "served from a configMap volume" in page
    assert len(web_hosts) == 2
    for host in fleet.hosts:
        # Secret files: root only (0600 files in 0700 directories).
        modes = fleet.ssh(host, "stat -c '%n %a %U' /var/lib/hostfleet/secrets /var/lib/hostfleet/secrets/k8s-web-secret "
                                "/var/lib/hostfleet/secrets/k8s-web-secret/* /var/lib/hostfleet/secrets/k8s-web-secret.env").stdout.splitlines()
        assert modes == [
            "/var/lib/hostfleet/secrets 700 root",
            "/var/lib/hostfleet/secrets/k8s-web-secret 700 root",
            "/var/lib/hostfleet/secrets/k8s-web-secret/API_TOKEN 600 root",
            "/var/lib/hostfleet/secrets/k8s-web-secret/DB_PASSWORD 600 root",
            "/var/lib/hostfleet/secrets/k8s-web-secret.env 600 root",
        ]
        assert fleet.ssh(host, "cat /var/lib/hostfleet/secrets/k8s-web-secret/API_TOKEN").stdout == BASE64_SECRET_VALUE

    before = host_state(fleet)
    again = apply(fleet)
    assert again.rc == 0, again.stdout[-4000:]
    res = result_of(fleet, again)
    assert res["changed"] is False
    assert [o["name"] for o in res["objects"] if o["changed"]] == []
    assert host_state(fleet) == before


def test_secret_values_never_appear_in_the_output(fleet, tmp_path):
    # A changed Secret in check+diff mode at -vvv, without pipelining (modules are copied to the hosts), default callback.
    changed = tmp_path / "app"
    shutil.copytree(MANIFESTS, changed)
    secret = yaml.safe_load((changed / "01-secret.yaml").read_text())
    new_value = "n3w-Secret-Value-9999"
    secret["stringData"]["DB_PASSWORD"] = new_value
    (changed / "01-secret.yaml").write_text(yaml.safe_dump(secret))
    env = {"ANSIBLE_STDOUT_CALLBACK": "default", "ANSIBLE_PIPELINING": "False"}
    run = apply(fleet, src=changed, check=True, diff=True, extra_args=["-vvv"], env=env)
    output = run.stdout + run.stderr
    assert run.rc == 0, output[-4000:]
    assert "k8s-web-secret (requested)" in output and "DB_PASSWORD: (value not shown)" in output  # the diff was shown
    for value in SECRETS + [new_value, base64.b64encode(new_value.encode()).decode()]:
        assert value not in output
    # Check mode changed nothing on the hosts.
    for host in fleet.hosts:
        assert fleet.ssh(host, "cat /var/lib/hostfleet/secrets/k8s-web-secret/DB_PASSWORD").stdout == PLAIN_SECRET
    # A normal -vvv run too.
    run = apply(fleet, extra_args=["-vvv"], env={"ANSIBLE_STDOUT_CALLBACK": "default"})
    output = run.stdout + run.stderr
    assert run.rc == 0, output[-4000:]
    for value in SECRETS:
        assert value not in output


def test_check_diff_shows_the_plan_per_object_and_changes_nothing(fleet, tmp_path):
    changed = tmp_path / "app"
    shutil.copytree(MANIFESTS, changed)
    web = yaml.safe_load((changed / "10-web.yaml").read_text())
    web["spec"]["replicas"] = 3
    web["spec"]["template"]["metadata"]["annotations"]["version"] = "2"
    (changed / "10-web.yaml").write_text(yaml.safe_dump(web))
    before = host_state(fleet)
    run = apply(fleet, src=changed, check=True, diff=True)
    assert run.rc == 0, run.stdout[-4000:]
    res = result_of(fleet, run)
    objects = by_kind(res)
    assert objects[("Deployment", "k8s-web")]["changed"] is True
    assert objects[("Deployment", "k8s-web")]["plan"], "the rollout plan in waves"
    assert [o["name"] for o in res["objects"] if o["changed"]] == ["k8s-web"]
    diff_headers = [d.get("after_header", "") for d in res.get("diff", [])]
    assert any("10-web.yaml" in h and "Deployment template" in h for h in diff_headers)
    assert host_state(fleet) == before


def test_unsupported_fields_fail_before_any_host_is_touched(fleet, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.yaml").write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "k8s-refused-config"}, "data": {"A": "1"}}))
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "k8s-refused"},
        "spec": {
            "selector": {"matchLabels": {"app": "k8s-refused"}},
            "template": {
                "metadata": {"labels": {"app": "k8s-refused"}},
                "spec": {
                    "hostUsers": False,
                    "containers": [{"name": "main", "command": ["/bin/sleep", "infinity"]}],
                },
            },
        },
    }
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "k8s-refused-job"},
        "spec": {
            "manualSelector": True,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "command": ["/bin/true"], "stdin": True}],
                    "volumes": [{"name": "c", "configMap": {"name": "k8s-refused-config"}}],
                }
            },
        },
    }
    (bad / "workloads.yaml").write_text(yaml.safe_dump_all([deployment, job]))
    before = host_state(fleet)
    run = apply(fleet, src=bad)
    assert run.rc != 0
    res = result_of(fleet, run)
    assert res["changed"] is False
    errors = res["errors"]
    assert any("(Deployment k8s-refused): spec.template.spec.hostUsers: unknown field" in e for e in errors), errors
    assert any("(Job k8s-refused-job): spec.manualSelector: unknown field" in e for e in errors), errors
    # The Job's other problem is named in the same run, by the Job kind's own checks.
    assert any("(Job k8s-refused-job): spec.template.spec.containers[0].stdin: unknown field" in e for e in errors), errors
    assert len(errors) == 3, errors
    assert "nothing was applied" in res["msg"]
    assert host_state(fleet) == before
    for host in fleet.hosts:
        assert fleet.ssh(host, "ls /var/lib/hostfleet/configmaps/k8s-refused-config* 2>/dev/null | wc -l").stdout.strip() == "0"


def test_deleting_the_documents_removes_the_workloads_and_keeps_retained_volumes(fleet):
    run = apply(fleet, state="absent")
    assert run.rc == 0, run.stdout[-4000:]
    res = result_of(fleet, run)
    assert [o["kind"] for o in res["objects"]] == ["CronJob", "Job", "DaemonSet", "Deployment", "StatefulSet", "Secret", "ConfigMap"]
    assert all(o["changed"] for o in res["objects"])
    identities = {}
    for host in fleet.hosts:
        assert fleet.ssh(host, f"systemctl list-units '{WORKLOAD_UNITS}' --all --no-legend --plain | wc -l").stdout.strip() == "0"
        assert fleet.ssh(host, "ls /etc/systemd/system | grep -c '^hf-k8s-\\|^hfcron-k8s-' || true").stdout.strip() == "0"
        assert fleet.ssh(host, "ls /var/lib/hostfleet/configmaps /var/lib/hostfleet/secrets | grep -c k8s- || true").stdout.strip() == "0"
        for claim in fleet.ssh(host, "ls /var/lib/hostfleet/volumes 2>/dev/null | grep '^data-k8s-db-' || true").stdout.split():
            identities[claim] = fleet.ssh(host, f"cat /var/lib/hostfleet/volumes/{claim}/identity").stdout.strip()
    # Retain (the default whenDeleted): each identity's volume and its data stay.
    assert identities == {"data-k8s-db-0": "k8s-db-0", "data-k8s-db-1": "k8s-db-1"}
    again = apply(fleet, state="absent")
    assert again.rc == 0 and result_of(fleet, again)["changed"] is False


POD = """
apiVersion: v1
kind: Pod
metadata:
  name: k8s-lonely
  labels: {app: lonely}
spec:
  nodeName: node3
  serviceAccountName: default
  restartPolicy: Always
  terminationGracePeriodSeconds: 1
  containers:
    - name: main
      command: [/bin/sleep, infinity]
"""


def test_a_bare_pod_runs_on_its_node_and_goes_with_its_document(lab):
    task = {"name": "apply", "hostfleet.workloads.apply": {"definition": POD}, "run_once": True}
    run = lab.run([task], host_vars=LABELS)
    assert run.rc == 0, run.stdout[-4000:]
    (obj,) = result_of(lab, run)["objects"]
    assert (obj["kind"], obj["changed"], obj["nodes"], obj["ignored_fields"]) == ("Pod", True, ["node3"], ["spec.serviceAccountName"])
    running = {h: lab.ssh(h, "systemctl is-active hf-k8s-lonely.main.service", check=False).stdout.strip() for h in lab.hosts}
    assert running == {"node1": "inactive", "node2": "inactive", "node3": "active"}
    again = lab.run([task], host_vars=LABELS)
    assert again.rc == 0 and result_of(lab, again)["changed"] is False
    task["hostfleet.workloads.apply"]["state"] = "absent"
    gone = lab.run([task], host_vars=LABELS)
    assert gone.rc == 0 and result_of(lab, gone)["changed"] is True
    assert lab.ssh("node3", "systemctl is-active hf-k8s-lonely.main.service", check=False).stdout.strip() == "inactive"
    assert lab.ssh("node3", "test -e /var/lib/hostfleet/pods/k8s-lonely", check=False).returncode == 1


# Issue 11, items 8-10: hostile YAML is refused with the document named, in about the time of reading it, and
# nothing is touched on any host. A 7-level alias bomb (4.8 million values, 2.5 s and hundreds of MB to expand
# before the fix) in tolerations; tolerations: 5; 1,200 nested '[' (RecursionError before the fix); a Secret
# whose malformed line the parser's message used to echo.
HOSTILE_HEAD = """apiVersion: apps/v1
kind: Deployment
metadata: {name: k8s-hostile}
spec:
  selector: {matchLabels: {app: k8s-hostile}}
  template:
    metadata: {labels: {app: k8s-hostile}}
    spec:
      containers: [{name: main, command: [/bin/sleep, infinity]}]
"""
HOSTILE = {
    "bomb": HOSTILE_HEAD
    + "      tolerations:\n        - &a0 [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n"
    + "".join(f"        - &a{i} [{','.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 7)),
    "wrong-type": HOSTILE_HEAD + "      tolerations: 5\n      priorityClassName: [high]\n",
    "deep": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: k8s-deep}\ndata: {A: " + "[" * 1200 + "]" * 1200 + "}\n",
    "secret": "apiVersion: v1\nkind: Secret\nmetadata: {name: k8s-hostile-secret}\nstringData: {password: s3cr3t-Hostile-4711: hunter2-Hostile-0815}\n",
}
HOSTILE_SECRETS = ("s3cr3t-Hostile-4711", "hunter2-Hostile-0815")


def test_hostile_yaml_is_refused_naming_the_document_before_any_host_is_touched(lab, tmp_path):
    paths = {}
    for name, text in HOSTILE.items():
        paths[name] = tmp_path / f"{name}.yaml"
        paths[name].write_text(text)
    tasks = [
        {"name": name, "hostfleet.workloads.apply": {"src": str(path), "wait_timeout": 60}, "run_once": True, "ignore_errors": True}
        for name, path in paths.items()
    ]
    before = host_state(lab)
    run = lab.run(tasks, host_vars=LABELS)
    results = {name: run.result(name, lab.hosts[0]) for name in HOSTILE}
    assert all(r["failed"] and r["changed"] is False for r in results.values()), results
    assert re.fullmatch(r"\S+/bomb\.yaml#0: line \d+, column \d+: the document expands to more than 200000 values .*", results["bomb"]["msg"])
    assert results["wrong-type"]["errors"] == [
        f"{paths['wrong-type']}#0 (Deployment k8s-hostile): spec.template.spec.tolerations: must be a list, got an integer",
    ]
    assert results["deep"]["msg"] == f"{paths['deep']}#0: line 4, column 109: the document nests more than 100 levels deep (the limit per document)"
    assert results["secret"]["msg"].startswith(f"{paths['secret']}#0: not valid YAML: line 4, column 43: ")
    assert host_state(lab) == before
    listing = "ls /var/lib/hostfleet/configmaps /var/lib/hostfleet/secrets 2>/dev/null | grep -c 'k8s-deep\\|k8s-hostile' || true"
    assert [lab.ssh(host, listing).stdout.strip() for host in lab.hosts] == ["0"] * len(lab.hosts)
    # The Secret's values are nowhere in the output, at -vvv with the default callback.
    run = lab.run(tasks[-1:], extra_args=["-vvv"], env={"ANSIBLE_STDOUT_CALLBACK": "default"}, host_vars=LABELS)
    output = run.stdout + run.stderr
    assert "line 4, column 43" in output, output[-3000:]
    for value in HOSTILE_SECRETS:
        assert value not in output
