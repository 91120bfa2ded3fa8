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
        # Aggregates of completed buckets, per (dimension, first bucket, last bucket): each kind kept apart, so that
        # a day-long window read for its peak alone does not pay for its sums and spreads.
        self._peaks: dict[tuple[int, int, int], IntArray] = {}
        self._totals: dict[tuple[int, int, int], tuple[IntArray, IntArray]] = {}
        self._gaps: dict[tuple[int, int, int], FloatArray] = {}
        # Per completed bucket, its spread (peak - mean) per node, computed once: the day-long spread windows move
        # by one bucket at a time, so each bucket's row is reused by every window until its slot is overwritten.
        self._gap_rows = np.zeros((2, *shape), dtype=np.float64)
        self._gap_of = np.full((2, self.n_buckets), -1, dtype=np.int64)  # the bucket each row was computed for
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
            self._peaks.clear()  # a bucket completed: cached windows may now end differently
            self._totals.clear()
            self._gaps.clear()
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

    def _completed_peak(self, dim: int, first: int, last: int) -> IntArray:
        """Max per node over completed buckets [first, last] (-1 where nothing was seen)."""
        key = (dim, first, last)
        hit = self._peaks.get(key)
        if hit is None:
            slots = self._slots(first, last)
            hit = self._max[dim, slots].max(axis=0) if len(slots) else np.full(self.n_nodes, -1, dtype=np.int64)
            self._peaks[key] = hit
        return hit

    def _completed_total(self, dim: int, first: int, last: int) -> tuple[IntArray, IntArray]:
        """Sum and count of samples per node over completed buckets [first, last]."""
        key = (dim, first, last)
        hit = self._totals.get(key)
        if hit is None:
            slots = self._slots(first, last)
            if len(slots):
                hit = (self._sum[dim, slots].sum(axis=0), self._count[slots].sum(axis=0))
            else:
                zero = np.zeros(self.n_nodes, dtype=np.int64)
                hit = (zero, zero)
            self._totals[key] = hit
        return hit

    def _completed_gap(self, dim: int, first: int, last: int) -> FloatArray:
        """max(bucket peak - bucket mean) per node over completed buckets [first, last] (0 where nothing was seen)."""
        key = (dim, first, last)
        hit = self._gaps.get(key)
        if hit is None:
            slots = self._slots(first, last)
            hit = self._completed_gaps(dim, slots).max(axis=0) if len(slots) else np.zeros(self.n_nodes)
            self._gaps[key] = hit
        return hit

    def _completed_gaps(self, dim: int, slots: IntArray) -> FloatArray:
        """``_bucket_gaps`` of completed buckets (they never change again), from the rows already computed."""
        ids = self._bucket_id[slots]
        stale = self._gap_of[dim, slots] != ids
        if stale.any():
            missing = slots[stale]
            self._gap_rows[dim, missing] = self._bucket_gaps(dim, missing)
            self._gap_of[dim, missing] = ids[stale]
        rows: FloatArray = self._gap_rows[dim, slots]
        return rows

    def _bucket_gaps(self, dim: int, slots: IntArray | int) -> FloatArray:
        """Per bucket (ring ``slots``) and node, how far the bucket's peak stood above its mean (0 without samples)."""
        counts = self._count[slots]
        gaps: FloatArray = np.where(counts > 0, self._max[dim, slots] - self._sum[dim, slots] / np.maximum(counts, 1),
                                    0.0)
        return gaps

    def _bounds(self, start_s: float, end_s: float) -> tuple[int, int, int]:
        """The first and last bucket of the window [start_s, end_s] and the bucket being filled. Each reader below
        combines only the aggregate it needs with the filling bucket: the estimator reads every window every step."""
        first = int(start_s // self.bucket_s)
        last = int(end_s // self.bucket_s)
        current = int(self.now_s // self.bucket_s) if self.now_s > -np.inf else last + 1
        return first, last, current

    def peak(self, dim: int, start_s: float, end_s: float) -> IntArray:
        """Per node, the highest sample in the buckets overlapping [start_s, end_s]; -1 where nothing was seen."""
        first, last, current = self._bounds(start_s, end_s)
        if last < current:
            return self._completed_peak(dim, first, last)
        top: IntArray = self._max[dim, current % self.n_buckets]
        return np.maximum(self._completed_peak(dim, first, current - 1), top) if first < current else top

    def mean(self, dim: int, start_s: float, end_s: float) -> FloatArray:
        """Per node, the mean sample over the buckets overlapping [start_s, end_s]; NaN where nothing was seen."""
        first, last, current = self._bounds(start_s, end_s)
        if last < current:
            total, count = self._completed_total(dim, first, last)
        else:
            slot = current % self.n_buckets
            total, count = self._sum[dim, slot], self._count[slot]
            if first < current:
                done_total, done_count = self._completed_total(dim, first, current - 1)
                total, count = done_total + total, done_count + count
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)

    def spread(self, dim: int, start_s: float, end_s: float) -> IntArray:
        """Per node, the largest gap between a bucket's peak and its mean over the window: how spiky the node is.

        This is what a short spike costs above the level a mean-based forecast sees; the forecaster keeps at
        least this much margin.
        """
        first, last, current = self._bounds(start_s, end_s)
        if last < current:
            gap = self._completed_gap(dim, first, last)
        else:
            gap = self._bucket_gaps(dim, current % self.n_buckets)
            if first < current:
                gap = np.maximum(self._completed_gap(dim, first, current - 1), gap)
        return np.ceil(gap).astype(np.int64)

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
            result = np.ceil(np.quantile(self._completed_gaps(dim, slots), q, axis=0)).astype(np.int64)
        self._quantiles[key] = result
        return result

    def age_s(self, now_s: float) -> FloatArray:
        """Per node, seconds since its last sample (``inf`` when never seen)."""
        return now_s - self.last_seen_s


__all__ = ["BUCKET_S", "DAY_S", "BoolArray", "FloatArray", "IntArray", "UsageHistory"]
