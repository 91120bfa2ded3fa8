"""Structured logs for the service: one JSON object per line, or readable text on a terminal.

A JSON line carries ``ts`` (ISO-8601, UTC, microseconds), ``level``, ``logger``, ``msg`` and every field the call
passed in ``extra`` (``log.info("pushed", extra={"sink": "yarn:prod-a", "seconds": 0.21, "plan_version": 42})``),
so that a log pipeline can filter on ``cycle``, ``plan_version``, ``step``, ``sink`` or ``node`` without parsing
text. An exception adds ``exc_type``, ``exc_message`` and ``traceback``.

The formatter must never be the reason a log line is lost: an ``extra`` value orjson cannot encode (an object, an
integer beyond 64 bits, a dict with tuple keys) is written as its ``repr``, and a message whose ``%`` arguments do
not match its format is written with the arguments appended instead of raising from the logging call.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

from broker.errors import InputError

LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("json", "text")

_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}
"""Attributes every ``LogRecord`` has; anything else on a record came from ``extra``."""

_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except (TypeError, ValueError):
        return f"{record.msg} {record.args!r}"


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {key: value for key, value in record.__dict__.items() if key not in _RESERVED and not key.startswith("_")}


def _fallback(value: object) -> str:
    """orjson's ``default``: anything it cannot encode natively is written as its ``repr``."""
    return repr(value)


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring for the fields)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="microseconds").replace(
                "+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": _message(record),
        }
        extras = {key: value for key, value in _extras(record).items() if key not in line}
        line.update(extras)
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            line["exc_type"] = type(error).__name__
            line["exc_message"] = str(error)
            line["traceback"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["traceback"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        try:
            encoded = orjson.dumps(line, default=_fallback, option=_OPTIONS)
        except TypeError:  # orjson.JSONEncodeError
            # What ``default`` cannot rescue (integers beyond 64 bits, unsupported dict keys, nesting too deep):
            # every extra as its repr, keeping the line.
            line.update({key: repr(value) for key, value in extras.items()})
            encoded = orjson.dumps(line, default=_fallback, option=_OPTIONS)
        return encoded[:-1].decode()


class TextFormatter(logging.Formatter):
    """``<ts> <LEVEL> <logger>: <msg> key=value ...``: the same fields as the JSON lines, for a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        text = super().formatMessage(record)
        extras = _extras(record)
        if not extras:
            return text
        return text + " " + " ".join(f"{key}={value!r}" if isinstance(value, str) and " " in value
                                     else f"{key}={value}" for key, value in extras.items())

    def format(self, record: logging.LogRecord) -> str:
        # A copy with the message already merged: a bad ``%`` argument must not raise, and the record is shared
        # with the other handlers, so it is not changed in place.
        safe = logging.makeLogRecord(record.__dict__)
        safe.msg, safe.args = _message(record), None
        return super().format(safe)


_HANDLER_NAME = "broker.service"


def configure_logging(level: str, fmt: str, stream: TextIO | None = None) -> None:
    """Send the root logger's records at ``level`` and above to ``stream`` (stderr) in ``fmt``.

    Calling it again replaces the handler it installed (other handlers are left alone). Bad values are an
    ``InputError`` naming ``log_level`` or ``log_format`` (``fmt`` is ``"json"`` or ``"text"``; it is a plain
    string because it comes from configuration and is checked here). uvicorn's loggers reach this handler when
    uvicorn is started with ``log_config=None``.
    """
    name = level.lower()
    if name not in LEVELS:
        raise InputError("log_level", f"{level!r} is not one of {', '.join(LEVELS)}")
    if fmt not in FORMATS:
        raise InputError("log_format", f"{fmt!r} is not one of {', '.join(FORMATS)}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(name.upper())


__all__ = ["FORMATS", "LEVELS", "JsonFormatter", "TextFormatter", "configure_logging"]
