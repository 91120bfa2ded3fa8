"""UsageHistory: per-bucket peak, mean and spread; append-only; windows stay right as buckets roll over."""

from __future__ import annotations

import math

import numpy as np
import pytest

from broker.capacity import UsageHistory

from .builders import observe


def three_samples_in_the_first_bucket() -> UsageHistory:
    history = UsageHistory(2, bucket_s=300)
    observe(history, 0, [10, 100], [1000, 500])
    observe(history, 100, [40, 100], [1200, 500], seen=[True, False])
    observe(history, 200, [10, 100], [1100, 500])
    return history


def test_peak_is_the_highest_sample_in_the_window() -> None:
    history = three_samples_in_the_first_bucket()
    assert history.peak(0, 0, 299).tolist() == [40, 100]
    assert history.peak(1, 0, 299).tolist() == [1200, 500]


def test_mean_counts_only_samples_a_node_reported() -> None:
    history = three_samples_in_the_first_bucket()
    assert history.mean(0, 0, 299).tolist() == [20.0, 100.0]
    assert history.mean(1, 0, 299).tolist() == [1100.0, 500.0]


def test_spread_is_the_gap_between_a_bucket_peak_and_its_mean_rounded_up() -> None:
    history = three_samples_in_the_first_bucket()
    observe(history, 300, [5, 100], [1000, 500])  # bucket 1: a single sample, no spread
    assert history.spread(0, 0, 599).tolist() == [20, 0]
    assert history.spread(1, 0, 599).tolist() == [math.ceil(1200 - 1100), 0]


def test_mean_spans_buckets_weighted_by_samples() -> None:
    history = three_samples_in_the_first_bucket()
    observe(history, 300, [5, 100], [1000, 500])
    assert history.mean(0, 0, 600).tolist() == [(10 + 40 + 10 + 5) / 4, 100.0]


def test_a_node_never_seen_has_no_peak_and_no_mean() -> None:
    history = UsageHistory(2)
    observe(history, 0, [10, 99], [10, 99], seen=[True, False])
    assert history.peak(0, 0, 10).tolist() == [10, -1]
    assert np.isnan(history.mean(0, 0, 10)[1])
    assert history.age_s(30).tolist() == [30.0, math.inf]


def test_last_keeps_the_latest_reported_value_of_a_silent_node() -> None:
    history = UsageHistory(1)
    observe(history, 0, [10], [20])
    observe(history, 10, [99], [99], seen=[False])
    assert history.last[:, 0].tolist() == [10, 20]
    assert history.age_s(10).tolist() == [10.0]


def test_history_is_append_only() -> None:
    history = UsageHistory(1)
    observe(history, 200, [1], [1])
    with pytest.raises(ValueError, match="append-only"):
        observe(history, 100, [1], [1])


def test_a_window_read_before_a_new_bucket_is_right_after_it_starts() -> None:
    history = UsageHistory(1, bucket_s=300)
    observe(history, 0, [10], [10])
    observe(history, 310, [20], [20])
    assert history.peak(0, 0, 1000).tolist() == [20]
    assert history.mean(0, 0, 1000).tolist() == [15.0]
    observe(history, 610, [90], [90])  # bucket 1 completes; bucket 2 starts
    assert history.peak(0, 0, 1000).tolist() == [90]
    assert history.mean(0, 0, 1000).tolist() == [40.0]
    assert history.peak(0, 0, 599).tolist() == [20]


def test_a_completed_window_read_again_after_more_samples_in_the_open_bucket_is_unchanged() -> None:
    history = UsageHistory(1, bucket_s=300)
    observe(history, 0, [10], [10])
    observe(history, 300, [20], [20])
    assert history.peak(0, 0, 299).tolist() == [10]
    observe(history, 310, [50], [50])
    assert history.peak(0, 0, 299).tolist() == [10]
    assert history.peak(0, 0, 400).tolist() == [50]


def test_buckets_older_than_keep_are_forgotten_even_after_being_read() -> None:
    history = UsageHistory(1, keep_s=600, bucket_s=300)  # three buckets in the ring
    for t, v in ((0, 70), (300, 1), (600, 2)):
        observe(history, t, [v], [v])
    assert history.peak(0, 0, 299).tolist() == [70]
    observe(history, 900, [3], [3])  # reuses bucket 0's slot
    assert history.peak(0, 0, 299).tolist() == [-1]
    assert history.peak(0, 0, 1000).tolist() == [3]


@pytest.mark.parametrize(("n_nodes", "keep_s", "bucket_s"), [(-1, 600, 300), (1, 100, 300), (1, 600, 0)])
def test_an_impossible_history_is_refused(n_nodes: int, keep_s: int, bucket_s: int) -> None:
    with pytest.raises(ValueError):
        UsageHistory(n_nodes, keep_s=keep_s, bucket_s=bucket_s)
