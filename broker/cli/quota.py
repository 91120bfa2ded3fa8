"""``broker quota``: validate, apply (with dry-run), show, history, roll back and simulate quota policies.

Policies are kept in a versioned store (``--store PATH|URL``, else ``$BROKER_STORE``, else
``~/.local/state/broker/store.json``; a ``redis://`` URL selects the shared Redis store); every change records
its version, author, time and diff.
``broker quota serve`` runs the admin HTTP API over the same store.

While a broker reads the policy from an ``ElasticQuotaPolicy`` object (``policy_source.kind: kubernetes``),
``apply`` and ``rollback`` refuse to write on top of the version it wrote (``PolicyOwner``): the broker would
overwrite the change at the object's next event. ``--force`` writes anyway, for a store no broker manages any
more.
"""

from __future__ import annotations

import functools
import getpass
import os
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

import typer
from rich.markup import escape
from rich.table import Table

from broker.cli.common import console, friendly_errors, print_json
from broker.errors import InputError
from broker.model import Resources, parse, read_document
from broker.quota import QuotaPolicy, RuntimeQuota, compute_runtime_quota, read_demand
from broker.service.admin_api import PolicyOwner
from broker.store import PolicyLog, PolicyRecord, Preview, open_store

app = typer.Typer(help="Elastic quota policies: validate, apply, show, history, rollback, simulate, serve.",
                  no_args_is_help=True)

_STORE = typer.Option(None, "--store", help="Policy store: a file, or a redis:// URL (see docs/store.md) "
                                           "[default: $BROKER_STORE or ~/.local/state/broker/store.json].")
_AUTHOR = typer.Option(None, "--author", help="Who makes the change [default: the login name].")
_JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")
_FORCE = typer.Option(False, "--force", help="Write even though the current version came from an "
                      "ElasticQuotaPolicy (policy_source): only once no broker reads the policy from it any more, "
                      "since one that does puts the object's policy back.")
P = ParamSpec("P")
R = TypeVar("R")


def _markup_safe(fn: Callable[P, R]) -> Callable[P, R]:
    """Escape input errors for rich: quota fields read ``groups[team-a]``, which rich would take for a tag."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except InputError as exc:
            raise InputError(escape(exc.field), escape(exc.message)) from None

    return wrapper


_POOL_HELP = "Pool size, e.g. cpu=400,memory=1600Gi[,disk=...,network=...,gpu=...]."


def _log(store: str | None) -> PolicyLog:
    return PolicyLog(open_store(store, os.environ))


def _unmanaged_head(log: PolicyLog, force: bool) -> int:
    """The current version, to write on top of (so that a version the broker writes meanwhile is a conflict,
    not overwritten); refused, naming the object, when the broker wrote it from an ``ElasticQuotaPolicy``."""
    current = log.current()
    owner = PolicyOwner.of(current)
    if owner is not None and not force:
        raise InputError("store", f"{owner.refusal()} (kubectl edit eqp {owner.name}); --force overrides, once no "
                                  "broker reads it")
    return current.version if current is not None else 0


def _author(author: str | None) -> str:
    if author:
        return author
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def parse_pool(text: str) -> Resources:
    """Read ``cpu=400,memory=1600Gi`` into ``Resources``; errors name ``--pool``."""
    fields: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise InputError("--pool", f"{part!r} is not name=quantity (example: cpu=400,memory=1600Gi)")
        if key.strip() in fields:
            raise InputError("--pool", f"{key.strip()!r} given twice")
        fields[key.strip()] = value.strip()
    if not fields:
        raise InputError("--pool", "empty; example: cpu=400,memory=1600Gi")
    return parse(Resources, fields, "--pool")


def _load_demand(path: Path) -> dict[str, Resources]:
    try:
        return read_demand(read_document(path))
    except InputError as exc:
        raise InputError(f"{path}: {exc.field}" if exc.field else str(path), exc.message) from None


def _runtime_table(result: RuntimeQuota) -> Table:
    table = Table(title=f"runtime quota (pool {result.pool})")
    for column in ("group", "demand", "min", "runtime", "borrowed", "lent"):
        table.add_column(column)
    depth: dict[str, int] = {}
    for name, group in result.groups.items():
        depth[name] = depth[group.parent] + 1 if group.parent is not None else 0
        table.add_row("  " * depth[name] + name, str(group.demand), str(group.min), str(group.runtime),
                      str(group.borrowed), str(group.lent))
    return table


def _print_preview(preview: Preview) -> None:
    console.print(f"changes against version {preview.base_version}:" if preview.changes else "no changes")
    for change in preview.changes:
        console.print(f"  {change.line()}", highlight=False, markup=False)
    moved = [c for c in preview.runtime if c.changed]
    if preview.runtime:
        console.print(f"runtime quota: {len(moved)} of {len(preview.runtime)} groups change")
        for c in moved:
            before = str(c.before.runtime) if c.before else "(none)"
            after = str(c.after.runtime) if c.after else "(removed)"
            console.print(f"  {c.group}: {before} -> {after}", highlight=False, markup=False)
    else:
        console.print("runtime quota: no pool known (give --pool and --demand, or let the control loop "
                      "record an observation)")


@app.command("validate")
@friendly_errors
@_markup_safe
def validate(file: Path = typer.Argument(..., help="Policy YAML (plain or ElasticQuotaPolicy CR).")) -> None:
    """Check a policy file as a whole; exit 2 naming every problem's group and field."""
    policy = QuotaPolicy.load(file)
    console.print(f"{file}: valid ({len(policy.groups)} groups, {len(policy.tree.leaves)} leaves)")


