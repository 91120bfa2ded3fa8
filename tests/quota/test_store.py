"""The policy store: versions with author, time and diff; compare-and-set; rollback; a durable file."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from broker.errors import ConflictError, InputError, PermanentPeerError
from broker.model import Resources
from broker.store import (
    Action,
    FileStore,
    MemoryStore,
    Observation,
    PolicyLog,
    PolicyStore,
    RedisStore,
    default_path,
)
from tests.redis_server import running_redis

from .builders import cpu, group, policy

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["memory", "file", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PolicyStore]:
    if request.param == "memory":
        yield MemoryStore()
    elif request.param == "file":
        yield FileStore(tmp_path / "state" / "store.json")
    else:
        with running_redis(tmp_path / "redis") as server:
            redis_store = RedisStore.from_url(server.url)
            yield redis_store
            redis_store.close()


def log_of(store: PolicyStore) -> PolicyLog:
    return PolicyLog(store, clock=lambda: NOW)


def test_each_apply_records_version_author_time_and_diff(store: PolicyStore) -> None:
    log = log_of(store)
    log.apply(policy(group("a").min(cpu="4")), "alice")
    outcome = log.apply(policy(group("a").min(cpu="6")), "bob", comment="more for a")
    record = outcome.record
    assert (record.version, record.author, record.created_at, record.comment) == (2, "bob", NOW, "more for a")
    assert record.diff == ("~ a.min.cpu: 4 -> 6",)


def test_a_stale_expected_version_is_a_conflict_and_writes_nothing(store: PolicyStore) -> None:
    log = log_of(store)
    log.apply(policy(group("a")), "alice")
    with pytest.raises(ConflictError):
        log.apply(policy(group("b")), "bob", expected_version=0)
    assert store.head() == 1


def test_applying_the_current_policy_again_writes_no_version(store: PolicyStore) -> None:
    log = log_of(store)
    log.apply(policy(group("a")), "alice")
    assert not log.apply(policy(group("a")), "alice").written
    assert store.head() == 1


def test_rollback_is_a_new_version_restoring_the_old_policy(store: PolicyStore) -> None:
    log = log_of(store)
    first = log.apply(policy(group("a").min(cpu="4")), "alice").record
    log.apply(policy(group("a").min(cpu="8")), "alice")
    restored = log.rollback(1, "carol").record
    assert (restored.version, restored.action, restored.rollback_of) == (3, Action.ROLLBACK, 1)
    assert restored.policy == first.policy
    assert [r.version for r in store.history(10)] == [3, 2, 1]


def test_rolling_back_to_a_missing_version_names_the_version(store: PolicyStore) -> None:
    with pytest.raises(InputError) as caught:
        log_of(store).rollback(7, "carol")
    assert caught.value.field == "version"


def test_the_store_appends_only_on_top_of_its_head(store: PolicyStore) -> None:
    log = log_of(store)
    record = log.apply(policy(group("a")), "alice").record
    with pytest.raises(ConflictError):
        store.append(record)


def test_dry_run_uses_the_last_observation_when_no_pool_is_given(store: PolicyStore) -> None:
    log = log_of(store)
    log.apply(policy(group("a").min(cpu="10"), group("b")), "alice")
    store.save_observation(Observation(observed_at=NOW, pool=cpu(20), demand={"a": cpu(20), "b": cpu(20)}))
    preview = log.preview(policy(group("a").min(cpu="15"), group("b")))
    after = {c.group: c.after.runtime for c in preview.runtime if c.after}
    assert after == {"a": Resources.exact(cpu_milli=17_500), "b": Resources.exact(cpu_milli=2_500)}
    assert [c.line() for c in preview.changes] == ["~ a.min.cpu: 10 -> 15"]


def test_the_file_store_survives_a_new_process(tmp_path: Path) -> None:
    path = tmp_path / "store.json"
    log_of(FileStore(path)).apply(policy(group("a").min(memory="8Gi")), "alice")
    again = FileStore(path).get(1)
    assert again is not None and again.policy.groups[0].min.memory is not None
    assert not list(tmp_path.glob(".store.json.*.tmp")), "no temporary file left behind"


def test_a_corrupt_store_file_is_refused_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "store.json"
    path.write_text("{not json")
    with pytest.raises(PermanentPeerError):
        log_of(FileStore(path)).apply(policy(group("a")), "alice")
    assert path.read_text() == "{not json"


def test_the_default_path_honours_the_environment(tmp_path: Path) -> None:
    assert default_path({"BROKER_STORE": str(tmp_path / "s.json")}) == tmp_path / "s.json"
    assert default_path({"XDG_STATE_HOME": str(tmp_path)}) == tmp_path / "broker" / "store.json"
    assert default_path({}).parts[-3:] == ("state", "broker", "store.json")


def test_an_observation_round_trips(store: PolicyStore) -> None:
    seen = Observation(observed_at=NOW, pool=Resources.of(cpu="4"), demand={"a": cpu(1)})
    store.save_observation(seen)
    assert store.observation() == seen
