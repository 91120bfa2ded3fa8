"""``broker agent``: the node agent. Reads the node's usage from procfs and its offline containers from cgroup v2 every
``--interval-s`` and streams it to the broker (``docs/agent.md``); ``--once`` prints one sample instead. With
``--driver-pods`` it also follows, in the Kubernetes API, which pods on the node are drivers (AMs)."""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from broker.cli.common import console, friendly_errors, print_json
from broker.errors import InputError
from broker.model import NAME_PATTERN
from plugins.node_agent.cgroup import CGROUP_ROOT, POD_ROOTS, YARN_ROOTS, Discovery
from plugins.node_agent.client import Agent, AgentConfig, ClientTls, read_token
from plugins.node_agent.procfs import PROC
from plugins.node_agent.sampler import Sampler
from plugins.node_agent.selectors import DEFAULT_SELECTORS, check_selector
from plugins.node_agent.wire import NodeSample

if TYPE_CHECKING:
    from plugins.node_agent.driver_pods import DriverPods

_BROKER = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?):\d{1,5}$")

HELP = (
    "Run the node agent: every --interval-s read the node's CPU and memory from procfs and its offline containers "
    "(YARN containers, Kubernetes batch pods) from cgroup v2, and stream them to the broker's agent port "
    "(authenticated by --token-file, optionally mutual TLS). With --driver-pods, pods on the node that match a "
    "--driver-selector in the Kubernetes API are reported as AMs. `broker agent --node NAME --once --json` prints one "
    "sample and exits, to check what a node reports. Deployment: docs/agent.md."
)


def _check_broker(broker: str | None, once: bool) -> str:
    if broker is None:
        if once:
            return ""
        raise InputError("--broker", "required (HOST:PORT of the broker's agent port) unless --once")
    if not _BROKER.match(broker) or not 0 < int(broker.rsplit(":", 1)[1]) < 65536:
        raise InputError("--broker", f"{broker!r} is not HOST:PORT")
    return broker


def _tls(ca: Path | None, cert: Path | None, key: Path | None) -> ClientTls | None:
    if ca is None and cert is None and key is None:
        return None
    tls = ClientTls(ca, cert, key)
    tls.credentials()  # reads the files now, so that a wrong path is an error at start, naming its flag
    return tls


def _discovery(cgroup_root: Path, yarn: list[str] | None, pods: list[str] | None,
               drivers: DriverPods | None) -> Discovery:
    if not cgroup_root.is_dir():
        raise InputError("--cgroup-root", f"{cgroup_root} is not a directory")
    return Discovery.under(cgroup_root, yarn or YARN_ROOTS, pods or POD_ROOTS,
                           frozenset() if drivers is None else drivers)


def _driver_pods(node: str, enabled: bool, kubeconfig: Path | None, context: str | None,
                 selectors: list[str] | None) -> DriverPods | None:
    """The live view of the node's driver pods, or ``None`` without ``--driver-pods`` (no API access needed, and
    the Kubernetes client is not even imported: tens of MiB on every node)."""
    if not enabled:
        for flag, given in (("--kubeconfig", kubeconfig), ("--kube-context", context),
                            ("--driver-selector", selectors)):
            if given:
                raise InputError(flag, "only with --driver-pods")
        return None
    checked = [check_selector(selector) for selector in selectors or DEFAULT_SELECTORS]
    from plugins.node_agent.driver_pods import DriverPods, KubeAccess

    return DriverPods(KubeAccess(kubeconfig, context).api_client(), node, checked)


def _print(sample: NodeSample) -> None:
    console.print(f"node {sample.node}: capacity cpu {sample.capacity_cpu_milli}m memory "
                  f"{sample.capacity_memory_mib}Mi; online cpu {sample.online_cpu_milli}m memory "
                  f"{sample.online_memory_mib}Mi; {len(sample.offline)} offline containers", highlight=False)
    for item in sample.offline:
        console.print(f"  {item.sink.value} {item.container}{' (AM)' if item.is_am else ''}: cpu {item.cpu_milli}m "
                      f"memory {item.memory_mib}Mi", highlight=False)


