"""Where the policy store lives: ``--store``, else ``$BROKER_STORE``, else a file in the XDG state directory.

A value with a Redis URL scheme (``redis://``, ``rediss://``, ``unix://``) selects the shared ``RedisStore``,
which several broker replicas can use at once; anything else is a path for the ``FileStore``. The file store
stays the default so that the CLI works on a laptop with no server.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from broker.errors import InputError
from broker.store.base import PolicyStore
from broker.store.file import FileStore, default_path
from broker.store.redis_store import SCHEMES, RedisStore


def is_redis_url(location: str) -> bool:
    """Whether ``location`` names a Redis server rather than a file."""
    return urlsplit(location).scheme in SCHEMES


def open_store(location: str | None, env: Mapping[str, str]) -> PolicyStore:
    """The store at ``location`` (from ``--store``), else at ``$BROKER_STORE``, else the default file.

    A malformed Redis URL is an ``InputError`` naming where it came from (``--store`` or ``BROKER_STORE``).
    """
    source, chosen = ("--store", location) if location else ("BROKER_STORE", env.get("BROKER_STORE") or None)
    if chosen is None:
        return FileStore(default_path(env))
    if not is_redis_url(chosen):
        return FileStore(Path(chosen).expanduser())
    try:
        return RedisStore.from_url(chosen)
    except InputError as exc:
        detail = exc.message if exc.field == "url" else f"{exc.field}: {exc.message}"
        raise InputError(source, detail) from None


__all__ = ["is_redis_url", "open_store"]
