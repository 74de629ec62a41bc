"""Make the repository importable as ``ansible_collections.hostfleet.workloads``.

The repository root is the collection root, so tests build (once) a tiny
``ansible_collections/hostfleet/workloads`` tree that is a symlink to it, and
put that tree first on ``sys.path`` and in ``ANSIBLE_COLLECTIONS_PATH``.
"""

import hashlib
import os
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
# One tree per checkout: two checkouts tested at once on one machine must not swap each other's code.
_CHECKOUT = hashlib.sha256(str(REPO_ROOT).encode()).hexdigest()[:10]
COLLECTIONS_ROOT = Path(os.environ.get("HOSTFLEET_COLLECTIONS_ROOT", Path(tempfile.gettempdir()) / f"hostfleet-collections-{_CHECKOUT}"))


def _collection_tree() -> Path:
    link = COLLECTIONS_ROOT / "ansible_collections" / "hostfleet" / "workloads"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not (link.is_symlink() and link.resolve() == REPO_ROOT):
        tmp = link.with_name(f".workloads.{os.getpid()}")
        if tmp.is_symlink():
            tmp.unlink()
        tmp.symlink_to(REPO_ROOT)
        os.replace(tmp, link)
    return COLLECTIONS_ROOT


_root = str(_collection_tree())
if _root not in sys.path:
    sys.path.insert(0, _root)
os.environ["ANSIBLE_COLLECTIONS_PATH"] = _root


def pytest_configure(config):
    config.addinivalue_line("markers", "both_versions: run on every supported ansible-core (the fan-out glue, sanity-like checks)")
    config.addinivalue_line("markers", "slow: takes more than ~30 s (crash-loop backoff, rollouts)")
