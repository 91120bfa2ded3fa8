"""Load: the extender of a replica whose control loop publishes a plan every second (4,960 nodes), under twice the
request rate a kube-scheduler generates, for a minute: no errors, no answer more than one plan behind.

The rate: a kube-scheduler scheduling 250 offline pods/s (each pod one filter and one prioritize: 500 requests/s)
is the baseline, a generous one (kube-scheduler's default API rate limit of 50 requests/s caps its binds near 50
pods/s); twice that is 1,000 requests/s. Why not twice the session-1 standalone figure, and what this machine
sustains: ``docs/benchmarks/service.md``. The server is a separate process (``bench/service_load.py --serve``,
what ``broker serve`` does), the load generator this one, open loop; latency runs from each request's due time.

Bounds, with margins for a 2-core machine shared with other test runs: every answer within kube-scheduler's
``httpTimeout`` (2 s in ``deploy/kubernetes``), p99 under 250 ms. Measured with the replica's collector tuned as
``broker serve`` tunes it: p99 28 ms (0.1-0.3 s before the tuning; see the benchmark document).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.service_load import LoadRun, running_server

BASELINE_PER_S = 500.0
"""kube-scheduler at 250 offline pods/s, one filter and one prioritize each."""
RATE_PER_S = 2 * BASELINE_PER_S
SECONDS = 60.0
HTTP_TIMEOUT_MS = 2000.0
"""kube-scheduler's ``httpTimeout`` for the extender in ``deploy/kubernetes``: a slower answer is an error to it."""
P99_BOUND_MS = 250.0


@pytest.mark.slow
def test_the_extender_holds_twice_the_scheduler_rate_for_a_minute_while_plans_change_every_second(
        tmp_path: Path) -> None:
    with running_server(tmp_path) as server:
        load = LoadRun(server)
        load.run(RATE_PER_S, 1.0)  # warm-up: connections and the first plan's per-kind memo
        measured = load.run(RATE_PER_S, SECONDS)
    result = load.results(server.published())[measured]
    summary = f"{result}\nserver log tail:\n{server.log()[-2000:]}"

    assert result.errors == {}, summary
    assert result.stale == 0, summary
    assert set(result.behind) <= {0, 1}, summary
    assert result.exact_versions > 0.5 * result.requests, summary  # the version bracket is mostly exact
    assert result.versions_published >= 0.75 * SECONDS, summary  # plans did change every second...
    assert result.max_publication_gap_s < 3.0, summary  # ...and never paused long enough to turn stale
    assert result.achieved_per_s >= 0.95 * RATE_PER_S, summary  # the load generator kept the schedule
    assert result.p99_ms < P99_BOUND_MS, summary
    assert result.max_ms < HTTP_TIMEOUT_MS, summary
