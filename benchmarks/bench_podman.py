#!/usr/bin/env python
"""How fast a killed container serves again: hostfleet's podman pods against podman's own systemd units.

- hostfleet: SAMPLES pods of one podman container each (`hostfleet.workloads.pod`), an HTTP server;
- baseline: what a podman user writes without this collection, the same container under the unit
  `podman generate systemd --new --restart-policy=always` makes (podman's recommended way on 4.3).

For each pod (a fresh one per sample: Kubernetes' crash-loop backoff, which hostfleet honours, delays
a second restart by 10 s), the container's process is killed with SIGKILL on the host and a
loop on the host polls its port; the figure is from the kill to the first HTTP answer. Prints
the medians, the ratio baseline / hostfleet, and the issue's target (back within 1 s).

Run: scripts/bench podman   (about a minute; leaves the lab up)
"""

from __future__ import annotations

import shlex
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import conftest  # noqa: E402,F401  # pylint: disable=unused-import
from integration.playbook import Lab  # noqa: E402
from lab import labctl  # noqa: E402
from lab.images import build_image  # noqa: E402

SAMPLES = 5
HOST = "node1"
OURS_PORT = 18100
BASELINE_PORT = 18200
TARGET = 1.0

# On the host: SIGKILL the PID, then poll the port until it answers; prints the seconds in between.
MEASURE = """
import os, sys, time, urllib.request
pid, port = int(sys.argv[1]), sys.argv[2]
t0 = time.time(); os.kill(pid, 9); time.sleep(0.02)
while True:
    try:
        urllib.request.urlopen('http://127.0.0.1:%s/' % port, timeout=0.2).read(); break
    except OSError:
        time.sleep(0.01)
    if time.time() - t0 > 60: sys.exit('not back within 60 s')
print(time.time() - t0)
"""


def serve(port):
    return ["/bin/httpd", "-f", "-p", str(port), "-h", "/www"]


def ours_pods(image):
    return [
        {
            "name": f"killbench-{i}",
            "labels": {"app": "killbench"},
            "spec": {
                "terminationGracePeriodSeconds": 1,
                "containers": [{"name": "web", "image": image, "imagePullPolicy": "Never", "command": serve(OURS_PORT + i)}],
            },
        }
        for i in range(SAMPLES)
    ]


def baseline_setup(image):
    """podman's own units, one per sample, started and serving."""
    lines = []
    for i in range(SAMPLES):
        name = f"naive-web-{i}"
        create = ["podman", "create", "--name", name, "--network=host", "--entrypoint=/bin/httpd", image] + serve(BASELINE_PORT + i)[1:]
        lines += [
            f"podman rm -f --ignore {name} >/dev/null",
            shlex.join(create) + " >/dev/null",
            f"(cd /etc/systemd/system && podman generate systemd --new --files --name --restart-policy=always {name} >/dev/null)",
            f"podman rm -f {name} >/dev/null",
        ]
    lines.append("systemctl daemon-reload")
    lines.append("systemctl start " + " ".join(f"container-naive-web-{i}.service" for i in range(SAMPLES)))
    return "set -e\n" + "\n".join(lines)


BASELINE_CLEANUP = (
    "units=$(cd /etc/systemd/system && ls container-naive-web-*.service 2>/dev/null || true); "
    "[ -z \"$units\" ] || systemctl stop $units; rm -f /etc/systemd/system/container-naive-web-*.service; systemctl daemon-reload"
)


def container_pid(lab, name):
    return lab.ssh(HOST, f"podman inspect --format '{{{{.State.Pid}}}}' {name}").stdout.strip()


def kill_and_wait(lab, pid, port):
    script = f"python3 -c {shlex.quote(MEASURE)} {pid} {port}"
    return float(lab.ssh(HOST, script, timeout=90).stdout.strip())


def wait_serving(lab, port):
    lab.ssh(HOST, f"for i in $(seq 100); do curl -sf -o /dev/null http://127.0.0.1:{port}/ && exit 0; sleep 0.1; done; exit 1")


def main():
    inventory = labctl.up(3)
    lab = Lab(Path(inventory), [HOST])
    image = build_image(HOST, "web", "bench", {"/www/index.html": "bench\n"})
    absent = [{"name": "remove", "hostfleet.workloads.pod": {"owner": "killbench", "state": "absent"}}]
    lab.run(absent, hosts=HOST)
    lab.ssh(HOST, BASELINE_CLEANUP)

    run = lab.run([{"name": "pods", "hostfleet.workloads.pod": {"owner": "killbench", "pods": ours_pods(image)}}], hosts=HOST, timeout=600)
    if run.rc != 0:
        raise SystemExit(f"hostfleet pods failed:\n{run.stdout[-4000:]}")
    lab.ssh(HOST, baseline_setup(image), timeout=120)

    ours, baseline = [], []
    for i in range(SAMPLES):  # interleaved, so that load on the machine hits both sides alike
        wait_serving(lab, OURS_PORT + i)
        ours.append(kill_and_wait(lab, container_pid(lab, f"hf-killbench-{i}.web"), OURS_PORT + i))
        wait_serving(lab, BASELINE_PORT + i)
        baseline.append(kill_and_wait(lab, container_pid(lab, f"naive-web-{i}"), BASELINE_PORT + i))

    lab.run(absent, hosts=HOST)
    lab.ssh(HOST, BASELINE_CLEANUP)
    ours_median, baseline_median = statistics.median(ours), statistics.median(baseline)
    print(f"kill -9 -> serving again, {SAMPLES} samples on {HOST}:")
    print(f"  hostfleet (podman pod):                median {ours_median:.3f} s  max {max(ours):.3f} s  {[round(x, 3) for x in ours]}")
    print(f"  podman generate systemd --new:         median {baseline_median:.3f} s  max {max(baseline):.3f} s  {[round(x, 3) for x in baseline]}")
    print(f"  ratio baseline / hostfleet: {baseline_median / ours_median:.2f}x")
    print(f"  target: back within {TARGET:.0f} s -> {'met' if max(ours) <= TARGET else 'NOT met'} (worst sample {max(ours):.3f} s)")


if __name__ == "__main__":
    main()
