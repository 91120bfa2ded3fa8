"""Fixtures for the extender tests: an extender on a settable clock, and the contract samples."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.service.extender import Extender, ExtenderConfig

from .builders import NOW

CONTRACTS = Path(__file__).resolve().parents[2].parent / "shared" / "contracts"
"""The shared wire contracts, next to the project (never copied into it)."""

SAMPLES = CONTRACTS / "kube-scheduler"
"""Upstream extender fixtures and requests captured from a real kube-scheduler (``captured/``)."""


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def extender(clock: Clock) -> Extender:
    return Extender(ExtenderConfig(), clock=clock)
