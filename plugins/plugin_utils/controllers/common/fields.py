# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Readers of one spec field, shared by every kind's parser: the value or its default, or a SpecError naming the field.

``spec`` is the mapping the field is in and ``path`` that mapping's path, so errors read
``spec.rollingUpdate.partition: must be an integer, got str '1'``. An absent field and an
explicit null both take the default, as in Kubernetes.
"""

from __future__ import annotations

from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError


def integer_field(spec, key, path, default, minimum=0):
    """An integer >= ``minimum`` (booleans are not integers here, unlike in Python)."""
    value = spec.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"{path}.{key}", f"must be an integer, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise SpecError(f"{path}.{key}", f"must be greater than or equal to {minimum}, got {value}")
    return value


def bool_field(spec, key, path, default=False):
    value = spec.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise SpecError(f"{path}.{key}", f"must be a boolean, got {type(value).__name__} {value!r}")
    return value


def choice_field(spec, key, path, choices):
    """One of ``choices``; absent, the first (the default)."""
    value = spec.get(key)
    if value is None:
        return choices[0]
    if value not in choices:
        raise SpecError(f"{path}.{key}", f"Unsupported value: {value!r}: supported values: {', '.join(choices)}")
    return value


def string_field(spec, key, path, default=None):
    value = spec.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise SpecError(f"{path}.{key}", f"must be a string, got {type(value).__name__} {value!r}")
    return value
