# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kubernetes resource quantities ("500m", "1.5", "128Mi", "1G") as integers.

CPU becomes millicores and memory bytes, both rounded up, as the kubelet does.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
from decimal import ROUND_CEILING, Decimal, DecimalException

# Rendered as integers in unit files and hashed as JSON: bounded like Kubernetes' int64 quantities.
MAX_VALUE = 2**63 - 1
_QUANTITY = re.compile(r"\A([+]?[0-9]+(?:\.[0-9]*)?|[+]?\.[0-9]+)(?:([eE][+-]?[0-9]+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?\Z")
_SUFFIX = {
    None: Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}


class QuantityError(ValueError):
    pass


def parse_quantity(value):
    """Return the Decimal value of a Kubernetes quantity (int, float or string)."""
    if isinstance(value, bool):
        raise QuantityError("must be a quantity such as 500m, 2, 128Mi or 1G, not a boolean")
    if isinstance(value, int) and value > MAX_VALUE:
        raise QuantityError("is out of range")  # before str(), which refuses ints of more than 4300 digits on Python 3.11+
    if isinstance(value, (int, float)):
        value = repr(value) if isinstance(value, float) else str(value)
    if not isinstance(value, str):
        raise QuantityError("must be a quantity such as 500m, 2, 128Mi or 1G")
    match = _QUANTITY.match(value.strip())
    if not match:
        raise QuantityError("%r is not a quantity (examples: 500m, 2, 128Mi, 1G)" % value)
    number, exponent, suffix = match.groups()
    # An exponent of thousands of digits is no quantity: int() would refuse it and Decimal overflow long before.
    if exponent and len(exponent[1:].lstrip("+-").lstrip("0")) > 4:
        raise QuantityError("%r is out of range" % value)
    try:
        result = Decimal(number)
        if exponent:
            result = result * (Decimal(10) ** int(exponent[1:]))
        else:
            result = result * _SUFFIX[suffix]
    except (DecimalException, OverflowError, ValueError):
        raise QuantityError("%r is not a quantity" % value) from None
    if result < 0:
        raise QuantityError("%r must not be negative" % value)
    return result


def _bounded(value, scaled):
    try:
        result = int(scaled.to_integral_value(rounding=ROUND_CEILING))
    except (DecimalException, OverflowError, ValueError):
        raise QuantityError("%r is out of range" % (value,)) from None
    if result > MAX_VALUE:
        raise QuantityError("%r is out of range" % (value,))
    return result


def cpu_millis(value):
    """CPU quantity in millicores, rounded up ("250m" -> 250, "1.5" -> 1500)."""
    quantity = parse_quantity(value)
    if quantity > MAX_VALUE:
        raise QuantityError("%r is out of range" % (value,))
    return _bounded(value, quantity * 1000)


def memory_bytes(value):
    """Memory quantity in bytes, rounded up ("128Mi" -> 134217728)."""
    return _bounded(value, parse_quantity(value))


def count(value):
    """A plain non-negative integer count (pids)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise QuantityError("must be a non-negative integer")
    if value > MAX_VALUE:
        raise QuantityError("must be at most %d" % MAX_VALUE)
    return value
