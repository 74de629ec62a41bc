"""The controller's side of a workload's lease (plugin_utils/lease.py) against simulated nodes that run the node's own
state machine (module_utils/node/lease.py): majority, split votes, takeover after expiry, and, as a property, two or
three runs started together never both hold the lease, whatever order their messages reach the nodes in and whatever
nodes each cannot reach."""

from __future__ import annotations

import random
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.hostfleet.workloads.plugins.module_utils.node import lease as node_lease
from ansible_collections.hostfleet.workloads.plugins.plugin_utils import lease
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.workload_task import INFO_MODULE, NODE_MODULE, WorkloadTask

T0 = 1_700_000_000.0


class Nodes:
    """Nodes holding lease state; ``down`` nodes answer nobody (per claim: a partition)."""

    def __init__(self, count):
        self.state = {f"n{i}": {} for i in range(count)}
        self.now = T0

    def deliver(self, node, request):
        self.state[node], answer = node_lease.decide(self.state[node], node_lease.validate(request), self.now)
        return answer

    def ask_for(self, down=(), before_each=None):
        def ask(request, nodes=None):
            results = {}
            for node in sorted(self.state) if nodes is None else nodes:
                if before_each:
                    before_each()
                results[node] = {"unreachable": True, "msg": "down"} if node in down else {"pods": [], "lease": self.deliver(node, request)}
            return results

        return ask

    def sleep(self, seconds):
        self.now += seconds


def claim(nodes, holder, **kwargs):
    return lease.Claim("Deployment web", holder, f"root@ctl{holder} pid 1, playbook {holder}.yml", sorted(nodes.state), rng=random.Random(holder), **kwargs)


def test_majority():
    assert [lease.majority(n) for n in range(1, 7)] == [1, 2, 2, 3, 3, 4]


def test_a_second_run_fails_at_once_naming_the_holder_and_takes_over_after_expiry():
    nodes = Nodes(3)
    first = claim(nodes, "a")
    first.observe(nodes.ask_for(), lambda: nodes.now, nodes.sleep)
    assert first.acquired and first.held == {"n0", "n1", "n2"}
    second = claim(nodes, "b")
    with pytest.raises(lease.LeaseError) as caught:
        second.observe(nodes.ask_for(), lambda: nodes.now, nodes.sleep)
    message = str(caught.value)
    assert "root@ctla pid 1, playbook a.yml" in message and "n0, n1, n2" in message and "expires in 30 s" in message
    assert caught.value.holder["id"] == "a" and nodes.now == T0  # no waiting
    # a is killed: after the lease's duration b proceeds, and a's acts are refused everywhere from then on.
    nodes.sleep(lease.DURATION + 0.1)
    second.observe(nodes.ask_for(), lambda: nodes.now, nodes.sleep)
    assert second.acquired and second.token > first.token
    assert not any(nodes.deliver(n, first.request())["granted"] for n in nodes.state)


def test_a_majority_is_enough_and_a_minority_is_not():
    nodes = Nodes(5)
    one = claim(nodes, "a")
    one.observe(nodes.ask_for(down={"n0", "n1"}), lambda: nodes.now, nodes.sleep)
    assert one.held == {"n2", "n3", "n4"}
    one.release(nodes.ask_for())
    assert all(node_lease.current(s, nodes.now) is None for s in nodes.state.values())
    other = claim(nodes, "b")
    with pytest.raises(lease.LeaseError) as caught:
        other.observe(nodes.ask_for(down={"n0", "n1", "n2"}), lambda: nodes.now, nodes.sleep)
    assert "on 2 of 5 nodes only, and a majority (3) is needed" in str(caught.value) and "no answer from n0, n1, n2" in str(caught.value)
    assert nodes.now - T0 >= lease.CONTENDED_RETRY  # it tried again for a while
    assert all(node_lease.current(s, nodes.now) is None for s in nodes.state.values())  # and let go of what it took


def test_a_run_that_cannot_renew_on_a_majority_stops():
    nodes = Nodes(3)
    one = claim(nodes, "a")
    one.observe(nodes.ask_for(), lambda: nodes.now, nodes.sleep)
    with pytest.raises(lease.LeaseError) as caught:
        one.observe(nodes.ask_for(down={"n0", "n1"}), lambda: nodes.now, nodes.sleep)
    assert "lost its lease" in str(caught.value) and not one.valid(nodes.now)


