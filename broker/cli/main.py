"""The ``broker`` console command. Subcommand groups register here; each lives in its own module."""

from __future__ import annotations

import typer

from broker import __version__
from broker.cli import agent as agent_cli
from broker.cli import capacity, schema, simulate
from broker.cli import plan as plan_cli
from broker.cli import quota as quota_cli
from broker.cli import serve as serve_cli
from broker.cli import yarn as yarn_cli

app = typer.Typer(
    name="broker",
    help="Elastic quota scheduler and YARN-on-Kubernetes resource broker: lends the spare capacity of online "
    "fleets to offline work. Start with `broker simulate`.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"broker {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Elastic quota scheduler and YARN-on-Kubernetes resource broker."""


app.command("simulate", help=simulate._HELP)(simulate.simulate)
app.add_typer(capacity.app, name="capacity")
app.command("schema")(schema.schema)
app.add_typer(serve_cli.app, name="serve")
app.command("agent", help=agent_cli.HELP)(agent_cli.agent)
app.add_typer(quota_cli.app, name="quota")
app.add_typer(yarn_cli.app, name="yarn")
app.command("plan")(plan_cli.plan)
app.add_typer(plan_cli.bench_app, name="bench")


def main() -> None:
    """Console-script entry point."""
    app()
