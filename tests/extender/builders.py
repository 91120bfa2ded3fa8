"""Builders that read like the domain: plans with nodes, placements and teams, and the pods kube-scheduler
sends."""

from __future__ import annotations

from typing import Any

import orjson

from broker.model import NodePlan, Placement, Plan, Resources, Sink, TeamBinding, TeamPlan

NOW = 1_800_000_000.0
"""The tests' clock reading (plans are made at ``NOW`` unless told otherwise)."""

DOMAIN = "broker.elastic.io"


class NodeBuilder:
    """``node("n1").stable().disk().batch(cpu="8", memory="16Gi").places("team-a", "exec", 3)``."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._labels = ["diskless", "elastic"]
        self._batch = Resources.of(cpu="8", memory="32Gi")
        self._placements: list[Placement] = []

    def stable(self) -> NodeBuilder:
        self._labels[1] = "stable"
        return self

    def disk(self) -> NodeBuilder:
        self._labels[0] = "disk"
        return self

    def batch(self, cpu: str = "0", memory: str = "0") -> NodeBuilder:
        self._batch = Resources.of(cpu=cpu, memory=memory)
        return self

    def places(
        self, team: str, demand_class: str, count: int = 1, is_am: bool = False, sink: Sink = Sink.KUBERNETES
    ) -> NodeBuilder:
        self._placements.append(
            Placement(demand_class=demand_class, team=team, sink=sink, is_am=is_am, count=count)
        )
        return self

    def obj(self) -> NodePlan:
        return NodePlan(
            node=self._name,
            site="idc-a",
            cluster="k8s-a",
            labels=tuple(self._labels),
            lendable=self._batch,
            kubernetes=self._batch,
            placements=tuple(self._placements),
        )


def node(name: str) -> NodeBuilder:
    return NodeBuilder(name)


class TeamBuilder:
    """``team("team-a").quota(cpu="10", memory="40Gi").running(cpu="2").namespaces("ns-a")``."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._quota = Resources.of(cpu="100", memory="400Gi")
        self._running = Resources()
        self._namespaces: dict[str, tuple[str, ...]] = {"k8s-a": (name,)}

    def quota(self, cpu: str = "0", memory: str = "0") -> TeamBuilder:
        self._quota = Resources.of(cpu=cpu, memory=memory)
        return self

    def running(self, cpu: str = "0", memory: str = "0") -> TeamBuilder:
        self._running = Resources.of(cpu=cpu, memory=memory)
        return self

    def namespaces(self, *names: str, cluster: str = "k8s-a") -> TeamBuilder:
        self._namespaces = {**self._namespaces, cluster: names}
        return self

    def obj(self) -> TeamPlan:
        return TeamPlan(
            team=self._name,
            runtime_quota=self._quota,
            running=self._running,
            binding=TeamBinding(namespaces=self._namespaces),
        )


def team(name: str) -> TeamBuilder:
    return TeamBuilder(name)


def plan(
    nodes: list[NodeBuilder], teams: list[TeamBuilder], version: int = 1, created_at_s: float = NOW
) -> Plan:
    return Plan(
        version=version,
        created_at_s=created_at_s,
        nodes=tuple(n.obj() for n in nodes),
        teams=tuple(t.obj() for t in teams),
    )


class PodBuilder:
    """``pod("exec-1").ns("team-a").batch(cpu=2000, memory="4Gi").am().needs_disk().of_class("exec")``."""

    def __init__(self, name: str) -> None:
        self._meta: dict[str, Any] = {
            "name": name,
            "namespace": "team-a",
            "uid": f"uid-{name}",
            "creationTimestamp": "2026-11-21T19:40:11Z",
        }
        self._labels: dict[str, str] = {}
        self._requests: dict[str, str] = {}
        self._priority = 0

    def ns(self, namespace: str) -> PodBuilder:
        self._meta["namespace"] = namespace
        return self

    def batch(self, cpu: int = 1000, memory: str = "1Gi") -> PodBuilder:
        self._requests = {f"{DOMAIN}/batch-cpu": str(cpu), f"{DOMAIN}/batch-memory": memory}
        return self

    def label(self, key: str, value: str) -> PodBuilder:
        self._labels[key] = value
        return self

    def am(self) -> PodBuilder:
        return self.label(f"{DOMAIN}/role", "am")

    def needs_disk(self) -> PodBuilder:
        return self.label(f"{DOMAIN}/needs-disk", "true")

    def of_class(self, name: str) -> PodBuilder:
        return self.label(f"{DOMAIN}/class", name)

    def of_team(self, name: str) -> PodBuilder:
        return self.label(f"{DOMAIN}/team", name)

    def priority(self, value: int) -> PodBuilder:
        self._priority = value
        return self

    def started(self, timestamp: str) -> PodBuilder:
        self._meta["creationTimestamp"] = timestamp
        return self

    def obj(self) -> dict[str, Any]:
        meta = {**self._meta, "labels": dict(self._labels)}
        container = {
            "name": "c",
            "image": "registry.invalid/spark:3.5",
            "resources": {"requests": dict(self._requests), "limits": dict(self._requests)},
        }
        return {
            "metadata": meta,
            "spec": {
                "containers": [container],
                "priority": self._priority,
                "schedulerName": "default-scheduler",
            },
            "status": {"phase": "Pending"},
        }


def pod(name: str) -> PodBuilder:
    return PodBuilder(name)


def filter_body(p: PodBuilder | dict[str, Any], names: list[str]) -> bytes:
    """An ``ExtenderArgs`` body as a ``nodeCacheCapable`` scheduler sends it."""
    obj = p.obj() if isinstance(p, PodBuilder) else p
    return orjson.dumps({"Pod": obj, "Nodes": None, "NodeNames": names})


def preempt_body(p: PodBuilder, victims: dict[str, list[str]], pdb: int = 0) -> bytes:
    """An ``ExtenderPreemptionArgs`` body with meta victims (UIDs), as a ``nodeCacheCapable`` scheduler sends
    it."""
    return orjson.dumps(
        {
            "Pod": p.obj(),
            "NodeNameToVictims": None,
            "NodeNameToMetaVictims": {
                name: {"Pods": [{"UID": uid} for uid in uids], "NumPDBViolations": pdb}
                for name, uids in victims.items()
            },
        }
    )