@app.command("apply")
@friendly_errors
@_markup_safe
def apply(
    file: Path = typer.Argument(..., help="Policy YAML (plain or ElasticQuotaPolicy CR)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the diff and runtime effect; write nothing."),
    pool: str | None = typer.Option(None, "--pool", help=_POOL_HELP + " For --dry-run."),
    demand: Path | None = typer.Option(None, "--demand", help="Per-leaf demand YAML, for --dry-run."),
    expect_version: int | None = typer.Option(None, "--expect-version", min=0,
                                              help="Refuse unless the store is at this version."),
    comment: str = typer.Option("", "--comment", help="Why (kept in the history)."),
    author: str | None = _AUTHOR,
    store: str | None = _STORE,
    json: bool = _JSON,
    force: bool = _FORCE,
) -> None:
    """Apply a policy as the next version (all or nothing), or preview it with --dry-run."""
    policy = QuotaPolicy.load(file)
    log = _log(store)
    if dry_run:
        preview = log.preview(policy, parse_pool(pool) if pool else None,
                              _load_demand(demand) if demand else None)
        if json:
            print_json({"baseVersion": preview.base_version, "changes": [c.line() for c in preview.changes],
                        "runtime": {c.group: c.for_storage() for c in preview.runtime}})
        else:
            _print_preview(preview)
        return
    if pool or demand:
        raise InputError("--pool" if pool else "--demand", "only used with --dry-run")
    head = _unmanaged_head(log, force)
    outcome = log.apply(policy, _author(author), head if expect_version is None else expect_version, comment)
    if json:
        print_json({"written": outcome.written, **outcome.record.summary()})
    elif outcome.written:
        console.print(f"applied version {outcome.record.version} ({len(outcome.record.diff)} changes)")
    else:
        console.print(f"unchanged: identical to version {outcome.record.version}")


