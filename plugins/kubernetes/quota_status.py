"""The quota CRD's status: each group's runtime quota, usage, borrowed and lent amounts, visible with kubectl.

The broker computes runtime quota every interval (``broker.quota.RuntimeQuota``); admins read it on the
``ElasticQuotaPolicy`` object they edited (``kubectl get eqp default -o yaml``)::

    status:
      pool: {cpu: "400", memory: 1600Gi, disk: "0", network: "0", gpu: "0"}
      groups:
      - name: team-a
        runtime:  {cpu: "120", memory: 480Gi, ...}   # what the group may use this interval
        used:     {cpu: "96", memory: 300Gi, ...}    # what it uses (inner groups: the sum of their leaves)
        borrowed: {cpu: "20", ...}                    # runtime above its (effective) min
        lent:     {cpu: "0", ...}                     # its min left to others

Every dimension is written, as a quantity string in the broker's canonical form (``format_quantity``). The
schema is structural (``status_schema``, which ``deploy/crds/elasticquota.yaml`` carries verbatim), so the API
server prunes fields it does not declare; the writer asks for ``fieldValidation=Strict`` so that a drift
between the code and the installed CRD is an error instead of a silently shortened status. The same status
also holds ``conditions`` (``plugins.kubernetes.policy_watch`` writes ``Accepted`` when the broker reads its
policy from the object); each writer patches only its own fields, so neither clobbers the other's.

Writes go to the ``status`` subresource (the CRD declares ``subresources: status``: the broker's RBAC may patch
``elasticquotapolicies/status`` and not the spec admins own) as one JSON merge patch. The status is read first
and compared by value: an unchanged quota writes nothing, so the object's resourceVersion and its watchers stay
quiet between changes. The patch carries the ``resourceVersion`` it was compared against, making it
conditional; a 409 (an admin edited the policy in between) re-reads and tries again, a few times
(``StatusPatcher``, which the condition writer shares). With ``request_timeout_s`` every request is bounded by
the client itself, so a caller that stopped waiting for a hanging API server does not leave the write's thread
hanging with it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from kubernetes.client import CustomObjectsApi
from kubernetes.client.exceptions import ApiException

from broker.errors import InputError, PeerError, PermanentPeerError, TemporaryPeerError
from broker.model import Resources
from broker.model.quantity import Dimension, format_quantity, parse_quantity
from broker.quota import API_VERSION, RuntimeQuota
from broker.quota.validate import MAX_GROUPS
from plugins.kubernetes.errors import peer_error

GROUP, VERSION = API_VERSION.split("/")
PLURAL = "elasticquotapolicies"
"""The CRD's ``spec.names.plural`` (``deploy/crds/elasticquota.yaml``)."""

AMOUNTS = ("runtime", "used", "borrowed", "lent")
_CONFLICT = 409
MAX_MESSAGE = 32768
"""Longest condition message the schema allows (``metav1.Condition``'s limit)."""


def _quantities(what: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": what,
        "required": [d.value for d in Dimension],
        "properties": {d.value: {"type": "string"} for d in Dimension},
    }


def status_schema() -> dict[str, Any]:
    """The structural schema of ``status``: the CRD's ``openAPIV3Schema.properties.status``."""
    descriptions = {
        "runtime": "Runtime quota: what the group may use this interval.",
        "used": "What the group uses now (an inner group: the sum of its descendants).",
        "borrowed": "The part of the runtime quota above the group's effective min.",
        "lent": "The part of the group's effective min left to others this interval.",
    }
    group = {
        "type": "object",
        "required": ["name", *AMOUNTS],
        "properties": {"name": {"type": "string"}, **{a: _quantities(descriptions[a]) for a in AMOUNTS}},
    }
    condition = {
        "type": "object",
        "required": ["type", "status", "lastTransitionTime", "reason", "message"],
        "properties": {
            "type": {"type": "string", "maxLength": 316},
            "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
            "observedGeneration": {"type": "integer", "minimum": 0},
            "lastTransitionTime": {"type": "string", "format": "date-time"},
            "reason": {"type": "string", "maxLength": 1024, "pattern": "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"},
            "message": {"type": "string", "maxLength": MAX_MESSAGE},
        },
    }
    return {
        "type": "object",
        "description": "Written by the broker every interval; quantities in canonical form.",
        "properties": {
            "conditions": {
                "type": "array",
                "description": "Accepted: whether the broker applied the spec (policy_source.kind kubernetes).",
                "maxItems": 8,
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["type"],
                "items": condition,
            },
            "pool": _quantities("The pool divided among the top-level groups this interval."),
            "groups": {
                "type": "array",
                "maxItems": MAX_GROUPS,
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
                "items": group,
            },
        },
    }


def _text(value: int, dimension: Dimension) -> str:
    return format_quantity(value, dimension) if value else "0"


def quantities(amount: Resources) -> dict[str, str]:
    """Every dimension of ``amount`` as canonical quantity text (``"0"`` for nothing)."""
    return {d.value: _text(value, d) for d, value in zip(Dimension, amount, strict=True)}


