"""Exact integer division of an amount among claimants: weighted water-filling with largest-remainder
rounding.

``water_fill(amount, headroom, weights)`` gives each claimant ``i`` at most ``headroom[i]`` so that the water
level ``x_i / weights[i]`` is as even as possible (max-min fair, weighted):

1. claimants sorted by ``headroom / weight``; while the smallest one fits under the level the remaining amount
   would reach (``h_i * W <= amount * w_i``), it is filled to its headroom and leaves;
2. the rest split the remaining amount in proportion to weight: ``floor(amount * w_i / W)`` each, then the
   units left by rounding go one each to the largest remainders (ties to the lower index).

Every step is integer arithmetic, so ``sum(result) == min(amount, sum(headroom))`` exactly and no claimant
exceeds its headroom (in step 2, ``amount * w_i / W < h_i`` for every remaining claimant, so even the
rounded-up share fits). Proportional scaling is the special case ``headroom == weights``.
"""

from __future__ import annotations

import math


def water_fill(amount: int, headroom: list[int], weights: list[int]) -> list[int]:
    """Split ``amount`` among claimants, each at most its ``headroom``, by weighted water-filling.

    Claimants with zero headroom or zero weight get nothing. Returns one integer per claimant.
    """
    size = len(headroom)
    active = [i for i in range(size) if headroom[i] > 0 and weights[i] > 0]
    if amount >= sum(headroom[i] for i in active):
        return [headroom[i] if weights[i] > 0 else 0 for i in range(size)]
    out = [0] * size
    distinct = {weights[i] for i in active}
    if len(distinct) <= 1:
        active.sort(key=lambda i: headroom[i])
    else:
        common = math.lcm(*distinct)  # h / w ordered exactly as h * (common / w), in integers
        active.sort(key=lambda i: headroom[i] * (common // weights[i]))
    total_weight = sum(weights[i] for i in active)
    start = 0
    while start < len(active):
        i = active[start]
        if headroom[i] * total_weight > amount * weights[i]:
            break
        out[i] = headroom[i]
        amount -= headroom[i]
        total_weight -= weights[i]
        start += 1
    _share(amount, active[start:], weights, total_weight, out)
    return out


def _share(amount: int, claimants: list[int], weights: list[int], total_weight: int, out: list[int]) -> None:
    """Step 2: ``amount`` split among ``claimants`` in proportion to weight, largest remainders rounded up."""
    remainders: list[tuple[int, int]] = []
    given = 0
    for i in claimants:
        share, remainder = divmod(amount * weights[i], total_weight)
        out[i] = share
        given += share
        remainders.append((-remainder, i))
    left = amount - given
    if left:
        remainders.sort()
        for _, i in remainders[:left]:
            out[i] += 1


def scale_down(amount: int, wanted: list[int]) -> list[int]:
    """``wanted`` scaled in proportion to fit in ``amount`` (unchanged when it already fits), exactly."""
    total = sum(wanted)
    if total <= amount:
        return list(wanted)
    out = [0] * len(wanted)
    _share(amount, [i for i, w in enumerate(wanted) if w > 0], wanted, total, out)
    return out


__all__ = ["scale_down", "water_fill"]
