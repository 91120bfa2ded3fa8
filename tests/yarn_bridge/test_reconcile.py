"""The reconcile loop repairs drift between passes and survives a peer failure."""

from __future__ import annotations

import asyncio

from broker.errors import PeerError
from broker.yarn_bridge import ClusterBridge, RMClient, SyncReport, reconcile_forever

from .conftest import cluster, node, plan, run
from .standin_rm import RMServer, StandinRM


def test_with_drift_check_0_each_pass_repairs_what_drifted_since_the_last(
    server: RMServer, rm: StandinRM
) -> None:
    the_plan = plan(node(0))
    reports: list[SyncReport] = []
    errors: list[PeerError] = []

    async def go() -> None:
        stop = asyncio.Event()

        def on_report(report: SyncReport) -> None:
            reports.append(report)
            if len(reports) == 1:
                rm.nodes["nm-0.example:8041"].total_mb = 999_999  # an operator resizes the node by hand
            else:
                stop.set()

        async with RMClient(cluster(server.url, drift_check_s=0)) as client:
            await reconcile_forever(
                ClusterBridge(client), lambda: the_plan, 0.01, stop, on_report, errors.append
            )

    run(go())
    assert [len(r.nodes) for r in reports] == [1, 1]
    assert (
        reports[1]
        .drift_lines()[0]
        .startswith("node nm-0.example (nm-0.example:8041): 999999MB/16vc -> 32768MB/16vc [shrink, applied]")
    )
    assert rm.nodes["nm-0.example:8041"].total_mb == 32768 and errors == []


def test_a_failed_pass_is_reported_and_the_loop_goes_on(server: RMServer, rm: StandinRM) -> None:
    errors: list[PeerError] = []
    reports: list[SyncReport] = []

    async def go() -> None:
        stop = asyncio.Event()

        def on_error(exc: PeerError) -> None:
            errors.append(exc)
            rm.ha_state = "ACTIVE"

        def on_report(report: SyncReport) -> None:
            reports.append(report)
            stop.set()

        rm.ha_state = "STANDBY"
        async with RMClient(cluster(server.url, retries=0)) as client:
            await reconcile_forever(
                ClusterBridge(client), lambda: plan(node(0)), 0.01, stop, on_report, on_error
            )

    run(go())
    assert len(errors) == 1 and len(reports) == 1 and reports[0].ok
