"""quantity: Kubernetes quantities to millicores and bytes, rounded up."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.hostfleet.workloads.plugins.module_utils.node import quantity
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.quantity import QuantityError


@pytest.mark.parametrize("value,millis", [
    ("500m", 500), ("1.5", 1500), (2, 2000), ("0.1", 100), (0.1, 100), (1.5, 1500), ("2", 2000), ("0", 0), ("+1", 1000),
    (".5", 500), ("1.", 1000), ("250m", 250), ("0.0005", 1), ("1u", 1), ("1n", 1), ("100000n", 1), ("1500000u", 1500),
    ("1k", 1_000_000), ("1e3", 1_000_000), ("1E-3", 1), ("1e+0", 1000), (" 1 ", 1000), ("1Ki", 1_024_000), ("1.0001", 1001),
])
def test_cpu_millis(value, millis):
    assert quantity.cpu_millis(value) == millis


@pytest.mark.parametrize("value,size", [
    ("128Mi", 128 * 2**20), ("1G", 10**9), ("1e3", 1000), ("1Ki", 1024), ("1Gi", 2**30), ("1.5Gi", 3 * 2**29), ("2Ti", 2 * 2**40),
    ("1Pi", 2**50), ("1Ei", 2**60), ("1k", 1000), ("1M", 10**6), ("1T", 10**12), ("1P", 10**15), ("1E", 10**18), (4096, 4096),
    ("0.5", 1), ("100m", 1), ("1001m", 2), ("129e6", 129_000_000), ("0", 0), (1e3, 1000),
])
def test_memory_bytes(value, size):
    assert quantity.memory_bytes(value) == size


@pytest.mark.parametrize("value", [
    "", " ", "abc", "1.5.5", "-1", "-500m", "500x", "1KB", "1MB", "1kb", "1mi", "12 Mi", "Mi", "m", "1e", "e3", "1e3Mi", "0x10", "1_000", "∞",
    "nan", "inf", float("nan"), float("inf"), -1, -0.5, True, False, None, [], {}, b"1", "1\n2",
])
def test_bad_quantities(value):
    with pytest.raises(QuantityError):
        quantity.cpu_millis(value)
    with pytest.raises(QuantityError):
        quantity.memory_bytes(value)


def test_parse_quantity_is_exact():
    assert quantity.parse_quantity("1.1") == Decimal("1.1")
    assert quantity.parse_quantity("3Mi") == 3 * 2**20
    assert quantity.parse_quantity(0.1) == Decimal("0.1")  # repr() of the float, not its binary value


@pytest.mark.parametrize("value", [0, 1, 10**6])
def test_count(value):
    assert quantity.count(value) == value


@pytest.mark.parametrize("value", [-1, True, "1", 1.0, None])
def test_bad_count(value):
    with pytest.raises(QuantityError):
        quantity.count(value)


@given(st.integers(0, 10**12))
def test_cpu_millis_of_millis_is_identity(n):
    assert quantity.cpu_millis(f"{n}m") == n
    assert quantity.cpu_millis(n) == n * 1000


@given(st.integers(0, 10**6), st.sampled_from(["Ki", "Mi", "Gi", "k", "M", "G"]))
def test_memory_suffixes_multiply(n, suffix):
    factor = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 10**3, "M": 10**6, "G": 10**9}[suffix]
    assert quantity.memory_bytes(f"{n}{suffix}") == n * factor


@given(st.decimals(min_value=0, max_value=10**6, allow_nan=False, allow_infinity=False, places=6))
def test_rounding_is_up_never_down(value):
    millis = quantity.cpu_millis(str(value))
    assert millis >= value * 1000 > millis - 1


@pytest.mark.parametrize("value", [
    "1e999999", "1e" + "9" * 5000, "1e5000", "1e-99999", "9" * 5000, "8Ei", 2**63, pytest.param(10**5000, id="10**5000"), 1e300, "1e19",
])
def test_out_of_range_quantities(value):
    # Bounded like Kubernetes' int64: neither decimal errors nor giant integers get out of here.
    with pytest.raises(QuantityError):
        quantity.memory_bytes(value)
    with pytest.raises(QuantityError):
        quantity.cpu_millis(value)


def test_largest_quantities():
    assert quantity.memory_bytes(2**63 - 1) == 2**63 - 1 and quantity.memory_bytes("7Ei") == 7 * 2**60
    assert quantity.cpu_millis("9223372036854775807m") == 2**63 - 1 and quantity.cpu_millis("1e-9999") == 1
    with pytest.raises(QuantityError):
        quantity.cpu_millis("9223372036854775808m")
    with pytest.raises(QuantityError):
        quantity.count(2**63)
