"""The package's public surface is what ``__all__`` says, and everything in it exists."""

from __future__ import annotations

import broker.scheduler as scheduler


def test_public_surface() -> None:
    assert set(scheduler.__all__) == {
        "NO_QUOTA", "LendableDocument", "Levels", "PlacementProblem", "QuotaDocument", "Solution",
        "TeamQuota",
        "Violation", "check_feasible", "instance", "placed_resources", "plan", "score", "solve",
    }
    assert all(hasattr(scheduler, name) for name in scheduler.__all__)
