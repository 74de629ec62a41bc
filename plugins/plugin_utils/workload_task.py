# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The loop every fleet-wide workload task runs: observe → plan → act → wait.

One round observes every node at once (one `pod_info` call per node, in
parallel), asks the kind's pure controller for the next step, applies it (one
`pod` call per node that has something to do, in parallel), and waits a
little before observing again. The controller's record (revision history,
rollout progress) travels with the pods: it is stored on every ready node
and the newest copy wins, so the controller side keeps no state.

Check mode runs the same controller against a simulated fleet in which every
started pod becomes available at once (controllers/preview.py): the waves are the plan.
"""

from __future__ import annotations

import dataclasses
import re
import time
import typing as t
from dataclasses import dataclass, field

from ansible.utils.display import Display

from ansible_collections.hostfleet.workloads.plugins.module_utils.node import namespaces
from ansible_collections.hostfleet.workloads.plugins.plugin_utils._fanout import Fleet
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.pods import ObservedPod
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.preview import waves
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.unreachable import (
    DEFAULT_GRACE_SECONDS,
    RECORD_KEY,
    first_unreachable,
    fleet_state,
    grace_ends,
    next_placement,
    unseen_pods,
)
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.lease import Claim, LeaseError
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.nodes import (
    CAPACITY_VAR,
    LABELS_VAR,
    Node,
    NodeUsage,
    add_extended,
    node_from_inventory,
)
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.taints import TAINTS_VAR
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.taint_eviction import TaintEvictions

display = Display()

NODE_MODULE = "hostfleet.workloads.pod"
INFO_MODULE = "hostfleet.workloads.pod_info"
IMAGE_MODULE = "hostfleet.workloads.image_id"
POLL_INTERVAL = 0.5
# Keys of a controller record that change with time alone; a difference only there is not a change.
VOLATILE_RECORD_KEYS = ("seq", "observed", "conditions", "last_progress")
# The reason a rebooted host gives the pods it holds until a run acts on their owner there (module_utils/node/fence.py).
FENCE_REASON = "NodeFenced"
# A node found unreachable is asked again, while its pods' grace runs, at most this often (each try may cost the
# connection timeout, and the whole observation round waits for it).
RETRY_LOST_SECONDS = 5.0
# A failed act that is the connection's doing, not the module's: the node is treated as found unreachable.
CONNECTION_LOST = re.compile(
    r"Failed to connect|Connection (timed out|refused|reset|closed)|Shared connection to .* closed|Module result deserialization failed"
    r"|ssh: connect to host|kex_exchange_identification|No route to host|Broken pipe|Connection to .* closed"
    # A host shutting down refuses new systemd jobs (it is about to be unreachable).
    r"|Transaction for .* is destructive|system is (going down|shutting down)",
    re.IGNORECASE,
)


def lost_connection(result: dict) -> str | None:
    """The message of a result that says the node was not reached (or stopped answering mid-way), else None."""
    msg = str(result.get("msg") or "")
    if result.get("unreachable"):
        return msg or "unreachable"
    if result.get("failed") and (result.get("timedout") or result.get("rc") == 255 or CONNECTION_LOST.search(msg)):
        return msg or "the connection failed"
    return None


@dataclass
class Observation:
    """The fleet as one round saw it. Times are on the controller's clock."""

    nodes: list[Node]
    pods: list[ObservedPod]
    usage: dict[str, NodeUsage]
    records: dict[str, dict | None]
    unreachable: dict[str, str]
    details: dict[str, list[dict]] = field(default_factory=dict)
    # Since when each unreachable node has been so (kept in the record across runs), the pods the record places
    # on unreachable nodes (phase Unknown; in ``pods`` too while within their grace), and those it places on hosts
    # outside this run's fleet.
    unreachable_since: dict[str, float] = field(default_factory=dict)
    unseen: list[ObservedPod] = field(default_factory=list)
    outside: dict[str, dict[str, str]] = field(default_factory=dict)
    # Each ready node's answer as it came: a kind observed through a node module of its own (a CronJob's
    # cronjob_timer report) reads its state from it.
    reports: dict[str, dict] = field(default_factory=dict)
    # Pods evicted by their node's NoExecute taints (taint_eviction.py): no longer in ``pods`` (replaced like lost
    # ones), removed from their node by the next act; and since when the nodes' NoExecute taints are known.
    evicted: list = field(default_factory=list)
    taints_since: dict[str, dict[str, float]] = field(default_factory=dict)

    def record(self) -> dict | None:
        """The newest controller record any node holds."""
        stored = [r for r in self.records.values() if r]
        return max(stored, key=lambda r: r.get("seq", 0)) if stored else None


