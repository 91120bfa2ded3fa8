"""The broker's error tree: one root, translated at the boundary.

::

    BrokerError
    ├── InputError          bad input from a user or a client (file, flag, HTTP body); carries the field
    │   └── QuantityError   a resource quantity that does not parse or is out of range
    ├── ConflictError       a versioned write against a stale version; nothing was applied
    ├── SolverError         an optimisation model that is invalid (never reported as "unknown")
    └── PeerError           a peer (YARN RM, Kubernetes API, Redis) failed
        ├── TemporaryPeerError   worth retrying after ``delay_s``
        └── PermanentPeerError   the peer refused; retrying the same request will not help

Adapters turn peer failures (HTTP statuses, socket errors) into ``PeerError``; the core never sees a status code.
Entry points (CLI, HTTP) turn ``InputError`` into a message naming the field and a 4xx, never a traceback.
"""

from __future__ import annotations


class BrokerError(Exception):
    """Root of every error the broker raises on purpose."""


class InputError(BrokerError, ValueError):
    """Bad input. ``field`` is a dotted path to the offending value (``nodes[3].capacity.cpu``).

    It is also a ``ValueError`` so that pydantic validators may raise it and pydantic adds the outer location.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message

    def at(self, prefix: str) -> InputError:
        """The same error, with ``prefix`` prepended to its field path (used as errors bubble up)."""
        field = f"{prefix}.{self.field}" if self.field else prefix
        return type(self)(field, self.message)


class QuantityError(InputError):
    """A quantity such as ``4000m`` or ``8Gi`` that cannot be read."""


class ConflictError(BrokerError):
    """A versioned write whose expected version is not the current one."""

    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(f"version conflict: expected {expected}, store has {actual}")
        self.expected = expected
        self.actual = actual


class SolverError(BrokerError):
    """The optimiser was given a model it rejects."""


class PeerError(BrokerError):
    """A peer system failed. ``peer`` names it (``yarn-rm idc-a``, ``redis``)."""

    def __init__(self, peer: str, message: str) -> None:
        super().__init__(f"{peer}: {message}")
        self.peer = peer
        self.message = message


class TemporaryPeerError(PeerError):
    """A failure worth retrying (timeout, 5xx, connection reset) after ``delay_s`` seconds."""

    def __init__(self, peer: str, message: str, delay_s: float = 1.0) -> None:
        super().__init__(peer, message)
        self.delay_s = delay_s


class PermanentPeerError(PeerError):
    """The peer refused the request (4xx); ``status`` is its answer code where it has one."""

    def __init__(self, peer: str, message: str, status: int | None = None) -> None:
        super().__init__(peer, message)
        self.status = status


__all__ = [
    "BrokerError",
    "ConflictError",
    "InputError",
    "PeerError",
    "PermanentPeerError",
    "QuantityError",
    "SolverError",
    "TemporaryPeerError",
]
