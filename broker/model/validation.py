"""Reading external payloads into models, with errors that name the field.

Every file, flag and HTTP body enters through ``parse``: pydantic validates it, and a failure becomes one
``InputError`` whose ``field`` is the dotted path of the first bad value (``nodes[3].capacity.cpu``) and whose message
lists every problem found, so that a user fixes a file in one pass.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from broker.errors import InputError

M = TypeVar("M", bound=BaseModel)

MAX_INPUT_BYTES = 64 * 1024 * 1024
"""Largest input file the broker reads (a 20,000-node inventory is about 5 MB)."""


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith(("function-", "model-")) or part in {"tagged-union"}:
            continue
        else:
            out += f".{part}" if out else str(part)
    return out


def describe(error: ValidationError, prefix: str = "") -> InputError:
    """Turn a pydantic ``ValidationError`` into one ``InputError`` naming the first bad field."""
    problems = []
    first = ""
    for item in error.errors(include_url=False):
        field = _path(tuple(item["loc"]))
        message = str(item["msg"]).removeprefix("Value error, ")
        cause = (item.get("ctx") or {}).get("error")
        if isinstance(cause, InputError):
            # Our own validators name the field relative to the model they check; join the two paths.
            field = ".".join(p for p in (field, cause.field) if p)
            message = cause.message
        if prefix:
            field = f"{prefix}.{field}" if field else prefix
        first = first or field
        problems.append(f"{field or '(top level)'}: {message}")
    return InputError(first, "; ".join(problems) if len(problems) > 1 else problems[0].split(": ", 1)[-1])


def unique_names(what: str, names: Iterable[str], label: str = "name") -> set[str]:
    """The set of ``names``; the first repeated one is an ``InputError`` at ``<what>[i].name``."""
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            raise InputError(f"{what}[{i}].name", f"duplicate {label} {name!r}")
        seen.add(name)
    return seen


def parse(model: type[M], data: Any, where: str = "") -> M:
    """Validate ``data`` as ``model``; raise ``InputError`` naming the field on failure."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise describe(exc, where) from None
    except InputError as exc:
        raise exc.at(where) if where else exc from None


def read_document(path: Path) -> Any:
    """Read a YAML or JSON file (JSON is YAML), refusing files that are missing, too large or not a mapping/list."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(str(path), f"cannot read file: {exc.strerror}") from None
    if size > MAX_INPUT_BYTES:
        raise InputError(str(path), f"file is {size} bytes; the limit is {MAX_INPUT_BYTES}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InputError(str(path), f"not valid YAML/JSON: {exc}") from None
    if not isinstance(data, dict | list):
        raise InputError(str(path), "expected a mapping at the top level")
    return data


def load(model: type[M], path: Path) -> M:
    """Read and validate a YAML/JSON file as ``model``; errors name the file and the field."""
    data = read_document(path)
    try:
        return parse(model, data)
    except InputError as exc:
        raise InputError(f"{path}: {exc.field}" if exc.field else str(path), exc.message) from None


__all__ = ["MAX_INPUT_BYTES", "describe", "load", "parse", "read_document", "unique_names"]
