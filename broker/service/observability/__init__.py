"""The service's operational surface: Prometheus metrics (``metrics``) and structured logs (``logs``).

``docs/operations.md`` lists every metric, the dashboard under ``deploy/grafana`` and the alerts under
``deploy/prometheus``; ``tests/observability`` checks that the dashboard and the alerts only use what is exported.
"""

from broker.service.observability.logs import FORMATS, LEVELS, JsonFormatter, TextFormatter, configure_logging
from broker.service.observability.metrics import (
    DIMENSIONS,
    DemandReadFailure,
    LoopStep,
    PushFailure,
    PushPath,
    ServiceMetrics,
    bound_gap,
)

__all__ = [
    "DIMENSIONS",
    "FORMATS",
    "LEVELS",
    "DemandReadFailure",
    "JsonFormatter",
    "LoopStep",
    "PushFailure",
    "PushPath",
    "ServiceMetrics",
    "TextFormatter",
    "bound_gap",
    "configure_logging",
]
