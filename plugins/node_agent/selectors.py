"""Which pods are drivers: label selectors as ``kubectl -l`` takes them, checked before any API call.

Kept apart from ``driver_pods`` (which needs the Kubernetes client) so that the agent's command line can check
its flags without importing the client: the agent runs on every node, and its memory is paid fleet-wide.
"""

from __future__ import annotations

import re

from broker.errors import InputError

DEFAULT_SELECTORS = ("spark-role=driver", "broker.elastic.io/role=am")
"""Spark on Kubernetes' driver label, and the broker's own AM label (``<domain>/role: am``, default domain)."""

_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_KEY = rf"([a-z0-9]([-a-z0-9.]{{0,251}}[a-z0-9])?/)?{_NAME}"
_VALUE = rf"({_NAME})?"
_REQUIREMENT = re.compile(
    rf"^(!?\s*{_KEY}|{_KEY}\s*(==|!=|=)\s*{_VALUE}|{_KEY}\s*[<>]\s*-?\d+"
    rf"|{_KEY}\s+(in|notin)\s*\(\s*{_VALUE}(\s*,\s*{_VALUE})*\s*\))$"
)


def check_selector(selector: str, field: str = "--driver-selector") -> str:
    """``selector`` (stripped) when it is a label selector as ``kubectl -l`` takes it (``k=v``, ``k!=v``, ``k``,
    ``!k``, ``k in (a,b)``, ``k notin (a,b)``, ``k>3``, comma-separated, all of which must hold); ``InputError`` naming
    ``field`` otherwise. An empty selector is refused: it would make every pod on the node a driver."""
    text = selector.strip()
    if not text:
        raise InputError(field, "empty: it would select every pod on the node")
    for requirement in _requirements(text):
        if not _REQUIREMENT.match(requirement.strip()):
            raise InputError(field, f"{requirement.strip()!r} in {text!r} is not a label selector requirement")
    return text


def _requirements(selector: str) -> list[str]:
    """``selector`` split at the commas outside parentheses."""
    parts: list[str] = []
    depth = start = 0
    for i, char in enumerate(selector):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(selector[start:i])
            start = i + 1
    parts.append(selector[start:])
    return parts


__all__ = ["DEFAULT_SELECTORS", "check_selector"]
