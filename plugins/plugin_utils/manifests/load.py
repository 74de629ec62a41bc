# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kubernetes manifests as documents: from a file, a directory, a multi-document YAML string or a list.

Each document keeps where it came from (``file.yaml#2``, ``definition[0]``) so every error can name it.
``kind: List`` documents (what ``kubectl get -o yaml`` writes) are expanded into their items.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import yaml

# What `kubectl apply -f <dir>` reads from a directory (not recursively).
MANIFEST_EXTENSIONS = (".yaml", ".yml", ".json")


class LoadError(ValueError):
    """A manifest source that cannot be read as YAML documents."""


@dataclass(frozen=True)
class Document:
    source: str  # where it came from, for messages
    body: object  # the parsed document (a mapping when valid)


def _expand(source, body):
    if isinstance(body, dict) and body.get("kind") == "List" and isinstance(body.get("items"), list):
        return [Document(f"{source}.items[{i}]", item) for i, item in enumerate(body["items"])]
    return [Document(source, body)]


def from_text(text, source):
    """Every non-empty document of a YAML (or JSON) text."""
    try:
        bodies = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        raise LoadError(f"{source}: not valid YAML: {exc}") from None
    documents = []
    for index, body in enumerate(bodies):
        if body is None:
            continue  # an empty document (a trailing '---'), as kubectl skips it
        documents += _expand(f"{source}#{index}", body)
    return documents


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
        return _expand(source, definition)
    if isinstance(definition, list):
        documents = []
        for index, item in enumerate(definition):
            if isinstance(item, str):
                documents += from_text(item, f"{source}[{index}]")
            elif item is not None:
                documents += _expand(f"{source}[{index}]", item)
        return documents
    raise LoadError(f"{source}: must be a YAML text, a mapping or a list of them, got {type(definition).__name__}")
