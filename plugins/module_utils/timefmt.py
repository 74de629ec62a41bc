# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Times as Kubernetes writes them (RFC 3339, UTC, ``Z``): the one formatter of the collection.

It lives in module_utils because the hosts format times too (Job tracking in CronJob runs):
stdlib only, Python 3.8 (no ``datetime.UTC``).
"""

from __future__ import annotations

from datetime import datetime, timezone


def rfc3339(timestamp, millis=False):
    """``2026-12-04T22:10:00Z`` for a Unix time (``.123Z`` with ``millis``, as kubectl's event times); None stays None."""
    if timestamp is None:
        return None
    moment = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    if millis:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
