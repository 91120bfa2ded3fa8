"""docs/operations.md documents every exported metric with its real type and labels, and nothing else."""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry

from .promql import exported
from .test_deploy_files import OPERATIONS

_ROW = re.compile(r"^\| `(?P<name>broker_[a-z0-9_]+)` \| (?P<type>gauge|counter|histogram) \| (?P<labels>[^|]*) \|",
                  flags=re.MULTILINE)


def documented() -> dict[str, tuple[str, frozenset[str]]]:
    rows = {}
    for row in _ROW.finditer(OPERATIONS.read_text()):
        cell = row["labels"].strip()
        labels = frozenset() if cell == "—" else frozenset(x.strip() for x in cell.split(","))
        assert row["name"] not in rows, f"{row['name']} documented twice"
        rows[row["name"]] = (row["type"], labels)
    return rows


def test_every_exported_metric_is_documented_with_its_type_and_labels(full_registry: CollectorRegistry) -> None:
    families = exported(full_registry)
    want = {}
    for family in families.values():
        # As written in queries: counters with _total, histograms and gauges by their name.
        name = family.name + "_total" if family.type == "counter" else family.name
        want[name] = (family.type, family.labels)
    assert documented() == want
