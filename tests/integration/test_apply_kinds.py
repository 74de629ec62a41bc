"""hostfleet.workloads.apply on the lab (issue 14, item 5): real multi-document manifests with kinds that mean nothing
on hosts, and one object's failure that does not stop the independent objects after it.

- The kubernetes.io StatefulSet example (a headless Service `nginx` + StatefulSet `web`), unchanged: it applies
  (the Service after the StatefulSet, its endpoints the StatefulSet's pods) and deletes (the Service first), also
  with `unsupported_kinds: error` (nothing in it is unsupported now).
- A file with a Deployment, a Job that fails and a CronJob: the Deployment and the CronJob are applied, the task
  fails at the end naming the Job; applied again, the Job that had already failed is reported, the task succeeds.
"""

from __future__ import annotations

import shlex

import pytest

from lab.images import build_images

# https://kubernetes.io/docs/concepts/workloads/controllers/statefulset/#components, as published.
STATEFULSET_EXAMPLE = """\
apiVersion: v1
kind: Service
metadata:
  name: nginx
  labels:
    app: nginx
spec:
  ports:
  - port: 80
    name: web
  clusterIP: None
  selector:
    app: nginx
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  selector:
    matchLabels:
      app: nginx # has to match .spec.template.metadata.labels
  serviceName: "nginx"
  replicas: 3 # by default is 1
  minReadySeconds: 10 # by default is 0
  template:
    metadata:
      labels:
        app: nginx # has to match .spec.selector.matchLabels
    spec:
      terminationGracePeriodSeconds: 10
      containers:
      - name: nginx
        image: registry.k8s.io/nginx-slim:0.24
        ports:
        - containerPort: 80
          name: web
        volumeMounts:
        - name: www
          mountPath: /usr/share/nginx/html
  volumeClaimTemplates:
  - metadata:
      name: www
    spec:
      accessModes: [ "ReadWriteOnce" ]
      storageClassName: "my-storage-class"
      resources:
        requests:
          storage: 1Gi
"""
NGINX = "registry.k8s.io/nginx-slim:0.24"
# No registry is reachable from the lab: a busybox httpd on port 80 stands in for nginx under the example's reference.
STAND_IN = f"""set -eu
podman rm -f hf-nginx-stand-in >/dev/null 2>&1 || true
podman create --name hf-nginx-stand-in --pull=never localhost/nginx-stand-in:0.24 true >/dev/null
podman commit --quiet --change 'CMD ["/bin/httpd", "-f", "-p", "80", "-h", "/usr/share/nginx/html"]' hf-nginx-stand-in {NGINX} >/dev/null
podman rm hf-nginx-stand-in >/dev/null
"""

MIXED = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: k8s-mixed-web}
spec:
  replicas: 1
  selector: {matchLabels: {app: k8s-mixed-web}}
  template:
    metadata: {labels: {app: k8s-mixed-web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers: [{name: main, command: [/bin/sleep, infinity]}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: k8s-mixed-fails}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, command: [/bin/false]}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: k8s-mixed-report}
spec:
  schedule: "0 3 1 1 *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: main, command: [/bin/true]}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: k8s-mixed-web}
spec:
  minAvailable: 1
  selector: {matchLabels: {app: k8s-mixed-web}}
