"""workload_info and pod_logs on the lab's 3 real hosts: data and table checked against systemctl on each host,
a process killed and its restart seen as events, logs read from the pod's node."""

from __future__ import annotations

import re
import time

import pytest

from lab.images import build_images

DEPLOYMENT = "wi-web"
DAEMONSET = "wi-agent"
TEMPLATE_SPEC = {"terminationGracePeriodSeconds": 1}


def deployment(lab, state="present"):
    args = {"name": DEPLOYMENT, "state": state}
    if state == "present":
        args.update(
            replicas=4,
            wait_timeout=180,
            template={
                "metadata": {"labels": {"app": DEPLOYMENT}},
                "spec": dict(
                    TEMPLATE_SPEC,
                    containers=[
                        {
                            "name": "main",
                            "command": ["/bin/sh", "-c", 'echo "hello from $POD_NAME"; exec /bin/sleep infinity'],
                            "readinessProbe": {"exec": {"command": ["/bin/true"]}, "periodSeconds": 1},
                        }
                    ],
                ),
            },
        )
    run = lab.run([{"name": "deployment", "hostfleet.workloads.deployment": args, "run_once": True}])
    assert run.rc == 0, run.stdout[-3000:]


def daemonset(lab, state="present"):
    args = {"name": DAEMONSET, "state": state}
    if state == "present":
        args.update(
            wait_timeout=180,
            template={
                "metadata": {"labels": {"app": DAEMONSET}},
                "spec": dict(
                    TEMPLATE_SPEC,
                    containers=[{"name": "ticker", "command": ["/bin/sh", "-c", 'i=0; while :; do i=$((i+1)); echo "tick $i"; /bin/sleep 0.5; done']}],
                ),
            },
        )
    run = lab.run([{"name": "daemonset", "hostfleet.workloads.daemonset": args, "run_once": True}])
    assert run.rc == 0, run.stdout[-3000:]


def info(lab, check=False, host_vars=None, **args):
    run = lab.run([{"name": "info", "hostfleet.workloads.workload_info": args, "run_once": True}], check=check, host_vars=host_vars)
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-2000:]
    return run.result("info", lab.hosts[0])


def logs(lab, **args):
    run = lab.run([{"name": "logs", "hostfleet.workloads.pod_logs": args, "run_once": True}])
    return run, run.result("logs", lab.hosts[0])


def systemd_units(lab):
    """{(node, pod): (active, sub)} of the Deployment's and DaemonSet's container units, as systemctl lists them on each host."""
    found = {}
    for host in lab.hosts:
        out = lab.ssh(host, "systemctl list-units --all --plain --no-legend --full 'hf-wi-*.service'").stdout
        for line in out.splitlines():
            fields = line.split()
            match = re.fullmatch(rf"hf-((?:{DEPLOYMENT}|{DAEMONSET})-[a-z0-9]+(?:-[a-z0-9]+)?)\.(main|ticker)\.service", fields[0]) if fields else None
            if match:
                found[(host, match.group(1))] = (fields[2], fields[3])
    return found


def n_restarts(lab, host, pod, container="main"):
    return int(lab.ssh(host, f"systemctl show -p NRestarts --value hf-{pod}.{container}.service").stdout.strip())


def rows(table, prefix):
    """The table's rows whose first cell starts with ``prefix``, split into cells (no cell holds spaces there)."""
    return {line.split()[0]: line.split() for line in table if line.startswith(prefix)}


@pytest.fixture(scope="module")
def fleet(lab):
    deployment(lab, "absent")
    daemonset(lab, "absent")
    deployment(lab)
    daemonset(lab)
    yield lab
    deployment(lab, "absent")
    daemonset(lab, "absent")


