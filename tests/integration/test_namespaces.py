"""Namespaces on the lab's 3 real hosts (issue 14, item 4): systemd is the judge.

- Two Deployments `ns-web` in `default` and in `ns-prod` run side by side on the same hosts (one pod of each per
  host), each with its own units, records and lease; the prod pods see their Kubernetes name and namespace;
  workload_info shows each in its namespace; deleting prod's leaves default's running, not restarted.
- The upgrade: a Deployment whose pod records were written before namespaces (no "namespace" key) re-run with
  `namespace: default` explicitly: no unit restarts (InvocationID), its pods read as default's.
- A namespace that is no DNS-1123 label fails naming the field, and nothing changes on any host.
"""

from __future__ import annotations

import json

NAME = "ns-web"
PROD = "ns-prod"


def deployment(lab, namespace=None, state="present", name=NAME, check=True):
    args = {"name": name, "state": state, "wait_timeout": 180}
    if namespace is not None:
        args["namespace"] = namespace
    if state == "present":
        args.update(
            replicas=3,
            template={
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [
                        {
                            "name": "main",
                            # Records what the pod sees of itself, then sleeps.
                            "command": ["/bin/sh", "-c", 'echo "$POD_NAME $MY_NAMESPACE" > /tmp/hf-ns-$POD_NAME-$MY_NAMESPACE; exec /bin/sleep infinity'],
                            "env": [{"name": "MY_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}],
                            "readinessProbe": {"exec": {"command": ["/bin/true"]}, "periodSeconds": 1},
                        }
                    ],
                },
            },
        )
    run = lab.run([{"name": "deployment", "hostfleet.workloads.deployment": args, "run_once": True, "ignore_errors": not check}])
    if check:
        assert run.rc == 0, run.stdout[-3000:] + run.stderr[-2000:]
    return run.result("deployment", lab.hosts[0])


def units(lab, pattern):
    """{host: {unit: InvocationID}} of the loaded container services and probe timers matching ``pattern`` (a probe's
    own oneshot service gets a new InvocationID at every probe: left out)."""
    found = {}
    for host in lab.hosts:
        listed = lab.ssh(host, f"systemctl list-units --all --plain --no-legend '{pattern}' | awk '{{print $1}}'").stdout.split()
        listed = [u for u in listed if u.endswith((".main.service", ".timer"))]
        found[host] = {u: lab.ssh(host, f"systemctl show -p InvocationID --value {u}").stdout.strip() for u in listed}
    return found


def records(lab, host):
    """{pod: record} of this test's pods on ``host``."""
    text = lab.ssh(host, "for f in /var/lib/hostfleet/pods/*/pod.json; do cat \"$f\"; done", check=False).stdout
    found, decoder, at = {}, json.JSONDecoder(), 0
    while text[at:].strip():
        at += len(text[at:]) - len(text[at:].lstrip())
        record, at = decoder.raw_decode(text, at)
        if record["name"].startswith((f"{NAME}-", f"{PROD}_{NAME}-")):
            found[record["name"]] = record
    return found


def clean(lab):
    for namespace in (None, PROD):
        deployment(lab, namespace, state="absent")


def test_the_same_name_in_two_namespaces_is_two_deployments_side_by_side(lab):
    clean(lab)
    try:
        deployment(lab)
        prod = deployment(lab, PROD)
        assert prod["namespace"] == PROD
        default_units = units(lab, f"hf-{NAME}-*.main.service")
        prod_units = units(lab, f"hf-{PROD}_{NAME}-*.main.service")
        default_all = units(lab, f"hf-{NAME}-*")
        for host in lab.hosts:
            # Spread one per host each: both namespaces' pods on every host, under their own units.
            assert len(default_units[host]) == 1 and len(prod_units[host]) == 1, (default_units, prod_units)
            held = records(lab, host)
            prod_pods = [r for n, r in held.items() if n.startswith(f"{PROD}_")]
            default_pods = [r for n, r in held.items() if not n.startswith(f"{PROD}_")]
            assert [r["namespace"] for r in prod_pods] == [PROD] and [r["namespace"] for r in default_pods] == ["default"]
            assert prod_pods[0]["owner"] == {"kind": "Deployment", "name": f"{PROD}_{NAME}"}
            # The pod sees its Kubernetes name (no prefix) and its namespace.
            kube = prod_pods[0]["name"][len(PROD) + 1 :]
            seen = lab.ssh(host, f"cat /tmp/hf-ns-{kube}-{PROD}").stdout.split()
            assert seen == [kube, PROD]
            # Each has its own lease and owner record.
            lab.ssh(host, f"test -f /var/lib/hostfleet/owners/deployment.{PROD}_{NAME}.json && test -f /var/lib/hostfleet/owners/deployment.{NAME}.json")
            lab.ssh(host, f"test -f /var/lib/hostfleet/leases/deployment.{PROD}_{NAME}.json && test -f /var/lib/hostfleet/leases/deployment.{NAME}.json")
        run = lab.run([{"name": "info", "hostfleet.workloads.workload_info": {"namespace": PROD}, "run_once": True}])
        info = run.result("info", lab.hosts[0])
        assert [(w["kind"], w["namespace"], w["name"]) for w in info["workloads"]] == [("Deployment", PROD, NAME)]
        assert all(p["namespace"] == PROD and not p["name"].startswith(PROD) for p in info["pods"]) and len(info["pods"]) == 3
        everything = lab.run([{"name": "info", "hostfleet.workloads.workload_info": {"name": NAME}, "run_once": True}]).result("info", lab.hosts[0])
        assert sorted(w["namespace"] for w in everything["workloads"]) == ["default", PROD]
        assert everything["table"][0].split()[0] == "NAMESPACE"
        # Deleting prod's leaves default's, not restarted.
        gone = deployment(lab, PROD, state="absent")
        assert gone["changed"]
        assert units(lab, f"hf-{PROD}_{NAME}-*.main.service") == {h: {} for h in lab.hosts}
        assert units(lab, f"hf-{NAME}-*") == default_all
    finally:
        clean(lab)


def test_a_deployment_from_before_namespaces_is_not_restarted_by_namespace_default(lab):
    clean(lab)
    try:
        deployment(lab)
        before = units(lab, f"hf-{NAME}-*")
        assert sum(len(u) for u in before.values()) >= 3
        for host in lab.hosts:
            # As the node layer wrote them before namespaces: no "namespace" key in the pod records.
            lab.ssh(host, "for f in /var/lib/hostfleet/pods/ns-web-*/pod.json; do python3 -c 'import json,sys; p=sys.argv[1]; "
                          "r=json.load(open(p)); r.pop(\"namespace\", None); json.dump(r, open(p, \"w\"), indent=1, sort_keys=True)' $f; done")
        again = deployment(lab, "default")
        assert again["namespace"] == "default"
        assert units(lab, f"hf-{NAME}-*") == before
        # Nothing to do, so nothing was written: a record of before stays as it is, and reads as default's.
        assert {p["namespace"] for p in again["pods"]} == {"default"} and len(again["pods"]) == 3
    finally:
        clean(lab)


def test_a_namespace_that_is_no_dns_label_is_refused_naming_the_field_and_changes_nothing(lab):
    before = {h: lab.ssh(h, "ls /var/lib/hostfleet/pods /var/lib/hostfleet/owners 2>/dev/null | sort").stdout for h in lab.hosts}
    for bad in ("Prod", "prod_x", "-prod"):
        result = deployment(lab, bad, check=False)
        assert result["failed"] and result["field"] == "namespace" and "namespace" in result["msg"], result
    assert {h: lab.ssh(h, "ls /var/lib/hostfleet/pods /var/lib/hostfleet/owners 2>/dev/null | sort").stdout for h in lab.hosts} == before