"""


def apply(lab, src, state="present", **options):
    task = {"name": "apply", "hostfleet.workloads.apply": {"src": str(src), "state": state, "wait_timeout": 240, **options}, "run_once": True}
    run = lab.run([task])
    return run, run.result("apply", lab.hosts[0])


def units(lab, pattern):
    return {h: lab.ssh(h, f"systemctl list-units '{pattern}' --all --no-legend --plain | wc -l").stdout.strip() for h in lab.hosts}


@pytest.mark.slow
def test_the_kubernetes_io_statefulset_example_applies_and_deletes_unchanged(lab, tmp_path):
    build_images(lab.hosts, "nginx-stand-in", "0.24")
    for host in lab.hosts:
        lab.ssh(host, f"sh -c {shlex.quote(STAND_IN)}", timeout=60)
    src = tmp_path / "web.yaml"
    src.write_text(STATEFULSET_EXAMPLE)
    apply(lab, src, state="absent")  # what an interrupted earlier run left
    for host in lab.hosts:
        lab.ssh(host, "rm -rf /var/lib/hostfleet/volumes/www-web-*")

    run, res = apply(lab, src, unsupported_kinds="error")
    assert run.rc == 0, run.stdout[-4000:]
    assert res["not_applied"] == []
    web, service = res["objects"]
    assert (web["kind"], web["name"], web["status"]["readyReplicas"]) == ("StatefulSet", "web", 3)
    # The Service after the StatefulSet: its endpoints are the pods this run started, ready.
    assert (service["kind"], service["name"], service["changed"], service["cluster_ip"]) == ("Service", "nginx", True, None)
    assert sorted((e["pod"], e["ready"], e["ports"]) for e in service["endpoints"]) == [(f"web-{i}", True, {"web": 80}) for i in range(3)]
    files = {h: lab.ssh(h, "cat /var/lib/hostfleet/network/services/default.nginx.json").stdout for h in lab.hosts}
    assert len(set(files.values())) == 1 and '"cluster_ip": null' in files[lab.hosts[0]], files
    # One identity per host (port 80 on the host's network), each serving from its own volume.
    serving = {h: lab.ssh(h, "systemctl is-active hf-web-*.nginx.service", check=False).stdout.split() for h in lab.hosts}
    assert sorted(s for states in serving.values() for s in states) == ["active"] * 3
    assert all(states == ["active"] for states in serving.values()), serving

    run, res = apply(lab, src, state="absent")
    assert run.rc == 0, run.stdout[-4000:]
    assert res["not_applied"] == []
    assert [(o["kind"], o["changed"]) for o in res["objects"]] == [("Service", True), ("StatefulSet", True)]
    assert all(lab.ssh(h, "test -e /var/lib/hostfleet/network/services/default.nginx.json", check=False).returncode == 1 for h in lab.hosts)
    assert units(lab, "hf-web-*") == dict.fromkeys(lab.hosts, "0")
    # Retain (the default): the identities' volumes stay; this test removes them.
    volumes = sorted(v for h in lab.hosts for v in lab.ssh(h, "ls /var/lib/hostfleet/volumes | grep '^www-web-' || true").stdout.split())
    assert volumes == ["www-web-0", "www-web-1", "www-web-2"]
    for host in lab.hosts:
        lab.ssh(host, f"rm -rf /var/lib/hostfleet/volumes/www-web-*; podman rmi {NGINX} localhost/nginx-stand-in:0.24 >/dev/null 2>&1 || true")


def test_a_failing_job_does_not_stop_the_independent_objects_and_an_already_failed_job_is_reported(lab, tmp_path):
    src = tmp_path / "mixed.yaml"
    src.write_text(MIXED)
    try:
        run, res = apply(lab, src)
        assert run.rc != 0
        objects = {o["kind"]: o for o in res["objects"]}
        assert [o["kind"] for o in res["objects"]] == ["Deployment", "Job", "CronJob"]
        # The Job failed; the CronJob after it (independent) was applied all the same; the task names the Job.
        assert objects["Job"]["failed"] is True and objects["Job"]["status"]["failed"] == 1
        assert objects["Deployment"]["failed"] is False and objects["Deployment"]["status"]["readyReplicas"] == 1
        assert objects["CronJob"]["failed"] is False and objects["CronJob"]["changed"] is True and "skipped" not in objects["CronJob"]
        assert res["msg"].startswith(f"1 object failed: Job k8s-mixed-fails ({src}#1): "), res["msg"]
        assert res["not_applied"] == [
            {"kind": "PodDisruptionBudget", "name": "k8s-mixed-web", "namespace": "default", "source": f"{src}#3", "reason": res["not_applied"][0]["reason"]}
        ]
        assert units(lab, "hf-k8s-mixed-web-*.main.service") != dict.fromkeys(lab.hosts, "0")
        timers = sum(int(lab.ssh(h, "ls /etc/systemd/system | grep -c '^hfcron-k8s-mixed-report' || true").stdout.strip()) for h in lab.hosts)
        assert timers >= 1

        # Again: the Job had already failed before this run; it is reported, not run again, and the task succeeds.
        again, res = apply(lab, src)
        assert again.rc == 0, again.stdout[-4000:]
        job = next(o for o in res["objects"] if o["kind"] == "Job")
        assert job["already_failed"] is True and job["failed"] is False and job["msg"].startswith("had already failed before this run")
        assert job["status"]["failed"] == 1  # no new pod ran
        assert res["changed"] is False
        assert any("Job k8s-mixed-fails" in w and "had already failed" in w for w in res.get("warnings", [])), res.get("warnings")
    finally:
        gone, res = apply(lab, src, state="absent")
        assert gone.rc == 0, gone.stdout[-4000:]
    assert [o["kind"] for o in res["objects"]] == ["CronJob", "Job", "Deployment"]
    assert units(lab, "hf-k8s-mixed-*") == dict.fromkeys(lab.hosts, "0")


DEPENDENT = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: k8s-dep-config}
immutable: true
data: {MODE: "MODE_VALUE"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: k8s-dep-reader}
spec:
  replicas: 1
  selector: {matchLabels: {app: k8s-dep-reader}}
  template:
    metadata: {labels: {app: k8s-dep-reader}, annotations: {mode: "MODE_VALUE"}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: main
          command: [/bin/sleep, infinity]
          envFrom: [{configMapRef: {name: k8s-dep-config}}]
"""
INDEPENDENT = """\
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: k8s-dep-other}
spec:
  replicas: 1
  selector: {matchLabels: {app: k8s-dep-other}}
  template:
    metadata: {labels: {app: k8s-dep-other}}
    spec:
      terminationGracePeriodSeconds: 1
      containers: [{name: main, command: [/bin/sleep, infinity]}]
"""


