"""``broker serve``: the broker as a service (control loop, extender, admin API, agents' endpoint), and
``broker serve extender``: the kube-scheduler extender alone, on a plan file."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
from pathlib import Path
from typing import TYPE_CHECKING

import typer
import uvicorn

from broker.cli.common import err_console, friendly_errors
from broker.errors import InputError
from broker.service.extender import (
    DEFAULT_DOMAIN,
    DEFAULT_MAX_BODY_BYTES,
    Conventions,
    Extender,
    ExtenderConfig,
    FilePlanSource,
    StalePolicy,
    TlsFiles,
    create_app,
    uvicorn_config,
)

if TYPE_CHECKING:
    from broker.service.control.service import Replica

_DOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")

_HELP = """Run the broker as a service: every interval (default 10 s) the leader collects usage and demand,
estimates spare capacity, computes runtime quota, plans with OR-Tools, stores the plan and pushes it to the sinks;
node agents' samples over the safe limit shrink a node at once (fast path). Every replica serves, on
http.port (8080): /healthz, /readyz, /metrics, the kube-scheduler extender under /extender and (with
http.admin_tokens) the quota admin API under /admin.

With no --config it runs on the embedded defaults: the simulated fleet of `broker simulate`, the in-process store,
one replica, no peers (try it on a laptop; `curl localhost:8080/readyz`).

To point it at real clusters, give a YAML file (docs/service.md has a complete one) or BROKER_* variables:
store: redis://... (shared by replicas), leader.kind: redis|kubernetes, fleet.inventory + fleet.usage: agents +
agents.listen/token_file (node agents: `broker agent`), demand.kind: file|yarn|kubernetes|yarn+kubernetes (yarn:
pending and running work read every cycle from the RMs of sinks.yarn, or of demand.yarn; kubernetes: offline pods
of kubernetes_clusters, watched), sinks.yarn: <YARN cluster file>,
sinks.kubernetes: true + kubernetes_clusters: <clusters file>, sinks.quota_status: {cluster, name} (runtime quota
written to the ElasticQuotaPolicy status), policy_source: {kind: kubernetes, cluster, name} (the policy is that
ElasticQuotaPolicy, edited with kubectl; `broker quota apply` and the admin API then refuse). Variables override the
file:
BROKER_INTERVAL_S=5, BROKER_HTTP__PORT=9000, BROKER_STORE=redis://redis:6379/0."""

app = typer.Typer(help=_HELP, invoke_without_command=True)


@app.callback()
@friendly_errors
def serve(
    ctx: typer.Context,
    config: Path | None = typer.Option(None, "--config", help="Service configuration (YAML); none: the embedded "
                                       "defaults. BROKER_* variables override it."),
    check: bool = typer.Option(False, "--check", help="Validate the configuration, build everything, print the "
                               "effective configuration as JSON and exit."),
) -> None:
    """Run the broker service (see `broker serve --help`), or one of the servers below."""
    if ctx.invoked_subcommand is not None:
        return
    # Imported here: the service pulls in gRPC, the Kubernetes client and OR-Tools, half a second that every
    # other `broker` command would otherwise pay at start.
    from broker.service.control.config import load_service_config
    from broker.service.control.service import build
    from broker.service.observability.logs import configure_logging

    settings = load_service_config(config, os.environ)
    configure_logging(settings.log.level, settings.log.format)
    replica = build(settings, os.environ)
    if check:
        typer.echo(settings.model_dump_json(indent=2))
        return
    err_console.print(f"broker serving on http://{settings.http.host}:{settings.http.port} "
                      f"(replica {settings.replica}, every {settings.interval_s:g} s); Ctrl-C stops", highlight=False)
    asyncio.run(_serve_until_signal(replica))


async def _serve_until_signal(replica: Replica) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await replica.run(stop, own_process=True)


def _tls(cert: Path | None, key: Path | None, client_ca: Path | None) -> TlsFiles | None:
    if cert is None and key is None:
        if client_ca is not None:
            raise InputError("--tls-client-ca", "needs --tls-cert and --tls-key")
        return None
    if cert is None or key is None:
        raise InputError("--tls-cert" if cert is None else "--tls-key", "give both --tls-cert and --tls-key")
    return TlsFiles(cert, key, client_ca)


@app.command("extender")
@friendly_errors
def extender(
    plan: Path = typer.Option(..., "--plan", help="Plan file (JSON/YAML); re-read when it changes."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0 in a pod)."),
    port: int = typer.Option(8888, "--port", min=0, max=65535, help="Port to listen on (0: any free port)."),
    cluster: str | None = typer.Option(
        None, "--cluster", help="Cluster served: only its namespace bindings map pods to teams.",
    ),
    domain: str = typer.Option(DEFAULT_DOMAIN, "--domain",
                               help="Domain of the managed resources and labels (<domain>/batch-cpu ...)."),
    max_plan_age_s: float = typer.Option(60.0, "--max-plan-age-s", min=0.001,
                                         help="A plan older than this is stale."),
    stale_policy: StalePolicy = typer.Option(
        StalePolicy.CLOSED, "--stale-policy",
        help="Offline pods with no usable plan: closed (no node), open (every node), error (Error answer)."),
    assume_ttl_s: float = typer.Option(60.0, "--assume-ttl-s", min=0.001,
                                       help="How long a pod let through counts against its team's quota "
                                            "before a newer plan accounts for it."),
    max_body_bytes: int = typer.Option(DEFAULT_MAX_BODY_BYTES, "--max-body-bytes", min=1024,
                                       help="Largest request body accepted (413 above)."),
    url_prefix: str = typer.Option("", "--url-prefix", help="Path before /filter etc. (the urlPrefix path)."),
    poll_s: float = typer.Option(0.2, "--poll-s", min=0.01, max=10.0,
                                 help="How often the plan file is checked."),
    tls_cert: Path | None = typer.Option(None, "--tls-cert", help="Server certificate (PEM) for HTTPS."),
    tls_key: Path | None = typer.Option(None, "--tls-key", help="Server private key (PEM) for HTTPS."),
    tls_client_ca: Path | None = typer.Option(
        None, "--tls-client-ca", help="Require client certificates signed by this CA (mutual TLS)."),
    log_level: str = typer.Option("info", "--log-level", help="debug, info, warning or error."),
) -> None:
    """Serve the kube-scheduler extender (filter, prioritize, preempt, healthz, readyz, metrics)."""
    if log_level not in {"debug", "info", "warning", "error"}:
        raise InputError("--log-level", f"{log_level!r} is not one of debug, info, warning, error")
    if not _DOMAIN.match(domain):
        raise InputError("--domain", f"{domain!r} is not a DNS domain such as {DEFAULT_DOMAIN}")
    if url_prefix and not url_prefix.startswith("/"):
        raise InputError("--url-prefix", "must start with '/'")
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = ExtenderConfig(
        conventions=Conventions.for_domain(domain),
        cluster=cluster,
        max_plan_age_s=max_plan_age_s,
        stale_policy=stale_policy,
        assume_ttl_s=assume_ttl_s,
    )
    asgi = create_app(Extender(config), FilePlanSource(plan, poll_s), url_prefix, max_body_bytes)
    server_config = uvicorn_config(asgi, host, port, _tls(tls_cert, tls_key, tls_client_ca), log_level)
    uvicorn.Server(server_config).run()
