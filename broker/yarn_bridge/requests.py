"""A write the bridge makes (or, in a dry run, would make), recorded for the sync report."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class WriteRequest(BaseModel):
    """One write to the RM: method, path below ``/ws/v1/cluster``, query and JSON body."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    method: str
    path: str
    params: dict[str, str] = {}
    body: Any = None

    def line(self) -> str:
        """A one-line rendering for people: ``POST /nodes/h:1/resource {...}``."""
        query = "&".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.method} {self.path}{'?' + query if query else ''}" + (
            f" {self.body}" if self.body else ""
        )


__all__ = ["WriteRequest"]
