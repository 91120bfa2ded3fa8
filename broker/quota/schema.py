"""The policy's published schema: one source for the CRD's ``openAPIV3Schema`` and the admin API's OpenAPI.

Unknown fields are left out rather than forbidden (``additionalProperties`` may not sit beside ``properties``
in a structural schema; the API server prunes them and the broker's own validation rejects them). It is a
Kubernetes *structural* schema (no ``$ref``, every field typed; quantities are
``x-kubernetes-int-or-string``), so the same object can be pasted into the CRD, where the API server enforces
it, and into the OpenAPI document of ``broker quota serve``. A test checks that
``deploy/crds/elasticquota.yaml`` carries exactly this schema, so the two cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from broker.quota.amount import Limits
from broker.quota.group import GROUP_NAME_PATTERN, MAX_BINDINGS
from broker.quota.validate import MAX_GROUPS

_AMOUNT: dict[str, Any] = {
    "x-kubernetes-int-or-string": True,
    "description": "A quantity ('4', '4000m', '8Gi', 'unlimited') or a share of the pool ('20%').",
}


def _limits(what: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": what,
        "properties": {name: dict(_AMOUNT) for name in Limits.FIELDS},
    }


def _bindings(what: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": what,
        "maxProperties": MAX_BINDINGS,
        "additionalProperties": {"type": "array", "maxItems": MAX_BINDINGS, "items": {"type": "string"}},
    }


def group_schema() -> dict[str, Any]:
    """The schema of one quota group (camelCase, as written in files)."""
    return {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "pattern": GROUP_NAME_PATTERN},
            "parent": {"type": "string", "description": "Parent group; omit for a top-level group."},
            "min": _limits("Guaranteed amount per dimension; unset = 0."),
            "max": _limits("Cap per dimension; unset = unlimited."),
            "lendingLimit": _limits("How much of its unused min others may borrow; unset = all."),
            "borrowingLimit": _limits("How much above min it may take; unset = up to max."),
            "weight": {
                "description": "Share of the surplus: an integer >= 1, or integers per dimension (checked by "
                               "the broker; a structural schema cannot say 'int or object').",
                "x-kubernetes-preserve-unknown-fields": True,
            },
            "preemptible": {"type": "boolean", "description": "Default for containers that do not say."},
            "yarnQueues": _bindings("YARN cluster -> queue paths (leaf groups only)."),
            "namespaces": _bindings("Kubernetes cluster -> namespaces (leaf groups only)."),
            "description": {"type": "string", "maxLength": 1024},
        },
    }


def policy_schema() -> dict[str, Any]:
    """The schema of a policy's ``spec`` (the plain YAML form is the same object)."""
    return {
        "type": "object",
        "required": ["groups"],
        "properties": {"groups": {"type": "array", "maxItems": MAX_GROUPS, "items": group_schema()}},
    }


__all__ = ["group_schema", "policy_schema"]
