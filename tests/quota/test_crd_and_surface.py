"""The published CRD carries the policy schema, and the packages' public surfaces stay what they are."""

from __future__ import annotations

from pathlib import Path

import yaml

import broker.quota
import broker.store
from broker.quota import API_VERSION, KIND, policy_schema

ROOT = Path(__file__).parents[2]


def test_the_crd_schema_is_the_policy_schema() -> None:
    crd = yaml.safe_load((ROOT / "deploy" / "crds" / "elasticquota.yaml").read_text())
    version = crd["spec"]["versions"][0]
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert f"{crd['spec']['group']}/{version['name']}" == API_VERSION
    assert crd["spec"]["names"]["kind"] == KIND
    assert version["schema"]["openAPIV3Schema"]["properties"]["spec"] == policy_schema()


def test_the_quota_package_exports_exactly_its_public_surface() -> None:
    assert sorted(broker.quota.__all__) == sorted(
        ["API_VERSION", "KIND", "PPM", "Amount", "ChangeKind", "Deferred", "Eviction", "EvictionReason",
         "FieldChange", "GroupQuota", "Limits", "QuotaGroup", "QuotaPolicy", "ReclaimPlan", "ReclaimRequest",
         "RunningContainer", "RuntimeChange", "RuntimeQuota", "Weights", "compute_runtime_quota",
         "diff_policies", "dry_run", "group_schema", "plan_reclaim", "policy_schema", "read_demand",
         "scale_down", "track_over_quota", "water_fill", "Refusal", "RefusalReason", "Victim", "VictimCheck",
         "check_victims"])
    assert all(hasattr(broker.quota, name) for name in broker.quota.__all__)


def test_the_store_package_exports_exactly_its_public_surface() -> None:
    assert sorted(broker.store.__all__) == sorted(
        ["Action", "AuditEntry", "Durability", "Fence", "FileStore", "MemoryStore", "Observation", "Outcome",
         "PolicyLog", "PolicyRecord", "PolicyStore", "Preview", "RedisSettings", "RedisStore", "StoredPlan",
         "default_path", "is_redis_url", "open_store"])
    assert all(hasattr(broker.store, name) for name in broker.store.__all__)
