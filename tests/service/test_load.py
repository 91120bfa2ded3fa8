"""Load, smoke size: the extender of a replica whose control loop publishes a plan every 2 s (1,240 nodes), under
a steady request rate: no errors, no answer more than one plan behind, answers well within kube-scheduler's timeout.

The full-size run is a benchmark, not a unit test: twice the rate a kube-scheduler generates (250 offline pods/s,
one filter and one prioritize each: 500 requests/s, so 1,000 requests/s) for a minute on 4,960 nodes, ``python
bench/service_load.py`` (figures, machine and date in ``docs/benchmarks/service.md``). This test runs a quarter of
that rate for 20 s on a quarter of the fleet, so that it checks the behaviour (versions, staleness, errors) on any
2-core machine, also a slower or shared one: on 2026-11-22 this machine no longer published a 4,960-node plan every
second under load (it held 1,250 requests/s with that on 2026-11-21). The server is a separate process
(``bench/service_load.py --serve``, what ``broker serve`` does), the load generator this one, open loop; latency
runs from each request's due time.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.service_load import LoadRun, running_server

BASELINE_PER_S = 500.0
"""kube-scheduler at 250 offline pods/s, one filter and one prioritize each."""
RATE_PER_S = BASELINE_PER_S / 2
"""Smoke size (the benchmark runs twice the baseline)."""
SECONDS = 20.0
NODE_SCALE = 4.0
"""1,240 nodes (the benchmark runs 16: 4,960)."""
INTERVAL_S = 2.0
"""The loop's interval (the benchmark: 1 s); the extender calls a plan stale after three intervals."""
HTTP_TIMEOUT_MS = 2000.0
"""kube-scheduler's ``httpTimeout`` for the extender in ``deploy/kubernetes``: a slower answer is an error to it."""


@pytest.mark.slow
def test_the_extender_answers_a_steady_rate_without_errors_while_plans_change_every_cycle(
        tmp_path: Path) -> None:
    with running_server(tmp_path, node_scale=NODE_SCALE, interval_s=INTERVAL_S) as server:
        load = LoadRun(server)
        load.run(RATE_PER_S, 1.0)  # warm-up: connections and the first plan's per-kind memo
        measured = load.run(RATE_PER_S, SECONDS)
    result = load.results(server.published())[measured]
    summary = f"{result}\nserver log tail:\n{server.log()[-2000:]}"

    assert result.errors == {}, summary
    assert result.stale == 0, summary
    assert set(result.behind) <= {0, 1}, summary
    assert result.exact_versions > 0.5 * result.requests, summary  # the version bracket is mostly exact
    assert result.versions_published >= 0.75 * SECONDS / INTERVAL_S, summary  # plans did change every cycle...
    assert result.max_publication_gap_s < 3 * INTERVAL_S, summary  # ...and never paused long enough to turn stale
    assert result.achieved_per_s >= 0.95 * RATE_PER_S, summary  # the load generator kept the schedule
    # Latency is judged only against what kube-scheduler does with it: an answer later than its timeout is an
    # error to it. The tail itself is the benchmark's to record: 10 ms p99 on a quiet machine (2026-11-22), but
    # 1.2 s in a CI run that shared the 2 cores with other work, so a tighter bound here would test the neighbours.
    assert result.max_ms < HTTP_TIMEOUT_MS, summary
