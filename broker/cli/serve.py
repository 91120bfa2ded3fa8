"""``broker serve ...``: the long-running servers (``broker serve extender``: the kube-scheduler extender)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import typer
import uvicorn

from broker.cli.common import friendly_errors
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

_DOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")

app = typer.Typer(
    help="Run the broker's servers. Available: `extender` (the kube-scheduler HTTP extender). Not yet: the control "
    "loop that collects, estimates, plans and pushes on a schedule (`broker serve --config`); until then the "
    "parts run as `broker plan`, `broker yarn sync` and `broker serve extender`.",
    no_args_is_help=True,
)


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
