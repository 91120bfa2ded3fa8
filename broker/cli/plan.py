"""``broker plan``: plan one interval from files; ``broker bench planner``: the planner on a synthetic fleet.

The planner itself is pure (``broker.scheduler``); this module only reads the files, prints and times.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import typer
from rich.table import Table

from broker.cli.common import EXIT_FAILURE, console, friendly_errors, print_json
from broker.errors import InputError
from broker.model import Demand, Inventory, Plan, Resources, load, parse, total
from broker.scheduler import (
    LendableDocument,
    PlacementProblem,
    QuotaDocument,
    check_feasible,
    instance,
    solve,
)

bench_app = typer.Typer(help="Benchmarks of the broker's decision code on reproducible synthetic instances.",
                        no_args_is_help=True)


@friendly_errors
def plan(
    inventory: Path = typer.Option(..., "--inventory",
                                   help="Inventory file (YAML/JSON): sites, links, nodes."),
    quota: Path = typer.Option(..., "--quota",
                               help="Runtime quota file: teams.<name>.{min, runtime, weight}."),
    demand: Path = typer.Option(..., "--demand", help="Demand file: classes of identical containers."),
    lendable: Path | None = typer.Option(None, "--lendable",
                                         help="Lendable capacity per node (default: capacity - reserved)."),
    time_limit: float = typer.Option(1.0, "--time-limit", min=0.01, max=600.0,
                                     help="Solver time limit, seconds."),
    seed: int = typer.Option(0, "--seed", min=0, help="Solver seed (same inputs and seed, same plan)."),
    as_json: bool = typer.Option(False, "--json", help="Print the whole plan as JSON."),
) -> None:
    """Plan which offline work gets the spare capacity of which node, and explain unmet demand."""
    problem = parse(PlacementProblem, {
        "inventory": load(Inventory, inventory),
        "demand": load(Demand, demand),
        "quota": load(QuotaDocument, quota),
        "lendable": load(LendableDocument, lendable).nodes if lendable is not None else None,
    })
    result = solve(problem, time_limit_s=time_limit, seed=seed).plan
    if as_json:
        print_json(result.model_dump(mode="json"))
        return
    _print_summary(result)


def _print_summary(result: Plan) -> None:
    report = result.solve
    console.print(f"status [bold]{report.status.value}[/]  objective {report.objective:.4f}  "
                  f"LP bound {report.lp_bound:.4f}  greedy {report.greedy_objective:.4f}  "
                  f"placed {report.placed_fraction:.1%} (greedy {report.greedy_placed_fraction:.1%})  "
                  f"in {report.solve_seconds:.3f} s", highlight=False)
    teams = Table("team", "placed", "runtime quota", "by site", title="Teams")
    for team in result.teams:
        teams.add_row(team.team, str(team.placed), str(team.runtime_quota),
                      "; ".join(f"{site}: {amount}" for site, amount in team.placed_by_site.items()))
    console.print(teams)
    placed = total([n.yarn + n.kubernetes for n in result.nodes])
    lendable = total([n.lendable for n in result.nodes])
    console.print(f"nodes {len(result.nodes)}: lent {_compute(placed)} of {_compute(lendable)}",
                  highlight=False)
    if result.links:
        links = Table("link", "capacity Mbit/s", "online", "offline reads", title="Links")
        for link in result.links:
            links.add_row(f"{link.a}<->{link.b}", str(link.capacity_mbps), str(link.online_used_mbps),
                          str(link.offline_mbps))
        console.print(links)
    if result.unmet:
        unmet = Table("class", "team", "placed / wanted", "binding", "detail", "would help",
                      title="Unmet demand")
        for item in result.unmet:
            unmet.add_row(item.demand_class, item.team, f"{item.placed} / {item.wanted}", item.binding.value,
                          item.detail, item.would_help)
        console.print(unmet)


def _compute(amount: Resources) -> str:
    return str(Resources.exact(amount.cpu_milli, amount.memory_mib))


@bench_app.command("planner")
@friendly_errors
def bench_planner(
    nodes: int = typer.Option(5000, "--nodes", min=1, max=200_000, help="Nodes in the synthetic fleet."),
    teams: int = typer.Option(50, "--teams", min=1, max=10_000, help="Teams."),
    classes: int = typer.Option(200, "--classes", min=1, max=100_000, help="Demand classes."),
    sites: int = typer.Option(4, "--sites", min=1, max=100,
                              help="Sites (the last is a cloud region if >= 3)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the instance and the solver."),
    repeat: int = typer.Option(5, "--repeat", min=1, max=100, help="Runs; the median time is reported."),
    time_limit: float = typer.Option(10.0, "--time-limit", min=0.01, max=600.0, help="Solver time limit, s."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Plan a reproducible synthetic instance; report time, objective, LP bound and greedy baseline, and check
    the plan's feasibility independently of the solver (exit 1 if it is infeasible)."""
    if classes < teams:
        raise InputError("--classes", "needs at least one class per team")
    problem = instance(nodes=nodes, teams=teams, classes=classes, sites=sites, seed=seed)
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        solution = solve(problem, time_limit_s=time_limit, seed=seed)
        seconds.append(time.perf_counter() - started)
    report = solution.plan.solve
    violations = check_feasible(problem, solution.plan)
    gain = (solution.levels.guaranteed_plus_fair / solution.greedy_levels.guaranteed_plus_fair - 1
            if solution.greedy_levels.guaranteed_plus_fair > 0 else 0.0)
    result = {
        "nodes": nodes, "teams": teams, "classes": classes, "sites": sites, "seed": seed, "repeat": repeat,
        "node_groups": solution.groups,
        "seconds_median": statistics.median(seconds), "seconds_max": max(seconds),
        "solve_seconds": report.solve_seconds, "lp_seconds": solution.lp_seconds,
        "status": report.status.value, "objective": report.objective, "lp_bound": report.lp_bound,
        "objective_over_lp_bound": report.objective / report.lp_bound if report.lp_bound > 0 else None,
        "greedy_objective": report.greedy_objective,
        "placed_fraction": report.placed_fraction, "greedy_placed_fraction": report.greedy_placed_fraction,
        "guaranteed_plus_fair": solution.levels.guaranteed_plus_fair,
        "greedy_guaranteed_plus_fair": solution.greedy_levels.guaranteed_plus_fair,
        "guaranteed_plus_fair_gain_over_greedy": gain,
        "unmet_classes": len(solution.plan.unmet),
        "feasible": not violations,
        "violations": [f"{v.kind} {v.where}: {v.detail}" for v in violations[:20]],
    }
    if as_json:
        print_json(result)
    else:
        table = Table("metric", "value", title=f"planner: {nodes} nodes, {teams} teams, {classes} classes, "
                                               f"{sites} sites, seed {seed}")
        for key, value in result.items():
            table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
        console.print(table)
    if violations:
        raise typer.Exit(EXIT_FAILURE)
