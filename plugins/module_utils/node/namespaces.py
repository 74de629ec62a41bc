# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Namespaces on the hosts: how ``(namespace, name)`` becomes the one name the node layer keys everything by.

As in Kubernetes, ``metadata.namespace`` (default ``default``) is part of every object's identity. The node layer
keys pods, owner records, leases, journals, units and volumes by one name (its "node name"):

* in ``default``, the Kubernetes name itself (what every host held before namespaces: nothing is renamed, nothing
  restarts at the upgrade);
* in any other namespace, ``<namespace>_<name>``. ``_`` is in no DNS-1123 label, so such a name never equals a name
  of ``default`` nor one of another namespace, and it is allowed in unit names, file names and podman's names.

The pod's own hostname, ``POD_NAME``/``HOSTNAME`` and the downward API's ``metadata.name`` are the Kubernetes name
(``split``); ``metadata.namespace`` is the namespace. Pure, stdlib only, Python 3.8 (runs on the hosts, and is
shipped with the CronJob runner).
"""

from __future__ import annotations

DEFAULT = "default"
SEPARATOR = "_"


def node_name(namespace, name):
    """The node layer's name of object ``name`` in ``namespace`` (None: ``default``)."""
    if namespace in (None, DEFAULT):
        return name
    return f"{namespace}{SEPARATOR}{name}"


def split(name):
    """(namespace, Kubernetes name) of a node name: the inverse of ``node_name``."""
    namespace, sep, rest = name.partition(SEPARATOR)
    return (namespace, rest) if sep else (DEFAULT, name)


def kube_name(name):
    """The Kubernetes name of a node name (``prod_web-0`` -> ``web-0``)."""
    return split(name)[1]


def namespace_of(name):
    """The namespace of a node name (``prod_web-0`` -> ``prod``; ``web-0`` -> ``default``)."""
    return split(name)[0]


def display(name):
    """How messages name an object: ``web`` in ``default``, ``prod/web`` elsewhere (as kubectl's ``-n prod web``)."""
    namespace, rest = split(name)
    return rest if namespace == DEFAULT else f"{namespace}/{rest}"
