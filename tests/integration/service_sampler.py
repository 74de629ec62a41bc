"""Service availability sampler (issue 14): requests to a Service's virtual IP from EVERY lab host, every 0.2 s.

A Service's ClusterIP is only reachable on the hosts (their nftables rules), so the client runs there: one small
Python process per host, started over SSH, sends one GET on a new connection every ``interval`` seconds (each in a
thread of its own, so a slow request never delays the next one: a timeout is one failure, as a client would count
it) and prints one JSON line per request: when it was sent (the hosts share this machine's clock), whether it got a
200, and which pod answered. Closing its stdin (stop()) ends it.

Pods made with ``service_template()`` serve on one port of their own address (the pod network) and answer with their
name, their VERSION and whether hostfleet marks them ready; ``GET /unready`` makes one unready (its exec readiness
probe, every second with failureThreshold 1, then fails), ``GET /ready`` ready again.

    with ServiceSampler(lab.hosts, "10.96.0.12", 8080) as sampler:
        ... roll the Deployment out, kill an endpoint ...
    report = sampler.report
    report.success_rate                # over every request of every host
    report.assert_success(0.999, 5.0)  # in every 5 s window
    report.longest_failure_run         # (requests, seconds, host)
    report.last_failure_after(t)       # per host: seconds from t to its last failed request (within a horizon)
"""

from __future__ import annotations

import json
import shlex
import subprocess
import threading
import time
from dataclasses import dataclass, field

from lab import labctl

PORT = 8080

# The client on each host: argv address port path interval timeout. One line per request, in completion order.
CLIENT = r"""
import http.client, json, sys, threading, time
address, port, path, interval, timeout = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4]), float(sys.argv[5])
lock, done = threading.Lock(), threading.Event()
def get(seq, sent):
    line = {"seq": seq, "t": sent}
    try:
        connection = http.client.HTTPConnection(address, port, timeout=timeout)
        try:
            connection.request("GET", path, headers={"Connection": "close"})
            reply = connection.getresponse()
            body = reply.read()
        finally:
            connection.close()
        line["ok"] = reply.status == 200
        if line["ok"]:
            answer = json.loads(body)
            line.update(pod=answer.get("pod"), version=answer.get("version"), ready=answer.get("ready"))
        else:
            line["error"] = "HTTP %d" % reply.status
    except Exception as exc:
        line.update(ok=False, error=("%s: %s" % (type(exc).__name__, exc))[:160])
    line["ms"] = round((time.time() - sent) * 1000, 1)
    with lock:
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
def watch_stdin():
    sys.stdin.read()
    done.set()
threading.Thread(target=watch_stdin, daemon=True).start()
start, seq = time.time(), 0
while not done.is_set():
    at = start + seq * interval
    if done.wait(max(0.0, at - time.time())):
        break
    threading.Thread(target=get, args=(seq, time.time()), daemon=True).start()
    seq += 1
time.sleep(timeout + 0.2)
"""

# The pods' server: answers every GET on PORT with its name, VERSION and readiness (the node's readiness file for
# the pod); /unready and /ready remove and create the marker its readiness probe tests. A restarted container waits
# ``restart_delay`` seconds before it listens: a killed endpoint then stays dead long enough for the measurement to
# tell the Service's rules dropping it from the process coming back. The markers live in an emptyDir (/pod-state):
# they last as long as the pod, not longer (a later pod of the same name starts afresh).
SERVER = r"""
import glob, http.server, json, os, sys, time
port, pod, version, restart_delay = int(sys.argv[1]), os.environ["POD_NAME"], os.environ.get("VERSION", ""), float(sys.argv[2])
marker_dir = os.environ.get("MARKER_DIR", "/pod-state")
marker, started = os.path.join(marker_dir, "ready"), os.path.join(marker_dir, "started")
if os.path.exists(marker):
    os.unlink(marker)  # the previous process's: not ready before this one listens
if os.path.exists(started):
    time.sleep(restart_delay)
open(started, "w").close()
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/unready" and os.path.exists(marker):
            os.unlink(marker)
        elif self.path == "/ready":
            open(marker, "w").close()
        ready = bool(glob.glob("/run/hostfleet/pods/" + pod + "/*/ready"))
        body = json.dumps({"pod": pod, "version": version, "ready": ready}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler)
open(marker, "w").close()
server.serve_forever()
"""


