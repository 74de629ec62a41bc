# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One writer per workload: the controller's side of a workload's lease (pure: no I/O of its own).

A run takes the workload's lease on a strict majority of the nodes the task
targets (reachable or not), each node granting it atomically under a lock
(module_utils/node/lease.py). Two majorities of one node set always share a
node, and a node grants only to one holder at a time, so two runs can never
both hold it; every act carries the lease's holder and fencing token, and a
node refuses an act whose lease is not its current one.

The lease rides on the observation rounds (``pod_info``'s ``lease``): the
first round takes it, every later round renews it, a last round releases it.
``Claim.observe`` runs those rounds through a function the caller gives
(``ask``: one ``pod_info`` round with a lease request, per host), so the logic
here is testable against simulated nodes.

Tokens: milliseconds of the controller's clock, or one more than the highest
token a node reported, whichever is larger, so a new run needs no extra
round to learn the highest token first.
"""

from __future__ import annotations

import random
import typing as t
from dataclasses import dataclass, field

# A node lets a lease go this long after its last renewal: how long a killed run (kill -9, a lost laptop) blocks
# the workload. Renewals come with every observation round (about every second while a rollout waits).
DURATION = 30.0
# The holder stops trusting its lease this much earlier than the nodes may let it go (clock rates, round trips).
MARGIN = 5.0
# With no holder in sight (two runs took a part each, or too few nodes answered), try again this long.
CONTENDED_RETRY = 5.0
# With a majority, wait this long for other runs' leftovers on the remaining nodes (a loser releases at once).
SETTLE = DURATION + 1.0
SETTLE_POLL = 0.2


class LeaseError(Exception):
    """The run does not hold the workload's lease: it changed nothing since (``acted`` says whether it had before)."""

    def __init__(self, msg: str, holder: dict | None = None, acted: bool = False):
        super().__init__(msg)
        self.holder = holder
        self.acted = acted


def majority(total: int) -> int:
    return total // 2 + 1


def next_token(now: float, highest_seen: int) -> int:
    return max(int(now * 1000), highest_seen + 1)


@dataclass
class Tally:
    """What one round's replies say, node by node."""

    granted: list[str] = field(default_factory=list)
    others: dict[str, list[str]] = field(default_factory=dict)  # holder id -> nodes where that holder's lease is current
    holders: dict[str, dict] = field(default_factory=dict)  # holder id -> the newest reply about it
    stale: list[str] = field(default_factory=list)  # free nodes that refused our token (their high-water mark is ours or above)
    silent: list[str] = field(default_factory=list)  # no answer: unreachable, failed, not asked
    hwm: int = 0


def tally(replies: t.Mapping[str, dict | None], me: str) -> Tally:
    result = Tally()
    for node, answer in replies.items():
        if not answer:
            result.silent.append(node)
            continue
        result.hwm = max(result.hwm, int(answer.get("hwm") or 0))
        holder = answer.get("holder")
        if answer.get("granted") or (holder and holder.get("id") == me):
            result.granted.append(node)
        elif holder:
            result.others.setdefault(holder["id"], []).append(node)
            result.holders[holder["id"]] = holder
        elif answer.get("reason") == "stale":
            result.stale.append(node)
    return result


def describe_holder(holder: dict) -> str:
    expires = max(holder.get("expires_in", 0), 0)
    return f"{holder.get('description') or holder.get('id')} (for {holder.get('held_for', 0):.0f} s, expires in {expires:.0f} s unless renewed)"


def held_message(workload: str, counted: Tally, total: int) -> str:
    """Who holds the workload's lease, for the run that could not take it."""
    parts = [f"{describe_holder(counted.holders[h])} on {', '.join(sorted(nodes))}" for h, nodes in sorted(counted.others.items(), key=lambda i: -len(i[1]))]
    if parts:
        who = f"another run holds its lease: {'; '.join(parts)}"
    else:
        who = f"this run could take its lease on {len(counted.granted)} of {total} nodes only, and a majority ({majority(total)}) is needed"
    if counted.silent:
        who += f" (no answer from {', '.join(sorted(counted.silent))})"
    return f"{workload} is being changed by another run or cannot be locked: {who}. Nothing changed; run again when it ends."


@dataclass
class Claim:
    """This run's claim to one workload's lease over ``nodes`` (every node the task targets)."""

    workload: str  # "Deployment api", for messages
    holder: str  # random per run
    description: str  # user@host pid N, playbook ...
    nodes: list[str]
    read_only: bool = False  # check mode: look, take nothing
    duration: float = DURATION
    rng: random.Random = field(default_factory=random.Random)
    token: int = 0
    held: set[str] = field(default_factory=set)
    valid_until: float = 0.0
    acquired: bool = False
    acted: bool = False
    warnings: list[str] = field(default_factory=list)

    def request(self, op: str = "acquire") -> dict:
        return {"holder": self.holder, "token": self.token, "duration": self.duration, "op": "read" if self.read_only else op, "description": self.description}

    def valid(self, now: float) -> bool:
        return self.read_only or (self.acquired and now < self.valid_until)

    def observe(self, ask: t.Callable[..., dict[str, dict]], clock: t.Callable[[], float], sleep: t.Callable[[float], None]) -> dict[str, dict]:
        """One observation round with the lease on it: taken (first round) or renewed. Returns the round's results.

        ``ask(request, nodes=None)`` runs ``pod_info`` with ``lease=request`` on ``nodes`` (default: every node still
        asked) and returns {node: result} (a result's ``lease`` is the node's reply). Raises LeaseError when the lease is
        not (or no longer) ours, after letting go of what this round took.
        """
        start = clock()
        if not self.token:
            self.token = next_token(start, 0)
        retry_until = None
        gone: dict[str, dict] = {}  # nodes that did not answer in this call: not asked again by its retries
        while True:
            sent = clock()
            results = dict(ask(self.request(), [n for n in self.nodes if n not in gone]) if gone else ask(self.request()), **gone)
            gone = {n: r for n, r in results.items() if _reply(r) is None and (r or {}).get("unreachable")}
            counted = tally({n: _reply(results.get(n)) for n in self.nodes}, self.holder)
            # Retries are timed from the first answer: a round that waited for an unreachable node's timeout must
            # not use up the window.
            retry_until = clock() + CONTENDED_RETRY if retry_until is None else retry_until
            if self.read_only:
                if counted.others:
                    who = held_message(self.workload, counted, len(self.nodes)).split(". Nothing changed", maxsplit=1)[0]
                    self.warnings.append(f"{who}; the plan shows the fleet as it is now")
                return results
            if len(counted.granted) >= majority(len(self.nodes)):
                self.held, self.acquired = set(counted.granted), True
                self.valid_until = sent + self.duration - MARGIN
                if counted.stale:
                    # A free node's high-water mark is at or above our token (a run that lost to us took it for a
                    # moment): move to a higher token, which the nodes we hold accept from us and the others grant.
                    self.token = max(self.token, counted.hwm) + 1
                if (counted.others or counted.stale) and clock() < start + SETTLE:
                    sleep(SETTLE_POLL)
                    continue
                return results
            if self.acquired:
                self.acquired = False
                raise LeaseError(
                    f"{self.workload}: this run lost its lease (held on {len(counted.granted)} of {len(self.nodes)} nodes, a majority is "
                    f"{majority(len(self.nodes))}): {held_message(self.workload, counted, len(self.nodes))}",
                    holder=_leader(counted),
                    acted=self.acted,
                )
            if counted.granted:
                self.release(ask, counted.granted)
            leader = _leader(counted, len(self.nodes))
            if leader is not None or clock() >= retry_until:
                raise LeaseError(held_message(self.workload, counted, len(self.nodes)), holder=leader or _leader(counted), acted=self.acted)
            # Two runs split the nodes, or too few answered: both let go and try again at random moments.
            sleep(self.rng.uniform(0.05, 0.5))
            self.token = next_token(clock(), max(self.token, counted.hwm))

    def release(self, ask: t.Callable[..., dict[str, dict]], nodes: t.Iterable[str] | None = None) -> None:
        """Let the lease go where it is held (at the end of the run, and on every path out of it)."""
        if self.read_only or not self.token:
            return
        ask(self.request("release"), sorted(set(nodes if nodes is not None else self.held)))
        self.held, self.acquired = set(), False


def _reply(result: dict | None) -> dict | None:
    if not result or result.get("unreachable") or result.get("failed"):
        return None
    return result.get("lease")


def _leader(counted: Tally, total: int | None = None) -> dict | None:
    """The other holder with the most nodes (with ``total``: only if that is a majority of them)."""
    if not counted.others:
        return None
    best = max(counted.others, key=lambda h: len(counted.others[h]))
    if total is not None and len(counted.others[best]) < majority(total):
        return None
    return counted.holders[best]
