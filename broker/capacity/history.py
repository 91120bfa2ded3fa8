"""Online-usage history of a fleet, kept as 5-minute buckets per node.

Estimators look back a day (seasonality) and a few minutes (recent peak, trend). Keeping every 1-10 s sample of
10,000 nodes for a day would cost gigabytes and make every estimate scan them, so the history keeps, per node and
per bucket, the *maximum* and the *mean* of what was observed (what a Prometheus recording rule would keep), plus the
latest sample and the time it was seen. Maxima matter more than means: lending against a mean is how co-location
hurts online work.

Usage is in the broker's units (milli-CPU, MiB), per node, as numpy arrays; node order is fixed for the life of the
history. ``observe`` is the only mutator; estimators read through the query methods and never change it.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

BUCKET_S = 300
"""Width of one history bucket (seconds)."""

DAY_S = 86_400
"""Seasonality period: online fleets follow a daily cycle."""


class UsageHistory:
    """Per-node online usage, bucketed. ``keep_s`` bounds memory (default: two days and two hours)."""

    def __init__(self, n_nodes: int, *, keep_s: int = 2 * DAY_S + 2 * 3600, bucket_s: int = BUCKET_S) -> None:
        if n_nodes < 0 or keep_s < bucket_s or bucket_s <= 0:
            raise ValueError("history needs n_nodes >= 0 and keep_s >= bucket_s > 0")
        self.n_nodes = n_nodes
        self.bucket_s = bucket_s
        self.n_buckets = keep_s // bucket_s + 1
        shape = (self.n_buckets, n_nodes)
        # -1 marks "no sample in this bucket"; maxima and sums are per dimension: [0] cpu, [1] memory.
        self._max = np.full((2, *shape), -1, dtype=np.int64)
        self._sum = np.zeros((2, *shape), dtype=np.int64)
        self._count = np.zeros(shape, dtype=np.int64)
        self._bucket_id = np.full(self.n_buckets, -1, dtype=np.int64)
        self.last = np.zeros((2, n_nodes), dtype=np.int64)
        self.last_seen_s = np.full(n_nodes, -np.inf, dtype=np.float64)
        self.now_s = -np.inf
        self._cache: dict[tuple[int, int, int], tuple[IntArray, IntArray, IntArray, FloatArray]] = {}
        self._quantiles: dict[tuple[int, int, int, float], IntArray] = {}

    # --- writing ------------------------------------------------------------------------------------------------

    def observe(self, now_s: float, cpu_milli: IntArray, memory_mib: IntArray, seen: BoolArray | None = None) -> None:
        """Record one sample per node at ``now_s``; nodes where ``seen`` is False reported nothing (stale)."""
        if now_s < self.now_s:
            raise ValueError("history is append-only: samples must not go back in time")
        self.now_s = now_s
        bucket = int(now_s // self.bucket_s)
        slot = bucket % self.n_buckets
        if self._bucket_id[slot] != bucket:
            self._cache.clear()  # a bucket completed: cached windows may now end differently
            self._quantiles.clear()
            self._bucket_id[slot] = bucket
            self._max[:, slot] = -1
            self._sum[:, slot] = 0
            self._count[slot] = 0
        mask = np.ones(self.n_nodes, dtype=np.bool_) if seen is None else seen
        for dim, values in enumerate((cpu_milli, memory_mib)):
            row_max = self._max[dim, slot]
            np.maximum(row_max, np.where(mask, values, -1), out=row_max)
            self._sum[dim, slot] += np.where(mask, values, 0)
            self.last[dim] = np.where(mask, values, self.last[dim])
        self._count[slot] += mask
        self.last_seen_s = np.where(mask, now_s, self.last_seen_s)

    # --- reading ------------------------------------------------------------------------------------------------
    #
    # A window is read as its completed buckets, whose aggregates never change again (cached until the next
    # bucket starts), plus the bucket being filled. The loop estimates every 10 s over 5-minute buckets, so almost
    # every read of a day-long window is a cache hit.

    def _slots(self, first: int, last: int) -> IntArray:
        """Ring slots holding the buckets ``first..last`` that are still kept."""
        ids = np.arange(max(first, last - self.n_buckets + 1), last + 1, dtype=np.int64)
        slots = ids % self.n_buckets
        kept: IntArray = slots[self._bucket_id[slots] == ids]
        return kept

    def _completed(self, dim: int, first: int, last: int) -> tuple[IntArray, IntArray, IntArray, FloatArray]:
        """Max, sum, count and max(peak - mean) per node over completed buckets [first, last]."""
        key = (dim, first, last)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        slots = self._slots(first, last)
        if len(slots) == 0:
            none = np.full(self.n_nodes, -1, dtype=np.int64)
            zero = np.zeros(self.n_nodes, dtype=np.int64)
            result = (none, zero, zero, np.zeros(self.n_nodes))
        else:
            maxima = self._max[dim, slots]
            sums = self._sum[dim, slots]
            counts = self._count[slots]
            means = sums / np.maximum(counts, 1)
            gaps = np.where(counts > 0, maxima - means, 0.0)
            result = (maxima.max(axis=0), sums.sum(axis=0), counts.sum(axis=0), gaps.max(axis=0))
        self._cache[key] = result
        return result

    def _window(self, dim: int, start_s: float, end_s: float) -> tuple[IntArray, IntArray, IntArray, FloatArray]:
        """Max, sum, count and spread per node over the buckets overlapping [start_s, end_s]."""
        first = int(start_s // self.bucket_s)
        last = int(end_s // self.bucket_s)
        current = int(self.now_s // self.bucket_s) if self.now_s > -np.inf else last + 1
        if last < current:
            return self._completed(dim, first, last)
        done = self._completed(dim, first, current - 1) if first < current else None
        slot = current % self.n_buckets
        count = self._count[slot]
        top = self._max[dim, slot]
        total = self._sum[dim, slot]
        gap = np.where(count > 0, top - total / np.maximum(count, 1), 0.0)
        if done is None:
            return top, total, count, gap
        return (np.maximum(done[0], top), done[1] + total, done[2] + count, np.maximum(done[3], gap))

    def peak(self, dim: int, start_s: float, end_s: float) -> IntArray:
        """Per node, the highest sample in the buckets overlapping [start_s, end_s]; -1 where nothing was seen."""
        return self._window(dim, start_s, end_s)[0]

    def mean(self, dim: int, start_s: float, end_s: float) -> FloatArray:
        """Per node, the mean sample over the buckets overlapping [start_s, end_s]; NaN where nothing was seen."""
        _, total, count, _ = self._window(dim, start_s, end_s)
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)

    def spread(self, dim: int, start_s: float, end_s: float) -> IntArray:
        """Per node, the largest gap between a bucket's peak and its mean over the window: how spiky the node is.

        This is what a short spike costs above the level a mean-based forecast sees; the forecaster keeps at
        least this much margin.
        """
        return np.ceil(self._window(dim, start_s, end_s)[3]).astype(np.int64)

    def spread_quantile(self, dim: int, start_s: float, end_s: float, q: float) -> IntArray:
        """Per node, the ``q`` quantile over the completed buckets in [start_s, end_s] of (bucket peak - bucket
        mean): a typical bad spike rather than the single worst one (``q = 1`` is ``spread`` without the bucket
        being filled)."""
        first = int(start_s // self.bucket_s)
        last = min(int(end_s // self.bucket_s), int(self.now_s // self.bucket_s) - 1)
        key = (dim, first, last, q)
        hit = self._quantiles.get(key)
        if hit is not None:
            return hit
        slots = self._slots(first, last)
        if len(slots) == 0:
            result = np.zeros(self.n_nodes, dtype=np.int64)
        else:
            counts = self._count[slots]
            gaps = np.where(counts > 0, self._max[dim, slots] - self._sum[dim, slots] / np.maximum(counts, 1), 0.0)
            result = np.ceil(np.quantile(gaps, q, axis=0)).astype(np.int64)
        self._quantiles[key] = result
        return result

    def age_s(self, now_s: float) -> FloatArray:
        """Per node, seconds since its last sample (``inf`` when never seen)."""
        return now_s - self.last_seen_s


__all__ = ["BUCKET_S", "DAY_S", "BoolArray", "FloatArray", "IntArray", "UsageHistory"]
