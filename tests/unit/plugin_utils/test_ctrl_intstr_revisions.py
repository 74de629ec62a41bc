"""Budget arithmetic, template hashes, revision history and pod names."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.intstr import (
    parse_int_or_percent,
    resolve_fenceposts,
    round_half_away,
    scaled_value,
)
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.revisions import (
    NAME_ALPHABET,
    NameAllocator,
    cleanup_history,
    pod_name,
    template_hash,
)


@pytest.mark.parametrize(
    ("surge", "unavailable", "replicas", "expected"),
    [
        ("25%", "25%", 10, (3, 2)),  # surge rounds up (2.5 → 3), unavailable down (2.5 → 2)
        ("25%", "25%", 4, (1, 1)),
        ("25%", "25%", 1, (1, 0)),
        ("25%", "25%", 0, (0, 1)),  # both 0 → unavailable 1
        (3, 2, 10, (3, 2)),
        ("30%", "30%", 10, (3, 3)),  # exact multiples stay exact
        ("10%", "10%", 5, (1, 0)),
        (0, "10%", 5, (0, 1)),  # 0.5 rounds down to 0, both 0 → 1
        ("100%", 0, 7, (7, 0)),
        ("50%", "0%", 3, (2, 0)),
    ],
)
def test_resolve_fenceposts(surge, unavailable, replicas, expected):
    assert resolve_fenceposts(surge, unavailable, replicas) == expected


@given(st.integers(0, 100), st.integers(0, 100), st.integers(0, 500))
def test_percent_rounding_matches_the_definition(surge_pct, unavailable_pct, replicas):
    surge = scaled_value(f"{surge_pct}%", replicas, round_up=True)
    unavailable = scaled_value(f"{unavailable_pct}%", replicas, round_up=False)
    assert surge * 100 >= surge_pct * replicas > (surge - 1) * 100
    assert unavailable * 100 <= unavailable_pct * replicas < (unavailable + 1) * 100


@pytest.mark.parametrize(("value", "expected"), [(0, 0), (5, 5), ("25%", "25%"), (" 10% ", "10%"), ("007%", "7%")])
def test_int_or_percent_accepts(value, expected):
    assert parse_int_or_percent(value, "x") == expected


@pytest.mark.parametrize("value", [-1, "25", "25 %", "%", True, 1.5, None, "-5%"])
def test_int_or_percent_refuses(value):
    with pytest.raises(SpecError) as err:
        parse_int_or_percent(value, "spec.strategy.rollingUpdate.maxSurge")
    assert err.value.path == "spec.strategy.rollingUpdate.maxSurge"


def test_percent_cap():
    with pytest.raises(SpecError):
        parse_int_or_percent("150%", "x", max_percent=100)
    assert parse_int_or_percent("150%", "x") == "150%"


@pytest.mark.parametrize(("value", "expected"), [(2.5, 3), (2.4, 2), (-2.5, -3), (0.5, 1), (-0.4, 0)])
def test_round_half_away_like_go(value, expected):
    assert round_half_away(value) == expected


def test_template_hash_is_stable_and_order_independent():
    a = {"metadata": {"labels": {"app": "api", "tier": "web"}}, "spec": {"containers": [{"name": "m", "command": ["/bin/true"]}]}}
    b = {"spec": {"containers": [{"command": ["/bin/true"], "name": "m"}]}, "metadata": {"labels": {"tier": "web", "app": "api"}}}
    assert template_hash(a) == template_hash(b)
    assert re.fullmatch(r"[0-9a-f]{10}", template_hash(a))
    # a known value: the hash must never change between releases (it names running pods)
    assert template_hash({}) == "44136fa355"
    assert template_hash(a) != template_hash({**a, "metadata": {"labels": {"app": "api"}}})


def test_pod_names_are_deterministic_and_well_formed():
    name = pod_name("api", "0123456789", 0)
    assert name == pod_name("api", "0123456789", 0)
    assert re.fullmatch(rf"api-0123456789-[{NAME_ALPHABET}]{{5}}", name)
    assert pod_name("api", "0123456789", 1) != name


def test_name_allocator_skips_names_in_use():
    taken = {pod_name("api", "h", 0), pod_name("api", "h", 1)}
    alloc = NameAllocator("api", "h", 0, taken)
    assert alloc() == pod_name("api", "h", 2)
    assert alloc.counter == 3
    assert pod_name("api", "h", 2) in taken


def test_many_names_do_not_collide():
    alloc = NameAllocator("api", "h", 0, set())
    assert len({alloc() for _i in range(2000)}) == 2000


def history(*numbers):
    return {f"h{n}": {"revision": n, "template": {}, "created": float(n), "next_pod": 0} for n in numbers}


def test_history_limit_drops_oldest_revisions_without_pods():
    kept = cleanup_history(history(1, 2, 3, 4, 5), limit=2, current="h5", protected=[], revisions_with_pods=[])
    assert sorted(kept) == ["h3", "h4", "h5"]


def test_history_limit_keeps_revisions_with_pods_and_protected_ones():
    kept = cleanup_history(history(1, 2, 3, 4, 5), limit=1, current="h5", protected=["h1"], revisions_with_pods=["h2"])
    assert sorted(kept) == ["h1", "h2", "h5"]


def test_history_limit_zero_keeps_only_current():
    assert sorted(cleanup_history(history(1, 2, 3), limit=0, current="h3", protected=[], revisions_with_pods=[])) == ["h3"]


@settings(max_examples=100)
@given(st.lists(st.integers(1, 50), unique=True, min_size=1, max_size=15), st.integers(0, 12), st.data())
def test_history_limit_property(numbers, limit, data):
    hist = history(*numbers)
    current = f"h{max(numbers)}"
    busy = data.draw(st.lists(st.sampled_from(sorted(hist)), unique=True))
    kept = cleanup_history(hist, limit, current, [], busy)
    assert current in kept and set(busy) <= set(kept)
    droppable_left = [h for h in kept if h != current and h not in busy]
    assert len([h for h in kept if h != current]) <= limit or not droppable_left
    dropped = set(hist) - set(kept)
    if dropped:  # only the oldest are dropped
        assert max(hist[h]["revision"] for h in dropped) < min(hist[h]["revision"] for h in droppable_left) if droppable_left else True
