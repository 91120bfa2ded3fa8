"""``broker yarn``: look at a ResourceManager and make it enforce a plan.

- ``broker yarn status --rm URL...``: which RM is active, the nodes, labels and cluster metrics;
- ``broker yarn sync --rm URL... --plan PLAN [--dry-run]``: push node capacities, labels and queue capacities,
  printing the writes made (or, with ``--dry-run``, that would be made) and what the RM reads back.

Without ``--config`` the cluster is the one the plan's nodes name (``--cluster`` when there are several) and
teams map to queues through the plan's bindings; ``--config`` adds node-id and team-queue mappings and tuning.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from broker.cli.common import console, friendly_errors, print_json
from broker.errors import InputError
from broker.model import Plan, load, parse
from broker.yarn_bridge import (
    ClusterBridge,
    RMClient,
    SyncReport,
    YarnCluster,
    load_config,
)
from broker.yarn_bridge.queues import CS, DEFAULT_LABEL
from broker.yarn_bridge.wire import labels_of, nodes_of

app = typer.Typer(
    name="yarn",
    help="Drive YARN ResourceManagers: status, and sync a plan (node capacities, labels, queue capacities).",
    no_args_is_help=True,
)

RM_HELP = "ResourceManager base URL, e.g. http://rm1:8088; repeat for each RM of an HA cluster."
AUTH_HELP = (
    "simple (user.name) or spnego (HTTP Negotiate with the Kerberos ticket of kinit or KRB5_CLIENT_KTNAME)."
)


class AuthKind(StrEnum):
    """``--auth``: how the RM is told who is calling."""

    SIMPLE = "simple"
    SPNEGO = "spnego"



@app.command("status")
@friendly_errors
def status(
    rm: list[str] = typer.Option(..., "--rm", help=RM_HELP),
    user: str = typer.Option("yarn", "--user", help="Caller sent as user.name (simple auth)."),
    auth: AuthKind = typer.Option(AuthKind.SIMPLE, "--auth", help=AUTH_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show each RM's HA state, and the active RM's nodes, labels and metrics."""
    settings = {"name": "cli", "rm_urls": rm, "user": user, "auth": {"kind": auth.value}}
    cluster = parse(YarnCluster, settings, "--rm")
    data = asyncio.run(_status(cluster))
    if as_json:
        print_json(data)
        return
    for url, state in data["ha"].items():
        console.print(f"{url}: {state}", highlight=False)
    console.print(f"active: {data['active']}", highlight=False)
    console.print(
        f"nodes: {data['nodes']} ({', '.join(f'{k} {v}' for k, v in data['node_states'].items())}); "
        f"total {data['total_mb']} MB, {data['total_vcores']} vCores",
        highlight=False,
    )
    console.print(
        f"labels: {', '.join(f'{k} (exclusive={v})' for k, v in data['labels'].items()) or 'none'}",
        highlight=False,
    )
    console.print(
        f"apps: {data['metrics'].get('appsRunning', 0)} running, "
        f"{data['metrics'].get('appsPending', 0)} pending",
        highlight=False,
    )


async def _status(cluster: YarnCluster) -> dict[str, Any]:
    async with RMClient(cluster) as client:
        ha = await client.ha_states()
        nodes = nodes_of(await client.get("/nodes"), client.peer)
        labels = labels_of(await client.get("/get-node-labels"), client.peer)
        metrics = (await client.get("/metrics")).get("clusterMetrics") or {}
        return {
            "ha": ha,
            "active": client.active_url,
            "nodes": len(nodes),
            "node_states": dict(Counter(n.state for n in nodes)),
            "total_mb": sum(n.total.memory_mb for n in nodes),
            "total_vcores": sum(n.total.vcores for n in nodes),
            "labels": labels,
            "metrics": metrics,
        }


