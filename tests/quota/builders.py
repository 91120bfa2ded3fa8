"""Builders that read like the domain: ``group("team-a").under("org").min(cpu="40").max(cpu="200").obj()``."""

from __future__ import annotations

from typing import Any

from broker.model import Resources
from broker.quota import QuotaPolicy


class GroupBuilder:
    """One quota group, as the dictionary an admin would write."""

    def __init__(self, name: str) -> None:
        self.data: dict[str, Any] = {"name": name}

    def under(self, parent: str) -> GroupBuilder:
        self.data["parent"] = parent
        return self

    def _limits(self, key: str, amounts: dict[str, object]) -> GroupBuilder:
        self.data[key] = {**self.data.get(key, {}), **amounts}
        return self

    def min(self, **amounts: object) -> GroupBuilder:
        return self._limits("min", amounts)

    def max(self, **amounts: object) -> GroupBuilder:
        return self._limits("max", amounts)

    def lend(self, **amounts: object) -> GroupBuilder:
        return self._limits("lendingLimit", amounts)

    def borrow(self, **amounts: object) -> GroupBuilder:
        return self._limits("borrowingLimit", amounts)

    def weight(self, weight: int | dict[str, int]) -> GroupBuilder:
        self.data["weight"] = weight
        return self

    def queues(self, cluster: str, *paths: str) -> GroupBuilder:
        self.data.setdefault("yarnQueues", {})[cluster] = list(paths)
        return self

    def namespaces(self, cluster: str, *names: str) -> GroupBuilder:
        self.data.setdefault("namespaces", {})[cluster] = list(names)
        return self

    def preemptible(self, value: bool) -> GroupBuilder:
        self.data["preemptible"] = value
        return self

    def obj(self) -> dict[str, Any]:
        return dict(self.data)


def group(name: str) -> GroupBuilder:
    return GroupBuilder(name)


def policy(*groups: GroupBuilder) -> QuotaPolicy:
    return QuotaPolicy.from_document({"groups": [g.obj() for g in groups]})


def cpu(cores: int) -> Resources:
    """``cores`` whole cores and nothing else."""
    return Resources.exact(cpu_milli=cores * 1000)
