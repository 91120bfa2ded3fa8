"""YARN's two-dimensional resource and the conversion from the broker's ``Resources``.

YARN's node and queue resources are ``memory`` in MB and ``vCores``. YARN's "MB" is 2^20 bytes (NodeManagers
compute it as bytes / 1024 / 1024), so ``memory_mib`` passes through unchanged. CPU is rounded *down* to whole
vCores: 3,500 millicores lend 3 vCores, never 4, because lending a fraction the node does not have is exactly
what the broker must never do. Disk, network and GPU are not YARN node resources here; they are enforced
through placement and labels.

Anti-churn: a node is pushed when it shrinks in any dimension (at once, always: that is the safety direction),
or when it grows by at least ``grow_permille`` per mille of its current value in some dimension (or from
zero). Smaller growth is held back, so that a noisy estimate does not rewrite 5,000 nodes every interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from broker.model import Resources

MILLI_PER_VCORE = 1000


@dataclass(frozen=True, order=True)
class YarnResource:
    """A YARN resource: memory in MB (= MiB) and whole vCores."""

    memory_mb: int
    vcores: int

    @classmethod
    def from_resources(cls, amount: Resources) -> YarnResource:
        """The YARN form of a broker amount: memory unchanged, CPU rounded down to whole vCores."""
        return cls(memory_mb=amount.memory_mib, vcores=amount.cpu_milli // MILLI_PER_VCORE)

    def as_absolute(self) -> str:
        """The CapacityScheduler absolute-resource syntax: ``[memory=10240,vcores=12]``."""
        return f"[memory={self.memory_mb},vcores={self.vcores}]"

    def as_body(self) -> dict[str, int]:
        """The nested ``resource`` object of a node-resource update."""
        return {"memory": self.memory_mb, "vCores": self.vcores}

    def __str__(self) -> str:
        return f"{self.memory_mb}MB/{self.vcores}vc"


class Change(StrEnum):
    """How a node's wanted capacity relates to what the RM has."""

    SAME = "same"
    SHRINK = "shrink"
    GROW = "grow"
    HELD = "held"
    """Growth below the anti-churn threshold: not pushed this time."""


def classify(want: YarnResource, have: YarnResource, grow_permille: int) -> Change:
    """Whether to push ``want`` over ``have`` (see the module docstring)."""
    if want == have:
        return Change.SAME
    if want.memory_mb < have.memory_mb or want.vcores < have.vcores:
        return Change.SHRINK
    for new, old in ((want.memory_mb, have.memory_mb), (want.vcores, have.vcores)):
        if new > old and (old == 0 or (new - old) * 1000 >= old * grow_permille):
            return Change.GROW
    return Change.HELD


__all__ = ["MILLI_PER_VCORE", "Change", "YarnResource", "classify"]