@app.command("show")
@friendly_errors
@_markup_safe
def show(
    version: int | None = typer.Option(None, "--version", min=1, help="A past version [default: current]."),
    store: str | None = _STORE,
    json: bool = _JSON,
) -> None:
    """Show the current (or a past) policy."""
    log = _log(store)
    record = log.version(version) if version is not None else log.current()
    if record is None:
        raise InputError("store", "no policy applied yet; use `broker quota apply FILE`")
    if json:
        print_json({**record.summary(), "policy": record.policy.for_storage()})
        return
    console.print(f"version {record.version} by {record.author} at {record.created_at.isoformat()}")
    table = Table()
    for column in ("group", "parent", "min", "max", "lending", "borrowing", "weight", "bindings"):
        table.add_column(column)
    for group in record.policy.groups:
        data = group.model_dump(mode="json", by_alias=True)
        bindings = [f"{c}:{'|'.join(q)}" for c, q in {**group.yarn_queues, **group.namespaces}.items()]
        table.add_row(group.name, group.parent or "-", _text(data["min"]), _text(data["max"]),
                      _text(data["lendingLimit"]), _text(data["borrowingLimit"]), str(data["weight"]),
                      " ".join(bindings))
    console.print(table)


def _text(limits: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in limits.items()) or "-"


@app.command("history")
@friendly_errors
@_markup_safe
def history(
    limit: int = typer.Option(20, "--limit", min=1, max=10_000, help="How many versions, newest first."),
    store: str | None = _STORE,
    json: bool = _JSON,
) -> None:
    """List the policy versions: version, author, time, action and diff."""
    records = _log(store).store.history(limit)
    if json:
        print_json([r.summary() for r in records])
        return
    for record in records:
        _print_record(record)


def _print_record(record: PolicyRecord) -> None:
    what = record.action.value + (f" of {record.rollback_of}" if record.rollback_of else "")
    console.print(f"[bold]v{record.version}[/] {record.created_at.isoformat()} {record.author} {what}"
                  + (f" - {record.comment}" if record.comment else ""), highlight=False)
    for line in record.diff:
        console.print(f"    {line}", highlight=False, markup=False)


@app.command("rollback")
@friendly_errors
@_markup_safe
def rollback(
    version: int = typer.Argument(..., min=1, help="The version whose policy to restore."),
    author: str | None = _AUTHOR,
    store: str | None = _STORE,
    force: bool = _FORCE,
) -> None:
    """Restore an old version's policy as a new version (history is kept)."""
    log = _log(store)
    outcome = log.rollback(version, _author(author), _unmanaged_head(log, force))
    if outcome.written:
        console.print(f"version {outcome.record.version} restores version {version}")
    else:
        console.print(f"unchanged: the current version already has version {version}'s policy")


@app.command("simulate")
@friendly_errors
@_markup_safe
def simulate(
    file: Path = typer.Argument(..., help="Policy YAML (plain or ElasticQuotaPolicy CR)."),
    pool: str = typer.Option(..., "--pool", help=_POOL_HELP),
    demand: Path = typer.Option(..., "--demand", help="Per-leaf demand YAML (running + pending)."),
    json: bool = _JSON,
) -> None:
    """Print each group's runtime quota, borrowed and lent amounts for a pool and a demand."""
    policy = QuotaPolicy.load(file)
    result = compute_runtime_quota(policy, parse_pool(pool), _load_demand(demand))
    if json:
        print_json(result.for_storage())
        return
    console.print(_runtime_table(result))
    if result.scaled:
        ratios = dict(zip(("cpu", "memory", "disk", "network", "gpu"), result.min_ratio_ppm, strict=True))
        console.print("mins scaled down (pool below the sum of mins): " + ", ".join(
            f"{d} x{ratios[d] / 1_000_000:.3f}" for d in result.scaled_dimensions))


@app.command("serve")
@friendly_errors
@_markup_safe
def serve(
    tokens: Path = typer.Option(..., "--tokens", help="Tokens file (see docs/quota.md)."),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8081, "--port", min=0, max=65535),
    store: str | None = _STORE,
) -> None:
    """Run the quota admin HTTP API (OpenAPI at /openapi.json)."""
    import uvicorn

    from broker.service.admin_api import Tokens, create_app

    uvicorn.run(create_app(_log(store), Tokens.load(tokens)), host=host, port=port, log_level="info")
