"""The prioritize decision: score candidate nodes 0..10 for an offline pod.

kube-scheduler multiplies the score by the extender's weight and by 10 and adds it to its own plugins' scores,
so the scale must stay within 0..10. Two things count, in this order:

- **reservation** (0, 3 or 6): 6 when the plan placed this team's pods of the pod's class on the node (or of
  its role, when the pod names no class), 3 when it placed only other pods of the team there, 0 otherwise;
  following the plan keeps the scheduler where the planner left room;
- **packing** (0..4): among the candidates, nodes with less batch capacity left for pods of this size score
  higher (best fit), so that large holes stay open for large pods. It is relative to the candidates of one
  call: the tightest gets 4, the loosest 0, and 0 when all are equal.

A node outside the plan scores 0.
"""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence

from broker.model.quantity import UNLIMITED
from broker.service.extender.filtering import PodKind
from broker.service.extender.tables import NodeEntry, PlanTables

MAX_SCORE = 10
"""The extender API's highest score."""
_CLASS_MATCH = 6
_TEAM_MATCH = 3
_PACKING = 4


def node_terms(entry: NodeEntry, kind: PodKind) -> tuple[int, int]:
    """``(reservation, room)`` of a node for a pod of ``kind``.

    Reservation is how closely the plan's placements on the node match the pod (6, 3 or 0); room is how many
    such pods its batch capacity holds. Both depend only on the plan and the kind, so callers memoise them
    per plan; the first request of a kind after a plan computes them for every candidate (5,000 at most),
    hence the plain loops.
    """
    team = kind.team
    if kind.demand_class is not None:
        reserved = _CLASS_MATCH if entry.class_slots.get((team, kind.demand_class)) else 0
    else:
        reserved = _CLASS_MATCH if entry.role_slots.get((team, kind.is_am)) else 0
    if not reserved and team in entry.teams:
        reserved = _TEAM_MATCH
    have = entry.amounts
    room = UNLIMITED
    for dimension, need in kind.needs:
        fits = have[dimension] // need
        if fits < room:
            room = fits
    return reserved, room


_RESERVATION_BITS = 3
"""``node_code`` keeps the reservation (0, 3 or 6) in the low bits and the room above them."""
_RESERVATION_MASK = (1 << _RESERVATION_BITS) - 1
OUTSIDE_PLAN = -1
"""The memoised code of a candidate the plan does not know: it scores 0 and takes no part in packing."""


def node_code(entry: NodeEntry, kind: PodKind) -> int:
    """``node_terms`` packed in one int (``room << 3 | reservation``), which is what ``score_nodes`` memoises:
    an int hashes and compares far cheaper than a tuple, and a request hashes every one of its candidates'."""
    reserved, room = node_terms(entry, kind)
    return room << _RESERVATION_BITS | reserved


def score_nodes(candidates: Sequence[str], tables: PlanTables, kind: PodKind,
                memo: MutableMapping[str, int]) -> list[int]:
    """The score of every candidate, in request order; ``memo`` keeps ``node_code`` per node name.

    This runs for every candidate of every offline pod (5,000 names when the scheduler sends all), so the
    per-name work is C-level list building only: look the codes up (on a miss, the names missing, a set
    difference, are filled: once per plan, kind and node), then score each *distinct* code once (a fleet of a
    few hardware shapes has a few dozen) and map the names to their code's score.
    """
    try:
        codes = list(map(memo.__getitem__, candidates))
    except KeyError:
        nodes = tables.nodes
        for name in set(candidates).difference(memo):
            entry = nodes.get(name)
            memo[name] = OUTSIDE_PLAN if entry is None else node_code(entry, kind)
        codes = list(map(memo.__getitem__, candidates))
    distinct = set(codes)
    rooms = [code >> _RESERVATION_BITS for code in distinct if code >= 0]
    loosest, tightest = (max(rooms), min(rooms)) if rooms else (0, 0)
    spread = loosest - tightest
    # reservation <= 6 and packing <= 4: a score never exceeds MAX_SCORE.
    def score(code: int) -> int:
        if code < 0:
            return 0
        packing = _PACKING * (loosest - (code >> _RESERVATION_BITS)) // spread if spread else 0
        return (code & _RESERVATION_MASK) + packing

    score_of = {code: score(code) for code in distinct}
    return list(map(score_of.__getitem__, codes))


__all__ = ["MAX_SCORE", "OUTSIDE_PLAN", "node_code", "node_terms", "score_nodes"]
