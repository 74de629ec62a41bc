# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kubernetes manifests as documents: from a file, a directory, a multi-document YAML string or a list.

Each document keeps where it came from (``file.yaml#2``, ``definition[0]``) so every error can name it.
``kind: List`` documents (what ``kubectl get -o yaml`` writes) are expanded into their items.

A document is bounded (``MAX_DEPTH``, ``MAX_ALIASES``, ``MAX_NODES``, ``MAX_BYTES``) while it is composed, before
anything is built from it: YAML aliases repeat what they point to, so a few hundred bytes could otherwise expand
to gigabytes (an alias bomb) once copied or serialised, and deep nesting would exhaust Python's recursion.
Messages of the YAML parser keep its explanation and the line and column, never the text of the line: a
malformed line of a Secret would otherwise be echoed into the task's result.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import yaml

# What `kubectl apply -f <dir>` reads from a directory (not recursively).
MANIFEST_EXTENSIONS = (".yaml", ".yml", ".json")

# Bounds of one document, aliases expanded (an alias counts as everything it points to, each time it is used).
# The deepest real manifest (a CronJob's node affinity values) is about 15 levels; a Kubernetes object is at most
# 1.5 MiB (etcd) and a request 3 MiB (the API server), so real manifests are far below these.
MAX_DEPTH = 100  # levels of nesting
MAX_ALIASES = 1000  # uses of an alias (*name), merge keys (<<: *name) included
MAX_NODES = 200_000  # values: scalars, lists and mappings, keys included
MAX_BYTES = 4 * 1024 * 1024  # characters of all scalars, keys included


class LoadError(ValueError):
    """A manifest source that cannot be read as YAML documents."""


class _Refused(yaml.MarkedYAMLError):
    """A document beyond one of the bounds (raised while composing it, with the position that crossed it)."""

    def __init__(self, problem, mark):
        super().__init__(problem=problem, problem_mark=mark)


@dataclass(frozen=True)
class Document:
    source: str  # where it came from, for messages
    body: object  # the parsed document (a mapping when valid)


def _expand(source, body):
    if isinstance(body, dict) and body.get("kind") == "List" and isinstance(body.get("items"), list):
        return [Document(f"{source}.items[{i}]", item) for i, item in enumerate(body["items"])]
    return [Document(source, body)]


class _BoundedComposer(yaml.composer.Composer):
    """PyYAML's composer (events -> nodes) counting, while it composes each document, its depth and the values and
    characters it expands to; construction then as PyYAML's safe loader.

    Composing is linear in the text: aliases are shared node objects there, and the expanded size of each node is
    computed once (bottom-up) and added each time an alias uses it. So every bound is checked before anything is
    built, and the work done for a hostile document is that of reading its text (libyaml's composer, in C, could
    not be bounded this way: it recurses out of reach of a depth bound).
    """

    def _start_document(self):
        self._depth = 0  # collections enclosing the node being composed
        self._aliases = 0
        self._nodes = 0
        self._bytes = 0
        self._sizes = {}  # id(node) -> (values, characters, depth) of the node expanded; the nodes live until the document is composed

    def compose_document(self):
        self._start_document()
        try:
            return super().compose_document()
        finally:
            self._sizes = {}

    def _count(self, nodes, characters, mark):
        self._nodes += nodes
        self._bytes += characters
        if self._nodes > MAX_NODES:
            raise _Refused(f"the document expands to more than {MAX_NODES} values (the limit per document; an alias counts each time it is used)", mark)
        if self._bytes > MAX_BYTES:
            limit = f"{MAX_BYTES // (1024 * 1024)} MiB"
            raise _Refused(f"the document expands to more than {limit} of text (the limit per document; an alias counts each time it is used)", mark)

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            target = self.anchors.get(event.anchor)
            if target is not None:  # else PyYAML reports the undefined alias
                self._aliases += 1
                if self._aliases > MAX_ALIASES:
                    raise _Refused(f"more than {MAX_ALIASES} aliases in one document (the limit per document)", event.start_mark)
                size = self._sizes.get(id(target))
                if size is None:
                    raise _Refused("an alias inside the node it refers to: a recursive structure cannot be a manifest", event.start_mark)
                nodes, characters, depth = size
                if self._depth + depth > MAX_DEPTH:
                    raise _Refused(f"the document nests more than {MAX_DEPTH} levels deep, aliases expanded (the limit per document)", event.start_mark)
                self._count(nodes, characters, event.start_mark)
            return super().compose_node(parent, index)
        if self._depth >= MAX_DEPTH:
            raise _Refused(f"the document nests more than {MAX_DEPTH} levels deep (the limit per document)", event.start_mark)
        self._count(1, len(event.value) if isinstance(event, yaml.ScalarEvent) else 0, event.start_mark)
        self._depth += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if isinstance(node, yaml.ScalarNode):
            self._sizes[id(node)] = (1, len(node.value), 1)
        else:
            children = node.value if isinstance(node, yaml.SequenceNode) else [child for pair in node.value for child in pair]
            sizes = [self._sizes[id(child)] for child in children]
            self._sizes[id(node)] = (1 + sum(s[0] for s in sizes), sum(s[1] for s in sizes), 1 + max((s[2] for s in sizes), default=0))
        return node

    def construct_object(self, node, deep=False):
        try:
            return super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, OverflowError):
            # A scalar that its resolved type cannot hold (2024-13-01 as a date, an integer of 5000 digits): the
            # exception's own text may quote the value, so only its type is named.
            kind = node.tag.rsplit(":", 1)[-1]
            raise yaml.constructor.ConstructorError(problem=f"not a valid {kind} value (quote it to keep it as text)", problem_mark=node.start_mark) from None