def test_a_leftover_minority_of_a_loser_is_waited_for_and_the_token_moves_above_its_mark():
    nodes = Nodes(3)
    nodes.deliver("n2", {"holder": "b", "token": 10**13, "op": "acquire", "duration": 30})  # b's first round, not yet released
    one = claim(nodes, "a")
    released = []

    def ask(request, chosen=None):
        if len(released) == 0 and nodes.now > T0 + 1:
            released.append(nodes.deliver("n2", {"holder": "b", "token": 10**13, "op": "release"}))
        return nodes.ask_for()(request, chosen)

    one.observe(ask, lambda: nodes.now, nodes.sleep)
    assert one.held == {"n0", "n1", "n2"} and one.token == 10**13 + 1


def test_a_split_vote_is_retried_even_when_a_round_waited_for_an_unreachable_node():
    """The retry window starts at the first answer: a round that paid a connection timeout must not use it up; and the
    retries do not ask the unreachable node again."""
    nodes = Nodes(3)
    nodes.deliver("n1", {"holder": "b", "token": 10**13, "op": "acquire", "duration": 30})  # b took n1 in the same instant
    one = claim(nodes, "a")
    rounds = []

    def ask(request, chosen=None):
        rounds.append((request["op"], chosen))
        if len(rounds) == 3:
            nodes.deliver("n1", {"holder": "b", "token": 10**13, "op": "release"})  # b lost too and let go
        results = nodes.ask_for(down={"n2"})(request, chosen)
        if "n2" in results:
            nodes.sleep(lease.CONTENDED_RETRY + 1)  # the connection timeout
        return results

    results = one.observe(ask, lambda: nodes.now, nodes.sleep)
    assert one.held == {"n0", "n1"} and rounds == [("acquire", None), ("release", ["n0"]), ("acquire", ["n0", "n1"])]
    assert results["n2"]["unreachable"]  # still reported for the observation


def test_check_mode_takes_nothing_and_warns_about_a_holder():
    nodes = Nodes(3)
    claim(nodes, "a").observe(nodes.ask_for(), lambda: nodes.now, nodes.sleep)
    looking = claim(nodes, "b", read_only=True)
    looking.observe(nodes.ask_for(), lambda: nodes.now, nodes.sleep)
    assert not looking.acquired and "root@ctla pid 1" in looking.warnings[0]
    assert all(node_lease.current(s, nodes.now)["holder"] == "a" for s in nodes.state.values())


