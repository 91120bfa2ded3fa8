"""What a cycle uses of a cluster whose demand it could not read: the last good read, for a while, then nothing.

Demand read from the outside comes per cluster: each ResourceManager read every cycle (``yarn_demand``), each
API server's pods followed by a watch (``kubernetes_demand``). One cluster that cannot be read must not stop the
others, nor make its work vanish at the first hiccup, nor stand in for ever. Per cluster, once per cycle::

    read ok ──────────────────────────► fresh   (this cycle's demand)
    read failed, last good <= max age ─► stale   (the last good demand stands in)
    read failed, none or older ────────► missing (the cluster contributes nothing until it is read again)

``LastGood`` holds one cluster's last good read, when it was made (on the reader's monotonic clock) and the error
of the last failed one; ``in_use`` moves it to this cycle's state, logging each change of state once, and gives
the demand to use; ``status`` is what ``/readyz`` shows of it.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class ReadState(StrEnum):
    """Whether a cluster's demand is in use this cycle (see the module docstring)."""

    FRESH = "fresh"
    """The last read succeeded."""
    STALE = "stale"
    """The last read failed; the last good demand, not older than the max age, stands in."""
    MISSING = "missing"
    """No good demand younger than the max age: the cluster contributes nothing."""


@dataclass(frozen=True)
class ClusterStatus:
    """One cluster's read state, for ``/readyz``: the age of its demand in use and the last read's error."""

    state: ReadState
    age_s: float | None
    error: str | None


@dataclass
class LastGood(Generic[T]):
    """One cluster's reads (see the module docstring). ``what`` names the cluster in log lines (``YARN cluster
    yarn-a``); ``until`` says what brings it back (``its RM answers``)."""

    cluster: str
    what: str
    until: str
    last: T | None = None
    read_at: float | None = None
    error: str | None = None
    state: ReadState | None = None
    """None before the first cycle."""

    def succeeded(self, value: T, at: float) -> None:
        """A good read of ``value`` at ``at``."""
        self.last, self.read_at, self.error = value, at, None

    def failed(self, error: str) -> None:
        """A failed read; the last good one, if any, is kept."""
        self.error = error

    def in_use(self, now: float, max_age_s: float) -> T | None:
        """Move to this cycle's state (a change is logged) and give the demand in use: ``None`` when missing."""
        if self.error is None and self.read_at is not None:
            state = ReadState.FRESH
        elif self.read_at is not None and now - self.read_at <= max_age_s:
            state = ReadState.STALE
        else:
            state = ReadState.MISSING
        if state is not self.state:
            self._log(state, now, max_age_s)
            self.state = state
        return None if state is ReadState.MISSING else self.last

    def age_s(self, now: float) -> float:
        """The age of the demand in use as of the last cycle; ``math.inf`` when the cluster contributes nothing."""
        if self.state is ReadState.MISSING or self.state is None or self.read_at is None:
            return math.inf
        return now - self.read_at

    def status(self, now: float) -> ClusterStatus:
        """The state as of the last cycle (missing before the first), for ``/readyz``."""
        return ClusterStatus(self.state or ReadState.MISSING,
                             None if self.read_at is None else round(now - self.read_at, 3), self.error)

    def _log(self, state: ReadState, now: float, max_age_s: float) -> None:
        extra = {"cluster": self.cluster}
        if state is ReadState.FRESH:
            log.info("demand of %s read%s", self.what, "" if self.state is None else " again", extra=extra)
        elif state is ReadState.STALE:
            log.warning("demand of %s: using the last good read (%.1f s old) until it is %g s old", self.what,
                        now - (self.read_at or now), max_age_s, extra=extra)
        else:
            log.warning("demand of %s: no good read within %g s (demand.max_age_s); it contributes nothing until "
                        "%s", self.what, max_age_s, self.until, extra=extra)


__all__ = ["ClusterStatus", "LastGood", "ReadState"]
