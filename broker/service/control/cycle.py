"""One cycle's decisions, without I/O: usage history -> lendable capacity -> runtime quota -> plan.

The loop (``loop``) times and guards each of these steps and does the I/O around them; everything here is a
function of its arguments, so a cycle can be replayed from its inputs. The steps are the ones ``broker simulate``
runs for its ``broker`` policy: the forecasting estimator with the broker's anti-churn rule, the elastic quota of
the stored policy over the pool the estimator found, and the OR-Tools planner.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from broker.capacity import BROKER_RESYNC, Fleet, Forecast, ForecastConfig, Published, UsageHistory, resync
from broker.model import Demand, Inventory, Plan, Resources, total
from broker.quota import QuotaPolicy, RuntimeQuota, compute_runtime_quota
from broker.scheduler import PlacementProblem, QuotaDocument, TeamQuota, solve


@dataclass(frozen=True)
class Estimate:
    """What the estimator published for every node this cycle, and the pool it adds up to."""

    published: Published
    lendable: dict[str, Resources]
    pool: Resources


def estimate(inventory: Inventory, fleet: Fleet, history: UsageHistory, now_s: float, forecast: ForecastConfig,
             previous: Published | None) -> Estimate:
    """The forecasting estimator's proposal, published through the broker's anti-churn rule (shrinks at once)."""
    proposed = Forecast(forecast).estimate(fleet, history, now_s)
    published = resync(previous, proposed, fleet, now_s, BROKER_RESYNC)
    cpu, memory = published.lendable.cpu_milli, published.lendable.memory_mib
    lendable = {node.name: Resources.exact(int(cpu[i]), int(memory[i])) for i, node in enumerate(inventory.nodes)}
    return Estimate(published, lendable, total(list(lendable.values())))


def leaf_demand(policy: QuotaPolicy, demand: Demand) -> tuple[dict[str, Resources], tuple[str, ...]]:
    """Each leaf group's wanted resources (count x shape over its classes), and the teams that are no leaf of the
    policy (their demand gets no quota: reported, not guessed)."""
    leaves = {policy.tree.names[i] for i in policy.tree.leaves}
    wanted: dict[str, list[Resources]] = defaultdict(list)
    strangers: set[str] = set()
    for item in demand.classes:
        if item.team in leaves:
            wanted[item.team].append(item.shape * item.count)
        else:
            strangers.add(item.team)
    return {team: total(amounts) for team, amounts in wanted.items()}, tuple(sorted(strangers))


def quota_document(policy: QuotaPolicy | None, pool: Resources, demand: Demand
                   ) -> tuple[QuotaDocument, RuntimeQuota | None, tuple[str, ...]]:
    """The planner's per-team quota for this cycle: the runtime quota of ``policy`` over ``pool``; with no policy,
    every team of the demand shares the pool uncapped with equal weight (first come is not fair, the planner's
    fair-share level is)."""
    if policy is None:
        names = sorted({item.team for item in demand.classes})
        return QuotaDocument(teams={team: TeamQuota() for team in names}), None, ()
    wanted, strangers = leaf_demand(policy, demand)
    runtime = compute_runtime_quota(policy, pool, wanted)
    # The runtime quota already divided the surplus by weight; the planner's weight only orders what is left
    # of it within a cycle, so the CPU weight (capped at the planner's range) is enough.
    teams = {
        name: TeamQuota(min=group.min, runtime=group.runtime, weight=min(policy.group(name).weight.cpu, 1000))
        for name, group in runtime.groups.items() if group.leaf
    }
    return QuotaDocument(teams=teams), runtime, strangers


def make_plan(inventory: Inventory, demand: Demand, quota: QuotaDocument, lendable: Mapping[str, Resources],
              policy: QuotaPolicy | None, *, version: int, now_s: float, interval_s: float, time_limit_s: float,
              seed: int) -> Plan:
    """The planner's plan for this cycle, stamped with its version, time and interval, each team carrying its
    bindings (YARN queues, namespaces) from the policy so that the sinks can map apps and pods to teams."""
    problem = PlacementProblem(inventory=inventory, demand=demand, quota=quota, lendable=dict(lendable))
    plan = solve(problem, time_limit_s=time_limit_s, seed=seed, now_s=now_s, version=version,
                 interval_s=interval_s).plan
    if policy is None:
        return plan
    bindings = policy.bindings()
    teams = tuple(t.model_copy(update={"binding": bindings[t.team]}) if t.team in bindings else t for t in plan.teams)
    return plan.model_copy(update={"teams": teams})


__all__ = ["Estimate", "estimate", "leaf_demand", "make_plan", "quota_document"]
