"""The quota status sink: after each published plan, the leader writes the cycle's runtime quota to the status of
one ``ElasticQuotaPolicy`` object, so that admins read it where they read policies (``kubectl get eqp -o yaml``).

What it writes, per quota group: the runtime quota, ``used`` (what the plan gives the team's work, the figure
``broker_team_used`` exports; an inner group sums its descendants), and the borrowed and lent parts, through
``plugins.kubernetes.QuotaStatusWriter``: the status subresource, one merge patch conditional on the
``resourceVersion`` it compared against, nothing at all when the status already says the same.

The loop calls it beside the capacity sinks, bounded by the same ``sinks.timeout_s`` and counted in the same
metrics under its own sink name (``quota-status:<cluster>``); a failure is reported, never raised, so a cycle
that cannot write its status still publishes its plan. The official client blocks, so each write runs on a
worker thread with the client's own request timeout (``sinks.timeout_s``): a write the loop stopped waiting for
ends on its own soon after instead of piling up threads behind a hanging API server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from broker.errors import BrokerError
from broker.model import Plan, Resources
from broker.quota import RuntimeQuota
from broker.service.sinks.base import SinkReport
from plugins.kubernetes import QuotaStatusWriter


def used_by_group(quota: RuntimeQuota, plan: Plan) -> dict[str, Resources]:
    """What the plan gives each team of ``quota`` (teams outside the policy have no group to report on)."""
    return {team.team: team.placed for team in plan.teams if team.team in quota.groups}


class QuotaStatusSink:
    """Writes runtime quota to the status of the policy object ``policy`` in ``cluster`` (module docstring).

    ``close`` releases the writer's API client (``ApiClient.close``)."""

    def __init__(self, writer: QuotaStatusWriter, cluster: str, policy: str, close: Callable[[], None]) -> None:
        self.name = f"quota-status:{cluster}"
        self.policy = policy
        self._writer = writer
        self._close = close

    async def push(self, quota: RuntimeQuota, plan: Plan) -> SinkReport:
        """Bring the status up to date with ``quota`` and ``plan``'s usage; failures are reported."""
        started = time.perf_counter()
        try:
            await asyncio.to_thread(self._writer.write, self.policy, quota, used_by_group(quota, plan))
        except BrokerError as exc:
            return SinkReport(sink=self.name, ok=False, seconds=time.perf_counter() - started, error=str(exc))
        return SinkReport(sink=self.name, ok=True, seconds=time.perf_counter() - started)

    async def close(self) -> None:
        self._close()


__all__ = ["QuotaStatusSink", "used_by_group"]
