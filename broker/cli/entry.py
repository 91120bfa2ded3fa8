"""The ``broker`` console script: ``broker agent`` runs without importing the other subcommands.

The agent runs on every node of the fleet, so its memory is paid thousands of times: the full command line
(``broker.cli.main``) imports OR-Tools, the YARN bridge and the Kubernetes client for its other subcommands, about
140 MiB resident, where the agent alone needs under 50 MiB. Every other invocation, ``broker --help`` included,
goes to the full command line.
"""

from __future__ import annotations

import sys

import typer

AGENT = "agent"


def agent_only() -> typer.Typer:
    """A command line holding only ``agent``, invoked exactly as under ``broker`` (``broker agent ...``)."""
    from broker.cli.agent import HELP, agent

    app = typer.Typer(name="broker", add_completion=False, pretty_exceptions_enable=False,
                      context_settings={"help_option_names": ["-h", "--help"]})

    @app.callback()
    def _root() -> None:
        """Elastic quota scheduler and YARN-on-Kubernetes resource broker (``broker --help`` lists every command)."""

    app.command(AGENT, help=HELP)(agent)
    return app


def main() -> None:
    """Console-script entry point."""
    if sys.argv[1:2] == [AGENT]:
        agent_only()(prog_name="broker")
        return
    from broker.cli.main import main as full

    full()
