"""Just enough PromQL reading to check a dashboard or a rule file against what the service exports.

Not a parser: it finds the ``broker_*`` series an expression selects, the labels its matchers name, and the labels
its ``by`` / ``without`` / ``on`` / ``ignoring`` / ``group_*`` clauses name, which is what a renamed metric or label
breaks. Series names are resolved per metric type as the exposition writes them (``_total`` for counters;
``_bucket`` / ``_sum`` / ``_count`` for histograms), so a gauge read as ``_total`` is an error too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from prometheus_client import CollectorRegistry

_SELECTOR = re.compile(r"\b(?P<name>broker_[a-z0-9_]+)\b\s*(?:\{(?P<matchers>[^}]*)\})?")
_MATCHER = re.compile(r"(?P<label>[A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!=|!~|=)\s*\"(?P<value>[^\"]*)\"")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\((?P<labels>[^)]*)\)")
_LABEL_VALUES = re.compile(r"label_values\(\s*(?P<name>broker_[a-z0-9_]+)\s*,\s*(?P<label>[A-Za-z_]\w*)\s*\)")
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


@dataclass(frozen=True)
class Family:
    """One exported metric family: its name, type and the labels its samples carry."""

    name: str
    type: str
    labels: frozenset[str]


def exported(registry: CollectorRegistry) -> dict[str, Family]:
    """The ``broker_*`` families in ``registry``, with the label names seen on their samples.

    Labels are read from samples, so the registry must have had every labelled metric used at least once.
    """
    families: dict[str, Family] = {}
    for metric in registry.collect():
        if not metric.name.startswith("broker_"):
            continue
        labels = {key for sample in metric.samples for key in sample.labels if key != "le"}
        families[metric.name] = Family(metric.name, metric.type, frozenset(labels))
    return families


def series_index(families: dict[str, Family]) -> dict[str, tuple[Family, frozenset[str]]]:
    """Every series name a query may use -> (its family, the labels it may be matched or grouped on)."""
    index: dict[str, tuple[Family, frozenset[str]]] = {}
    for family in families.values():
        for suffix in _SUFFIXES[family.type]:
            extra = {"le"} if suffix == "_bucket" else set()
            index[family.name + suffix] = (family, family.labels | extra)
    return index


@dataclass(frozen=True)
class Reference:
    """What one expression needs: series names with the labels matched on each, and the grouping labels."""

    series: tuple[tuple[str, frozenset[str]], ...]
    grouping: frozenset[str]


def read(expr: str) -> Reference:
    """The series, matcher labels and grouping labels of ``expr``."""
    series = [(m["name"], frozenset(x["label"] for x in _MATCHER.finditer(m["matchers"] or "")))
              for m in _SELECTOR.finditer(expr)]
    series += [(m["name"], frozenset({m["label"]})) for m in _LABEL_VALUES.finditer(expr)]
    grouping = {label.strip() for m in _GROUPING.finditer(expr) for label in m["labels"].split(",") if label.strip()}
    return Reference(tuple(series), frozenset(grouping))


def problems(expr: str, index: dict[str, tuple[Family, frozenset[str]]]) -> list[str]:
    """What in ``expr`` does not exist in ``index``: unknown series, unknown matcher labels, grouping labels that
    none of its series carries. Empty when the expression only uses what is exported."""
    ref = read(expr)
    found: list[str] = []
    if not ref.series:
        found.append(f"no broker_* series in {expr!r}")
    available: set[str] = set()
    for name, matched in ref.series:
        entry = index.get(name)
        if entry is None:
            found.append(f"unknown series {name}")
            continue
        labels = entry[1]
        available |= labels
        found += [f"{name} has no label {label!r} (has {sorted(labels)})" for label in sorted(matched - labels)]
    found += [f"grouping label {label!r} is on none of the series" for label in sorted(ref.grouping - available)]
    return found