def test_data_and_table_agree_with_systemctl(fleet):
    result = info(fleet, kind=["Deployment", "DaemonSet"])
    assert result["changed"] is False and result["unreachable_nodes"] == {}
    units = systemd_units(fleet)
    workloads = {w["name"]: w for w in result["workloads"]}
    web, agent = workloads[DEPLOYMENT], workloads[DAEMONSET]

    # The same pods on the same nodes as systemd runs, in the same state.
    seen = {(p["node"], p["name"]): p for w in (web, agent) for p in w["pods"]}
    assert set(seen) == set(units)
    for key, pod in seen.items():
        container = pod["containers"][0]
        assert container["unit_state"] == "/".join(units[key]), key
        assert (pod["phase"] == "Running") == (units[key] == ("active", "running")), key

    running_web = [k for k in units if k[1].startswith(f"{DEPLOYMENT}-") and units[k] == ("active", "running")]
    assert (web["desired"], web["current"], web["ready"], web["up_to_date"], web["available"], web["revision"]) == (4, 4, 4, 4, 4, 1)
    assert len(running_web) == 4
    running_agent = sorted(k[0] for k in units if k[1].startswith(f"{DAEMONSET}-") and units[k] == ("active", "running"))
    assert running_agent == sorted(fleet.hosts)
    assert (agent["desired"], agent["current"], agent["ready"], agent["up_to_date"], agent["available"]) == (3, 3, 3, 3, 3)
    assert any(c["type"] == "Available" and c["status"] == "True" for c in web["conditions"])
    for pod in web["pods"]:
        assert pod["revision"] == 1 and pod["ready_containers"] == "1/1" and pod["status"] == "Running" and pod["restarts"] == 0

    # The table says the same: one row per workload with kubectl's columns, one row per pod with its node.
    table = result["table"]
    assert rows(table, "deployment/")[f"deployment/{DEPLOYMENT}"][1:5] == ["4/4", "4", "4", "1"]
    assert rows(table, "daemonset/")[f"daemonset/{DAEMONSET}"][1:7] == ["3", "3", "3", "3", "3", "1"]
    owners = {f"deployment/{DEPLOYMENT}", f"daemonset/{DAEMONSET}"}
    pod_rows = {name: row for name, row in rows(table, "pod/").items() if row[-1] in owners}
    assert set(pod_rows) == {f"pod/{pod}" for _node, pod in units}
    for (node, pod), state in units.items():
        row = pod_rows[f"pod/{pod}"]
        # every pod was waited for (ready): systemd runs it, and the table says Running, never restarted
        assert state == ("active", "running") and row[2] == "Running" and row[1] == "1/1" and row[3] == "0" and row[5] == node
        assert row[7] == (f"deployment/{DEPLOYMENT}" if pod.startswith(f"{DEPLOYMENT}-") else f"daemonset/{DAEMONSET}")


def test_selection_and_check_mode(fleet):
    by_name = info(fleet, name=DAEMONSET, check=True)
    assert [(w["kind"], w["name"]) for w in by_name["workloads"]] == [("DaemonSet", DAEMONSET)]
    assert by_name["changed"] is False
    by_labels = info(fleet, selector={"matchLabels": {"app": DEPLOYMENT}})
    assert [(w["kind"], w["name"]) for w in by_labels["workloads"]] == [("Deployment", DEPLOYMENT)]
    one_node = info(fleet, nodes=fleet.hosts[0], kind=["DaemonSet"])
    assert [p["node"] for w in one_node["workloads"] for p in w["pods"]] == [fleet.hosts[0]]


def test_an_unreachable_node_is_reported_not_fatal(fleet):
    last = fleet.hosts[-1]
    result = info(fleet, host_vars={last: {"ansible_host": "10.77.254.254"}}, kind=["DaemonSet"])
    assert list(result["unreachable_nodes"]) == [last]
    agent = next(w for w in result["workloads"] if w["name"] == DAEMONSET)
    assert sorted(p["node"] for p in agent["pods"]) == sorted(fleet.hosts[:-1])
    assert any(line.startswith(f"UNREACHABLE NODE {last}:") for line in result["table"])


def test_killed_process_shows_as_killed_then_restarted(fleet):
    before = info(fleet, name=DEPLOYMENT)
    victim = before["workloads"][0]["pods"][0]
    node, pod = victim["node"], victim["name"]
    fleet.ssh(node, f"systemctl kill -s KILL hf-{pod}.main.service")
    # Wait (no time limit asserted) until systemd has restarted it: its restart counter moves and it runs again.
    deadline = time.time() + 120
    while time.time() < deadline:
        if n_restarts(fleet, node, pod) >= 1 and systemd_units(fleet).get((node, pod)) == ("active", "running"):
            break
        time.sleep(0.5)
    assert n_restarts(fleet, node, pod) == 1

    result = info(fleet, name=DEPLOYMENT, events=True, events_since="30m")
    pod_now = next(p for p in result["workloads"][0]["pods"] if p["name"] == pod)
    assert pod_now["restarts"] == n_restarts(fleet, node, pod) == 1 and pod_now["node"] == node
    assert rows(result["table"], "pod/")[f"pod/{pod}"][3] == "1"

    # this pod's events (a pod of the same name from an earlier run on a kept lab had its own)
    mine = [e for e in result["events"] if e["pod"] == pod and e["timestamp"] >= pod_now["created_at"]]
    assert [e["timestamp"] for e in result["events"]] == sorted(e["timestamp"] for e in result["events"])
    # (A probe that runs between the kill and the restart may report Unhealthy: legitimate, and not what is checked.)
    mine = [e for e in mine if e["reason"] != "Unhealthy"]
    reasons = [e["reason"] for e in mine]
    assert reasons[0] == "SuccessfulCreate" and mine[0]["owner"] == f"Deployment/{DEPLOYMENT}"
    killed = reasons.index("Killed")
    assert reasons[killed:killed + 3] == ["Killed", "Restarted", "Started"]
    assert mine[killed + 1]["count"] == 1 and all(e["node"] == node for e in mine)
    assert "SIGKILL" in mine[killed]["message"]
    # Every pod was created by a step the nodes logged; the table lists the events too.
    created = {e["pod"] for e in result["events"] if e["reason"] == "SuccessfulCreate"}
    assert {p["name"] for p in result["workloads"][0]["pods"]} <= created
    assert any(e["reason"] == "RolloutStep" and e["object"] == f"deployment/{DEPLOYMENT}" for e in result["events"])
    assert any(line.split()[1:4] == ["Warning", "Killed", f"pod/{pod}"] for line in result["table"])