def group_usage(quota: RuntimeQuota, used: Mapping[str, Resources]) -> dict[str, Resources]:
    """Usage per group: each group's own (``used``, normally given for leaves) plus its descendants'.

    A name that is not a group of ``quota`` is an ``InputError`` naming it."""
    totals = {name: Resources() for name in quota.groups}
    for name, amount in used.items():
        group = quota.groups.get(name)
        if group is None:
            raise InputError(f"used.{name}", "no quota group of this name")
        while group is not None:
            totals[group.name] = totals[group.name] + amount
            group = quota.groups[group.parent] if group.parent is not None else None
    return totals


def quota_status(quota: RuntimeQuota, used: Mapping[str, Resources]) -> dict[str, Any]:
    """The ``status`` document for ``quota`` and usage per group (groups in the policy's order)."""
    usage = group_usage(quota, used)
    return {
        "pool": quantities(quota.pool),
        "groups": [
            {
                "name": name,
                "runtime": quantities(group.runtime),
                "used": quantities(usage[name]),
                "borrowed": quantities(group.borrowed),
                "lent": quantities(group.lent),
            }
            for name, group in quota.groups.items()
        ],
    }


def _canonical(amounts: object) -> dict[str, str] | None:
    if not isinstance(amounts, Mapping):
        return None
    try:
        return {d.value: _text(parse_quantity(amounts.get(d.value), d, d.value), d) for d in Dimension}
    except InputError:
        return None


def same_status(current: object, wanted: Mapping[str, Any]) -> bool:
    """True when ``current`` (the stored status) already says what ``wanted`` says, quantities compared by
    value (``"4000m"`` is ``"4"``). Fields the broker does not write are not compared."""
    if not isinstance(current, Mapping) or _canonical(current.get("pool")) != wanted["pool"]:
        return False
    groups = current.get("groups")
    if not isinstance(groups, list) or len(groups) != len(wanted["groups"]):
        return False
    for have, want in zip(groups, wanted["groups"], strict=True):
        if not isinstance(have, Mapping) or have.get("name") != want["name"]:
            return False
        if any(_canonical(have.get(a)) != want[a] for a in AMOUNTS):
            return False
    return True


class StatusPatcher:
    """Conditional merge patches of the ``status`` of ``ElasticQuotaPolicy`` objects of one cluster (the module
    docstring): read, let the caller decide, patch against the ``resourceVersion`` read, retry on 409."""

    def __init__(self, custom: CustomObjectsApi, peer: str, attempts: int = 3,
                 request_timeout_s: float | None = None) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        if request_timeout_s is not None and request_timeout_s <= 0:
            raise ValueError("request_timeout_s must be positive")
        self._custom = custom
        self.peer = peer
        self._attempts = attempts
        self._bounded: dict[str, Any] = {} if request_timeout_s is None else {"_request_timeout": request_timeout_s}

    def patch(self, name: str, change: Callable[[Mapping[str, Any]], dict[str, Any] | None]) -> bool:
        """Give ``change`` the current status of the object ``name`` (``{}`` when it has none); send what it
        returns as a merge patch of the status (fields it leaves out stay as they are), or nothing when it
        returns ``None``. True when a patch was sent. Raises ``PeerError`` (permanent for 404 no such object,
        400 a field the installed CRD does not declare, 422 invalid)."""
        for _ in range(self._attempts):
            try:
                current = self._custom.get_cluster_custom_object(GROUP, VERSION, PLURAL, name, **self._bounded)
                if not isinstance(current, dict):
                    raise PermanentPeerError(self.peer, f"{PLURAL}/{name}: the answer is not an object")
                status = current.get("status")
                wanted = change(status if isinstance(status, Mapping) else {})
                if wanted is None:
                    return False
                patch = {"metadata": {"resourceVersion": current["metadata"]["resourceVersion"]}, "status": wanted}
                self._custom.patch_cluster_custom_object_status(
                    GROUP, VERSION, PLURAL, name, patch, field_validation="Strict", **self._bounded
                )
                return True
            except ApiException as exc:
                if exc.status != _CONFLICT:
                    raise peer_error(self.peer, exc) from None
            except PeerError:
                raise
            except Exception as exc:
                raise peer_error(self.peer, exc) from None
        raise TemporaryPeerError(self.peer, f"{PLURAL}/{name}: still conflicting after {self._attempts} attempts")


class QuotaStatusWriter:
    """Writes runtime quota to the status of ``ElasticQuotaPolicy`` objects of one cluster."""

    def __init__(self, custom: CustomObjectsApi, peer: str, attempts: int = 3,
                 request_timeout_s: float | None = None) -> None:
        self._patcher = StatusPatcher(custom, peer, attempts, request_timeout_s)
        self.peer = peer

    def write(self, name: str, quota: RuntimeQuota, used: Mapping[str, Resources]) -> bool:
        """Bring the status of the policy object ``name`` up to date; True when a patch was sent, False when
        it already said the same. Raises ``PeerError`` (permanent for 404 no such object, 400 a field the
        installed CRD does not declare, 422 invalid), ``InputError`` for usage of an unknown group."""
        wanted = quota_status(quota, used)
        return self._patcher.patch(name, lambda status: None if same_status(status, wanted) else wanted)


__all__ = [
    "GROUP",
    "MAX_MESSAGE",
    "PLURAL",
    "VERSION",
    "QuotaStatusWriter",
    "StatusPatcher",
    "group_usage",
    "quantities",
    "quota_status",
    "same_status",
    "status_schema",
]
