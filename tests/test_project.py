"""The project's promises to a new user: the README's two commands, CI calling the test command, --help everywhere."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from broker.cli.main import app

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert block is not None, "README starts with a bash block of set-up commands"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_has_exactly_two_setup_commands() -> None:
    commands = _readme_commands()
    assert len(commands) == 2
    assert commands[0].endswith("broker simulate")
    assert "[dev]" in commands[1]


def test_ci_runs_the_readmes_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert _readme_commands()[1] in ci


def _all_commands(command: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path under ``command`` (groups have ``commands``; typer may ship its own click)."""
    out = [prefix]
    for name, sub in getattr(command, "commands", {}).items():
        out.extend(_all_commands(sub, (*prefix, name)))
    return out


def test_the_command_walk_reaches_every_group() -> None:
    paths = _all_commands(typer.main.get_command(app))
    assert {("simulate",), ("capacity", "replay"), ("quota", "apply"), ("yarn", "sync"), ("serve", "extender"),
            ("bench", "planner"), ("plan",), ("schema",)} <= set(paths)


@pytest.mark.parametrize("path", _all_commands(typer.main.get_command(app)), ids=lambda p: " ".join(p) or "broker")
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


@pytest.mark.parametrize("kind", ["inventory", "demand", "plan", "scenario", "quota-policy", "runtime-quota"])
def test_every_input_document_has_a_json_schema(kind: str) -> None:
    result = CliRunner().invoke(app, ["schema", kind])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["type"] == "object"
    assert document.get("properties") or document.get("$defs")


def test_an_unknown_schema_kind_is_refused_with_the_choices() -> None:
    result = CliRunner().invoke(app, ["schema", "nodes"])
    assert result.exit_code == 2
    assert "inventory" in result.output
