# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Label selectors, as Kubernetes writes them.

Two flavours share one requirement type:

* ``LabelSelector`` (``matchLabels`` + ``matchExpressions`` with In / NotIn /
  Exists / DoesNotExist) selects pods: a Deployment's selector, pod
  anti-affinity terms, topology spread constraints.
* ``NodeSelectorTerm`` (``matchExpressions`` that may also use Gt / Lt, and
  ``matchFields`` on ``metadata.name``) selects nodes: required and preferred
  node affinity.

Parsing raises ``SpecError`` naming the offending field; matching is a pure
predicate over a ``dict`` of labels.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import labels as parse_labels

POD_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
NODE_OPERATORS = POD_OPERATORS + ("Gt", "Lt")


def _mapping(value, path):
    if not isinstance(value, dict):
        raise SpecError(path, f"must be a mapping, got {type(value).__name__}")
    for key in value:
        if not isinstance(key, str):
            raise SpecError(path, f"field names must be strings, got {key!r}")
    return value


def known_fields(value, allowed, path):
    """Refuse any field of ``value`` not in ``allowed``, naming its path."""
    _mapping(value, path)
    for key in value:
        if key not in allowed:
            raise SpecError(f"{path}.{key}", f"unknown field (allowed here: {', '.join(sorted(allowed))})")
    return value


def _or_empty(value):
    # Not `value or []`: a falsy value of the wrong type ("", 0, false) must reach the type check.
    return [] if value is None else value


def _list(value, path):
    if not isinstance(value, list):
        raise SpecError(path, f"must be a list, got {type(value).__name__}")
    return value


@dataclass(frozen=True)
class Requirement:
    """One ``matchExpressions`` entry: ``key operator values``."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.operator == "Exists":
            return present
        if self.operator == "DoesNotExist":
            return not present
        if self.operator == "In":
            return present and labels[self.key] in self.values
        if self.operator == "NotIn":
            # As in Kubernetes: a missing key satisfies NotIn.
            return not present or labels[self.key] not in self.values
        # Gt / Lt compare integers; a missing or non-integer label never matches.
        if not present:
            return False
        try:
            actual = int(labels[self.key])
        except ValueError:
            return False
        return actual > int(self.values[0]) if self.operator == "Gt" else actual < int(self.values[0])

    def to_json(self) -> dict:
        result: dict = {"key": self.key, "operator": self.operator}
        if self.values:
            result["values"] = list(self.values)
        return result


def parse_requirement(value, path, operators=POD_OPERATORS) -> Requirement:
    known_fields(value, {"key", "operator", "values"}, path)
    key = value.get("key")
    if not isinstance(key, str) or not key:
        raise SpecError(f"{path}.key", "is required (a label key)")
    parse_labels({key: ""}, f"{path}.key")
    operator = value.get("operator")
    if operator not in operators:
        raise SpecError(f"{path}.operator", f"must be one of {', '.join(operators)}, got {operator!r}")
    raw_values = value.get("values")
    values = []
    if raw_values is not None:
        for i, item in enumerate(_list(raw_values, f"{path}.values")):
            if isinstance(item, bool) or not isinstance(item, (str, int)):
                raise SpecError(f"{path}.values[{i}]", f"must be a string, got {type(item).__name__}")
            values.append(str(item))
    if operator in ("In", "NotIn") and not values:
        raise SpecError(f"{path}.values", f"must be non-empty when operator is {operator}")
    if operator in ("Exists", "DoesNotExist") and values:
        raise SpecError(f"{path}.values", f"must be empty when operator is {operator}")
    if operator in ("Gt", "Lt"):
        if len(values) != 1:
            raise SpecError(f"{path}.values", f"must have exactly one value when operator is {operator}")
        try:
            int(values[0])
        except ValueError:
            raise SpecError(f"{path}.values[0]", f"must be an integer for operator {operator}, got {values[0]!r}") from None
    return Requirement(key, operator, tuple(values))


@dataclass(frozen=True)
class LabelSelector:
    """``matchLabels`` AND every ``matchExpressions`` requirement."""

    match_labels: tuple[tuple[str, str], ...] = ()
    match_expressions: tuple[Requirement, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.match_labels and not self.match_expressions

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.match_labels) and all(r.matches(labels) for r in self.match_expressions)

    def with_labels(self, extra: Mapping[str, str]) -> LabelSelector:
        """This selector narrowed by extra ``key: value`` pairs (``matchLabelKeys``)."""
        merged = dict(self.match_labels)
        merged.update(extra)
        return LabelSelector(tuple(sorted(merged.items())), self.match_expressions)

    def to_json(self) -> dict:
        result: dict = {}
        if self.match_labels:
            result["matchLabels"] = dict(self.match_labels)
        if self.match_expressions:
            result["matchExpressions"] = [r.to_json() for r in self.match_expressions]
        return result


def parse_label_selector(value, path, required=False) -> LabelSelector:
    """A metav1.LabelSelector. ``required`` also refuses a selector that selects everything."""
    if value is None:
        if required:
            raise SpecError(path, "is required")
        return LabelSelector()
    known_fields(value, {"matchLabels", "matchExpressions"}, path)
    match_labels = parse_labels(value.get("matchLabels"), f"{path}.matchLabels")
    raw_expressions = _list(_or_empty(value.get("matchExpressions")), f"{path}.matchExpressions")
    expressions = tuple(parse_requirement(item, f"{path}.matchExpressions[{i}]") for i, item in enumerate(raw_expressions))
    selector = LabelSelector(tuple(sorted(match_labels.items())), expressions)
    if required and selector.empty:
        raise SpecError(path, "empty selector is invalid: give matchLabels or matchExpressions")
    return selector


@dataclass(frozen=True)
class NodeSelectorTerm:
    """Node affinity term: every expression on labels and every field requirement must hold."""

    match_expressions: tuple[Requirement, ...] = ()
    match_fields: tuple[Requirement, ...] = ()

    def matches(self, node_name: str, labels: Mapping[str, str]) -> bool:
        if not self.match_expressions and not self.match_fields:
            return False  # Kubernetes: an empty term matches no node
        fields = {"metadata.name": node_name}
        return all(r.matches(labels) for r in self.match_expressions) and all(r.matches(fields) for r in self.match_fields)

    def to_json(self) -> dict:
        result = {}
        if self.match_expressions:
            result["matchExpressions"] = [r.to_json() for r in self.match_expressions]
        if self.match_fields:
            result["matchFields"] = [r.to_json() for r in self.match_fields]
        return result


def parse_node_selector_term(value, path) -> NodeSelectorTerm:
    known_fields(value, {"matchExpressions", "matchFields"}, path)
    expressions = tuple(
        parse_requirement(item, f"{path}.matchExpressions[{i}]", NODE_OPERATORS)
        for i, item in enumerate(_list(_or_empty(value.get("matchExpressions")), f"{path}.matchExpressions"))
    )
    fields = []
    for i, item in enumerate(_list(_or_empty(value.get("matchFields")), f"{path}.matchFields")):
        requirement = parse_requirement(item, f"{path}.matchFields[{i}]", ("In", "NotIn"))
        if requirement.key != "metadata.name":
            raise SpecError(f"{path}.matchFields[{i}].key", f"only metadata.name is supported, got {requirement.key!r}")
        fields.append(requirement)
    return NodeSelectorTerm(expressions, tuple(fields))