def material(record: dict | None) -> dict | None:
    if record is None:
        return None
    return {k: v for k, v in record.items() if k not in VOLATILE_RECORD_KEYS}


class WorkloadTask:
    """One workload (kind + name) over the fleet's nodes."""

    def __init__(
        self,
        fleet: Fleet,
        kind: str,
        name: str,
        state_dir: str,
        check_mode: bool,
        grace: float | None = None,
        track_placement: bool = False,
        observer: tuple[str, dict] | None = None,
    ):
        self.fleet = fleet
        # The node module that observes, and its arguments: pod_info (pods, records, the lease), or a kind's own.
        self.observer = observer or (INFO_MODULE, {})
        self.kind = kind
        self.name = name
        self.state_dir = state_dir
        self.check_mode = check_mode
        self.rounds = 0
        # Nodes found unreachable in this task: not asked again until the next task (each try would cost the
        # connection timeout again in every observation round of a rollout's wait; the next run sees them anew).
        self.lost: dict[str, str] = {}
        # ... except while their pods' grace runs: then asked again every RETRY_LOST_SECONDS (controllers/unreachable.py).
        # ``grace``: seconds before pods of an unreachable node are replaced (None: the kind never replaces them);
        # ``track_placement``: keep where the pods are in the record, to count those of unreachable nodes.
        self.grace = grace
        self.track_placement = track_placement
        self.lost_tried: dict[str, float] = {}
        self.unreachable_first: dict[str, float] = {}
        # Nodes whose pods were removed because they left the fleet (no longer kept in the record), and the
        # record as last stored by this task.
        self.forgotten: set[str] = set()
        self.last_record: dict | None = None
        # One writer per workload (plugin_utils/lease.py): taken by the first observation, renewed by each, carried by each act.
        self.claim: Claim | None = None
        # Whether this task called the pod module yet (what an observation before it saw may be out of date).
        self.acted = False
        # What each node is (module_utils/node/node_facts.py), asked in the first observation that reaches it and
        # kept for the task: the source of its well-known and feature labels, at no extra round.
        self.node_facts: dict[str, dict] = {}
        # NoExecute taints: which pods they evict, and since when they are known (taint_eviction.py).
        self.taints = TaintEvictions(kind, name)

    # -- images ----------------------------------------------------------------------------------

    def resolve_images(self, refs, pull_secrets: t.Sequence[str] = (), namespace: str | None = None) -> dict[str, str]:
        """{ref: image ID} from the first node that can tell, pulled there first (in check mode: as the node has it).

        Raises WorkloadError when no node can (outside check mode: a pull that fails everywhere stops the task
        before anything changes; in check mode the refs no node has are left out). ``pull_secrets``: the template's
        imagePullSecrets (of ``namespace``), whose credentials the pull uses as the pods' pulls do.
        """
        refs = sorted(set(refs))
        if not refs:
            return {}
        errors = []
        for host in (h for h in self.fleet.hosts if h not in self.lost):
            args = {"images": refs, "pull": True}
            if pull_secrets:
                args.update(pull_secrets=list(pull_secrets), namespace=namespace or "default", state_dir=self.state_dir)
            got = self.fleet.run_module(IMAGE_MODULE, {host: args}, check_mode=self.check_mode).get(host) or {}
            images = got.get("images") or {}
            if not got.get("failed") and not got.get("unreachable"):
                return {ref: images[ref]["id"] for ref in refs}
            errors.append(f"{host}: {got.get('msg') or 'no answer'}")
            if self.check_mode and images:
                return {ref: v["id"] for ref, v in images.items() if "id" in v}
        if self.check_mode:
            return {}
        raise WorkloadError(f"could not pull {', '.join(refs)} (imagePullPolicy Always) on any node: {'; '.join(errors)}")

    # -- observe ---------------------------------------------------------------------------------

    def observe(self) -> Observation:
        now = time.time()
        self._retry_lost(now)
        asked = [h for h in self.fleet.hosts if h not in self.lost]
        results = self.claim.observe(self._info, time.time, time.sleep) if self.claim else self._info(None)
        for host, msg in self.lost.items():
            results[host] = {"unreachable": True, "msg": f"{msg} (not tried again in this task)"}
        for host in asked:
            if (results.get(host) or {}).get("unreachable"):
                self.lost[host] = results[host].get("msg") or "unreachable"
                self.lost_tried[host] = time.time()
                self.unreachable_first.setdefault(host, now)
            elif host in results:
                # It answers (again): a later loss starts a grace of its own.
                self.unreachable_first.pop(host, None)
                self.lost_tried.pop(host, None)
        self.fleet.emit_warnings(results)
        nodes, pods, usage, records, unreachable, details, reports = [], [], {}, {}, {}, {}, {}
        for host in self.fleet.hosts:
            result = results.get(host) or {"failed": True, "msg": "no result"}
            ready = not (result.get("unreachable") or result.get("failed"))
            if not ready:
                unreachable[host] = result.get("msg") or "unreachable"
            nodes.append(node_from_inventory(host, ready, self._node_vars(host), self.fleet.groups_of(host), self.node_facts.get(host)))
            if not ready:
                continue
            # Host clocks may differ from ours: move host times onto the controller's clock.
            skew = now - float(result.get("observed_at") or now)
            other = NodeUsage()
            own_namespace = namespaces.namespace_of(self.name)
            mine = []
            for pod in result.get("pods") or []:
                owner = pod.get("owner") or {}
                if owner.get("kind") == self.kind and owner.get("name") == self.name:
                    mine.append(pod)
                    pods.append(_observed(pod, host, skew))
                elif pod.get("phase") not in ("Succeeded", "Failed"):
                    requests = pod.get("requests") or {}
                    other = NodeUsage(
                        other.pods + 1,
                        other.cpu_millis + int(requests.get("cpu") or 0),
                        other.memory_bytes + int(requests.get("memory") or 0),
                        # Anti-affinity and spread see the pods of the workload's own namespace, as in Kubernetes.
                        other.labels + ((dict(pod.get("labels") or {}),) if namespaces.namespace_of(pod.get("name") or "") == own_namespace else ()),
                        other.host_ports + tuple((str(p[0]), int(p[1])) for p in pod.get("host_ports") or ()),
                        add_extended(other.extended, {k: int(v) for k, v in requests.items() if k not in ("cpu", "memory") and isinstance(v, int)}),
                    )
            usage[host] = other
            details[host] = mine
            reports[host] = result
            records[host] = (result.get("owner_records") or {}).get(f"{self.kind}/{self.name}")
        self.rounds += 1
        observation = Observation(nodes, pods, usage, records, unreachable, details, reports=reports)
        if self.track_placement:
            self._add_unseen(observation, now)
        self.taints.apply(observation, now)
        return observation

    def _retry_lost(self, now: float) -> None:
        """Let the lost nodes due for another try be asked (during their grace only, and not too often)."""
        window = self.grace if self.grace is not None else DEFAULT_GRACE_SECONDS
        for host in list(self.lost):
            first = self.unreachable_first.get(host, now)
            if now - self.lost_tried.get(host, now) >= RETRY_LOST_SECONDS and now < first + window:
                del self.lost[host]

    def _add_unseen(self, observation: Observation, now: float) -> None:
        """Add the pods the record places on unreachable nodes (Unknown within their grace, else lost), and note
        those it places on hosts outside the fleet."""
        record = observation.record() or {}
        state = fleet_state(record)
        since = first_unreachable(state["unreachable_since"], observation.unreachable, self.unreachable_first, now)
        self.unreachable_first.update(since)
        templates = {h: e.get("template") for h, e in (record.get("revisions") or {}).items() if isinstance(e, dict)}
        placement = {n: pods for n, pods in state["placement"].items() if n in self.fleet.hosts}
        observation.unseen = unseen_pods(placement, since, templates, self.grace, now)
        # Only pods within their grace are the planner's (counted, unavailable); after it they are evicted, as
        # Kubernetes deletes them: not counted, replaced, reported; a node that returns shows them again (surplus).
        observation.pods = observation.pods + [p for p in observation.unseen if p.unknown]
        observation.unreachable_since = since
        observation.outside = {n: pods for n, pods in state["placement"].items() if n not in self.fleet.hosts}

    def grace_ends(self, observation: Observation) -> float | None:
        """When the first unknown pod's grace runs out (None: no pod is waited for)."""
        record = observation.record() or {}
        templates = {h: e.get("template") for h, e in (record.get("revisions") or {}).items() if isinstance(e, dict)}
        return grace_ends(observation.unseen, observation.unreachable_since, templates, self.grace or 0)

    def with_placement(self, record: dict, observation: Observation, step=None) -> dict:
        """The record to store: the controller's, plus where the pods are once ``step`` is applied and since when
        each unreachable node has been so (controllers/unreachable.py)."""
        if not self.track_placement:
            return record
        seen = {n.name: [p for p in observation.pods if p.node == n.name] for n in observation.nodes if n.ready}
        starts = [(s.node, s.name, s.revision) for s in step.starts] if step is not None else []
        stops = [(s.node, s.name) for s in step.stops] if step is not None else []
        stored = {n: pods for n, pods in fleet_state(observation.record())["placement"].items() if n not in self.forgotten}
        placement = next_placement(stored, seen, starts, stops)
        # The grace goes with the record to the nodes: a node back from a longer absence fences its pods (node/fence.py).
        grace = {"grace": self.grace} if self.grace is not None else {}
        return dict(record, **{RECORD_KEY: {"placement": placement, "unreachable_since": dict(sorted(observation.unreachable_since.items())), **grace}})

    def forget_nodes(self, nodes: set[str]) -> None:
        self.forgotten |= set(nodes)

    def absorb_lost(self, results: dict[str, dict]) -> dict[str, str]:
        """Nodes whose act failed for want of a connection: found unreachable, like in an observation."""
        lost = {}
        for host, result in results.items():
            msg = lost_connection(result)
            if msg is not None:
                lost[host] = msg
                self.lost[host] = msg
                self.lost_tried[host] = time.time()
                self.unreachable_first.setdefault(host, time.time())
        return lost

    def _info(self, lease: dict | None, hosts: list[str] | None = None) -> dict[str, dict]:
        """One observation round on ``hosts`` (default: every node not lost), with a lease request when given."""
        asked = [h for h in (self.fleet.hosts if hosts is None else hosts) if h not in self.lost]
        module, extra = self.observer
        args = {"state_dir": self.state_dir, **extra, **({"lease": dict(lease, kind=self.kind, name=self.name)} if lease else {})}
        if not asked:
            return {}
        # The node facts ride on the first observation of each node (the host reads them from its per-boot cache).
        per_host = {h: dict(args, node_facts=True) if h not in self.node_facts else args for h in asked}
        results = dict(self.fleet.run_module(module, per_host, check_mode=False))
        for host, result in results.items():
            if isinstance((result or {}).get("node_facts"), dict):
                self.node_facts[host] = result["node_facts"]
        return results

    def release_lease(self) -> None:
        """Let the workload's lease go (every way out of the task: done, failed, or an exception)."""
        if self.claim is not None:
            self.claim.release(self._info)

    def _leased(self, args: dict[str, dict]) -> dict[str, dict]:
        """Acts carry the lease; the nodes refuse them unless it is still this run's there."""
        if self.claim is None or self.claim.read_only:
            return args
        if not self.claim.valid(time.time()):
            self.claim.observe(self._info, time.time, time.sleep)  # a slow round aged it: renew first (LeaseError if lost)
        lease = self.claim.request()
        return {h: dict(a, lease=lease) for h, a in args.items()}

    def _fenced(self, results: dict[str, dict]) -> dict[str, dict]:
        self.acted = True
        refused = {h: r.get("msg") for h, r in results.items() if r.get("lease_refused")}
        if self.claim is not None:
            self.claim.acted = self.claim.acted or any(r.get("changed") for r in results.values())
        if refused:
            raise LeaseError(f"{self.kind} {self.name}: this run lost its lease: {refused}", acted=True)
        return results

    def _node_vars(self, host: str) -> dict:
        """Only the variables that describe a node (templating every host variable is slow and noisy)."""
        hostvars = self.fleet.host_vars(host)
        return {key: hostvars[key] for key in (LABELS_VAR, CAPACITY_VAR, TAINTS_VAR) if key in hostvars}

    # -- act -------------------------------------------------------------------------------------

    def act(self, step, observation: Observation, record: dict) -> dict[str, dict]:
        """Apply one step: start and stop pods per node, and store the record on every ready node."""
        record = dict(record, seq=(observation.record() or {}).get("seq", 0) + 1)
        args = {}
        for node in observation.nodes:
            if not node.ready:
                continue
            actions = step.actions.get(node.name)
            stored = observation.records.get(node.name)
            doomed = list(step.volumes_to_delete.get(node.name, ()))
            # A host back from a reboot holds this owner's pods (node/fence.py) until a run acts on it there.
            fenced = any(p.reason == FENCE_REASON for p in observation.pods if p.node == node.name)
            evicted = [e.pod.name for e in observation.evicted if e.pod.node == node.name]
            if actions is None and not doomed and not fenced and not evicted and material(stored) == material(record):
                continue
            pods = []
            for start in actions.start if actions else ():
                template = step.templates[start.key]
                metadata = template.get("metadata") or {}
                pods.append(
                    {
                        "name": start.name,
                        "labels": metadata.get("labels") or {},
                        "annotations": metadata.get("annotations") or {},
                        "revision": start.revision,
                        "spec": template["spec"],
                    }
                )
            args[node.name] = {
                "owner": self.name,
                "owner_kind": self.kind,
                "state_dir": self.state_dir,
                "prune": False,
                "pods": pods,
                "remove": ([s.name for s in actions.stop] if actions else []) + evicted,
                "delete_volumes": doomed,
                "owner_record": record,
            }
        if not args:
            return {}
        results = self._fenced(self.fleet.run_module(NODE_MODULE, self._leased(args), check_mode=False))
        self.fleet.emit_warnings(results)
        return results

    def act_with(self, module: str, args: dict[str, dict], timeout: float | None = None) -> dict[str, dict]:
        """One act of a kind's own node module (a CronJob's cronjob_timer) on the given nodes, carrying the lease when
        the task holds one; nodes that stop answering are found unreachable, as in ``act``."""
        results = self._fenced(self.fleet.run_module(module, self._leased(args), check_mode=self.check_mode, timeout=timeout))
        self.fleet.emit_warnings(results)
        self.absorb_lost(results)
        return results

    def remove_all(self, delete_volumes: dict[str, tuple[str, ...]] | None = None) -> dict[str, dict]:
        """Remove every pod of the workload; ``delete_volumes`` only where a retention policy says Delete."""
        args = {
            h: {
                "owner": self.name,
                "owner_kind": self.kind,
                "state_dir": self.state_dir,
                "state": "absent",
                "delete_volumes": list((delete_volumes or {}).get(h, ())),
            }
            for h in self.fleet.hosts
        }
        if self.claim is not None and not self.claim.acquired and not self.check_mode:
            self.observe()  # takes the lease
        return self._fenced(self.fleet.run_module(NODE_MODULE, self._leased(args), check_mode=self.check_mode))

    # -- the loop --------------------------------------------------------------------------------

    def converge(
        self,
        reconcile: t.Callable[[dict | None, Observation, float], t.Any],
        wait: bool,
        timeout: float,
        progress: t.Callable[[t.Any, int], str],
        observation: Observation,
        record: dict | None,
    ):
        """Run steps from a first observation until the controller says finished, or one step when not waiting,
        or until the timeout. Returns (last step, the observation it was planned from, steps taken as JSON, timed_out).
        """
        deadline = time.time() + timeout
        steps: list[dict] = []
        while True:
            now = time.time()
            step = reconcile(record, observation, now)
            stored = self.taints.with_times(self.with_placement(step.record, observation, step), observation)
            lost_now = {}
            fenced = any(p.reason == FENCE_REASON for p in observation.pods)
            if observation.evicted:
                self.taints.report(observation.evicted)
            if not step.empty or step.volumes_to_delete or fenced or observation.evicted or material(stored) != material(observation.record()):
                results = self.act(step, observation, stored)
                if not step.empty:
                    # One module call per node per step, whatever the number of pods it starts and stops there.
                    steps.append(
                        {
                            "step": len(steps) + 1,
                            **step.wave(),
                            "description": list(step.description),
                            "node_calls": sorted(results),
                            "observations": self.rounds,
                        }
                    )
                    display.display(progress(step, len(steps)))
                # A node lost while acting is a new observation (level-triggered), not a failure of the task.
                lost_now = self.absorb_lost(results)
                for host, msg in lost_now.items():
                    display.warning(f"{self.kind} {self.name}: {host} stopped answering while acting on it ({msg}); it is treated as unreachable")
                failures = {h: r.get("msg") for h, r in results.items() if (r.get("failed") or r.get("unreachable")) and h not in lost_now}
                if failures:
                    # A node that failed and no longer answers went away mid-way: the same as found unreachable.
                    probe = self.fleet.run_module(INFO_MODULE, {h: {"state_dir": self.state_dir} for h in failures}, check_mode=False)
                    gone = {h: f"{failures[h]}; then: {lost_connection(r)}" for h, r in probe.items() if lost_connection(r) is not None}
                    lost_now.update(self.absorb_lost({h: {"unreachable": True, "msg": msg} for h, msg in gone.items()}))
                    for host, msg in gone.items():
                        display.warning(f"{self.kind} {self.name}: {host} stopped answering while acting on it ({msg}); it is treated as unreachable")
                    failures = {h: msg for h, msg in failures.items() if h not in gone}
                if failures:
                    raise WorkloadError(f"{self.kind} {self.name}: acting on nodes failed: {failures}", step=step)
            record = self.last_record = stored
            if (step.finished or not wait) and not lost_now:
                return step, observation, steps, False
            if time.time() >= deadline:
                return step, observation, steps, True
            time.sleep(POLL_INTERVAL)
            # Within one task the record in memory is authoritative; nodes are re-read for pods only.
            observation = self.observe()

    def simulate(self, reconcile, observation: Observation, record: dict | None, min_ready_seconds: int = 0):
        """Check mode: the waves of the rollout against a fleet where every started pod is available at once (ready for
        the spec's ``min_ready_seconds`` already: else the controller waits after the first wave). Touches nothing."""

        def plan(rec, pods, now):
            return reconcile(rec, dataclasses.replace(observation, pods=pods), now)

        return waves(plan, record, observation.pods, time.time(), min_ready_seconds)


class WorkloadError(Exception):
    def __init__(self, msg, step=None):
        super().__init__(msg)
        self.step = step


def _observed(pod: dict, node: str, skew: float) -> ObservedPod:
    ready_since = pod.get("ready_since")
    return ObservedPod.from_json(
        {
            "name": pod["name"],
            "node": node,
            "revision": pod.get("revision") or "",
            "phase": pod.get("phase") or "Unknown",
            "ready": bool(pod.get("ready")),
            "ready_since": ready_since + skew if ready_since is not None else None,
            "created": (pod.get("created") or 0) + skew,
            "restart_count": pod.get("restart_count") or 0,
            "requests": {"cpu_millis": (pod.get("requests") or {}).get("cpu", 0), "memory_bytes": (pod.get("requests") or {}).get("memory", 0), "pods": 1},
            "reason": pod.get("reason"),
            "message": pod.get("message"),
        }
    )
