"""Fixtures for the extender tests: an extender on a settable clock, a binder that records, and where the
contract samples are."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.errors import PeerError
from broker.service.extender import BindingArgs, Extender, ExtenderConfig

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


class RecordingBinder:
    """A binder that remembers what it was asked to bind, failing with ``failure`` when one is set."""

    def __init__(self, failure: PeerError | None = None) -> None:
        self.calls: list[BindingArgs] = []
        self.failure = failure

    async def bind(self, binding: BindingArgs) -> None:
        self.calls.append(binding)
        if self.failure is not None:
            raise self.failure


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def extender(clock: Clock) -> Extender:
    return Extender(ExtenderConfig(), clock=clock)
