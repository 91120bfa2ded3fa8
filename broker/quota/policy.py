"""A quota policy: the whole tree of groups, valid as a whole, in YAML or as a Kubernetes custom resource.

Two spellings load to the same ``QuotaPolicy``::

    groups:                                  apiVersion: quota.broker.io/v1alpha1
      - name: org-a                          kind: ElasticQuotaPolicy
        min: {cpu: "40%", memory: 1Ti}       metadata: {name: default}
      - name: team-a1                        spec:
        parent: org-a                          groups: [ ...same list... ]
        ...

Construction runs every rule of ``validate`` and raises one ``InputError`` listing all problems, so a
``QuotaPolicy`` that exists is valid; nothing downstream re-checks it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from broker.errors import InputError
from broker.model import TeamBinding, parse, read_document
from broker.quota.group import QuotaGroup
from broker.quota.tree import QuotaTree
from broker.quota.validate import MAX_GROUPS, problems

_POSITION = re.compile(r"groups\[(\d+)\]")
_SHOWN = 20
"""Problems spelled out in one error; a generated file with thousands of the same mistake needs no more."""
API_VERSION = "quota.broker.io/v1alpha1"
KIND = "ElasticQuotaPolicy"


class QuotaPolicy(BaseModel):
    """Every quota group, in the order the admin wrote them (the order breaks ties, so results are stable)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    groups: tuple[QuotaGroup, ...] = Field(default=(), max_length=MAX_GROUPS)

    @model_validator(mode="after")
    def _valid_as_a_whole(self) -> Self:
        found = problems(self.groups)
        if len(found) == 1:
            raise found[0]
        if found:
            shown = "; ".join(str(p) for p in found[:_SHOWN])
            more = f"; and {len(found) - _SHOWN} more" if len(found) > _SHOWN else ""
            raise InputError("groups", f"{len(found)} problems: {shown}{more}")
        return self

    # --- reading and writing -------------------------------------------------------------------------------

    @classmethod
    def from_document(cls, data: Any, where: str = "") -> QuotaPolicy:
        """Read the plain form (``{groups: [...]}``) or the custom-resource form (``{apiVersion, kind,
        spec}``)."""
        if isinstance(data, dict) and ("spec" in data or "kind" in data or "apiVersion" in data):
            if data.get("kind") != KIND:
                raise InputError(_join(where, "kind"), f"expected kind {KIND!r}, got {data.get('kind')!r}")
            if data.get("apiVersion") != API_VERSION:
                raise InputError(_join(where, "apiVersion"),
                                 f"expected apiVersion {API_VERSION!r}, got {data.get('apiVersion')!r}")
            unknown = set(data) - {"apiVersion", "kind", "metadata", "spec", "status"}
            if unknown:
                raise InputError(_join(where, sorted(unknown)[0]), "unknown field of the custom resource")
            return _named(lambda: parse(cls, data.get("spec") or {}, _join(where, "spec")), data.get("spec"))
        return _named(lambda: parse(cls, data, where), data)

    @classmethod
    def load(cls, path: Path) -> QuotaPolicy:
        """Read a policy file (YAML or JSON, either form); errors name the file, the group and the field."""
        try:
            return cls.from_document(read_document(path))
        except InputError as exc:
            raise InputError(f"{path}: {exc.field}" if exc.field else str(path), exc.message) from None

    def for_storage(self) -> dict[str, Any]:
        """The plain form with camelCase keys and only what was set: what an admin would write, lossless."""
        return self.model_dump(mode="json", by_alias=True, exclude_defaults=True) or {"groups": []}

    def as_custom_resource(self, name: str = "default") -> dict[str, Any]:
        """The Kubernetes custom-resource form, for ``kubectl apply``."""
        return {"apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": name},
                "spec": self.for_storage()}

    # --- the tree ------------------------------------------------------------------------------------------

    @cached_property
    def tree(self) -> QuotaTree:
        """The compiled tree the runtime computation walks (built once per policy)."""
        return QuotaTree.of(self.groups)

    def group(self, name: str) -> QuotaGroup:
        """The group named ``name``; ``InputError`` when there is none."""
        index = self.tree.index.get(name)
        if index is None:
            raise InputError("group", f"no group named {name!r}")
        return self.groups[index]

    def bindings(self) -> dict[str, TeamBinding]:
        """Each leaf's YARN queues and namespaces in the shared plan model, keyed by leaf name."""
        return {self.groups[i].name: self.groups[i].binding() for i in self.tree.leaves}


def _named(read: Callable[[], QuotaPolicy], data: Any) -> QuotaPolicy:
    """Run ``read``; its error names the group (``groups[team-a]``), not its position (``groups[3]``)."""
    try:
        return read()
    except InputError as exc:
        match = _POSITION.search(exc.field)
        groups = data.get("groups") if isinstance(data, dict) else None
        if match is None or not isinstance(groups, list) or int(match[1]) >= len(groups):
            raise
        item = groups[int(match[1])]
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or not name:
            raise
        field = exc.field[:match.start()] + f"groups[{name}]" + exc.field[match.end():]
        raise InputError(field, exc.message) from None


def _join(prefix: str, field: str) -> str:
    return f"{prefix}.{field}" if prefix else field


__all__ = ["API_VERSION", "KIND", "QuotaPolicy"]