@app.command("sync")
@friendly_errors
def sync(
    plan: Path = typer.Option(..., "--plan", help="Plan file (YAML/JSON, see `broker schema plan`)."),
    rm: list[str] = typer.Option(None, "--rm", help=RM_HELP + " Overrides the configuration's rm_urls."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Read the RM and print the writes, send none."),
    user: str | None = typer.Option(
        None, "--user", help="Caller sent as user.name (default: config or yarn)."
    ),
    auth: AuthKind | None = typer.Option(None, "--auth", help=AUTH_HELP + " Default: config or simple."),
    config: Path | None = typer.Option(None, "--config", help="YARN clusters file (see docs/yarn.md)."),
    cluster: str | None = typer.Option(None, "--cluster", help="Which cluster of the plan / configuration."),
    dynamic_resources_out: Path | None = typer.Option(
        None,
        "--dynamic-resources-out",
        help="With node_resource_method dynamic-resources: write the XML here.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Make the RM enforce PLAN for one cluster; exit 1 when any write failed or was not read back."""
    the_plan = load(Plan, plan)
    target = _cluster(the_plan, rm or [], user, auth, config, cluster)
    report = asyncio.run(_sync(target, the_plan, dry_run))
    if report.dynamic_resources_xml and dynamic_resources_out is not None:
        dynamic_resources_out.write_text(report.dynamic_resources_xml, encoding="utf-8")
    if as_json:
        print_json(report.model_dump(mode="json"))
    else:
        _print_report(report, dynamic_resources_out)
    if not report.ok:
        raise typer.Exit(1)


def _cluster(
    plan: Plan, rm: list[str], user: str | None, auth: AuthKind | None, config: Path | None, name: str | None
) -> YarnCluster:
    overrides: dict[str, Any] = {}
    if rm:
        overrides["rm_urls"] = rm
    if user:
        overrides["user"] = user
    if auth is not None:
        overrides["auth"] = {"kind": auth.value}
    if config is not None:
        clusters = load_config(config)
        if name is None and len(clusters.clusters) > 1:
            raise InputError("--cluster", "the configuration has several clusters: name one")
        chosen = clusters.cluster(name) if name else clusters.clusters[0]
        if auth is not None and chosen.auth.kind == auth.value:
            del overrides["auth"]  # keep the configured principal, service and host
        return parse(YarnCluster, {**chosen.model_dump(), **overrides}, "--rm")
    if not rm:
        raise InputError("--rm", "give the RM address(es), or --config")
    in_plan = sorted({n.cluster for n in plan.nodes})
    if name is None:
        if len(in_plan) != 1:
            raise InputError(
                "--cluster", f"the plan has nodes of {len(in_plan)} clusters ({', '.join(in_plan)}): name one"
            )
        name = in_plan[0]
    return parse(YarnCluster, {"name": name, **overrides}, "--rm")


async def _sync(cluster: YarnCluster, plan: Plan, dry_run: bool) -> SyncReport:
    async with RMClient(cluster) as client:
        return await ClusterBridge(client).sync(plan, dry_run=dry_run)


def _print_report(report: SyncReport, xml_path: Path | None) -> None:
    verb = "would send" if report.dry_run else "sent"
    console.print(
        f"cluster {report.cluster} via {report.active_rm}: {len(report.requests)} write(s) {verb}",
        highlight=False,
    )
    for request in report.requests:
        console.print(f"  {request.line()}", highlight=False, markup=False)
    if report.commands:
        where = xml_path or "(use --dynamic-resources-out FILE)"
        console.print(
            f"dynamic-resources.xml -> {where}; then run: {' '.join(report.commands[0])}", highlight=False
        )
    for line in report.drift_lines():
        console.print(f"  drift: {line}", highlight=False, markup=False)
    statuses = Counter(n.status.value for n in report.nodes)
    console.print(
        f"nodes: {report.unchanged_nodes} unchanged, "
        + ", ".join(f"{v} {k}" for k, v in sorted(statuses.items())),
        highlight=False,
    )
    for node in report.nodes:
        if node.read_back is not None:
            console.print(f"  read back {node.node_id}: {node.read_back}", highlight=False, markup=False)
    if report.queues.drift and not report.dry_run:
        console.print(
            f"queues: {'applied and read back' if report.queues.applied else 'NOT applied'}", highlight=False
        )
    for path, am in report.queues.am_labels.items():
        key = f"{CS}{path}.{DEFAULT_LABEL}"
        if key in report.queues.drift:
            state = "would set" if report.dry_run else "set, read back" if report.queues.applied else "NOT set"
        else:
            state = "NOT confirmed" if report.queues.error else "already set"
        console.print(
            f"AM label {path}: {am.partition} ({DEFAULT_LABEL}, {state}; {am.reason})",
            highlight=False,
            markup=False,
        )
    for problem in (report.labels.error, report.queues.error):
        if problem:
            console.print(f"[bold red]error:[/] {problem}", highlight=False)
    for key, (want, got) in report.queues.not_applied.items():
        console.print(
            f"  not applied: {key} = {got or '(unset)'}, wanted {want}", highlight=False, markup=False
        )
