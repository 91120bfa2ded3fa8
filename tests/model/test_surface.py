"""The public surface of broker.model: every name in __all__ exists, and nothing private is exported."""

from __future__ import annotations

import broker.model


def test_every_exported_name_exists() -> None:
    missing = [name for name in broker.model.__all__ if not hasattr(broker.model, name)]
    assert missing == []


def test_exports_are_unique_and_public() -> None:
    names = broker.model.__all__
    assert len(set(names)) == len(names)
    assert not [name for name in names if name.startswith("_")]
