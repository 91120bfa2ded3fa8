"""Fixtures for the extender tests: an extender on a settable clock, and the contract samples."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.service.extender import Extender, ExtenderConfig

from .builders import NOW

SAMPLES = Path(__file__).parent / "samples"
"""Copies of ``contracts/kube-scheduler``: upstream fixtures and requests captured from a real kube-scheduler.
"""


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
