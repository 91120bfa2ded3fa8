"""Where the extender's plans come from: a source yields each new plan as it is published.

The extender does not care whether plans arrive from a file the planner rewrites or from the store; it
consumes a ``PlanSource``, an async stream of updates. An update is a decoded ``PlanDocument``, a ``Plan``
already validated in the same process (the service's own control loop: checking it again, or writing it out
only to read it back, would cost its core some 70 ms a plan at 5,000 nodes), or the ``InputError`` that kept
one from being read, so that the server keeps answering from the last good plan and reports the failure
instead of crashing. Sources only decode: the extender validates a document while building its tables from
it (``plan_document``), which is what makes a new plan visible within a second.
``FilePlanSource`` watches a JSON/YAML file; a store-backed source implements the same protocol.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

import orjson

from broker.errors import InputError
from broker.model.plan import Plan
from broker.model.validation import MAX_INPUT_BYTES, read_document
from broker.service.extender.plan_document import PlanDocument

PlanUpdate = PlanDocument | Plan | InputError
"""A new plan document, a new validated plan, or why the newest one could not be read."""


class PlanSource(Protocol):
    """An async stream of plan updates; ``describe`` names the source in logs and readiness answers."""

    def updates(self) -> AsyncIterator[PlanUpdate]:
        """Yield the current plan as soon as it can be read, then each change, forever."""
        ...

    def describe(self) -> str:
        """A short name for the source (``file /etc/broker/plan.json``)."""
        ...


class FilePlanSource:
    """Polls a plan file and yields it whenever its identity (inode, size, modification time) changes.

    Polling (default every 0.2 s) rather than inotify keeps it portable and works on ConfigMap volumes, whose
    updates are atomic symlink swaps; a planner should write the file atomically too (write, then rename). A
    file caught half-written fails validation, is reported, and is read again when its next write lands.
    """

    def __init__(self, path: Path, poll_s: float = 0.2) -> None:
        if poll_s <= 0:
            raise ValueError("poll_s must be positive")
        self.path = path
        self.poll_s = poll_s

    def describe(self) -> str:
        return f"file {self.path}"

    def _identity(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_ino, st.st_size, st.st_mtime_ns

    def _read(self) -> PlanDocument:
        """The document in the file: JSON through orjson (a 5,000-node plan is 4 MB, which YAML takes seconds
        to read), anything else as YAML."""
        if self.path.suffix != ".json":
            return PlanDocument(read_document(self.path))
        try:
            raw = self.path.read_bytes()
        except OSError as exc:
            raise InputError(str(self.path), f"cannot read file: {exc.strerror}") from None
        if len(raw) > MAX_INPUT_BYTES:
            raise InputError(str(self.path), f"file is {len(raw)} bytes; the limit is {MAX_INPUT_BYTES}")
        try:
            return PlanDocument(orjson.loads(raw))
        except orjson.JSONDecodeError as exc:
            raise InputError(str(self.path), f"not valid JSON: {exc}") from None

    async def updates(self) -> AsyncIterator[PlanUpdate]:
        seen: tuple[int, int, int] | None = None
        missing_reported = False
        while True:
            identity = self._identity()
            if identity is None:
                if not missing_reported:
                    missing_reported = True
                    yield InputError(str(self.path), "plan file does not exist (yet)")
            elif identity != seen:
                seen, missing_reported = identity, False
                try:
                    yield await asyncio.to_thread(self._read)
                except InputError as exc:
                    yield exc
            await asyncio.sleep(self.poll_s)


__all__ = ["FilePlanSource", "PlanSource", "PlanUpdate"]
