"""What the extender needs to know about a pod, read from the Pod object the scheduler sends.

Only a handful of fields matter: namespace and labels (which team), the managed extended resources (is it
offline, how big), the role and disk labels (which nodes it may use), priority and start time (the reclaim
order). Everything else in the Pod (managedFields, volumes, status) is left unread. A field of the wrong type
is an ``InputError`` naming it, since the scheduler itself would never send one.

The size of an offline pod is its effective request of the managed resources, as Kubernetes computes it: the
sum over containers, or the largest init container if that is larger, plus the pod overhead; a limit stands in
for a missing request (extended resources cannot be overcommitted, so Kubernetes defaults the request to the
limit).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from broker.errors import InputError
from broker.model.quantity import Dimension, parse_quantity
from broker.model.resources import Resources
from broker.service.extender.conventions import SPARK_ROLE_LABEL, Conventions

_TRUE = frozenset({"true", "yes", "1"})


@dataclass(frozen=True, slots=True)
class PodFacts:
    """The facts of one pod the decisions use.

    ``offline`` says whether it requests a managed resource; ``shape`` is its effective request of them (zero
    for online pods); ``started`` is an RFC 3339 timestamp (``status.startTime``, else
    ``metadata.creationTimestamp``), compared as text because Kubernetes always writes it in the same UTC
    form.
    """

    uid: str
    name: str
    namespace: str
    offline: bool
    shape: Resources
    is_am: bool
    needs_disk: bool
    demand_class: str | None
    team_label: str | None
    priority: int
    started: str


def _object(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(where, "expected an object")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InputError(where, "expected a list")
    return value


def _text(value: Any, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InputError(where, "expected a string")
    return value


def _string_map(value: Any, where: str) -> dict[str, str]:
    out = _object(value, where)
    for key, item in out.items():
        if not isinstance(item, str):
            raise InputError(f"{where}.{key}", "expected a string value")
    return out


def _amounts(resources: dict[str, Any], names: Conventions, where: str) -> tuple[bool, int, int]:
    """``(mentions a managed resource, batch cpu milli, batch memory MiB)`` of one container's resources."""
    requests = _object(resources.get("requests"), f"{where}.requests")
    limits = _object(resources.get("limits"), f"{where}.limits")
    mentioned = False
    amounts = [0, 0]
    for i, (resource, dimension) in enumerate(((names.batch_cpu, Dimension.CPU),
                                               (names.batch_memory, Dimension.MEMORY))):
        value = requests.get(resource)
        field = f"{where}.requests.{resource}"
        if value is None:
            value, field = limits.get(resource), f"{where}.limits.{resource}"
        if value is None:
            mentioned = mentioned or resource in requests or resource in limits
            continue
        mentioned = True
        amount = parse_quantity(value, dimension, field)
        # batch-cpu counts millicores as whole units: "2000" is 2 cores (it parses as 2,000,000 millicores).
        amounts[i] = -(-amount // 1000) if dimension is Dimension.CPU else amount
    return mentioned, amounts[0], amounts[1]


def _shape(spec: dict[str, Any], names: Conventions) -> tuple[bool, Resources]:
    offline = False
    cpu = memory = 0
    for i, container in enumerate(_list(spec.get("containers"), "spec.containers")):
        where = f"spec.containers[{i}]"
        resources = _object(_object(container, where).get("resources"), f"{where}.resources")
        mentioned, c, m = _amounts(resources, names, f"{where}.resources")
        offline, cpu, memory = offline or mentioned, cpu + c, memory + m
    for i, container in enumerate(_list(spec.get("initContainers"), "spec.initContainers")):
        where = f"spec.initContainers[{i}]"
        resources = _object(_object(container, where).get("resources"), f"{where}.resources")
        mentioned, c, m = _amounts(resources, names, f"{where}.resources")
        offline, cpu, memory = offline or mentioned, max(cpu, c), max(memory, m)
    overhead = _object(spec.get("overhead"), "spec.overhead")
    _, c, m = _amounts({"requests": overhead}, names, "spec.overhead")
    return offline, _shape_of(cpu + c, memory + m)


@functools.lru_cache(maxsize=4096)
def _shape_of(cpu_milli: int, memory_mib: int) -> Resources:
    """The ``Resources`` of a pod size. Pods come in a few sizes, and building the (pydantic) value is a tenth
    of reading a pod, so equal sizes share one immutable value."""
    return Resources.exact(cpu_milli=cpu_milli, memory_mib=memory_mib)


def read_pod(pod: dict[str, Any], names: Conventions, where: str = "Pod") -> PodFacts:
    """The facts of ``pod`` (a decoded Pod object) under the naming ``names``; errors name fields under
    ``where``."""
    try:
        return _read(pod, names)
    except InputError as exc:
        raise exc.at(where) from None


def _read(pod: dict[str, Any], names: Conventions) -> PodFacts:
    meta = _object(pod.get("metadata"), "metadata")
    spec = _object(pod.get("spec"), "spec")
    status = _object(pod.get("status"), "status")
    labels = _string_map(meta.get("labels"), "metadata.labels")
    annotations = _string_map(meta.get("annotations"), "metadata.annotations")
    priority = spec.get("priority", 0)
    if priority is None:
        priority = 0
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise InputError("spec.priority", "expected an integer")
    offline, shape = _shape(spec, names)
    disk = labels.get(names.needs_disk_key, annotations.get(names.needs_disk_key, ""))
    return PodFacts(
        uid=_text(meta.get("uid"), "metadata.uid"),
        name=_text(meta.get("name"), "metadata.name"),
        namespace=_text(meta.get("namespace"), "metadata.namespace") or "default",
        offline=offline,
        shape=shape,
        is_am=labels.get(names.role_label) == "am" or labels.get(SPARK_ROLE_LABEL) == "driver",
        needs_disk=disk.lower() in _TRUE,
        demand_class=labels.get(names.class_label),
        team_label=labels.get(names.team_label),
        priority=priority,
        started=_text(status.get("startTime"), "status.startTime")
        or _text(meta.get("creationTimestamp"), "metadata.creationTimestamp"),
    )


__all__ = ["PodFacts", "read_pod"]
