"""Availability sampler for integration tests and benchmarks: how many pods of a workload serve, every 0.2 s.

Pods made with `http_template()` run a tiny HTTP server (host network) on the first free port of a small range and
answer every GET with their name, their VERSION and whether hostfleet marks them ready (the readiness file the node
layer writes, `/run/hostfleet/pods/<pod>/<container>/ready`). The sampler GETs every port of the range on every lab
host from the test process, in parallel, in a background thread: no ssh, no process on the hosts, and a host whose SSH
is blocked keeps being seen (its pods still serve), as a client would see it.

    with AvailabilitySampler(hosts, prefix="web-", floor=5, ceiling=7) as sampler:
        ... run the play, stop a host ...
    report = sampler.report
    report.assert_budget()          # ready >= floor and serving <= ceiling at every sample
    report.longest_below_floor      # seconds
    report.longest_outage           # seconds with no pod ready

`serving` counts pods that answer (their process is up: what counts against maxSurge), `ready` those that answer and
are ready (what counts as available against maxUnavailable). The floor (replicas - maxUnavailable) is checked on
`ready`, the ceiling (replicas + maxSurge) on `serving`.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

PORT_BASE = 18080
PORT_COUNT = 8

# The pod's server: the first free port of [base, base + count), ready once /tmp/ready-<pod> exists (an exec
# readinessProbe tests it; the server creates it `ready_after` seconds after it listens, never when `broken`).
SERVER = r"""
import glob, http.server, json, os, sys, threading
base, count, ready_after = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
pod, version = os.environ["POD_NAME"], os.environ.get("VERSION", "")
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ready = bool(glob.glob("/run/hostfleet/pods/" + pod + "/*/ready"))
        body = json.dumps({"pod": pod, "version": version, "ready": ready}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
for port in range(base, base + count):
    try:
        server = http.server.HTTPServer(("0.0.0.0", port), Handler)
        break
    except OSError:
        continue
else:
    sys.exit("no free port in %d..%d" % (base, base + count - 1))
print("serving on", port, flush=True)
if ready_after >= 0:
    threading.Timer(ready_after, lambda: open("/tmp/ready-" + pod, "w").close()).start()
server.serve_forever()
"""


def http_template(app, version="v1", ready_after=0.5, broken=False, port_base=PORT_BASE, port_count=PORT_COUNT, grace=2, **spec):
    """A pod template whose pods the sampler can see: labels {app: <app>}, one container `main`, an exec readinessProbe."""
    pod_spec = {
        "terminationGracePeriodSeconds": grace,
        "containers": [
            {
                "name": "main",
                "command": ["/usr/bin/python3", "-u", "-c", SERVER, str(port_base), str(port_count), str(-1 if broken else ready_after)],
                "env": [{"name": "VERSION", "value": version}],
                "readinessProbe": {"exec": {"command": ["/bin/sh", "-c", "test -e /tmp/ready-$POD_NAME"]}, "periodSeconds": 1},
            }
        ],
    }
    pod_spec.update(spec)
    return {"metadata": {"labels": {"app": app}}, "spec": pod_spec}


@dataclass(frozen=True)
class Sample:
    t: float  # seconds since the sampler started
    pods: dict  # pod name -> {"node", "version", "ready"}

    @property
    def serving(self):
        return len(self.pods)

    @property
    def ready(self):
        return sum(1 for pod in self.pods.values() if pod["ready"])

    def versions(self, ready_only=False):
        counts = {}
        for pod in self.pods.values():
            if pod["ready"] or not ready_only:
                counts[pod["version"]] = counts.get(pod["version"], 0) + 1
        return counts


def _longest(samples, predicate, end):
    """Longest time the predicate held: from the first sample where it held to the next sample where it did not."""
    longest, since = 0.0, None
    for sample in samples:
        if predicate(sample):
            since = sample.t if since is None else since
        elif since is not None:
            longest, since = max(longest, sample.t - since), None
    if since is not None:
        longest = max(longest, end - since)
    return longest


@dataclass
class Report:
    samples: list
    floor: int | None = None
    ceiling: int | None = None
    duration: float = 0.0
    below_floor: list = field(default_factory=list)  # samples with ready < floor
    above_ceiling: list = field(default_factory=list)  # samples with serving > ceiling

    def __post_init__(self):
        if self.floor is not None:
            self.below_floor = [s for s in self.samples if s.ready < self.floor]
        if self.ceiling is not None:
            self.above_ceiling = [s for s in self.samples if s.serving > self.ceiling]

    @property
    def violations(self):
        return len(self.below_floor) + len(self.above_ceiling)

    @property
    def min_ready(self):
        return min((s.ready for s in self.samples), default=0)

    @property
    def min_serving(self):
        return min((s.serving for s in self.samples), default=0)

    @property
    def max_serving(self):
        return max((s.serving for s in self.samples), default=0)

    @property
    def longest_below_floor(self):
        """Seconds, the longest stretch with fewer ready pods than the floor (0 without a floor)."""
        if self.floor is None:
            return 0.0
        return _longest(self.samples, lambda s: s.ready < self.floor, self.duration)

    @property
    def longest_outage(self):
        """Seconds, the longest stretch with no pod ready (no client would be served)."""
        return _longest(self.samples, lambda s: s.ready == 0, self.duration)

    def first(self, predicate):
        """The first sample for which the predicate holds, or None."""
        return next((s for s in self.samples if predicate(s)), None)

    def summary(self):
        def brief(samples):
            return [(round(s.t, 1), s.ready, s.serving) for s in samples[:10]]

        return (
            f"{len(self.samples)} samples over {self.duration:.1f} s; ready min {self.min_ready}, serving min {self.min_serving} "
            f"max {self.max_serving}; floor {self.floor}: {len(self.below_floor)} below (longest {self.longest_below_floor:.1f} s) "
            f"{brief(self.below_floor)}; ceiling {self.ceiling}: {len(self.above_ceiling)} above {brief(self.above_ceiling)}; "
            f"longest outage {self.longest_outage:.1f} s"
        )

    def assert_budget(self, min_samples=5):
        assert len(self.samples) >= min_samples, f"too few samples to judge: {self.summary()}"
        assert not self.violations, f"budget violated: {self.summary()}"


class AvailabilitySampler:
    """Samples, every `interval` seconds in a background thread, which pods (by name prefix) answer on the hosts.

    `hosts` is {name: address} (e.g. `dict(labctl.hosts())`), `prefix` selects the workload's pods by name
    (`"<name>-"`). Use as a context manager, or start()/stop(); stop() returns the Report, also kept as `.report`.
    """

    def __init__(self, hosts, prefix="", floor=None, ceiling=None, interval=0.2, timeout=0.3, port_base=PORT_BASE, port_count=PORT_COUNT):
        self.hosts = dict(hosts)
        self.prefix = prefix
        self.floor, self.ceiling = floor, ceiling
        self.interval, self.timeout = interval, timeout
        self.targets = [(node, address, port) for node, address in self.hosts.items() for port in range(port_base, port_base + port_count)]
        self.samples = []
        self.report = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="availability-sampler", daemon=True)
        self._pool = ThreadPoolExecutor(max_workers=min(32, len(self.targets)), thread_name_prefix="sampler-get")
        self._started = None

    def _get(self, target):
        node, address, port = target
        connection = http.client.HTTPConnection(address, port, timeout=self.timeout)
        try:
            connection.request("GET", "/")
            response = connection.getresponse()
            if response.status != 200:
                return None
            answer = json.loads(response.read())
        except (OSError, ValueError, http.client.HTTPException):
            return None
        finally:
            connection.close()
        return dict(answer, node=node)

    def sample(self):
        """One sample now (also what the thread takes)."""
        now = time.monotonic()
        pods = {}
        for answer in self._pool.map(self._get, self.targets):
            if answer and answer["pod"].startswith(self.prefix):
                pods[answer["pod"]] = {"node": answer["node"], "version": answer["version"], "ready": bool(answer["ready"])}
        return Sample(now - self._started, pods)

    def _loop(self):
        while not self._stop.is_set():
            begun = time.monotonic()
            self.samples.append(self.sample())
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - begun)))

    def start(self):
        self._started = time.monotonic()
        self._thread.start()
        return self

    def wait_for(self, predicate, timeout=60):
        """Block until a sample satisfies the predicate (e.g. lambda s: s.ready == 6); returns it or raises."""
        deadline = time.monotonic() + timeout
        seen = len(self.samples)
        while time.monotonic() < deadline:
            while seen < len(self.samples):
                sample = self.samples[seen]
                seen += 1
                if predicate(sample):
                    return sample
            time.sleep(self.interval / 2)
        last = self.samples[-1] if self.samples else None
        raise AssertionError(f"no sample satisfied the condition within {timeout} s; last: {last}")

    def stop(self):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self._pool.shutdown(wait=True)
        self.report = Report(list(self.samples), self.floor, self.ceiling, duration=time.monotonic() - self._started)
        return self.report

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False
