"""The store as the loop sees it: the current quota policy, the published plans, the last observation.

With a Redis URL, ``RedisStore`` is all of it (policies with history, plans with fencing, observations), shared by
every replica. Without one, the embedded default keeps the policy in the in-process ``MemoryStore`` and the plans
in ``LocalPlans``: one replica, nothing survives a restart, which is what trying the broker on a laptop needs.
"""

from __future__ import annotations

from typing import Protocol

from broker.errors import ConflictError
from broker.quota import QuotaPolicy
from broker.store.base import PolicyStore
from broker.store.records import Fence, Observation, StoredPlan


class LocalPlans:
    """Plans kept in this process, with the store's rule that versions only grow (fences are meaningless with
    one replica and are ignored)."""

    def __init__(self) -> None:
        self._stored: StoredPlan | None = None

    def put_plan(self, plan_json: str, version: int, fence: Fence | None = None) -> None:
        current = self._stored.version if self._stored is not None else 0
        if version <= current:
            raise ConflictError(version, current)
        self._stored = StoredPlan(version=version, plan_json=plan_json)

    def get_plan(self) -> StoredPlan | None:
        return self._stored

    def plan_version(self) -> int:
        return self._stored.version if self._stored is not None else 0


class PlanKeeper(PolicyStore, Protocol):
    """A policy store that also keeps plans (``RedisStore``; ``LocalPlans`` beside a ``MemoryStore``)."""

    def put_plan(self, plan_json: str, version: int, fence: Fence | None = None) -> None: ...

    def get_plan(self) -> StoredPlan | None: ...

    def plan_version(self) -> int: ...


class ServiceStore:
    """The loop's view of a policy store and a plan keeper (see the module docstring). The policy is re-read
    only when the store's head version moves."""

    def __init__(self, policies: PolicyStore, plans: LocalPlans | PlanKeeper) -> None:
        self.policies = policies
        self.plans = plans
        self._policy: tuple[int, QuotaPolicy | None] = (0, None)

    def policy(self) -> QuotaPolicy | None:
        head = self.policies.head()
        if head != self._policy[0]:
            record = self.policies.get(head)
            self._policy = (head, record.policy if record is not None else None)
        return self._policy[1]

    def put_plan(self, plan_json: str, version: int, fence: Fence | None = None) -> None:
        self.plans.put_plan(plan_json, version, fence)

    def get_plan(self) -> StoredPlan | None:
        return self.plans.get_plan()

    def plan_version(self) -> int:
        """The stored plan's version (0: none), cheap to poll."""
        return self.plans.plan_version()

    def save_observation(self, observation: Observation) -> None:
        self.policies.save_observation(observation)


__all__ = ["LocalPlans", "PlanKeeper", "ServiceStore"]