def service_template(app, version="v1", port=PORT, grace=2, restart_delay=5.0, **spec):
    """A pod template for the sampler: labels {app: <app>}, one container `main` serving on ``port`` (named http)."""
    pod_spec = {
        "terminationGracePeriodSeconds": grace,
        "containers": [
            {
                "name": "main",
                "command": ["/usr/bin/python3", "-u", "-c", SERVER, str(port), str(restart_delay)],
                "env": [{"name": "VERSION", "value": version}],
                "ports": [{"name": "http", "containerPort": port}],
                "readinessProbe": {"exec": {"command": ["/bin/test", "-e", "/pod-state/ready"]}, "periodSeconds": 1, "failureThreshold": 1},
                "volumeMounts": [{"name": "state", "mountPath": "/pod-state"}],
            }
        ],
        "volumes": [{"name": "state", "emptyDir": {}}],
    }
    pod_spec.update(spec)
    return {"metadata": {"labels": {"app": app}}, "spec": pod_spec}


def service_manifest(name, replicas, version="v1", port=PORT, max_surge=1, max_unavailable=0):
    """The Deployment and its ClusterIP Service (port ``port``, targetPort http), as apply's documents."""
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name},
            "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": port, "targetPort": "http"}]},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": max_surge, "maxUnavailable": max_unavailable}},
                "template": service_template(name, version=version, port=port),
            },
        },
    ]


@dataclass(frozen=True)
class Request:
    host: str  # where the client ran
    seq: int
    t: float  # when it was sent (epoch seconds)
    ok: bool
    pod: str | None = None
    version: str | None = None
    ready: bool | None = None
    error: str | None = None
    ms: float = 0.0


