"""Prometheus metrics of the extender, in a registry of its own (no import-time global state).

- ``broker_extender_request_seconds{verb}``: server time per request, from the body read to the answer
  encoded; the buckets resolve the sub-millisecond range where the extender should live;
- ``broker_extender_requests_total{verb,result}``: answers by outcome (``ok``, ``none`` = no node / no
  candidate, ``unmanaged``, ``unknown_team``, ``no_plan``, ``bad_request``; for ``bind``: ``ok``,
  ``not_configured``, ``conflict``, ``error``, ``bad_request``; ``internal_error`` for a bug, answered 500);
- ``broker_extender_filter_nodes_total{outcome}``: candidate nodes passed, failed and unresolvable;
- ``broker_extender_plan_version``, ``broker_extender_plan_age_seconds``,
  ``broker_extender_plan_loads_total{result}``.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class ExtenderMetrics:
    """The extender's instruments, registered in ``registry``."""

    def __init__(self, registry: CollectorRegistry, plan_age_s: Callable[[], float]) -> None:
        self.registry = registry
        self.request_seconds = Histogram(
            "broker_extender_request_seconds", "Server time per extender request.", ["verb"],
            buckets=_LATENCY_BUCKETS, registry=registry,
        )
        self.requests = Counter(
            "broker_extender_requests", "Extender answers by verb and outcome.", ["verb", "result"],
            registry=registry,
        )
        self.filter_nodes = Counter(
            "broker_extender_filter_nodes", "Candidate nodes by filter outcome.", ["outcome"],
            registry=registry,
        )
        self.plan_version = Gauge(
            "broker_extender_plan_version", "Version of the plan the extender answers from (-1: none).",
            registry=registry,
        )
        self.plan_version.set(-1)
        self.plan_age = Gauge(
            "broker_extender_plan_age_seconds", "Age of the plan the extender answers from.",
            registry=registry,
        )
        self.plan_age.set_function(plan_age_s)
        self.plan_loads = Counter(
            "broker_extender_plan_loads", "Plan updates received, by result.", ["result"], registry=registry,
        )
        self.nodes_passed = self.filter_nodes.labels("passed")
        self.nodes_failed = self.filter_nodes.labels("failed")
        self.nodes_unresolvable = self.filter_nodes.labels("unresolvable")
        self._answers: dict[tuple[str, str], Counter] = {}
        self._latencies: dict[str, Histogram] = {}

    def answered(self, verb: str, result: str, seconds: float) -> None:
        """Count one answer and its server time.

        The labelled children are kept here: ``labels()`` takes a lock and validates its arguments on every
        call, a measurable part of a sub-millisecond request.
        """
        counter = self._answers.get((verb, result))
        if counter is None:
            counter = self._answers[verb, result] = self.requests.labels(verb, result)
        counter.inc()
        histogram = self._latencies.get(verb)
        if histogram is None:
            histogram = self._latencies[verb] = self.request_seconds.labels(verb)
        histogram.observe(seconds)


__all__ = ["ExtenderMetrics"]
