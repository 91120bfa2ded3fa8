"""Elastic quota: the policy tree, its validation, runtime quota per interval, reclaim victims and policy
diffs.

Pure decisions over immutable values: no I/O beyond reading a policy document handed in. The store
(``broker.store``) keeps policy versions; the service and CLI wire both together.

- ``QuotaPolicy`` / ``QuotaGroup``: the tree admins write (YAML or the ``ElasticQuotaPolicy`` custom
  resource);
- ``compute_runtime_quota``: each group's runtime quota, guaranteed, borrowed and lent amounts for one
  interval;
- ``plan_reclaim``: which borrowers' containers to evict so that owners get their quota back;
- ``diff_policies`` / ``dry_run``: what a change changes, in fields and in runtime quota.
"""

from broker.quota.amount import Amount, Limits, Weights
from broker.quota.demand import read_demand
from broker.quota.diff import ChangeKind, FieldChange, RuntimeChange, diff_policies, dry_run
from broker.quota.fill import scale_down, water_fill
from broker.quota.group import QuotaGroup
from broker.quota.policy import API_VERSION, KIND, QuotaPolicy
from broker.quota.reclaim import (
    Deferred,
    Eviction,
    EvictionReason,
    ReclaimPlan,
    ReclaimRequest,
    RunningContainer,
    plan_reclaim,
    track_over_quota,
)
from broker.quota.runtime import PPM, GroupQuota, RuntimeQuota, compute_runtime_quota
from broker.quota.schema import group_schema, policy_schema
from broker.quota.victims import Refusal, RefusalReason, Victim, VictimCheck, check_victims

__all__ = [
    "API_VERSION",
    "KIND",
    "PPM",
    "Amount",
    "ChangeKind",
    "Deferred",
    "Eviction",
    "EvictionReason",
    "FieldChange",
    "GroupQuota",
    "Limits",
    "QuotaGroup",
    "QuotaPolicy",
    "ReclaimPlan",
    "ReclaimRequest",
    "Refusal",
    "RefusalReason",
    "RunningContainer",
    "RuntimeChange",
    "RuntimeQuota",
    "Victim",
    "VictimCheck",
    "Weights",
    "check_victims",
    "compute_runtime_quota",
    "diff_policies",
    "dry_run",
    "group_schema",
    "plan_reclaim",
    "policy_schema",
    "read_demand",
    "scale_down",
    "track_over_quota",
    "water_fill",
]
