"""Resource vectors: exact, immutable, saturating.

``Resources`` is the one value type for every amount of compute the broker moves around: node capacity, lendable
capacity, a container's shape, a team's quota. Its five dimensions are integers (see ``quantity``), arithmetic never
goes below zero and saturates at ``UNLIMITED``, and it is frozen so that a plan built from it cannot change under a
reader.

Input accepts either the exact field names (``cpu_milli: 4000``) or the familiar Kubernetes keys with quantities
(``cpu: "4"``, ``memory: "8Gi"``, ``disk: "100Gi"``, ``network: "10G"``, ``gpu: 1``). Output (``for_storage``) uses
the exact names, so that a round trip is lossless.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from broker.errors import InputError
from broker.model.quantity import UNLIMITED, Dimension, format_quantity, parse_quantity, sat_add, sat_sub

_FRIENDLY = {"cpu": Dimension.CPU, "memory": Dimension.MEMORY, "disk": Dimension.DISK, "network": Dimension.NETWORK,
             "gpu": Dimension.GPU}
_EXACT = {"cpu_milli": "cpu", "memory_mib": "memory", "disk_gib": "disk", "network_mbps": "network", "gpu": "gpu"}


class Resources(BaseModel):
    """An amount of compute in every dimension the broker plans: CPU, memory, local disk, network bandwidth, GPUs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cpu_milli: int = Field(0, ge=0, le=UNLIMITED, description="CPU in millicores (1000 = one core).")
    memory_mib: int = Field(0, ge=0, le=UNLIMITED, description="Memory in MiB.")
    disk_gib: int = Field(0, ge=0, le=UNLIMITED, description="Local disk in GiB.")
    network_mbps: int = Field(0, ge=0, le=UNLIMITED, description="Network bandwidth in Mbit/s.")
    gpu: int = Field(0, ge=0, le=UNLIMITED, description="Whole GPU devices.")

    FIELDS: ClassVar[tuple[str, ...]] = ("cpu_milli", "memory_mib", "disk_gib", "network_mbps", "gpu")

    @model_validator(mode="before")
    @classmethod
    def _read_quantities(cls, data: Any) -> Any:
        """Accept ``{cpu: "4", memory: "8Gi"}`` as well as the exact integer fields; never both for one dimension."""
        if not isinstance(data, Mapping):
            return data
        out: dict[str, Any] = {}
        for key, value in data.items():
            if isinstance(value, bool):
                raise InputError(key, "expected a quantity, got a boolean")
            if key in _FRIENDLY and not (key == "gpu" and isinstance(value, int)):
                exact = _field_of(_FRIENDLY[key])
                if exact != key and exact in data:
                    raise InputError(key, f"give either '{key}' or '{exact}', not both")
                out[exact] = parse_quantity(value, _FRIENDLY[key], key)
            elif key in _EXACT and isinstance(value, str):
                out[key] = parse_quantity(value, _FRIENDLY[_EXACT[key]], key) if not value.isdigit() else int(value)
            else:
                out[key] = value
        return out

    # --- named constructors -------------------------------------------------------------------------------------

    @classmethod
    def of(cls, cpu: object = 0, memory: object = 0, disk: object = 0, network: object = 0,
           gpu: object = 0) -> Resources:
        """Build from quantities: ``Resources.of(cpu="2", memory="4Gi")``."""
        return cls.model_validate({"cpu": cpu, "memory": memory, "disk": disk, "network": network, "gpu": gpu})

    @classmethod
    def exact(cls, cpu_milli: int = 0, memory_mib: int = 0, disk_gib: int = 0, network_mbps: int = 0,
              gpu: int = 0) -> Resources:
        """Build from integers already in the broker's units, without re-validation (hot paths, arithmetic).

        Only for amounts that are already validated ints (results of arithmetic on ``Resources``, or integers the
        caller computed from them): nothing is checked. It sets the instance's state exactly as
        ``model_construct`` with all five fields would (``tests/model/test_resources_exact.py`` holds it to that
        and to equality with validated values), without ``model_construct``'s generic per-field alias and
        default lookups, which made it the most called slow function of the planner and the simulator.
        """
        value = object.__new__(cls)
        # A frozen model refuses its own __setattr__: object's is the one model_construct uses too.
        object.__setattr__(value, "__dict__", {"cpu_milli": cpu_milli, "memory_mib": memory_mib,
                                               "disk_gib": disk_gib, "network_mbps": network_mbps, "gpu": gpu})
        object.__setattr__(value, "__pydantic_fields_set__",
                           {"cpu_milli", "memory_mib", "disk_gib", "network_mbps", "gpu"})
        object.__setattr__(value, "__pydantic_extra__", None)
        object.__setattr__(value, "__pydantic_private__", None)
        return value

    @classmethod
    def from_storage(cls, data: Mapping[str, Any]) -> Resources:
        """Read what ``for_storage`` wrote (or any accepted input form), validating it."""
        return cls.model_validate(data)

    def for_storage(self) -> dict[str, int]:
        """The exact integer form, lossless."""
        return {name: getattr(self, name) for name in self.FIELDS}

    def as_quantities(self) -> dict[str, str]:
        """The friendly form, for people: ``{"cpu": "4", "memory": "8Gi", ...}`` (zero dimensions left out)."""
        return {
            dim.value: format_quantity(amount, dim) for dim, amount in zip(_FRIENDLY.values(), self, strict=True)
            if amount
        }

    # --- arithmetic ---------------------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[int]:  # type: ignore[override]
        """The five amounts in ``FIELDS`` order (pydantic's field iteration is replaced on purpose)."""
        yield self.cpu_milli
        yield self.memory_mib
        yield self.disk_gib
        yield self.network_mbps
        yield self.gpu

    def __add__(self, other: Resources) -> Resources:
        return Resources.exact(*(sat_add(a, b) for a, b in zip(self, other, strict=True)))

    def __sub__(self, other: Resources) -> Resources:
        """Saturating difference: each dimension stops at zero."""
        return Resources.exact(*(sat_sub(a, b) for a, b in zip(self, other, strict=True)))

    def __mul__(self, count: int) -> Resources:
        """``count`` copies of this amount (a container shape times a container count)."""
        if count < 0:
            raise ValueError("cannot multiply resources by a negative count")
        return Resources.exact(*(UNLIMITED if a >= UNLIMITED and count else min(a * count, UNLIMITED) for a in self))

    __rmul__ = __mul__

    def scaled(self, numerator: int, denominator: int) -> Resources:
        """Each dimension times ``numerator / denominator``, rounded down (never lends a fraction it does not have)."""
        if denominator <= 0 or numerator < 0:
            raise ValueError("scale factor must be a non-negative fraction with a positive denominator")
        return Resources.exact(*(a if a >= UNLIMITED else a * numerator // denominator for a in self))

    def min(self, other: Resources) -> Resources:
        """Element-wise minimum."""
        return Resources.exact(*(min(a, b) for a, b in zip(self, other, strict=True)))

    def max(self, other: Resources) -> Resources:
        """Element-wise maximum."""
        return Resources.exact(*(max(a, b) for a, b in zip(self, other, strict=True)))

    def fits_in(self, other: Resources) -> bool:
        """True when every dimension of this amount is <= the same dimension of ``other``."""
        return all(a <= b for a, b in zip(self, other, strict=True))

    def count_in(self, other: Resources) -> int:
        """How many whole copies of this shape fit in ``other`` (bin-packing: 3.5 cores hold one 2-core executor).

        Dimensions where this shape asks for nothing do not limit the count; a shape that asks for nothing at all
        fits ``UNLIMITED`` times.
        """
        counts = [b // a for a, b in zip(self, other, strict=True) if a > 0]
        return min(counts) if counts else UNLIMITED

    def is_zero(self) -> bool:
        """True when every dimension is zero."""
        return not any(self)

    def __str__(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.as_quantities().items()) or "0"


ZERO = Resources()
"""No resources at all."""

UNBOUNDED = Resources.exact(UNLIMITED, UNLIMITED, UNLIMITED, UNLIMITED, UNLIMITED)
"""No cap in any dimension."""


def _field_of(dimension: Dimension) -> str:
    return {Dimension.CPU: "cpu_milli", Dimension.MEMORY: "memory_mib", Dimension.DISK: "disk_gib",
            Dimension.NETWORK: "network_mbps", Dimension.GPU: "gpu"}[dimension]


def total(items: Iterator[Resources] | list[Resources] | tuple[Resources, ...]) -> Resources:
    """Sum of many amounts (saturating)."""
    out = ZERO
    for item in items:
        out = out + item
    return out


__all__ = ["UNBOUNDED", "ZERO", "Resources", "total"]
