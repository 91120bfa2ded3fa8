"""Kubernetes-style quantities, read into exact integers.

Every amount the broker reasons about is an integer in a fixed unit, so that quota and capacity arithmetic is exact
(the sum of runtime quotas can be compared with the pool without rounding drift):

========  ==========  =========================================================
dimension unit        accepted text
========  ==========  =========================================================
cpu       millicores  ``4000m``, ``4``, ``1.5``, ``0.25``, ``2e3``; bare numbers are cores
memory    MiB         ``8Gi``, ``512Mi``, ``1G``, ``1073741824``; bare numbers are bytes, as in Kubernetes
disk      GiB         ``100Gi``, ``1Ti``, ``500G``; bare numbers are bytes
network   Mbit/s      ``10G``, ``25000M``, ``1000``; bare numbers are Mbit/s (a NIC is sold in bits)
gpu       devices     ``1``, ``8``; a fraction rounds up to a whole device
========  ==========  =========================================================

A quantity that is not a whole number of the unit is rounded *up* (Kubernetes rounds CPU up to 1m the same way):
asking for ``1G`` of memory reserves 954 MiB, never 953. Negative values, NaN and values above ``UNLIMITED`` are
refused with a ``QuantityError`` that names the field.

``UNLIMITED`` is an explicit, saturating "no cap": ``UNLIMITED + x == UNLIMITED`` and ``UNLIMITED - x ==
UNLIMITED``, like Kueue's max ``Amount``. Written as the text ``unlimited``.
"""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from enum import Enum

from broker.errors import QuantityError

UNLIMITED = 2**62
"""The amount meaning "no cap". Arithmetic saturates at it."""

_DECIMAL_SUFFIX = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
_BINARY_SUFFIX = {
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}
_QUANTITY = re.compile(
    r"^(?P<num>[+]?(?:\d+(?:\.\d*)?|\.\d+))(?:(?P<exp>[eE][+-]?\d+)|(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?)$"
)
_MAX_TEXT = 64


class Dimension(str, Enum):
    """A resource dimension and the integer unit the broker holds it in."""

    CPU = "cpu"
    MEMORY = "memory"
    DISK = "disk"
    NETWORK = "network"
    GPU = "gpu"

    @property
    def unit(self) -> Decimal:
        """Size of one integer unit in the quantity's base unit (cores, bytes, bytes, Mbit/s)."""
        return _UNIT[self]


_UNIT = {
    Dimension.CPU: Decimal("0.001"),  # millicores
    Dimension.MEMORY: Decimal(2**20),  # MiB
    Dimension.DISK: Decimal(2**30),  # GiB
    Dimension.NETWORK: Decimal("1e6"),  # Mbit/s, quantity base unit is bit/s ...
    Dimension.GPU: Decimal(1),  # whole devices
}
# ... except that a bare network number is already Mbit/s (nobody writes NIC speeds in bits).
_BARE_NETWORK_UNIT = Decimal(1)


def parse_quantity(value: object, dimension: Dimension, field: str) -> int:
    """Read ``value`` (text, int or float) as an exact integer amount of ``dimension``'s unit.

    Ints and floats are taken as the bare-number unit of the dimension (cores, bytes, bytes, Mbit/s), exactly as
    their text would be. ``field`` names the value in errors.
    """
    if isinstance(value, bool):
        raise QuantityError(field, f"expected a {dimension.value} quantity, got a boolean")
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise QuantityError(field, f"{value!r} is not a {dimension.value} quantity")
        text = repr(value)
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise QuantityError(field, f"expected a {dimension.value} quantity such as {_EXAMPLE[dimension]!r}, "
                                   f"got {type(value).__name__}")
    if len(text) > _MAX_TEXT:
        raise QuantityError(field, f"quantity text longer than {_MAX_TEXT} characters")
    if text.lower() == "unlimited":
        return UNLIMITED
    if text.startswith("-"):
        raise QuantityError(field, f"{text!r} is negative; {dimension.value} quantities are >= 0")
    match = _QUANTITY.match(text)
    if match is None:
        raise QuantityError(field, f"{text!r} is not a {dimension.value} quantity (examples: "
                                   f"{_EXAMPLE[dimension]!r}, {_EXAMPLE_2[dimension]!r})")
    try:
        number = Decimal(match["num"])
        if match["exp"]:
            number = number.scaleb(int(match["exp"][1:]))
            suffix = ""
        else:
            suffix = match["suffix"] or ""
    except (InvalidOperation, ValueError) as exc:  # pragma: no cover - the regex admits only valid numbers
        raise QuantityError(field, f"{text!r} is not a number") from exc
    base = number * _BINARY_SUFFIX[suffix] if suffix in _BINARY_SUFFIX else number * _DECIMAL_SUFFIX[suffix]
    amount = base / _BARE_NETWORK_UNIT if dimension is Dimension.NETWORK and not suffix else base / dimension.unit
    if amount > UNLIMITED:
        raise QuantityError(field, f"{text!r} is larger than the largest quantity (use 'unlimited')")
    return int(amount.to_integral_value(rounding=ROUND_CEILING))


def format_quantity(amount: int, dimension: Dimension) -> str:
    """Render an integer amount as the shortest exact quantity text (``4``, ``1500m``, ``8Gi``, ``unlimited``)."""
    if amount >= UNLIMITED:
        return "unlimited"
    if dimension is Dimension.CPU:
        return str(amount // 1000) if amount % 1000 == 0 else f"{amount}m"
    if dimension is Dimension.NETWORK:
        return f"{amount // 1000}G" if amount % 1000 == 0 and amount else str(amount)
    if dimension is Dimension.GPU:
        return str(amount)
    if dimension is Dimension.DISK:
        return f"{amount // 1024}Ti" if amount % 1024 == 0 and amount else f"{amount}Gi"
    if amount % 1024 == 0 and amount:
        return f"{amount // 1024}Gi"
    return f"{amount}Mi"


def sat_add(a: int, b: int) -> int:
    """``a + b``, saturating at ``UNLIMITED``."""
    return UNLIMITED if a >= UNLIMITED or b >= UNLIMITED else min(a + b, UNLIMITED)


def sat_sub(a: int, b: int) -> int:
    """``a - b``, never below zero; ``UNLIMITED - b`` stays ``UNLIMITED``."""
    return UNLIMITED if a >= UNLIMITED else max(a - b, 0)


_EXAMPLE = {Dimension.CPU: "4000m", Dimension.MEMORY: "8Gi", Dimension.DISK: "100Gi", Dimension.NETWORK: "10G",
            Dimension.GPU: "1"}
_EXAMPLE_2 = {Dimension.CPU: "1.5", Dimension.MEMORY: "512Mi", Dimension.DISK: "1Ti", Dimension.NETWORK: "1000",
              Dimension.GPU: "8"}

__all__ = ["UNLIMITED", "Dimension", "format_quantity", "parse_quantity", "sat_add", "sat_sub"]
