"""Quota amounts as admins write them: an absolute quantity or a share of the pool, per dimension.

A policy outlives the pool it divides: the elastic pool grows and shrinks every few minutes with the online
load, so an admin may write ``min: {cpu: "20%"}`` instead of a fixed number. Such a value is kept as written
and resolved against the pool of each interval (``Amount.resolve``), rounding down so that a share never
promises a fraction of a unit that is not there.

Every amount is the linear form ``absolute + pool * basis_points / 10000`` with one of the two terms zero. The
linear form lets validation compare two amounts *for every possible pool size* (``a1 + b1 P <= a2 + b2 P`` for
all ``P >= 0`` exactly when ``a1 <= a2`` and ``b1 <= b2``), so a policy accepted today cannot become
inconsistent when the pool changes tomorrow.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator

from broker.errors import InputError
from broker.model import UNLIMITED, Dimension, format_quantity, parse_quantity

BASIS = 10_000
"""Basis points in a whole pool: ``"12.5%"`` is 1,250 basis points."""

_PERCENT = re.compile(r"^\s*(?P<whole>\d{1,3})(?:\.(?P<frac>\d{1,2}))?\s*%\s*$")

DIMENSIONS: tuple[Dimension, ...] = (Dimension.CPU, Dimension.MEMORY, Dimension.DISK, Dimension.NETWORK,
                                     Dimension.GPU)
"""The five dimensions in ``Resources.FIELDS`` order."""

_BY_NAME: dict[str, Dimension] = {d.value: d for d in DIMENSIONS}
_EXACT_NAME = {"cpu_milli": "cpu", "memory_mib": "memory", "disk_gib": "disk", "network_mbps": "network"}


class Amount(BaseModel):
    """One dimension of a limit: ``absolute`` units (``UNLIMITED`` for no cap) or ``basis_points`` of the
    pool."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    absolute: int = Field(0, ge=0, le=UNLIMITED)
    basis_points: int = Field(0, ge=0, le=BASIS)

    @classmethod
    def parse(cls, value: object, dimension: Dimension, field: str) -> Amount:
        """Read ``"20%"``, ``"12.5%"``, ``"4000m"``, ``"8Gi"``, ``"unlimited"`` or a bare number."""
        if isinstance(value, str) and "%" in value:
            match = _PERCENT.match(value)
            if match is None:
                raise InputError(field, f"{value!r} is not a share of the pool (examples: '20%', '1.5%')")
            points = int(match["whole"]) * 100 + int((match["frac"] or "0").ljust(2, "0"))
            if points > BASIS:
                raise InputError(field, f"{value!r} is more than 100% of the pool")
            return cls.model_construct(absolute=0, basis_points=points)
        return cls.model_construct(absolute=parse_quantity(value, dimension, field), basis_points=0)

    @property
    def is_share(self) -> bool:
        """True when the amount is a percentage of the pool."""
        return self.basis_points > 0

    def resolve(self, pool: int) -> int:
        """The amount for a pool of ``pool`` units, rounded down."""
        if self.absolute >= UNLIMITED:
            return UNLIMITED
        return self.absolute + pool * self.basis_points // BASIS

    def never_above(self, other: Amount) -> bool:
        """True when ``self.resolve(P) <= other.resolve(P)`` for every pool size ``P``."""
        if other.absolute >= UNLIMITED:
            return True
        return self.absolute <= other.absolute and self.basis_points <= other.basis_points

    def text(self, dimension: Dimension) -> str:
        """The amount as an admin would write it."""
        if self.basis_points:
            whole, frac = divmod(self.basis_points, 100)
            return f"{whole}%" if not frac else f"{whole}.{frac:02d}".rstrip("0") + "%"
        return format_quantity(self.absolute, dimension)


ZERO_AMOUNT = Amount()


def total_of(amounts: list[Amount]) -> Amount:
    """The linear sum of amounts (absolute terms and pool shares added separately), saturating at
    ``UNLIMITED``."""
    absolute = sum(a.absolute for a in amounts)
    shares = sum(a.basis_points for a in amounts)
    return Amount.model_construct(absolute=min(absolute, UNLIMITED), basis_points=shares)


