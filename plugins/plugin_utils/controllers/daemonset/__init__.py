# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The DaemonSet controller: ``spec.py`` (validation), ``sync.py`` (one step), ``update.py`` (per node)."""

from __future__ import annotations
