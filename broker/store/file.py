"""A durable policy store in one local JSON file, for the CLI and a single-host admin server.

Durability and atomicity come from the file system: every write goes to a temporary file in the same
directory, is flushed and ``fsync``-ed, then ``os.replace``-d over the store (atomic on POSIX) and the
directory is ``fsync``-ed, so a crash leaves either the old store or the new one, never half of each.
Compare-and-set across processes (the CLI and ``broker quota serve`` at once) holds an exclusive ``flock`` on
a sibling ``.lock`` file from reading the head to replacing the file.

Where the file lives: ``--store PATH``, else ``$BROKER_STORE``, else ``$XDG_STATE_HOME/broker/store.json``
(``~/.local/state/broker/store.json`` when that is unset).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from broker.errors import ConflictError, PermanentPeerError
from broker.store.records import Observation, PolicyRecord

FORMAT = 1
"""Version of the file layout; a file with another one is refused rather than misread."""

MAX_STORE_BYTES = 256 * 1024 * 1024


def default_path(env: Mapping[str, str]) -> Path:
    """The store path when ``--store`` is not given: ``$BROKER_STORE``, else the XDG state directory."""
    if env.get("BROKER_STORE"):
        return Path(env["BROKER_STORE"]).expanduser()
    state = Path(env["XDG_STATE_HOME"]) if env.get("XDG_STATE_HOME") else Path("~/.local/state").expanduser()
    return state / "broker" / "store.json"


class FileStore:
    """A ``PolicyStore`` in the JSON file ``path`` (created, with its directory, on the first write)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_path = path.with_name(path.name + ".lock")

    # --- PolicyStore ---------------------------------------------------------------------------------------

    def head(self) -> int:
        return len(self._read()["records"])

    def get(self, version: int) -> PolicyRecord | None:
        records = self._read()["records"]
        return self._record(records[version - 1]) if 1 <= version <= len(records) else None

    def history(self, limit: int) -> tuple[PolicyRecord, ...]:
        records = self._read()["records"]
        return tuple(self._record(r) for r in reversed(records[-limit:])) if limit > 0 else ()

    def append(self, record: PolicyRecord) -> None:
        with self._locked():
            data = self._read()
            head = len(data["records"])
            if record.version != head + 1:
                raise ConflictError(record.version - 1, head)
            data["records"].append(record.model_dump(mode="json", by_alias=True))
            self._write(data)

    def observation(self) -> Observation | None:
        raw = self._read()["observation"]
        if raw is None:
            return None
        try:
            return Observation.model_validate(raw)
        except ValidationError as exc:
            raise self._corrupt(f"observation does not validate: {exc.error_count()} errors") from None

    def save_observation(self, observation: Observation) -> None:
        with self._locked():
            data = self._read()
            data["observation"] = observation.model_dump(mode="json")
            self._write(data)

    # --- the file ------------------------------------------------------------------------------------------

    def _record(self, raw: Any) -> PolicyRecord:
        try:
            return PolicyRecord.model_validate(raw)
        except (ValidationError, ValueError) as exc:
            raise self._corrupt(f"a record does not validate: {exc}") from None

    def _corrupt(self, message: str) -> PermanentPeerError:
        return PermanentPeerError(f"store {self.path}", message)

    def _read(self) -> dict[str, Any]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {"format": FORMAT, "records": [], "observation": None}
        except OSError as exc:
            raise self._corrupt(f"cannot read: {exc.strerror}") from None
        if len(raw) > MAX_STORE_BYTES:
            raise self._corrupt(f"file is {len(raw)} bytes; the limit is {MAX_STORE_BYTES}")
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise self._corrupt(f"not JSON: {exc}") from None
        records = data.get("records") if isinstance(data, dict) else None
        if not isinstance(records, list) or data.get("format") != FORMAT:
            raise self._corrupt(f"not a broker policy store (format {FORMAT})")
        store: dict[str, Any] = data
        store.setdefault("observation", None)
        return store

    def _write(self, data: dict[str, Any]) -> None:
        """Replace the file atomically and durably (temporary file, fsync, rename, fsync of the directory)."""
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(orjson.dumps(data, option=orjson.OPT_INDENT_2))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self._lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._lock_path, "a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


__all__ = ["FORMAT", "FileStore", "default_path"]
