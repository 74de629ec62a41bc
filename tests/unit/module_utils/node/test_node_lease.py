"""A node's share of a workload's lease (module_utils/node/lease.py): the state machine with a fake clock, the file
under its lock, and properties over random histories of several holders."""

from __future__ import annotations

import multiprocessing
import os
import stat
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.hostfleet.workloads.plugins.module_utils.node import lease
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError

T0 = 1_700_000_000.0


def req(holder, token, op="acquire", duration=30, description=""):
    return lease.validate({"holder": holder, "token": token, "op": op, "duration": duration, "description": description or f"{holder} desc"})


def run(state, holder, token, now, op="acquire", duration=30):
    return lease.decide(state, req(holder, token, op, duration), now)


def test_a_free_lease_is_granted_then_refused_to_another_holder_naming_the_first():
    state, answer = run({}, "a", 5, T0)
    assert answer["granted"] and answer["reason"] == "granted" and answer["hwm"] == 5
    state, answer = run(state, "b", 9, T0 + 1)
    assert not answer["granted"] and answer["reason"] == "held"
    assert answer["holder"]["id"] == "a" and answer["holder"]["description"] == "a desc"
    assert answer["holder"]["held_for"] == 1 and answer["holder"]["expires_in"] == 29
    assert state["hwm"] == 5  # a refused token leaves no mark


def test_renewal_keeps_granted_at_and_moves_the_expiry():
    state, _result = run({}, "a", 5, T0)
    state, answer = run(state, "a", 5, T0 + 20)
    assert answer["granted"] and answer["reason"] == "renewed"
    assert state["lease"]["granted_at"] == T0 and state["lease"]["expires"] == T0 + 50


def test_an_expired_lease_goes_to_a_higher_token_and_the_old_holder_is_fenced_for_good():
    state, _result = run({}, "a", 5, T0)
    state, answer = run(state, "b", 4, T0 + 31)
    assert not answer["granted"] and answer["reason"] == "stale"  # free, but 4 is not above the mark 5
    state, answer = run(state, "b", 6, T0 + 31)
    assert answer["granted"]
    state, answer = run(state, "a", 5, T0 + 32)
    assert not answer["granted"] and answer["reason"] == "held" and answer["holder"]["id"] == "b"
    state, answer = run(state, "b", 6, T0 + 33, op="release")
    assert answer["reason"] == "released" and answer["holder"] is None
    # b let go, but a's token is below the mark: a stalled run never acts again.
    state, answer = run(state, "a", 5, T0 + 34)
    assert not answer["granted"] and answer["reason"] == "stale" and answer["hwm"] == 6


def test_a_holder_whose_own_lease_lapsed_untaken_gets_it_back_with_the_same_token():
    state, _result = run({}, "a", 5, T0)
    state, answer = run(state, "a", 5, T0 + 40)
    assert answer["granted"] and answer["reason"] == "granted"


def test_a_holder_may_move_to_a_higher_token_but_never_back():
    state, _result = run({}, "a", 5, T0)
    state, answer = run(state, "a", 8, T0 + 1)
    assert answer["granted"] and state["lease"]["token"] == 8 and state["hwm"] == 8
    state, answer = run(state, "a", 5, T0 + 2)
    assert not answer["granted"] and answer["reason"] == "stale"


def test_release_by_another_holder_or_token_changes_nothing():
    state, _result = run({}, "a", 5, T0)
    for holder, token in (("b", 5), ("a", 4)):
        after, answer = run(state, holder, token, T0 + 1, op="release")
        assert answer["reason"] == "not-held" and after["lease"] == state["lease"]


def test_read_changes_nothing():
    state, _result = run({}, "a", 5, T0)
    after, answer = run(state, "b", 99, T0 + 1, op="read")
    assert after == state and not answer["granted"] and answer["holder"]["id"] == "a"


@pytest.mark.parametrize(
    "request_, field",
    [
        ("x", "lease"),
        ({"holder": "a", "token": 1, "ttl": 3}, "lease.ttl"),
        ({"holder": "a b", "token": 1}, "lease.holder"),
        ({"holder": "a", "token": 0}, "lease.token"),
        ({"holder": "a", "token": True}, "lease.token"),
        ({"holder": "a", "token": 1, "duration": 0}, "lease.duration"),
        ({"holder": "a", "token": 1, "op": "steal"}, "lease.op"),
        ({"holder": "a", "token": 1, "name": "x/y"}, "lease.name"),
    ],
)
def test_bad_requests_name_their_field(request_, field):
    with pytest.raises(SpecError) as caught:
        lease.validate(request_)
    assert caught.value.path == field


