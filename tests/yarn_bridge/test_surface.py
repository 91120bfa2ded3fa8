"""The public surface: every name ``__all__`` promises exists, and the package's surface changes only on
purpose."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import broker.yarn_bridge as yarn_bridge

MODULES = sorted(m.name for m in pkgutil.iter_modules(yarn_bridge.__path__, "broker.yarn_bridge."))

PUBLIC = {
    "NODE_ID_ANNOTATION",
    "Auth",
    "Change",
    "ClusterBridge",
    "HeaderAuth",
    "LabelReport",
    "NodeIdMap",
    "NodeOutcome",
    "NodeResourceMethod",
    "NodeStatus",
    "NodeTarget",
    "QueueReport",
    "RMClient",
    "SimpleAuth",
    "SpnegoAuth",
    "SyncReport",
    "WriteRequest",
    "YarnCluster",
    "YarnConfig",
    "YarnDemand",
    "YarnResource",
    "annotated_node_ids",
    "classify",
    "load_config",
    "partition_of",
    "push_nodes",
    "push_shrinks",
    "read_demand",
    "reconcile_forever",
}


def test_every_name_in_the_packages_all_exists() -> None:
    assert [name for name in yarn_bridge.__all__ if not hasattr(yarn_bridge, name)] == []


def test_the_packages_surface_is_the_documented_one() -> None:
    assert sorted(yarn_bridge.__all__) == sorted(PUBLIC)


@pytest.mark.parametrize("module", MODULES)
def test_every_name_in_a_modules_all_exists(module: str) -> None:
    loaded = importlib.import_module(module)
    assert [name for name in getattr(loaded, "__all__", ()) if not hasattr(loaded, name)] == []