def test_logs_of_a_pod_from_its_node(fleet):
    units = systemd_units(fleet)
    node, pod = next(k for k in sorted(units) if k[1].startswith(f"{DEPLOYMENT}-"))
    run, result = logs(fleet, pod=pod)
    assert run.rc == 0, run.stdout[-3000:]
    assert result["node"] == node and result["containers"] == ["main"]
    assert f"hello from {pod}" in result["messages"]
    assert all(line["container"] == "main" and line["node"] == node for line in result["lines"])
    # systemd's own lines and the hook's are not the container's output
    assert not any("hf-" in m or m.startswith(("Started ", "Starting ")) for m in result["messages"])

    agent_node, agent = next(k for k in sorted(units) if k[1].startswith(f"{DAEMONSET}-"))
    run, result = logs(fleet, pod=agent, container="ticker", tail=1, follow=8)
    assert run.rc == 0, run.stdout[-3000:]
    ticks = [int(m.split()[1]) for m in result["messages"]]
    assert result["node"] == agent_node and len(ticks) >= 2
    # the tail's one line, then what was written while following: consecutive ticks, in order
    assert ticks == list(range(ticks[0], ticks[0] + len(ticks)))
    stamps = [line["timestamp"] for line in result["lines"]]
    assert stamps == sorted(stamps)

    run, result = logs(fleet, pod=agent, since="1h", tail=3)
    assert run.rc == 0 and len(result["messages"]) == 3

    run, result = logs(fleet, pod="wi-no-such-pod")
    assert run.rc != 0 and "no reachable node runs pod wi-no-such-pod" in result["msg"]
    run, result = logs(fleet, pod=agent, container="nope")
    assert run.rc != 0 and "has no container 'nope'" in result["msg"]


def test_logs_of_an_image_container_are_its_output_only(fleet):
    image = build_images(fleet.hosts, "wi", "v1", {})
    spec = {"name": "wi-img", "replicas": 1, "nodes": fleet.hosts[1], "wait_timeout": 180}
    template = {
        "metadata": {"labels": {"app": "wi-img"}},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {"name": "main", "image": image, "imagePullPolicy": "Never", "command": ["/bin/sh", "-c", "echo hello from image; exec sleep 1000"]}
            ],
        },
    }
    absent = [{"name": "remove", "hostfleet.workloads.deployment": {"name": "wi-img", "state": "absent"}, "run_once": True}]
    fleet.run(absent)
    try:
        run = fleet.run([{"name": "deploy", "hostfleet.workloads.deployment": dict(spec, template=template), "run_once": True}])
        assert run.rc == 0, run.stdout[-3000:]
        pod = run.result("deploy", fleet.hosts[0])["pods"][0]["name"]
        run, result = logs(fleet, pod=pod)
        assert run.rc == 0, run.stdout[-3000:]
        # podman's own lines (events, the container ID of `run -d`) are not the container's output
        assert result["node"] == fleet.hosts[1] and result["messages"] == ["hello from image"]
    finally:
        fleet.run(absent)


def test_a_jobs_counts_and_indexes_are_the_job_tasks(lab):
    """An Indexed Job whose index 1 fails for good: workload_info shows the counts and indexes the job task returned."""
    name = "wi-job"
    script = '[ "$JOB_COMPLETION_INDEX" = 1 ] && exit 3; exit 0'
    spec = {
        "completions": 3,
        "parallelism": 3,
        "completionMode": "Indexed",
        "backoffLimitPerIndex": 0,
        "wait_timeout": 120,
        "template": {"spec": dict(TEMPLATE_SPEC, restartPolicy="Never", containers=[{"name": "main", "command": ["/bin/sh", "-c", script]}])},
    }
    absent = [{"name": "remove", "hostfleet.workloads.job": {"name": name, "state": "absent"}, "run_once": True}]
    lab.run(absent)
    try:
        run = lab.run([{"name": "job", "hostfleet.workloads.job": dict(spec, name=name), "run_once": True, "ignore_errors": True}])
        status = run.result("job", lab.hosts[0])["status"]
        assert (status["succeeded"], status["failed"], status["completedIndexes"], status["failedIndexes"]) == (2, 1, "0,2", "1"), status
        (job,) = info(lab, kind=["Job"], name=name)["workloads"]
        for key in ("active", "succeeded", "failed", "completedIndexes", "failedIndexes", "startTime", "completionTime"):
            assert job["status"][key] == status[key], (key, job["status"], status)
        assert job["status"]["status"] == "Failed" and job["desired"] == 3
    finally:
        lab.run(absent)
