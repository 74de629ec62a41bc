#!/usr/bin/env python
"""How fast a killed container serves again: hostfleet's podman pods against podman's own systemd units.

- hostfleet: SAMPLES pods of one podman container each (`hostfleet.workloads.pod`), an HTTP server;
- baseline: what a podman user writes without this collection, the same container under the unit
  `podman generate systemd --new --restart-policy=always` makes (podman's recommended way on 4.3).

For each pod (a fresh one per sample: Kubernetes' crash-loop backoff, which hostfleet honours, delays
a second restart by 10 s), the container's process is killed with SIGKILL on the host and a
loop on the host polls its port; the figure is from the kill to the first HTTP answer. Prints
the medians, the ratio baseline / hostfleet, and the issue's target (back within 1 s).

A second set of hostfleet pods has conmon (the unit's main process) killed instead: the old container
keeps serving through its grace period (1 s here: SIGTERM, which busybox httpd as PID 1 ignores, then
SIGKILL), then the unit starts a new one. Figures from the kill: the old container's process gone, a
new process serving; never two at once.

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
CONMON_PORT = 18150
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

# On the host: SIGKILL conmon, then poll the container's server processes (by command line) and the port; prints
# "<old gone> <new serving> <most processes at once>" in seconds.
MEASURE_CONMON = """
import os, subprocess, sys, time, urllib.request
pid, port = int(sys.argv[1]), sys.argv[2]
def servers():
    return set(subprocess.run(['pgrep', '-f', '^/bin/httpd -f -p %s ' % port], capture_output=True, text=True).stdout.split())
old = servers()
t0 = time.time(); os.kill(pid, 9)
gone = back = None; most = len(old)
while back is None:
    now = servers(); most = max(most, len(now))
    if gone is None and not now & old: gone = time.time() - t0
    if now - old:
        try:
            urllib.request.urlopen('http://127.0.0.1:%s/' % port, timeout=0.2).read(); back = time.time() - t0
        except OSError:
            pass
    if time.time() - t0 > 60: sys.exit('not back within 60 s')
    time.sleep(0.02)
print(gone, back, most)
"""


def serve(port):
    return ["/bin/httpd", "-f", "-p", str(port), "-h", "/www"]


def ours_pods(image, prefix="killbench", port=OURS_PORT):
    return [
        {
            "name": f"{prefix}-{i}",
            "labels": {"app": "killbench"},
            "spec": {
                "terminationGracePeriodSeconds": 1,
                "containers": [{"name": "web", "image": image, "imagePullPolicy": "Never", "command": serve(port + i)}],
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


def conmon_pid(lab, pod):
    """The unit's main process: conmon."""
    return lab.ssh(HOST, f"systemctl show -p MainPID --value hf-{pod}.web.service").stdout.strip()


def kill_and_wait(lab, pid, port):
    script = f"python3 -c {shlex.quote(MEASURE)} {pid} {port}"
    return float(lab.ssh(HOST, script, timeout=90).stdout.strip())


def kill_conmon_and_wait(lab, pid, port):
    script = f"python3 -c {shlex.quote(MEASURE_CONMON)} {pid} {port}"
    gone, back, most = lab.ssh(HOST, script, timeout=90).stdout.split()
    return float(gone), float(back), int(most)


def wait_serving(lab, port):
    lab.ssh(HOST, f"for i in $(seq 100); do curl -sf -o /dev/null http://127.0.0.1:{port}/ && exit 0; sleep 0.1; done; exit 1")


def main():
    inventory = labctl.up(3)
    lab = Lab(Path(inventory), [HOST])
    image = build_image(HOST, "web", "bench", {"/www/index.html": "bench\n"})
    absent = [{"name": "remove", "hostfleet.workloads.pod": {"owner": "killbench", "state": "absent"}}]
    lab.run(absent, hosts=HOST)
    lab.ssh(HOST, BASELINE_CLEANUP)

    pods = ours_pods(image) + ours_pods(image, "killconmon", CONMON_PORT)
    run = lab.run([{"name": "pods", "hostfleet.workloads.pod": {"owner": "killbench", "pods": pods}}], hosts=HOST, timeout=600)
    if run.rc != 0:
        raise SystemExit(f"hostfleet pods failed:\n{run.stdout[-4000:]}")
    lab.ssh(HOST, baseline_setup(image), timeout=120)

    ours, baseline, conmon = [], [], []
    for i in range(SAMPLES):  # interleaved, so that load on the machine hits both sides alike
        wait_serving(lab, OURS_PORT + i)
        ours.append(kill_and_wait(lab, container_pid(lab, f"hf-killbench-{i}.web"), OURS_PORT + i))
        wait_serving(lab, BASELINE_PORT + i)
        baseline.append(kill_and_wait(lab, container_pid(lab, f"naive-web-{i}"), BASELINE_PORT + i))
        wait_serving(lab, CONMON_PORT + i)
        conmon.append(kill_conmon_and_wait(lab, conmon_pid(lab, f"killconmon-{i}"), CONMON_PORT + i))

    lab.run(absent, hosts=HOST)
    lab.ssh(HOST, BASELINE_CLEANUP)
    ours_median, baseline_median = statistics.median(ours), statistics.median(baseline)
    print(f"kill -9 -> serving again, {SAMPLES} samples on {HOST}:")
    print(f"  hostfleet (podman pod):                median {ours_median:.3f} s  max {max(ours):.3f} s  {[round(x, 3) for x in ours]}")
    print(f"  podman generate systemd --new:         median {baseline_median:.3f} s  max {max(baseline):.3f} s  {[round(x, 3) for x in baseline]}")
    print(f"  ratio baseline / hostfleet: {baseline_median / ours_median:.2f}x")
    print(f"  target: back within {TARGET:.0f} s -> {'met' if max(ours) <= TARGET else 'NOT met'} (worst sample {max(ours):.3f} s)")
    gone, back = [g for g, _b, _m in conmon], [b for _g, b, _m in conmon]
    print(f"kill -9 of conmon (the unit's main process), grace 1 s, {SAMPLES} samples on {HOST}:")
    print(f"  old container gone:                    median {statistics.median(gone):.3f} s  max {max(gone):.3f} s  {[round(x, 3) for x in gone]}")
    print(f"  new container serving:                 median {statistics.median(back):.3f} s  max {max(back):.3f} s  {[round(x, 3) for x in back]}")
    print(f"  most server processes at once: {max(m for _g, _b, m in conmon)} (1: the old and the new never overlap)")


if __name__ == "__main__":
    main()