class Limits(BaseModel):
    """A per-dimension limit as written in a policy. ``None`` means the dimension was not given.

    Written like a ``Resources`` block (``{cpu: "40", memory: "160Gi", gpu: 2}``, or integers under the exact
    names ``cpu_milli``, ``memory_mib``, ...), with ``"NN%"`` allowed for a share of the pool. What an unset
    dimension means depends on the limit (``min`` 0, ``max`` unlimited, ``lendingLimit`` all of min,
    ``borrowingLimit`` up to max); the group model says which.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    cpu: Amount | None = None
    memory: Amount | None = None
    disk: Amount | None = None
    network: Amount | None = None
    gpu: Amount | None = None

    FIELDS: ClassVar[tuple[str, ...]] = ("cpu", "memory", "disk", "network", "gpu")

    @model_validator(mode="before")
    @classmethod
    def _read_amounts(cls, data: Any) -> Any:
        """Accept friendly keys with quantities or percentages; refuse unknown dimensions by name."""
        if data is None:
            return {}
        if not isinstance(data, Mapping):
            raise InputError("", "expected a mapping of dimension to amount, like {cpu: '4', memory: '8Gi'}")
        out: dict[str, Any] = {}
        for key, value in data.items():
            name = _EXACT_NAME.get(str(key), str(key))
            if name not in _BY_NAME:
                raise InputError(str(key), f"unknown dimension; use one of {', '.join(cls.FIELDS)}")
            if name in out:
                raise InputError(str(key), f"dimension {name!r} given twice")
            if value is None or isinstance(value, Amount):
                out[name] = value
            elif key in _EXACT_NAME and isinstance(value, int) and not isinstance(value, bool):
                if not 0 <= value <= UNLIMITED:
                    raise InputError(str(key), f"{value} is out of range 0..{UNLIMITED}")
                out[name] = Amount.model_construct(absolute=value,
                                                   basis_points=0)  # already in the exact unit
            elif isinstance(value, Mapping):  # the stored form of an Amount
                out[name] = Amount.model_validate(value)
            else:
                out[name] = Amount.parse(value, _BY_NAME[name], str(key))
        return out

    @model_serializer
    def _as_text(self) -> dict[str, str]:
        """Serialise as written by admins (``{"cpu": "20%", "memory": "8Gi"}``), so that a round trip is
        exact."""
        return {name: amount.text(_BY_NAME[name]) for name, amount in self.items()}

    def items(self) -> Iterator[tuple[str, Amount]]:
        """The dimensions that were given, in ``FIELDS`` order."""
        for name in self.FIELDS:
            amount: Amount | None = getattr(self, name)
            if amount is not None:
                yield name, amount

    def amounts(self, unset: Amount) -> tuple[Amount, ...]:
        """All five dimensions, with ``unset`` standing for those not given."""
        return tuple(unset if (a := getattr(self, name)) is None else a for name in self.FIELDS)


class Weights(BaseModel):
    """A group's share of the surplus, per dimension; written as one integer for all dimensions or per
    dimension."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cpu: int = Field(1, ge=1, le=1_000_000)
    memory: int = Field(1, ge=1, le=1_000_000)
    disk: int = Field(1, ge=1, le=1_000_000)
    network: int = Field(1, ge=1, le=1_000_000)
    gpu: int = Field(1, ge=1, le=1_000_000)

    @model_validator(mode="before")
    @classmethod
    def _one_for_all(cls, data: Any) -> Any:
        """``weight: 3`` means 3 in every dimension."""
        if isinstance(data, int) and not isinstance(data, bool):
            return dict.fromkeys(Limits.FIELDS, data)
        return data

    @model_serializer
    def _compact(self) -> int | dict[str, int]:
        values = self.as_tuple()
        return values[0] if len(set(values)) == 1 else dict(zip(Limits.FIELDS, values, strict=True))

    def as_tuple(self) -> tuple[int, ...]:
        """The five weights in ``FIELDS`` order."""
        return (self.cpu, self.memory, self.disk, self.network, self.gpu)


__all__ = ["BASIS", "DIMENSIONS", "ZERO_AMOUNT", "Amount", "Limits", "Weights", "total_of"]
