# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Int-or-percent budgets (Kubernetes' IntOrString), as the Deployment controller resolves them.

``maxSurge`` rounds UP and ``maxUnavailable`` rounds DOWN, so that with
10 replicas and 25% / 25% a rollout may run 13 pods and keep 8 available::

    >>> resolve_fenceposts("25%", "25%", 10)
    (3, 2)

If both resolve to 0 (e.g. 1 replica, maxSurge 0, maxUnavailable 10%),
maxUnavailable becomes 1, otherwise the rollout could never move.
"""

from __future__ import annotations

import math
import re

from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError

_PERCENT = re.compile(r"^([0-9]+)%$")


def parse_int_or_percent(value, path: str, max_percent: int | None = None) -> int | str:
    """Accept a non-negative int or "N%" and return it unchanged (normal form)."""
    if isinstance(value, bool):
        raise SpecError(path, "must be an integer or a percentage such as '25%', got a boolean")
    if isinstance(value, int):
        if value < 0:
            raise SpecError(path, f"must be greater than or equal to 0, got {value}")
        return value
    if isinstance(value, str):
        match = _PERCENT.match(value.strip())
        if not match:
            raise SpecError(path, f"must be an integer or a percentage such as '25%', got {value!r}")
        percent = int(match.group(1))
        if max_percent is not None and percent > max_percent:
            raise SpecError(path, f"must not be greater than {max_percent}%, got {value!r}")
        return f"{percent}%"
    raise SpecError(path, f"must be an integer or a percentage such as '25%', got {type(value).__name__}")


def is_zero(value: int | str) -> bool:
    return value == 0 or (isinstance(value, str) and int(value[:-1]) == 0)


def scaled_value(value: int | str, total: int, round_up: bool) -> int:
    """Resolve an int-or-percent against ``total`` (Kubernetes' GetScaledValueFromIntOrPercent)."""
    if isinstance(value, int):
        return value
    percent = int(value[:-1])
    # Integer arithmetic: no float surprises at exact multiples (e.g. 30% of 10 is exactly 3).
    if round_up:
        return -((-percent * total) // 100)
    return (percent * total) // 100


def resolve_fenceposts(max_surge: int | str, max_unavailable: int | str, replicas: int) -> tuple[int, int]:
    """Return (surge, unavailable) as absolute numbers for ``replicas`` desired pods."""
    surge = scaled_value(max_surge, replicas, round_up=True)
    unavailable = scaled_value(max_unavailable, replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def round_half_away(value: float) -> int:
    """Go's math.Round (halves away from zero), used by proportional scaling."""
    return int(math.floor(value + 0.5)) if value >= 0 else -int(math.floor(-value + 0.5))
