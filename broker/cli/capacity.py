"""``broker capacity replay``: run one estimator over a usage trace and write what it would have lent.

Each trace machine is one node of the shape given by the flags. The estimator is fed the samples as they arrive
(a node without a sample in the last ``--interval-s`` is not seen in that interval, so gaps in the trace count as
stale metrics) and asked every interval; the published value follows the estimator's own anti-churn rule.
"""

from __future__ import annotations

import csv
from enum import Enum
from pathlib import Path

import numpy as np
import typer
from rich.progress import Progress

from broker.capacity import ESTIMATORS, Fleet, UsageHistory, estimator_named, resync, resync_rule_for
from broker.cli.common import err_console, friendly_errors
from broker.errors import InputError
from broker.model import Cluster, Dimension, Node, Resources, Site, parse_quantity
from plugins.sim.online import TraceSeries, read_alibaba2018, read_usage_csv

app = typer.Typer(help="Spare-capacity estimation: replay an estimator over a usage trace.", no_args_is_help=True)


class UsageFormat(str, Enum):
    """Formats of ``--usage``."""

    ALIBABA2018 = "alibaba2018"
    CSV = "csv"


@app.command("replay")
@friendly_errors
def replay(
    usage: Path = typer.Option(..., "--usage", help="Usage trace: Alibaba 2018 machine_usage, or the generic CSV."),
    fmt: UsageFormat = typer.Option(UsageFormat.CSV, "--format",
                                    help="alibaba2018 (raw rows) or csv (timestamp_s,node,cpu_percent,mem_percent)."),
    estimator: str = typer.Option("broker", "--estimator", help=f"One of: {', '.join(ESTIMATORS)}."),
    interval_s: int = typer.Option(60, "--interval-s", min=1, max=86_400, help="Seconds between estimates."),
    out: Path = typer.Option(..., "--out", help="CSV to write: time_s,node,lendable_cpu_milli,lendable_memory_mib,"
                                                 "stable_cpu_milli,stable_memory_mib."),
    node_cpu: str = typer.Option("96", "--node-cpu", help="CPU capacity of each trace machine."),
    node_memory: str = typer.Option("384Gi", "--node-memory", help="Memory capacity of each trace machine."),
    reserved_cpu: str = typer.Option("2", "--reserved-cpu", help="System reserve per node."),
    reserved_memory: str = typer.Option("8Gi", "--reserved-memory", help="System reserve per node."),
    memory_scale: float = typer.Option(1.0, "--memory-scale", min=0.0, max=1.0,
                                       help="Fraction of the trace's memory taken as online usage."),
) -> None:
    """Write, per node and interval, the CPU and memory the estimator would have offered for lending."""
    if estimator not in ESTIMATORS:
        raise InputError("--estimator", f"unknown estimator {estimator!r}; choose one of {', '.join(ESTIMATORS)}")
    series = read_alibaba2018(usage) if fmt is UsageFormat.ALIBABA2018 else read_usage_csv(usage)
    capacity = _flags(node_cpu, node_memory, "--node-cpu", "--node-memory")
    reserved = _flags(reserved_cpu, reserved_memory, "--reserved-cpu", "--reserved-memory")
    if not reserved.fits_in(capacity):
        raise InputError("--reserved-cpu/--reserved-memory", "the reserve exceeds the node capacity")
    fleet = _fleet(series, capacity, reserved)
    rows = _replay(series, fleet, estimator, interval_s, memory_scale)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["time_s", "node", "lendable_cpu_milli", "lendable_memory_mib", "stable_cpu_milli",
                         "stable_memory_mib"])
        writer.writerows(rows)
    err_console.print(f"wrote {len(rows)} rows for {len(series)} nodes to {out}")


def _flags(cpu: str, memory: str, cpu_flag: str, memory_flag: str) -> Resources:
    """CPU and memory quantities from two flags; a bad one is an error naming its flag."""
    return Resources.exact(parse_quantity(cpu, Dimension.CPU, cpu_flag), parse_quantity(memory, Dimension.MEMORY,
                                                                                          memory_flag))


def _fleet(series: list[TraceSeries], capacity: Resources, reserved: Resources) -> Fleet:
    site = Site(name="trace")
    cluster = Cluster(name="trace", site=site.name)
    return Fleet.of([Node(name=_node_name(s.name), site=site.name, cluster=cluster.name, capacity=capacity,
                          reserved=reserved) for s in series])


def _node_name(raw: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "._-" else "-" for c in raw).strip("-._") or "node"
    return cleaned[:250]


def _replay(series: list[TraceSeries], fleet: Fleet, name: str, interval_s: int,
            memory_scale: float) -> list[tuple[int, str, int, int, int, int]]:
    estimator = estimator_named(name)
    rule = resync_rule_for(name)
    history = UsageHistory(len(series))
    start = min(float(s.times[0]) for s in series)
    end = max(float(s.times[-1]) for s in series)
    ticks = np.arange(start + interval_s, end + interval_s, interval_s)
    published = None
    rows: list[tuple[int, str, int, int, int, int]] = []
    cursor = [0] * len(series)
    with Progress(console=err_console, transient=True) as progress:
        task = progress.add_task(f"replaying {name}", total=len(ticks))
        for now in ticks:
            cpu = history.last[0].copy()
            mem = history.last[1].copy()
            seen = np.zeros(len(series), dtype=np.bool_)
            for i, s in enumerate(series):
                j = int(np.searchsorted(s.times, now, side="right"))
                if j > cursor[i]:
                    cpu[i] = int(s.cpu[j - 1] * fleet.cpu_milli[i])
                    mem[i] = int(s.memory[j - 1] * memory_scale * fleet.memory_mib[i])
                    seen[i] = True
                    cursor[i] = j
            history.observe(float(now), cpu, mem, seen)
            published = resync(published, estimator.estimate(fleet, history, float(now)), fleet, float(now), rule)
            lend = published.lendable
            for i, s in enumerate(series):
                rows.append((int(now), _node_name(s.name), int(lend.cpu_milli[i]), int(lend.memory_mib[i]),
                             int(lend.stable_cpu_milli[i]), int(lend.stable_memory_mib[i])))
            progress.advance(task)
    return rows