class _Loader(_BoundedComposer, yaml.SafeLoader):
    """PyYAML's safe loader (the pure-Python one, as yaml.safe_load: the same documents are accepted as before),
    with the bounded composer."""


# PyYAML quotes parts of the input in some messages (an undefined alias's name, an unknown tag): only its own token
# names ('<block end>') and single characters (the one that cannot start a token) are kept.
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_KEPT_QUOTE = re.compile(r"<[a-z ]+>|\\?.|\\x[0-9a-fA-F]{2}|\\u[0-9a-fA-F]{4}|\\U[0-9a-fA-F]{8}", re.DOTALL)


def _without_values(text):
    return _QUOTED.sub(lambda m: m.group(0) if _KEPT_QUOTE.fullmatch(m.group(0)[1:-1]) else "(value not shown)", text)


def _at(mark):
    return f"line {mark.line + 1}, column {mark.column + 1}"


def _message(exc):
    """A parser error as its explanation and position, without the snippet of the line that str(exc) has."""
    if isinstance(exc, yaml.MarkedYAMLError):
        problem = _without_values(exc.problem or exc.context or "not valid YAML")
        message = f"{_at(exc.problem_mark)}: {problem}" if exc.problem_mark is not None else problem
        if exc.context and exc.problem:
            context = _without_values(exc.context)
            message += f" ({context}, {_at(exc.context_mark)})" if exc.context_mark is not None else f" ({context})"
        return message if isinstance(exc, _Refused) else f"not valid YAML: {message}"
    if isinstance(exc, yaml.reader.ReaderError):
        return f"not valid YAML: character {exc.position + 1}: {_without_values(str(exc.reason))}"
    return "not valid YAML"


def from_text(text, source):
    """Every non-empty document of a YAML (or JSON) text."""
    documents = []
    index = 0
    loader = None
    try:
        loader = _Loader(text)  # the reader checks the characters of the whole text here
        while loader.check_data():
            body = loader.get_data()
            if body is not None:  # an empty document (a trailing '---'), as kubectl skips it
                documents += _expand(f"{source}#{index}", body)
            index += 1
    except yaml.YAMLError as exc:
        raise LoadError(f"{source}#{index}: {_message(exc)}") from None
    finally:
        if loader is not None:
            loader.dispose()
    return documents


def _bounded(body, source):
    """A document given as data (a mapping from the playbook, not a text): the same bounds, counted without
    recursion and stopping at the first one crossed (shared or cyclic references count each time they are met)."""
    nodes = characters = 0
    pending = [(body, 1)]
    while pending:
        value, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise LoadError(f"{source}: the document nests more than {MAX_DEPTH} levels deep (the limit per document)")
        nodes += 1
        if isinstance(value, dict):
            for key, item in value.items():
                pending += ((key, depth + 1), (item, depth + 1))
        elif isinstance(value, (list, tuple)):
            pending += ((item, depth + 1) for item in value)
        elif isinstance(value, (str, bytes)):
            characters += len(value)
        if nodes > MAX_NODES:
            raise LoadError(f"{source}: the document is more than {MAX_NODES} values (the limit per document)")
        if characters > MAX_BYTES:
            raise LoadError(f"{source}: the document is more than {MAX_BYTES // (1024 * 1024)} MiB of text (the limit per document)")
    return body


def from_file(path):
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise LoadError(f"{path}: cannot be read: {exc}") from None
    return from_text(text, path)


def from_path(path):
    """A file, or the manifest files of a directory in name order (as kubectl reads them)."""
    if os.path.isdir(path):
        names = sorted(n for n in os.listdir(path) if n.endswith(MANIFEST_EXTENSIONS) and not n.startswith("."))
        if not names:
            raise LoadError(f"{path}: no manifest files ({', '.join(MANIFEST_EXTENSIONS)}) in this directory")
        documents = []
        for name in names:
            documents += from_file(os.path.join(path, name))
        return documents
    if not os.path.exists(path):
        raise LoadError(f"{path}: no such file or directory")
    return from_file(path)


def from_definition(definition, source="definition"):
    """``definition``: a YAML text (one or more documents), one mapping, or a list of mappings or YAML texts."""
    if isinstance(definition, str):
        return from_text(definition, source)
    if isinstance(definition, dict):
        return _expand(source, _bounded(definition, source))
    if isinstance(definition, list):
        documents = []
        for index, item in enumerate(definition):
            if isinstance(item, str):
                documents += from_text(item, f"{source}[{index}]")
            elif item is not None:
                documents += _expand(f"{source}[{index}]", _bounded(item, f"{source}[{index}]"))
        return documents
    raise LoadError(f"{source}: must be a YAML text, a mapping or a list of them, got {type(definition).__name__}")
