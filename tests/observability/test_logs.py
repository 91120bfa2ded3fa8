"""Structured logs: one JSON object per line with the call's extra fields, whatever the call hands over."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime

import orjson
import pytest

from broker.errors import InputError
from broker.service.observability import JsonFormatter, TextFormatter, configure_logging


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger writing JSON lines to a buffer, detached from the root logger."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tests.observability.json")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    text = stream.getvalue()
    assert text.endswith("\n")
    return [orjson.loads(line) for line in text.splitlines()]


def test_a_line_has_utc_time_level_logger_message_and_the_extras(captured: tuple[logging.Logger, io.StringIO]) -> None:
    log, stream = captured
    log.info("pushed plan v%d", 42, extra={"cycle": 7, "plan_version": 42, "step": "push", "sink": "yarn:prod",
                                           "seconds": 0.25})
    [line] = lines(stream)
    assert line["level"] == "info"
    assert line["logger"] == "tests.observability.json"
    assert line["msg"] == "pushed plan v42"
    assert {k: line[k] for k in ("cycle", "plan_version", "step", "sink", "seconds")} == {
        "cycle": 7, "plan_version": 42, "step": "push", "sink": "yarn:prod", "seconds": 0.25}
    ts = str(line["ts"])
    assert ts.endswith("Z")
    assert datetime.fromisoformat(ts).utcoffset() is not None


def test_one_record_is_one_line_even_with_newlines_in_the_message(captured: tuple[logging.Logger, io.StringIO]) -> None:
    log, stream = captured
    log.warning("first\nsecond", extra={"node": "n-1"})
    log.error("third")
    assert [line["msg"] for line in lines(stream)] == ["first\nsecond", "third"]


def test_an_exception_gives_its_type_message_and_traceback(captured: tuple[logging.Logger, io.StringIO]) -> None:
    log, stream = captured
    try:
        raise ConnectionError("rm refused")
    except ConnectionError:
        log.exception("push failed", extra={"sink": "yarn:prod"})
    [line] = lines(stream)
    assert (line["exc_type"], line["exc_message"], line["sink"]) == ("ConnectionError", "rm refused", "yarn:prod")
    assert "Traceback" in str(line["traceback"]) and "rm refused" in str(line["traceback"])


class Opaque:
    def __repr__(self) -> str:
        return "<Opaque>"


@pytest.mark.parametrize(("extra", "written"), [
    ({"thing": Opaque()}, "<Opaque>"),
    ({"thing": 2**70}, repr(2**70)),
    ({"thing": {("a", 1): 2}}, repr({("a", 1): 2})),
    ({"thing": {1, 2}}, repr({1, 2})),
], ids=["object", "huge-int", "tuple-keys", "set"])
def test_an_unserialisable_extra_is_written_as_its_repr(extra: dict[str, object], written: str,
                                                       captured: tuple[logging.Logger, io.StringIO]) -> None:
    log, stream = captured
    log.info("odd", extra={**extra, "cycle": 3})
    [line] = lines(stream)
    assert line["thing"] == written
    assert line["msg"] == "odd"


def test_a_message_whose_arguments_do_not_match_is_still_written() -> None:
    record = logging.LogRecord("broker.loop", logging.INFO, __file__, 1, "%d nodes", ("many",), None)
    assert orjson.loads(JsonFormatter().format(record))["msg"] == "%d nodes ('many',)"


def test_an_extra_named_like_a_core_field_does_not_replace_it(captured: tuple[logging.Logger, io.StringIO]) -> None:
    log, stream = captured
    log.info("hello", extra={"level": "fake", "ts": "fake"})
    [line] = lines(stream)
    assert line["level"] == "info" and line["ts"] != "fake"


def test_text_format_appends_the_extras_and_survives_bad_arguments() -> None:
    record = logging.LogRecord("broker.loop", logging.WARNING, __file__, 1, "%d nodes", ("many",), None)
    record.sink = "yarn:prod"
    text = TextFormatter().format(record)
    assert "WARNING broker.loop: %d nodes ('many',) sink=yarn:prod" in text
    assert record.msg == "%d nodes"  # the record is shared with other handlers: left as it was


@pytest.mark.parametrize(("level", "fmt", "field"), [
    ("verbose", "json", "log_level"),
    ("info", "xml", "log_format"),
], ids=["level", "format"])
def test_bad_settings_name_the_field(level: str, fmt: str, field: str) -> None:
    with pytest.raises(InputError) as caught:
        configure_logging(level, fmt)
    assert caught.value.field == field


def test_a_service_process_writes_json_lines_to_stderr_at_the_configured_level() -> None:
    """The real thing: a separate interpreter configures logging as the service does and logs."""
    program = (
        "import logging\n"
        "from broker.service.observability import configure_logging\n"
        "configure_logging('INFO', 'text')\n"
        "configure_logging('info', 'json')\n"
        "log = logging.getLogger('broker.service.control')\n"
        "log.debug('hidden')\n"
        "log.info('cycle done', extra={'cycle': 1, 'seconds': 0.5})\n"
        "try:\n"
        "    1 / 0\n"
        "except ZeroDivisionError:\n"
        "    log.exception('step failed', extra={'step': 'plan'})\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=True)
    parsed = [orjson.loads(line) for line in done.stderr.splitlines()]
    assert [(p["level"], p["msg"]) for p in parsed] == [("info", "cycle done"), ("error", "step failed")]
    assert parsed[0]["cycle"] == 1 and parsed[1]["exc_type"] == "ZeroDivisionError"
    assert done.stdout == ""
