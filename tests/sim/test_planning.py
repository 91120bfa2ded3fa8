"""The ``broker`` policy plans with the real placement planner: every plan is feasible by the independent checker,
the containers the simulation starts respect the plan's labels, links and reservations, and the report carries the
planner's figures."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from broker.errors import InputError
from broker.model import parse
from broker.scheduler import check_feasible
from plugins.sim import engine
from plugins.sim.engine import PolicyRun
from plugins.sim.run import run
from plugins.sim.scenario import Scenario, default_scenario


def small(**update: object) -> Scenario:
    """The default fleet at 1/10 (31 nodes), broker only, one hour measured after half a day of history; the
    cloud links narrowed so that bandwidth binds."""
    data = default_scenario().model_dump()
    data.update({"node_scale": 0.1, "days": 1 / 24, "warmup_days": 0.5, "policies": ("broker",),
                 "plan_interval_s": 60})
    data["links"] = [{**link, "capacity_mbps": 1500} if "cloud-1" in (link["a"], link["b"]) else link
                     for link in data["links"]]
    data.update(update)
    return Scenario.model_validate(data)


class Observed:
    """What the simulation did, seen right after each plan is put in place."""

    def __init__(self) -> None:
        self.plans = 0
        self.violations: list[str] = []


@pytest.fixture(scope="module")
def observed() -> tuple[Observed, dict[str, Any]]:
    seen = Observed()
    original_plan = PolicyRun.plan
    original_fill = PolicyRun.fill

    def checked_plan(self: PolicyRun, now_s: float, lendable: Any) -> None:
        before = self.plan_stats.solves
        original_plan(self, now_s, lendable)
        if self.plan_stats.solves > before:
            assert self.last_problem is not None and self.last_plan is not None
            seen.plans += 1
            seen.violations += [f"plan {v.kind} {v.where}: {v.detail}"
                                for v in check_feasible(self.last_problem, self.last_plan)]

    def checked_fill(self: PolicyRun, step: int, now_s: float, lendable: Any) -> None:
        original_fill(self, step, now_s, lendable)
        seen.violations += _running_violations(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine.PolicyRun, "plan", checked_plan)
        patch.setattr(engine.PolicyRun, "fill", checked_fill)
        summary = run(small(), None).summary()["policies"]["broker"]
    return seen, summary


def _running_violations(run_: PolicyRun) -> list[str]:
    """Every rule the running containers break: AMs on elastic nodes, disk work on diskless nodes, links over their
    free capacity (or their bookkeeping off), reservations over their slots."""
    out: list[str] = []
    nodes = run_.fleet
    reads: Counter[frozenset[str]] = Counter()
    held: Counter[int] = Counter()
    for g, count in enumerate(run_.g_count):
        if count == 0:
            continue
        node = run_.g_node[g]
        job = run_.jobs[run_.g_job[g]].job
        if run_.g_am[g] and not nodes.stable[node]:
            out.append(f"AM placement {g} on elastic node {node}")
        if not run_.g_am[g] and job.needs_disk and not run_.disk[node]:
            out.append(f"disk worker placement {g} on diskless node {node}")
        if run_.g_pair[g] is not None:
            reads[run_.g_pair[g]] += run_.g_read[g] * count
        if run_.g_res[g] >= run_.r_base:
            held[run_.g_res[g]] += count
    for link in run_.scenario.links:
        pair = frozenset((link.a, link.b))
        if reads[pair] + run_.res_link.get(pair, 0) > link.capacity_mbps - link.online_used_mbps:
            out.append(f"link {link.a}<->{link.b} reads {reads[pair]} > {link.capacity_mbps}")
        if reads[pair] != run_.link_reads.get(pair, 0):
            out.append(f"link {link.a}<->{link.b} bookkeeping {run_.link_reads.get(pair, 0)} != {reads[pair]}")
    for r in range(run_.r_base, len(run_.r_node)):
        if held[r] != run_.r_used[r] or run_.r_used[r] > run_.r_slots[r]:
            out.append(f"reservation {r}: {held[r]} running, {run_.r_used[r]} used of {run_.r_slots[r]} slots")
    return out


def test_every_plan_passes_the_independent_feasibility_check(observed: tuple[Observed, dict[str, Any]]) -> None:
    seen, summary = observed
    assert seen.plans == summary["planner"]["solves"] >= 50
    assert [v for v in seen.violations if v.startswith("plan")] == []


def test_running_containers_respect_labels_links_and_reservations(
        observed: tuple[Observed, dict[str, Any]]) -> None:
    seen, _ = observed
    assert seen.violations == []


def test_the_plan_places_work_and_reservations_are_refilled(observed: tuple[Observed, dict[str, Any]]) -> None:
    _, summary = observed
    planner = summary["planner"]
    planned = sum(sum(t["planned"].values()) for t in planner["teams"].values())
    assert planner["containers_by_plan"] > planned  # slots freed by finished containers went to the same class
    assert 0 < planner["by_plan_fraction"] < 1
    assert 0 < planner["placed_fraction_mean"] <= 1
    assert summary["killed_ams"] == 0


def test_narrow_links_bind_and_are_explained(observed: tuple[Observed, dict[str, Any]]) -> None:
    _, summary = observed
    cloud = [link for link in summary["links"] if "cloud-1" in (link["a"], link["b"])]
    assert any(link["utilisation_peak"] == pytest.approx(1.0, abs=0.05) for link in cloud)
    assert all(link["offline_mbps_peak"] <= link["capacity_mbps"] for link in summary["links"])
    planner = summary["planner"]
    assert planner["unmet_by_binding"].get("bandwidth", 0) > 0
    assert all(item["would_help"] for item in planner["unmet_top"])


def test_the_report_has_the_planner_figures(observed: tuple[Observed, dict[str, Any]]) -> None:
    _, summary = observed
    planner = summary["planner"]
    assert {"solves", "solve_seconds_median", "solve_seconds_p95", "solve_seconds_max", "status",
            "objective_over_lp_bound_mean", "objective_over_lp_bound_min", "placed_fraction_mean",
            "containers_by_plan", "containers_by_fallback", "by_plan_fraction", "clipped_ams", "teams",
            "unmet_by_binding", "unmet_top", "unmet_last_plan"} <= set(planner)
    assert 0 < planner["solve_seconds_median"] <= planner["solve_seconds_p95"] <= planner["solve_seconds_max"]
    assert 0 <= planner["objective_over_lp_bound_min"] <= planner["objective_over_lp_bound_mean"] <= 1 + 1e-6
    assert planner["objective_over_lp_bound_mean"] >= 0.9
    assert set(planner["teams"]) == {"search", "ads", "recommend", "risk", "bi", "ml"}
    assert {(link["a"], link["b"]) for link in summary["links"]} == {
        ("idc-a", "idc-b"), ("idc-a", "cloud-1"), ("idc-b", "cloud-1")}


def test_a_team_data_site_must_be_a_known_site() -> None:
    data = default_scenario().model_dump()
    data["teams"][1]["data_site"] = "moon"
    with pytest.raises(InputError) as caught:
        parse(Scenario, data)
    assert caught.value.field == "teams[1].data_site"
