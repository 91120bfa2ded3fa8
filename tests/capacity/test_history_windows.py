"""UsageHistory windows against the raw samples: whatever the order of writes and reads, every window's peak, mean
and spread is what the samples of the buckets it overlaps (and the history still keeps) say."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.capacity import UsageHistory

from .builders import observe

BUCKET_S = 300
KEEP_S = 1500  # six buckets in the ring: long sequences overwrite old ones
NODES = 2

Sample = tuple[float, list[int], list[bool]]
Window = tuple[float, float]


@st.composite
def samples_and_reads(draw: st.DrawFn) -> list[tuple[Sample, list[Window]]]:
    """Samples at rising times (CPU per node and which nodes reported), each followed by windows to read. As in the
    control loop, the history is written at least once per bucket (a node that does not report is not seen)."""
    out: list[tuple[Sample, list[Window]]] = []
    t = 0.0
    for _ in range(draw(st.integers(1, 60))):
        t += draw(st.sampled_from([0.0, 10.0, 90.0, 150.0, 290.0, 300.0]))  # every bucket gets a sample
        usage = draw(st.lists(st.integers(0, 10_000), min_size=NODES, max_size=NODES))
        seen = draw(st.lists(st.booleans(), min_size=NODES, max_size=NODES))
        reads = []
        for _ in range(draw(st.integers(0, 3))):
            start = draw(st.floats(0.0, t, allow_nan=False))  # a window may end in the future, not start there
            reads.append((start, start + draw(st.floats(0.0, 2400.0, allow_nan=False))))
        out.append(((t, usage, seen), reads))
    return out


def kept_buckets(samples: list[Sample], now_s: float, node: int, window: Window,
                 completed: bool = False) -> dict[int, list[int]]:
    """One node's samples per bucket, for the buckets the window overlaps that the history still keeps (with
    ``completed``, only those before the bucket being filled)."""
    current = int(now_s // BUCKET_S)
    kept = KEEP_S // BUCKET_S + 1
    first, last = int(window[0] // BUCKET_S), int(window[1] // BUCKET_S)
    newest = current - 1 if completed else current
    buckets: dict[int, list[int]] = {}
    for t, usage, seen in samples:
        bucket = int(t // BUCKET_S)
        if seen[node] and first <= bucket <= last and current - kept < bucket <= newest:
            buckets.setdefault(bucket, []).append(usage[node])
    return buckets


def expected(samples: list[Sample], now_s: float, node: int, window: Window) -> tuple[int, float, int]:
    """Peak, mean and spread of one node over a window, from the raw samples of the buckets still kept."""
    buckets = kept_buckets(samples, now_s, node, window)
    values = [v for vs in buckets.values() for v in vs]
    if not values:
        return -1, math.nan, 0
    gaps = [max(vs) - sum(vs) / len(vs) for vs in buckets.values()]
    return max(values), sum(values) / len(values), math.ceil(max(gaps))


@settings(max_examples=150, deadline=None)
@given(samples_and_reads())
def test_every_window_read_matches_the_raw_samples(events: list[tuple[Sample, list[Window]]]) -> None:
    history = UsageHistory(NODES, keep_s=KEEP_S, bucket_s=BUCKET_S)
    samples: list[Sample] = []
    for sample, reads in events:
        t, usage, seen = sample
        observe(history, t, usage, usage, seen)
        samples.append(sample)
        for window in reads:
            peak = history.peak(0, *window)
            mean = history.mean(0, *window)
            spread = history.spread(0, *window)
            for node in range(NODES):
                want_peak, want_mean, want_spread = expected(samples, t, node, window)
                assert peak[node] == want_peak
                assert (math.isnan(mean[node]) and math.isnan(want_mean)) or mean[node] == want_mean
                assert spread[node] == want_spread


@settings(max_examples=100, deadline=None)
@given(samples_and_reads(), st.sampled_from([0.5, 0.95, 1.0]))
def test_a_spread_quantile_is_the_quantile_of_the_completed_buckets_spreads(
        events: list[tuple[Sample, list[Window]]], q: float) -> None:
    history = UsageHistory(NODES, keep_s=KEEP_S, bucket_s=BUCKET_S)
    samples: list[Sample] = []
    for sample, reads in events:
        observe(history, sample[0], sample[1], sample[1], sample[2])
        samples.append(sample)
        for window in reads:
            got = history.spread_quantile(0, *window, q)
            everyone = [(t, usage, [True] * NODES) for t, usage, _ in samples]
            buckets = set(kept_buckets(everyone, sample[0], 0, window, completed=True))
            for node in range(NODES):
                mine = kept_buckets(samples, sample[0], node, window, completed=True)
                # A bucket the history was written in counts as a zero spread for a node that reported nothing.
                gaps = [max(mine[b]) - sum(mine[b]) / len(mine[b]) if b in mine else 0.0 for b in sorted(buckets)]
                assert got[node] == (math.ceil(np.quantile(gaps, q)) if gaps else 0)
