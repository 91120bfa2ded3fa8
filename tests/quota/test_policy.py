"""The policy model and its validation: a file is accepted whole or rejected naming the group and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.errors import InputError
from broker.model import UNLIMITED, TeamBinding
from broker.quota import QuotaPolicy

from .builders import group, policy


def rejected(*groups: object) -> InputError:
    with pytest.raises(InputError) as caught:
        QuotaPolicy.from_document({"groups": [g.obj() if hasattr(g, "obj") else g for g in groups]})
    return caught.value


@pytest.mark.parametrize(
    ("groups", "field", "reason"),
    [
        pytest.param([group("a").min(cpu="50").max(cpu="40")], "groups[a].min.cpu", "above max",
                     id="min-above-max"),
        pytest.param([group("a").min(cpu="-1")], "groups[a].min.cpu", "negative", id="negative"),
        pytest.param([group("a").min(memory="lots")], "groups[a].min.memory", "not a memory quantity",
                     id="unparsable"),
        pytest.param([group("a").min(cpu="120%")], "groups[a].min.cpu", "more than 100%",
                     id="share-above-100"),
        pytest.param([group("a").under("nobody")], "groups[a].parent", "unknown parent", id="unknown-parent"),
        pytest.param([group("a").under("b"), group("b").under("a")], "groups[a].parent", "cycle", id="cycle"),
        pytest.param([group("a").under("a")], "groups[a].parent", "cycle", id="self-parent"),
        pytest.param([group("a"), group("a")], "groups[a].name", "duplicate", id="duplicate-name"),
        pytest.param([group("a").namespaces("k1", "ns"), group("b").namespaces("k1", "ns")],
                     "groups[b].namespaces.k1", "already claimed by group 'a'", id="namespace-claimed-twice"),
        pytest.param([group("a").queues("y1", "root.x"), group("b").queues("y1", "root.x")],
                     "groups[b].yarnQueues.y1", "already claimed", id="queue-claimed-twice"),
        pytest.param([group("p").min(cpu="10"), group("c1").under("p").min(cpu="6"),
                      group("c2").under("p").min(cpu="5")], "groups[p].min.cpu", "mins add up to 11",
                     id="children-mins-above-parent"),
        pytest.param([group("a").min(cpu="10").lend(cpu="11")], "groups[a].lendingLimit.cpu", "out of range",
                     id="lending-above-min"),
        pytest.param([group("a").max(cpu="10").borrow(cpu="20")], "groups[a].borrowingLimit.cpu",
                     "out of range",
                     id="borrowing-above-max"),
        pytest.param([group("a").min(cpu="unlimited")], "groups[a].min.cpu", "cannot be unlimited",
                     id="unlimited-min"),
        pytest.param([group("a").min(cpu="60%"), group("b").min(cpu="50%")], "groups[a].min.cpu",
                     "110% of the pool", id="top-level-shares-above-pool"),
        pytest.param([group("p").namespaces("k1", "ns"), group("c").under("p")], "groups[p].namespaces",
                     "only leaf groups", id="bindings-on-inner-group"),
        pytest.param([group("a").namespaces("k1", "Not_A_Namespace")], "groups[a].namespaces.k1",
                     "not a valid namespace", id="bad-namespace"),
        pytest.param([group("a").min(gpus=1)], "groups[a].min.gpus", "unknown dimension",
                     id="unknown-dimension"),
        pytest.param([group("a").weight(0)], "groups[a].weight.cpu", "greater than or equal to 1",
                     id="zero-weight"),
        pytest.param([group("Team_A")], "groups[Team_A].name", "pattern", id="bad-name"),
    ],
)
def test_an_invalid_policy_is_rejected_naming_group_and_field(groups: list[object], field: str,
                                                               reason: str) -> None:
    error = rejected(*groups)
    assert error.field == field
    assert reason in error.message


def test_min_and_max_of_different_kinds_must_hold_for_every_pool_size() -> None:
    error = rejected(group("a").min(cpu="10%").max(cpu="100"))
    assert error.field == "groups[a].min.cpu"
    assert "for some pool sizes" in error.message


def test_every_problem_is_reported_at_once() -> None:
    error = rejected(group("a").min(cpu="5").max(cpu="1"), group("b").under("nobody"))
    assert error.field == "groups"
    assert "groups[a].min.cpu" in error.message and "groups[b].parent" in error.message


def test_a_policy_round_trips_through_storage_unchanged() -> None:
    original = policy(group("org").min(cpu="40%", memory="1Ti").max(cpu="unlimited"),
                      group("t").under("org").min(cpu="12.5%").lend(cpu="10%").weight({"cpu": 3})
                      .queues("y1", "root.org.t").namespaces("k1", "t"))
    again = QuotaPolicy.from_document(original.for_storage())
    assert again == original
    assert again.for_storage()["groups"][1]["min"] == {"cpu": "12.5%"}


def test_the_custom_resource_form_loads_the_same_policy() -> None:
    plain = {"groups": [group("a").min(cpu="4").obj()]}
    custom = {"apiVersion": "quota.broker.io/v1alpha1", "kind": "ElasticQuotaPolicy",
              "metadata": {"name": "default"}, "spec": plain}
    assert QuotaPolicy.from_document(custom) == QuotaPolicy.from_document(plain)


def test_a_custom_resource_of_another_kind_is_rejected() -> None:
    with pytest.raises(InputError) as caught:
        QuotaPolicy.from_document({"apiVersion": "v1", "kind": "ConfigMap", "spec": {"groups": []}})
    assert caught.value.field == "kind"


def test_errors_in_a_custom_resource_name_the_spec_path() -> None:
    with pytest.raises(InputError) as caught:
        QuotaPolicy.from_document({"apiVersion": "quota.broker.io/v1alpha1", "kind": "ElasticQuotaPolicy",
                                   "spec": {"groups": [{"name": "a", "min": {"cpu": "x"}}]}})
    assert caught.value.field == "spec.groups[a].min.cpu"


def test_a_share_of_the_pool_resolves_against_the_pool_rounding_down() -> None:
    amount = policy(group("a").min(cpu="12.5%")).groups[0].min.cpu
    assert amount is not None
    assert amount.resolve(10_001) == 1250
    assert policy(group("a")).tree.maxes[0][0] == (UNLIMITED, 0)


def test_leaf_bindings_convert_to_the_shared_team_binding() -> None:
    p = policy(group("org"), group("t").under("org").queues("y1", "root.t").namespaces("k1", "t-ns"))
    assert p.bindings() == {"t": TeamBinding(yarn_queues={"y1": ("root.t",)}, namespaces={"k1": ("t-ns",)})}


def test_loading_a_file_names_the_file_in_errors(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("groups:\n  - name: a\n    min: {cpu: '-2'}\n")
    with pytest.raises(InputError) as caught:
        QuotaPolicy.load(path)
    assert caught.value.field == f"{path}: groups[a].min.cpu"


@pytest.mark.parametrize("name", ["policy.yaml", "policy-cr.yaml"])
def test_the_examples_are_valid(name: str) -> None:
    assert QuotaPolicy.load(Path(__file__).parents[2] / "examples" / "quota" / name).groups
