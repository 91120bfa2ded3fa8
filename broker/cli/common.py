"""What every subcommand shares: turning broker errors into a clear message and exit code, never a traceback."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import orjson
from rich.console import Console

from broker.errors import BrokerError, InputError

P = ParamSpec("P")
R = TypeVar("R")

# Tables are wide; when the output is a file or a pipe, do not fold them to the 80-column default.
console = Console(stderr=False, width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True)

EXIT_INPUT = 2
"""Exit status for bad input (a file, a flag): the user must change something."""
EXIT_FAILURE = 1
"""Exit status for any other failure (a peer down, a target missed)."""


def friendly_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Run a command, printing ``error: <field>: <message>`` and exiting non-zero on a ``BrokerError``."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except InputError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True, soft_wrap=True)
            sys.exit(EXIT_INPUT)
        except BrokerError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True, soft_wrap=True)
            sys.exit(EXIT_FAILURE)

    return wrapper


def print_json(data: object) -> None:
    """Write ``data`` as indented JSON to standard output (for ``--json``)."""
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n")