@dataclass
class ServiceReport:
    requests: list  # of Request, sorted by (host, t)
    started: float
    ended: float
    hosts: list = field(default_factory=list)

    def between(self, start=None, end=None):
        return [r for r in self.requests if (start is None or r.t >= start) and (end is None or r.t < end)]

    def part(self, start=None, end=None):
        """The report of the requests sent in [start, end) only."""
        return ServiceReport(self.between(start, end), self.started if start is None else start, self.ended if end is None else end, hosts=self.hosts)

    @property
    def failures(self):
        return [r for r in self.requests if not r.ok]

    @property
    def success_rate(self):
        return 1.0 - len(self.failures) / len(self.requests) if self.requests else 0.0

    @property
    def longest_failure_run(self):
        """(requests, seconds from its first to its last failed request, host) of the longest run of failures in a row
        on one host (0, 0.0, None without failures)."""
        best = (0, 0.0, None)
        for host in self.hosts:
            run = []
            for request in [r for r in self.requests if r.host == host] + [None]:
                if request is not None and not request.ok:
                    run.append(request)
                    continue
                if len(run) > best[0]:
                    best = (len(run), run[-1].t - run[0].t, host)
                run = []
        return best

    def windows(self, seconds):
        """[(start, requests, failures)] for consecutive windows of ``seconds`` from the first request on."""
        if not self.requests:
            return []
        first = min(r.t for r in self.requests)
        buckets = {}
        for r in self.requests:
            index = int((r.t - first) // seconds)
            total, failed = buckets.get(index, (0, 0))
            buckets[index] = (total + 1, failed + (0 if r.ok else 1))
        return [(first + i * seconds, *buckets[i]) for i in sorted(buckets)]

    def assert_success(self, rate=0.999, window=5.0, min_requests=10):
        """Every window of ``window`` seconds has at least ``rate`` of its requests answered (all hosts together)."""
        assert len(self.requests) >= min_requests, f"too few requests to judge: {self.summary()}"
        bad = [(round(start - self.started, 1), total, failed) for start, total, failed in self.windows(window) if (total - failed) < rate * total]
        assert not bad, f"success below {rate:.1%} in windows (start s, requests, failed) {bad[:10]}: {self.summary()}"

    def last_failure_after(self, t0, horizon=10.0):
        """{host: seconds from t0 to the last failed request sent in [t0, t0 + horizon)} (0.0 for a host with none)."""
        found = dict.fromkeys(self.hosts, 0.0)
        for r in self.between(t0, t0 + horizon):
            if not r.ok:
                found[r.host] = max(found[r.host], r.t - t0)
        return found

    def last_answer_by(self, pod, t0, horizon=10.0):
        """{host: seconds from t0 to the last request sent in [t0, t0 + horizon) that ``pod`` answered} (None: none)."""
        found = dict.fromkeys(self.hosts)
        for r in self.between(t0, t0 + horizon):
            if r.ok and r.pod == pod:
                found[r.host] = max(found[r.host] or 0.0, r.t - t0)
        return found

    def answered_by(self, start=None, end=None):
        """{pod: answers} of the requests sent in [start, end)."""
        counts = {}
        for r in self.between(start, end):
            if r.ok:
                counts[r.pod] = counts.get(r.pod, 0) + 1
        return counts

    def summary(self):
        per_host = {h: (sum(1 for r in self.requests if r.host == h), sum(1 for r in self.requests if r.host == h and not r.ok)) for h in self.hosts}
        run, seconds, host = self.longest_failure_run
        errors = {}
        for r in self.failures:
            errors[r.error] = errors.get(r.error, 0) + 1
        return (
            f"{len(self.requests)} requests over {self.ended - self.started:.1f} s, {self.success_rate:.3%} answered; "
            f"per host (requests, failed) {per_host}; longest failure run {run} ({seconds:.1f} s, {host}); "
            f"errors {dict(sorted(errors.items(), key=lambda kv: -kv[1])[:5])}; "
            f"failures at {[(r.host, round(r.t - self.started, 1)) for r in self.failures[:15]]}"
        )


class ServiceSampler:
    """GETs http://<address>:<port><path> from each of ``hosts`` (lab host names) every ``interval`` seconds."""

    def __init__(self, hosts, address, port, path="/", interval=0.2, timeout=1.0):
        self.hosts = list(hosts)
        self.address, self.port, self.path = address, int(port), path
        self.interval, self.timeout = interval, timeout
        self.requests = []
        self.errors = {}
        self.report = None
        self._lock = threading.Lock()
        self._procs = {}
        self._readers = []
        self.started = None

    def _read(self, host, proc):
        for line in proc.stdout:
            try:
                data = json.loads(line)
            except ValueError:
                continue
            request = Request(host, data["seq"], data["t"], bool(data.get("ok")), data.get("pod"), data.get("version"), data.get("ready"),
                              data.get("error"), data.get("ms", 0.0))
            with self._lock:
                self.requests.append(request)
        self.errors[host] = proc.stderr.read()

    def start(self, wait=15.0):
        """Starts a client on every host and returns once each has had a request answered (or raises)."""
        self.started = time.time()
        argv = ["python3", "-u", "-c", CLIENT, self.address, str(self.port), self.path, str(self.interval), str(self.timeout)]
        remote = " ".join(shlex.quote(part) for part in argv)
        for host in self.hosts:
            proc = subprocess.Popen(["ssh", "-F", str(labctl.ssh_config_path()), host, remote], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
            self._procs[host] = proc
            reader = threading.Thread(target=self._read, args=(host, proc), name=f"service-sampler-{host}", daemon=True)
            reader.start()
            self._readers.append(reader)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            with self._lock:
                answered = {r.host for r in self.requests if r.ok}
            if answered >= set(self.hosts):
                return self
            time.sleep(0.1)
        report = self.stop()
        raise AssertionError(f"not every host reached {self.address}:{self.port} within {wait} s: {report.summary()}; stderr {self.errors}")

    def wait_for(self, predicate, timeout=60.0):
        """Blocks until a request satisfies the predicate; returns it or raises."""
        deadline, seen = time.monotonic() + timeout, 0
        while time.monotonic() < deadline:
            with self._lock:
                fresh = self.requests[seen:]
                seen = len(self.requests)
            for request in fresh:
                if predicate(request):
                    return request
            time.sleep(self.interval / 2)
        raise AssertionError(f"no request satisfied the condition within {timeout} s; last: {self.requests[-3:]}")

    def report_so_far(self):
        """The requests answered or failed so far, as a report (the clients keep running)."""
        with self._lock:
            requests = sorted(self.requests, key=lambda r: (r.host, r.t))
        return ServiceReport(requests, self.started, time.time(), hosts=self.hosts)

    def stop(self):
        ended = time.time()
        for proc in self._procs.values():
            if proc.stdin:
                proc.stdin.close()
        for proc in self._procs.values():
            try:
                proc.wait(timeout=self.timeout + 10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for reader in self._readers:
            reader.join(timeout=5)
        # Requests sent after stop() was called are the client's last ones in flight: not part of the measurement.
        requests = sorted((r for r in self.requests if r.t < ended), key=lambda r: (r.host, r.t))
        self.report = ServiceReport(requests, self.started, ended, hosts=self.hosts)
        return self.report

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False
