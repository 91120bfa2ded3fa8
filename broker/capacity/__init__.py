"""Spare-capacity estimation: online-usage history -> forecast -> lendable amount per node.

Estimators by name (the ``--estimator`` of ``broker capacity replay`` and the policies of ``broker simulate``):

- ``online-only``: lends nothing;
- ``static``: a fixed fraction of capacity;
- ``usage-threshold``: Koordinator's baseline;
- ``broker``: the forecasting estimator.
"""

from broker.capacity.baselines import OnlineOnly, StaticFraction, UsageThreshold
from broker.capacity.churn import BROKER_RESYNC, KOORDINATOR_RESYNC, Published, ResyncRule, resync
from broker.capacity.estimate import Estimator, Fleet, Lendable
from broker.capacity.forecast import Forecast, ForecastConfig
from broker.capacity.history import BUCKET_S, DAY_S, UsageHistory

ESTIMATORS = ("online-only", "static", "usage-threshold", "broker")
"""Names accepted by ``estimator_named``."""


def estimator_named(name: str, forecast: ForecastConfig | None = None, static_fraction: float = 0.3) -> Estimator:
    """The estimator called ``name`` (one of ``ESTIMATORS``)."""
    if name == "online-only":
        return OnlineOnly()
    if name == "static":
        return StaticFraction(static_fraction)
    if name == "usage-threshold":
        return UsageThreshold()
    if name == "broker":
        return Forecast(forecast or ForecastConfig())
    raise ValueError(f"unknown estimator {name!r}; choose one of {', '.join(ESTIMATORS)}")


def resync_rule_for(name: str) -> ResyncRule:
    """The anti-churn rule each estimator is published with: Koordinator's for the baselines, ours for ``broker``."""
    return BROKER_RESYNC if name == "broker" else KOORDINATOR_RESYNC


__all__ = [
    "BROKER_RESYNC",
    "BUCKET_S",
    "DAY_S",
    "ESTIMATORS",
    "KOORDINATOR_RESYNC",
    "Estimator",
    "Fleet",
    "Forecast",
    "ForecastConfig",
    "Lendable",
    "OnlineOnly",
    "Published",
    "ResyncRule",
    "StaticFraction",
    "UsageHistory",
    "UsageThreshold",
    "estimator_named",
    "resync",
    "resync_rule_for",
]