def test_a_failed_configmap_skips_only_the_workload_that_reads_it(lab, tmp_path):
    first, second = tmp_path / "first.yaml", tmp_path / "second.yaml"
    first.write_text(DEPENDENT.replace("MODE_VALUE", "one"))
    # An immutable ConfigMap's data changed: its node module refuses it on every host (as Kubernetes would).
    second.write_text(DEPENDENT.replace("MODE_VALUE", "two") + INDEPENDENT)
    try:
        run, res = apply(lab, first)
        assert run.rc == 0, run.stdout[-4000:]
        run, res = apply(lab, second)
        assert run.rc != 0
        objects = {o["name"]: o for o in res["objects"]}
        assert objects["k8s-dep-config"]["failed"] is True and "immutable" in objects["k8s-dep-config"]["msg"]
        # The reader is not rolled to a template whose data did not arrive; the independent Deployment is applied.
        assert objects["k8s-dep-reader"]["skipped"] is True
        assert objects["k8s-dep-reader"]["msg"] == "not applied: it reads ConfigMap k8s-dep-config, which failed or was not applied"
        assert objects["k8s-dep-other"]["changed"] is True and objects["k8s-dep-other"]["status"]["readyReplicas"] == 1
        assert res["msg"].startswith(f"1 object failed: ConfigMap k8s-dep-config ({second}#0): ")
        assert res["msg"].endswith("(not applied, as they depend on them: Deployment k8s-dep-reader)")
    finally:
        gone, res = apply(lab, second, state="absent")
        assert gone.rc == 0, gone.stdout[-4000:]
    assert units(lab, "hf-k8s-dep-*") == dict.fromkeys(lab.hosts, "0")


CLAIMED = """\
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: k8s-claim-data, namespace: shop}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: standard
  resources: {requests: {storage: 1Gi}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: k8s-claim-writer, namespace: shop}
spec:
  replicas: 1
  selector: {matchLabels: {app: k8s-claim-writer}}
  template:
    metadata: {labels: {app: k8s-claim-writer}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: main
          command: [/bin/sh, -c, "echo kept > /data/note && exec sleep infinity"]
          volumeMounts: [{name: data, mountPath: /data}]
      volumes: [{name: data, persistentVolumeClaim: {claimName: k8s-claim-data}}]
"""


def test_a_standalone_claim_binds_its_pods_volume_and_deleting_it_keeps_the_data(lab, tmp_path):
    src = tmp_path / "claimed.yaml"
    src.write_text(CLAIMED)
    # The claim and its pods are in namespace shop: the volume is the namespace's (<namespace>_<claim> on the nodes).
    volume = "/var/lib/hostfleet/volumes/shop_k8s-claim-data"
    try:
        run, res = apply(lab, src)
        assert run.rc == 0, run.stdout[-4000:]
        claim, writer = res["objects"]
        used = ["Deployment shop/k8s-claim-writer"]
        assert (claim["kind"], claim["changed"], claim["volume"], claim["used_by"]) == ("PersistentVolumeClaim", False, volume, used)
        assert claim["ignored_fields"] == ["spec.accessModes", "spec.storageClassName", "spec.resources"]
        assert writer["status"]["readyReplicas"] == 1
        notes = {h: lab.ssh(h, f"cat {volume}/note 2>/dev/null || true").stdout.strip() for h in lab.hosts}
        assert sorted(notes.values()) == ["", "", "kept"], notes

        run, res = apply(lab, src, state="absent")
        assert run.rc == 0, run.stdout[-4000:]
        writer, claim = res["objects"]
        assert (writer["kind"], writer["changed"]) == ("Deployment", True)
        assert (claim["kind"], claim["changed"]) == ("PersistentVolumeClaim", False) and claim["msg"].startswith("kept")
        assert units(lab, "hf-shop_k8s-claim-*") == dict.fromkeys(lab.hosts, "0")
        assert {h: lab.ssh(h, f"cat {volume}/note 2>/dev/null || true").stdout.strip() for h in lab.hosts} == notes
    finally:
        apply(lab, src, state="absent")
        for host in lab.hosts:
            lab.ssh(host, f"rm -rf {volume}")
