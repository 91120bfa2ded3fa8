"""``broker simulate``: the co-location simulation, every policy side by side on the same inputs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from broker.cli.common import console, err_console, friendly_errors
from broker.errors import InputError
from broker.model import parse
from plugins.sim.report import write_report
from plugins.sim.run import SimulationRun, run
from plugins.sim.scenario import POLICIES, Scenario, builtin_scenario, load_scenario

_HELP = """Simulate a fleet where online nodes lend spare capacity to offline work, comparing policies.

SCENARIO is a scenario YAML file or a built-in name: `default` (310 synthetic nodes over two IDCs and a cloud pool,
six teams, two days; no files needed) or `alibaba` (Alibaba 2018 machine usage as online load and Alibaba 2017
batch tasks as offline demand, read from ../shared/traces). See docs/simulate.md for the format and the figures.
"""


@friendly_errors
def simulate(
    scenario: str = typer.Argument("default", help="A scenario file, or a built-in: default, alibaba."),
    output_json: Path | None = typer.Option(None, "--output-json", help="Write the per-policy figures as JSON."),
    report: Path | None = typer.Option(None, "--report", help="Write summary.json and PNG plots to this folder."),
    days: float | None = typer.Option(None, "--days", min=0.01, max=30, help="Override the measured days."),
    node_scale: float | None = typer.Option(None, "--node-scale", min=0.01, max=100,
                                            help="Multiply every node group's count (e.g. 16 for ~5,000 nodes)."),
    policies: str | None = typer.Option(None, "--policies",
                                        help=f"Comma-separated subset of: {', '.join(POLICIES)}."),
    seed: int | None = typer.Option(None, "--seed", help="Override the scenario's seed."),
    workers: int = typer.Option(os.cpu_count() or 1, "--workers", min=1, max=64,
                                help="Processes running the policies in parallel (default: one per core)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display."),
) -> None:
    spec, base = _scenario(scenario)
    spec = _override(spec, days, node_scale, policies, seed)
    result = _run(spec, base, quiet, workers)
    _print_table(result)
    if output_json is not None:
        output_json.parent.mkdir(parents=True, exist_ok=True)
        output_json.write_bytes(orjson.dumps(result.summary(), option=orjson.OPT_INDENT_2))
        err_console.print(f"wrote {output_json}")
    if report is not None:
        for path in write_report(result, report):
            err_console.print(f"wrote {path}")


simulate.__doc__ = _HELP


def _scenario(name: str) -> tuple[Scenario, Path | None]:
    path = Path(name)
    if path.suffix in (".yaml", ".yml", ".json") or path.exists():
        return load_scenario(path)
    return builtin_scenario(name), None


def _override(spec: Scenario, days: float | None, node_scale: float | None, policies: str | None,
              seed: int | None) -> Scenario:
    data = spec.model_dump()
    if days is not None:
        data["days"] = days
    if node_scale is not None:
        data["node_scale"] = node_scale
    if seed is not None:
        data["seed"] = seed
    if policies is not None:
        chosen = tuple(p.strip() for p in policies.split(",") if p.strip())
        unknown = [p for p in chosen if p not in POLICIES]
        if unknown:
            raise InputError("--policies", f"unknown policy {unknown[0]!r}; choose from {', '.join(POLICIES)}")
        data["policies"] = chosen
    return parse(Scenario, data, where="scenario")


def _run(spec: Scenario, base: Path | None, quiet: bool, workers: int) -> SimulationRun:
    if quiet:
        return run(spec, base, workers=workers)
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err_console, transient=True) as progress:
        task = progress.add_task(f"simulating {spec.name}", total=1)

        def hook(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        return run(spec, base, hook, workers)


def _print_table(result: SimulationRun) -> None:
    spec = result.scenario
    table = Table(title=f"{spec.name}: {len(result.inventory.nodes)} nodes, {spec.days:g} days, "
                        f"{result.jobs} offline jobs, safe limit {spec.safe_limit.cpu:.0%} CPU / "
                        f"{spec.safe_limit.memory:.0%} memory")
    headers = ("policy", "avg CPU", "avg mem", "lent core-h", "of oracle", "interfered", "containers", "killed",
               "killed AMs", "reclaimed", "wait p95")
    for header in headers:
        table.add_column(header, justify="left" if header == "policy" else "right")
    for policy in result.results:
        s = policy.summary()
        oracle = s["oracle_lendable_cpu_core_hours"]
        table.add_row(
            policy.policy,
            f"{s['avg_cpu_util']:.1%}",
            f"{s['avg_mem_util']:.1%}",
            f"{s['lent_cpu_core_hours']:,.0f}",
            f"{s['lent_cpu_core_hours'] / oracle:.0%}" if oracle else "-",
            f"{s['interference_fraction']:.5f}",
            f"{s['offline_containers']:,}",
            f"{s['killed_containers']:,}",
            str(s["killed_ams"]),
            f"{s['reclaimed_containers']:,}",
            f"{s['offline_wait_p95_s']:,.0f} s",
        )
    console.print(table)
    for policy in result.results:
        if policy.teams:
            _print_teams(policy.policy, policy.teams)
        if policy.planner:
            _print_planner(policy.policy, policy.planner, policy.links)


def _print_planner(policy: str, planner: dict[str, Any], links: list[dict[str, Any]]) -> None:
    """What the placement planner placed, the links it used and why demand stayed unmet."""
    ratio = planner["objective_over_lp_bound_mean"]
    console.print(
        f"[bold]{policy}: placement planner[/] {planner['solves']:,} plans, solve time median "
        f"{planner['solve_seconds_median'] * 1000:.0f} ms / p95 {planner['solve_seconds_p95'] * 1000:.0f} ms / max "
        f"{planner['solve_seconds_max'] * 1000:.0f} ms, objective "
        f"{f'{ratio:.2%}' if ratio is not None else '-'} of the LP bound on average; "
        f"{planner['by_plan_fraction']:.0%} of containers started in the plan's reservations, the rest first-fit "
        f"between plans (data site first, other sites within the link room left); "
        f"{planner['clipped_ams']:,} planned AMs skipped (stable capacity gone)", highlight=False)
    teams = Table(title=f"{policy}: placed demand (containers, summed over the plans)")
    for header in ("team", "planned AMs", "planned new workers", "planned running-job workers", "placed fraction",
                   "started by plan", "started first-fit"):
        teams.add_column(header, justify="left" if header == "team" else "right")
    for team, f in planner["teams"].items():
        planned = f["planned"]
        teams.add_row(team, f"{planned.get('am', 0):,}", f"{planned.get('new', 0):,}", f"{planned.get('run', 0):,}",
                      f"{f['placed_fraction']:.1%}", f"{f['started_by_plan']:,}", f"{f['started_by_fallback']:,}")
    console.print(teams)
    table = Table(title=f"{policy}: link utilisation per site pair (offline reads)")
    for header in ("link", "free Mbit/s", "average Mbit/s", "average", "peak Mbit/s", "peak"):
        table.add_column(header, justify="left" if header == "link" else "right")
    for link in links:
        table.add_row(f"{link['a']}<->{link['b']}", f"{link['capacity_mbps'] - link['online_used_mbps']:,}",
                      f"{link['offline_mbps_avg']:,.0f}", f"{link['utilisation_avg']:.0%}",
                      f"{link['offline_mbps_peak']:,}", f"{link['utilisation_peak']:.0%}")
    console.print(table)
    bindings = ", ".join(f"{b} {n:,}" for b, n in sorted(planner["unmet_by_binding"].items(), key=lambda x: -x[1]))
    unmet = Table(title=f"{policy}: unmet demand (class explanations over all plans: {bindings or 'none'})")
    for header in ("class", "binding", "plans", "would help (latest)"):
        unmet.add_column(header, justify="right" if header == "plans" else "left")
    for item in planner["unmet_top"]:
        unmet.add_row(item["class"], item["binding"], f"{item['plans']:,}", item["would_help"])
    console.print(unmet)


def _print_teams(policy: str, teams: dict[str, dict[str, float]]) -> None:
    table = Table(title=f"{policy}: elastic quota per team (CPU; averages over the quota intervals)")
    for header in ("team", "min cores", "runtime cores", "used cores", "guarantee met", "borrowed core-h",
                   "lent core-h", "reclaimed"):
        table.add_column(header, justify="left" if header == "team" else "right")
    for team, f in teams.items():
        table.add_row(team, f"{f['min_cores_avg']:,.0f}", f"{f['runtime_cores_avg']:,.0f}",
                      f"{f['used_cores_avg']:,.0f}", f"{f['guarantee_met']:.0%}", f"{f['borrowed_core_hours']:,.0f}",
                      f"{f['lent_core_hours']:,.0f}", f"{f['reclaimed_containers']:,}")
    console.print(table)