def test_the_file_is_root_only_and_a_read_of_a_never_leased_workload_creates_nothing(tmp_path):
    state_dir = str(tmp_path / "state")
    assert lease.apply(state_dir, "Deployment", "web", req("a", 1, op="read"))["holder"] is None
    assert not os.path.exists(lease.lease_dir(state_dir))
    assert lease.apply(state_dir, "Deployment", "web", req("a", 3))["granted"]
    path = lease.lease_path(state_dir, "Deployment", "web")
    assert path.endswith("leases/deployment.web.json")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.join(lease.lease_dir(state_dir), lease.LOCK_FILE)).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(lease.lease_dir(state_dir)).st_mode) == 0o700
    assert not lease.apply(state_dir, "Deployment", "web", req("b", 4))["granted"]
    # check mode only reads
    assert lease.apply(state_dir, "Deployment", "web", req("b", 4), check_mode=True)["reason"] == "read"
    assert lease.apply(state_dir, "Deployment", "other", req("b", 4))["granted"]  # one lease per workload


def _contend(args):
    state_dir, holder = args
    return holder, lease.apply(state_dir, "Deployment", "web", req(holder, 10 + int(holder[1:])))["granted"]


def test_processes_acquiring_at_the_same_instant_get_one_grant(tmp_path):
    """The flock serialises read-modify-write: of 16 processes asking at once, exactly one holds the lease."""
    state_dir = str(tmp_path / "state")
    for attempt in range(5):
        workload_dir = f"{state_dir}{attempt}"
        with multiprocessing.get_context("fork").Pool(16) as pool:
            outcomes = pool.map(_contend, [(workload_dir, f"h{i}") for i in range(16)])
        winners = [h for h, granted in outcomes if granted]
        assert len(winners) == 1, outcomes
        assert lease.apply(workload_dir, "Deployment", "web", req("x", 1, op="read"))["holder"]["id"] == winners[0]


def test_a_torn_file_voids_the_lease_but_keeps_refusing_old_tokens(tmp_path):
    state_dir = str(tmp_path)
    lease.apply(state_dir, "Job", "j", req("a", 5))
    with open(lease.lease_path(state_dir, "Job", "j"), "w") as handle:
        handle.write("{torn")
    refused = lease.apply(state_dir, "Job", "j", req("a", 5))
    assert not refused["granted"] and refused["hwm"] > 5
    time.sleep(0.01)  # the clock moves on
    # the new mark is kept: a token above it is granted (it does not move on with the clock at every read)
    assert lease.apply(state_dir, "Job", "j", req("b", refused["hwm"] + 1))["granted"]


# -- properties -------------------------------------------------------------------------------------------------------

HOLDERS = ("a", "b", "c")
events = st.lists(
    st.tuples(st.sampled_from(HOLDERS), st.integers(1, 12), st.sampled_from(("acquire", "acquire", "release", "read")), st.floats(0, 20)),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(events)
def test_one_holder_at_a_time_and_tokens_never_go_back(history):
    """Whatever the requests and their timing: a grant never overrides another holder's current lease; the tokens
    of successive grants never decrease, and an equal token is only ever the same holder's; a holder refused as
    superseded (someone else was granted a higher token since) is refused until it comes with a higher token."""
    state, now = {}, T0
    grants = []
    for holder, token, op, step in history:
        now += step
        before = lease.current(state, now)
        state, answer = run(state, holder, token, now, op=op, duration=10)
        if answer["granted"]:
            assert before is None or before["holder"] == holder
            if grants:
                last_holder, last_token = grants[-1]
                assert token > last_token or (token == last_token and holder == last_holder)
            grants.append((holder, token))
            held = lease.current(state, now)
            assert held["holder"] == holder and held["token"] == token
        for other, other_token in grants:
            if other_token < max(t for _h, t in grants) and other != grants[-1][0]:
                # superseded: never granted again with that token
                _s, again = run(state, other, other_token, now + 1000, duration=10)
                assert not again["granted"]
