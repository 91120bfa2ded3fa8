"""Opening the trace and demand files a scenario names, with an error that says which file and why."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from broker.errors import InputError


def open_csv(path: Path) -> TextIO:
    """Open a CSV file for reading; a missing or unreadable file is an ``InputError`` naming it."""
    try:
        return path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise InputError(str(path), f"cannot read file: {exc.strerror}") from None


__all__ = ["open_csv"]