class Scheduler:
    """Runs claims in threads; before each message reaches a node the thread waits for its turn, and the test (through
    hypothesis) chooses whose turn it is: every interleaving of the runs' messages can happen."""

    def __init__(self, nodes, choose):
        self.nodes = nodes
        self.choose = choose
        self.cv = threading.Condition()
        self.turn = None
        self.waiting = set()
        self.finished = set()
        self.outcome = {}

    def checkpoint(self, name):
        with self.cv:
            self.waiting.add(name)
            self.cv.notify_all()
            self.cv.wait_for(lambda: self.turn == name)
            self.turn = None
            self.waiting.discard(name)

    def run(self, claims, down):
        def body(c):
            self.checkpoint(c.holder)
            try:
                c.observe(self.nodes.ask_for(down.get(c.holder, ()), lambda: self.checkpoint(c.holder)), lambda: self.nodes.now, self.sleep(c.holder))
                self.outcome[c.holder] = "holds"
            except lease.LeaseError:
                self.outcome[c.holder] = "refused"
            finally:
                with self.cv:
                    self.finished.add(c.holder)
                    self.cv.notify_all()

        threads = {c.holder: threading.Thread(target=body, args=(c,), daemon=True) for c in claims}
        for thread in threads.values():
            thread.start()
        while True:
            with self.cv:
                self.cv.wait_for(lambda: self.turn is None and all(name in self.waiting or name in self.finished for name in threads), timeout=10)
                ready = sorted(self.waiting)
                if not ready:
                    break
                self.turn = self.choose(ready)
                self.cv.notify_all()
        for thread in threads.values():
            thread.join(10)

    def sleep(self, name):
        def sleep(seconds):
            self.nodes.sleep(seconds)
            self.checkpoint(name)

        return sleep


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 5), st.integers(2, 3), st.data())
def test_runs_started_together_never_both_hold_the_lease(node_count, run_count, data):
    nodes = Nodes(node_count)
    names = [chr(ord("a") + i) for i in range(run_count)]
    down = {name: set(data.draw(st.lists(st.sampled_from(sorted(nodes.state)), max_size=node_count), label=f"down for {name}")) for name in names}
    claims = [claim(nodes, name) for name in names]
    for c in claims:
        c.token = 10**13  # the same instant: equal tokens, the hardest case for the nodes
    scheduler = Scheduler(nodes, lambda ready: data.draw(st.sampled_from(ready)))
    scheduler.run(claims, down)
    holders = [name for name, outcome in scheduler.outcome.items() if outcome == "holds"]
    assert len(scheduler.outcome) == run_count
    assert len(holders) <= 1, (scheduler.outcome, down)
    if holders:
        winner = next(c for c in claims if c.holder == holders[0])
        # every node the winner holds accepts its acts and refuses any loser's (a loser's own claim stops it elsewhere)
        for node in sorted(winner.held):
            assert nodes.deliver(node, winner.request())["granted"]
            for loser in claims:
                if loser is not winner:
                    assert not nodes.deliver(node, loser.request())["granted"]
                    assert not loser.valid(nodes.now)
    if not any(down.values()) and run_count == 2 and node_count % 2:
        assert holders, scheduler.outcome  # with every node reachable and an odd count, someone wins


# -- the hooks in the shared loop (workload_task.py) ------------------------------------------------------------------


class LeaseFleet:
    """A fleet whose nodes answer pod_info's lease requests and fence pod calls with the node's own state machine."""

    def __init__(self, nodes):
        self.nodes = nodes
        self.hosts = sorted(nodes.state)
        self.calls = []

    def run_module(self, module, args_per_host, check_mode=None):
        self.calls.append((module, {h: dict(a) for h, a in args_per_host.items()}))
        results = {}
        for host, args in args_per_host.items():
            request = args.get("lease")
            if module == INFO_MODULE:
                results[host] = {"pods": [], "observed_at": 0, **({"lease": self.nodes.deliver(host, request)} if request else {})}
            else:
                answer = self.nodes.deliver(host, dict(request, op="acquire")) if request else {"granted": True}
                results[host] = {"changed": True} if answer["granted"] else {"failed": True, "msg": "stale lease", "lease_refused": True}
        return results

    def emit_warnings(self, results):
        pass

    def groups_of(self, host):
        return ["lab"]

    def host_vars(self, host):
        return {}


def test_the_loop_takes_the_lease_with_its_first_observation_carries_it_on_every_act_and_stops_when_refused():
    nodes = Nodes(3)
    fleet = LeaseFleet(nodes)
    task = WorkloadTask(fleet, "Deployment", "web", "/var/lib/hostfleet", check_mode=False)
    task.claim = claim(nodes, "a")
    task.observe()
    assert len(fleet.calls) == 1 and task.claim.acquired  # no extra round
    assert fleet.calls[0][1]["n0"]["lease"]["kind"] == "Deployment" and fleet.calls[0][1]["n0"]["lease"]["name"] == "web"
    task.remove_all()
    module, args = fleet.calls[-1]
    assert module == NODE_MODULE and all(a["lease"]["holder"] == "a" and a["lease"]["token"] == task.claim.token for a in args.values())
    # Another run takes over after a's lease expired (a stalled): a's next act is refused and a stops.
    nodes.sleep(lease.DURATION + 1)
    claim(nodes, "b").observe(nodes.ask_for(), lambda: nodes.now, nodes.sleep)
    task.claim.valid_until = float("inf")  # a believes its lease is still good: only the nodes can stop it
    with pytest.raises(lease.LeaseError) as caught:
        task.remove_all()
    assert "lost its lease" in str(caught.value) and caught.value.acted
    task.release_lease()
    assert all(node_lease.current(s, nodes.now)["holder"] == "b" for s in nodes.state.values())  # a's release touches nothing of b's