@friendly_errors
def agent(
    node: str = typer.Option(..., "--node", envvar="NODE_NAME",
                             help="This node's name as the broker's inventory knows it (env NODE_NAME)."),
    broker: str | None = typer.Option(None, "--broker", help="HOST:PORT of the broker's agent port."),
    token_file: Path | None = typer.Option(None, "--token-file", help="File holding the bearer token."),
    interval_s: float = typer.Option(1.0, "--interval-s", help="Seconds between samples."),
    tls_ca: Path | None = typer.Option(None, "--tls-ca", help="CA (PEM) that signed the broker's certificate; "
                                                             "turns TLS on."),
    tls_cert: Path | None = typer.Option(None, "--tls-cert", help="The agent's certificate (PEM), for mutual TLS."),
    tls_key: Path | None = typer.Option(None, "--tls-key", help="The agent's private key (PEM), for mutual TLS."),
    proc_root: Path = typer.Option(PROC, "--proc-root", help="The host's procfs (/host/proc in a pod)."),
    cgroup_root: Path = typer.Option(CGROUP_ROOT, "--cgroup-root", help="Where cgroup v2 is mounted."),
    yarn_cgroup: list[str] | None = typer.Option(
        None, "--yarn-cgroup", help="YARN containers' parent cgroup, relative to --cgroup-root or absolute "
        f"(repeatable; default {', '.join(YARN_ROOTS)})."),
    pods_cgroup: list[str] | None = typer.Option(
        None, "--pods-cgroup", help="Batch pods' parent cgroup, relative to --cgroup-root or absolute "
        f"(repeatable; default {', '.join(POD_ROOTS)})."),
    driver_pods: bool = typer.Option(
        False, "--driver-pods", help="Learn from the Kubernetes API which pods on --node are drivers (AMs): the "
        "pod's service account in a pod, --kubeconfig otherwise. Off by default: no API access needed."),
    kubeconfig: Path | None = typer.Option(None, "--kubeconfig", help="With --driver-pods: a kubeconfig file "
                                           "instead of the pod's service account."),
    kube_context: str | None = typer.Option(None, "--kube-context", help="With --kubeconfig: the context to use "
                                            "(its current one otherwise)."),
    driver_selector: list[str] | None = typer.Option(
        None, "--driver-selector", help="With --driver-pods: a label selector of driver pods, as kubectl -l takes "
        f"it (repeatable: a pod matching any is a driver; default {', '.join(DEFAULT_SELECTORS)})."),
    once: bool = typer.Option(False, "--once", help="Take one sample (over --interval-s), print it and exit."),
    json_out: bool = typer.Option(False, "--json", help="With --once: print the sample as JSON."),
    log_level: str = typer.Option("info", "--log-level", help="debug, info, warning or error."),
) -> None:
    """Run the node agent (see the command's help)."""
    if not re.match(NAME_PATTERN, node):
        raise InputError("--node", f"{node!r} is not a node name")
    if json_out and not once:
        raise InputError("--json", "only with --once (the agent streams to the broker otherwise)")
    if log_level not in {"debug", "info", "warning", "error"}:
        raise InputError("--log-level", f"{log_level!r} is not one of debug, info, warning, error")
    if not (proc_root / "stat").is_file():
        raise InputError("--proc-root", f"{proc_root} has no 'stat': not a procfs")
    target = _check_broker(broker, once)
    if once and not 0.05 <= interval_s <= 60:
        raise InputError("--interval-s", f"must be within [0.05, 60] with --once, got {interval_s}")
    config: AgentConfig | None = None
    if not once:
        if token_file is None:
            raise InputError("--token-file", "required unless --once")
        read_token(token_file)
        config = AgentConfig(target, token_file, interval_s, _tls(tls_ca, tls_cert, tls_key))
    drivers = _driver_pods(node, driver_pods, kubeconfig, kube_context, driver_selector)
    try:
        sampler = Sampler(node, proc_root, _discovery(cgroup_root, yarn_cgroup, pods_cgroup, drivers))
        logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        if config is None:
            _once(sampler, drivers, interval_s, json_out)
        else:
            asyncio.run(_run(Agent(config, sampler), node, drivers))
    finally:
        if drivers is not None:
            drivers.close()


def _once(sampler: Sampler, drivers: DriverPods | None, interval_s: float, json_out: bool) -> None:
    """One sample, printed; the driver pods are listed once first (a failure is logged: every pod then reads as a
    worker, and the rest of the sample is still true)."""
    if drivers is not None:
        drivers.refresh()
    sampler.prime()
    time.sleep(interval_s)
    sample = sampler.sample()
    if json_out:
        print_json(sample.model_dump(mode="json"))
    else:
        _print(sample)


async def _run(agent: Agent, node: str, drivers: DriverPods | None) -> None:
    """Run until SIGTERM or SIGINT (a DaemonSet pod is stopped with SIGTERM)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    logger = logging.getLogger(__name__)
    logger.info("agent for node %s reporting to %s every %g s", node, agent.config.broker, agent.config.interval_s)
    if drivers is not None:
        logger.info("following driver pods on %s: %s", node, "; ".join(drivers.selectors))
        drivers.start()
    try:
        await agent.run(stop)
    finally:
        if drivers is not None:
            await asyncio.to_thread(drivers.stop)


__all__ = ["HELP", "agent"]
