"""Wall-clock time as the Kubernetes APIs write it: timezone-aware instants, RFC 3339 on the wire.

The adapters take a ``clock`` argument (``utc_now`` by default) so that tests drive expiry and staleness by
hand instead of sleeping.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """The wall clock, timezone-aware (Lease times and metrics timestamps are instants shared across hosts)."""
    return datetime.now(UTC)


def parse_rfc3339(text: object) -> datetime | None:
    """An RFC 3339 timestamp (``2026-11-21T10:00:00Z``, with or without a fraction), or None when ``text`` is
    not one or has no zone (an instant without a zone cannot be compared with the clock)."""
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


__all__ = ["parse_rfc3339", "utc_now"]
