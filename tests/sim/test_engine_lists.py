"""The engine's indexed job lists agree with its jobs at every step: the queue holds exactly the jobs without an AM
and its per-team demand is theirs, and after each placement pass every started entry is a job with a running AM
and workers still pending, including the entries the pass skips because their class cannot start anything."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from broker.capacity import Fleet, ForecastConfig, Lendable
from plugins.sim import engine
from plugins.sim.engine import PolicyRun
from plugins.sim.fleet import build_inventory
from plugins.sim.offline import Job
from plugins.sim.run import run
from plugins.sim.scenario import Scenario, default_scenario


def busy() -> Scenario:
    """The default fleet at 1/10, every policy, three busy evening hours after half a day of history: queues build
    up, the guard kills and quota reclaim evicts."""
    data = default_scenario().model_dump()
    data.update({"node_scale": 0.1, "days": 3 / 24, "warmup_days": 0.5, "start_hour": 18.0})
    return Scenario.model_validate(data)


def reckless() -> Scenario:
    """``busy`` where the static policy lends everything, AMs are large and online memory spikes: the guard kills
    AMs too, and their jobs go back to the queue with their workers."""
    data = busy().model_dump()
    data.update({"static_fraction": 1.0, "am_shape": {"cpu": "2", "memory": "16Gi"}})
    data["online"] = {**data["online"], "mean_memory": 0.5, "spikes_per_day": 50, "spike_mean": 0.3}
    return Scenario.model_validate(data)


def queue_problems(run_: PolicyRun) -> list[str]:
    out = []
    queued = list(run_.waiting)
    if len(set(queued)) != len(queued):
        out.append("a job is queued twice")
    out += [f"queued job {j} has an AM" for j in queued if run_.jobs[j].am_group >= 0]
    demand: dict[str, tuple[int, int]] = {}
    am = run_.scenario.am_shape
    for j in queued:
        state = run_.jobs[j]
        cpu, mem = demand.get(state.job.team, (0, 0))
        demand[state.job.team] = (cpu + state.pending * state.job.cpu_milli + am.cpu_milli,
                                  mem + state.pending * state.job.memory_mib + am.memory_mib)
    kept = {team: amount for team, amount in run_.queued_by_team.items() if amount != (0, 0)}
    if kept != demand:
        out.append(f"queued demand {kept} != {demand}")
    return out


def started_problems(run_: PolicyRun) -> list[str]:
    return [f"started entry of job {j} (AM {run_.jobs[j].am_group}, pending {run_.jobs[j].pending})"
            for j in run_.started if run_.jobs[j].am_group < 0 or run_.jobs[j].pending == 0]


@pytest.fixture(scope="module", params=[busy, reckless], ids=["busy", "reckless"])
def checked(request: pytest.FixtureRequest) -> tuple[list[str], Counter[str], dict[str, Any]]:
    problems: list[str] = []
    activity: Counter[str] = Counter()
    original_share = PolicyRun.share
    original_place = PolicyRun.place

    def share(self: PolicyRun, now_s: float, lendable: Any) -> None:
        problems.extend(queue_problems(self))
        original_share(self, now_s, lendable)

    def place(self: PolicyRun, step: int, now_s: float, lendable: Any) -> None:
        original_place(self, step, now_s, lendable)
        problems.extend(queue_problems(self))
        problems.extend(started_problems(self))
        activity["queued"] += len(self.waiting)
        activity["started"] += len(self.started)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine.PolicyRun, "share", share)
        patch.setattr(engine.PolicyRun, "place", place)
        summary = run(request.param(), None).summary()["policies"]
    return problems, activity, summary


def test_the_lists_agree_with_the_jobs_at_every_step(
        checked: tuple[list[str], Counter[str], dict[str, Any]]) -> None:
    problems, _, _ = checked
    assert problems[:5] == []


def test_the_run_exercised_queues_and_kills(checked: tuple[list[str], Counter[str], dict[str, Any]]) -> None:
    _, activity, summary = checked
    assert activity["queued"] > 0 and activity["started"] > 0
    assert sum(figures["killed_containers"] for figures in summary.values()) > 0
    assert summary["broker"]["reclaimed_containers"] > 0 or summary["static"]["killed_ams"] > 0


def three_started_jobs_of_one_class() -> PolicyRun:
    """A usage-threshold run on a tenth of the default fleet with jobs 0, 1 and 2 of one class, each with its AM
    running and workers still pending, in that order among the started jobs."""
    data = default_scenario().model_dump()
    data.update({"node_scale": 0.1, "policies": ("usage-threshold",)})
    scenario = Scenario.model_validate(data)
    inventory = build_inventory(scenario)
    run_ = PolicyRun("usage-threshold", scenario, inventory, Fleet.of(inventory.nodes), ForecastConfig())
    run_.arrive([Job(id=j, arrival_s=0.0, team="search", instances=10, cpu_milli=1000, memory_mib=2048,
                     duration_s=600.0, needs_disk=False) for j in range(3)])
    am = scenario.am_shape
    for j in range(3):
        run_.jobs[j].am_group = run_._start(j, j, 1, am.cpu_milli, am.memory_mib, True, 0, 0.0)
        run_.in_started.add(j)
        run_.started.append(j, run_.jobs[j].key)
    run_._dequeue([0, 1, 2])
    return run_


def test_a_job_whose_am_died_leaves_the_started_jobs_even_behind_a_blocked_class() -> None:
    run_ = three_started_jobs_of_one_class()
    run_._kill(run_.jobs[2].am_group, 1)  # the guard kills job 2's AM: the job goes back to the queue
    # Nothing is lendable: job 0 finds no room (its shape is exhausted), job 1 is passed over with its class,
    # and job 2 is never looked at as a placement candidate, but it is no started job any more.
    run_.place(1, 10.0, Lendable.zeros(len(run_.fleet)))
    assert list(run_.started) == [0, 1]
    assert run_.in_started == {0, 1}
    assert list(run_.waiting) == [2]


def test_a_job_with_nothing_pending_leaves_the_started_jobs_even_behind_a_blocked_class() -> None:
    run_ = three_started_jobs_of_one_class()
    for _ in range(10):  # job 2 gets all its workers (as in a reservation's slots between two plans)
        run_._start(2, 3, 1, 1000, 2048, False, 0, 0.0)
    run_.place(1, 10.0, Lendable.zeros(len(run_.fleet)))
    assert list(run_.started) == [0, 1]
    assert run_.in_started == {0, 1}
