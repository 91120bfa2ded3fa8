"""The in-process policy store: the default for tests, the simulator and a single broker process."""

from __future__ import annotations

import threading

from broker.errors import ConflictError
from broker.store.records import Observation, PolicyRecord


class MemoryStore:
    """A ``PolicyStore`` in a list, guarded by a lock so that threads of one process see compare-and-set."""

    def __init__(self) -> None:
        self._records: list[PolicyRecord] = []
        self._observation: Observation | None = None
        self._lock = threading.Lock()

    def head(self) -> int:
        return len(self._records)

    def get(self, version: int) -> PolicyRecord | None:
        return self._records[version - 1] if 1 <= version <= len(self._records) else None

    def history(self, limit: int) -> tuple[PolicyRecord, ...]:
        return tuple(reversed(self._records[-limit:])) if limit > 0 else ()

    def append(self, record: PolicyRecord) -> None:
        with self._lock:
            if record.version != len(self._records) + 1:
                raise ConflictError(record.version - 1, len(self._records))
            self._records.append(record)

    def observation(self) -> Observation | None:
        return self._observation

    def save_observation(self, observation: Observation) -> None:
        self._observation = observation


__all__ = ["MemoryStore"]
