"""Opening a Redis store: the URL, the schema version guard and the durability check."""

from __future__ import annotations

import logging

import pytest

from broker.errors import InputError, PermanentPeerError, TemporaryPeerError
from broker.store import Durability, RedisStore
from broker.store.redis_store import SCHEMA_VERSION
from tests.quota.builders import group, policy
from tests.redis_server import RedisServer

from .conftest import log_of


def test_a_new_store_is_stamped_with_the_schema_version(store: RedisStore, redis_server: RedisServer) -> None:
    with redis_server.client() as raw:
        assert raw.get("{broker}:schema") == str(SCHEMA_VERSION)


def test_a_newer_schema_is_refused_with_advice_to_upgrade(redis_server: RedisServer) -> None:
    with redis_server.client() as raw:
        raw.set("{broker}:schema", SCHEMA_VERSION + 1)
    newer = f"schema {SCHEMA_VERSION + 1}, newer than.*upgrade the broker"
    with pytest.raises(PermanentPeerError, match=newer):
        RedisStore.from_url(redis_server.url)


def test_a_schema_key_that_is_not_a_version_is_refused(redis_server: RedisServer) -> None:
    with redis_server.client() as raw:
        raw.set("{broker}:schema", "banana")
    with pytest.raises(PermanentPeerError, match="'banana'; this broker reads schema 1 only"):
        RedisStore.from_url(redis_server.url)


def test_a_server_that_acknowledges_before_fsync_is_refused_when_durability_is_required(
        redis_server: RedisServer) -> None:
    with redis_server.client() as raw:
        raw.config_set("appendfsync", "everysec")
    with pytest.raises(PermanentPeerError, match="appendfsync is 'everysec', not 'always'"):
        RedisStore.from_url(redis_server.url + "?durability=require")


def test_a_server_without_the_append_only_file_only_draws_a_warning_by_default(
        redis_server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    with redis_server.client() as raw:
        raw.config_set("appendonly", "no")
    with caplog.at_level(logging.WARNING, logger="broker.store.redis_store"):
        opened = RedisStore.from_url(redis_server.url)
    opened.close()
    assert opened.settings.durability is Durability.WARN
    assert "appendonly is 'no', not 'yes'" in caplog.text


def test_a_durable_server_draws_no_warning(redis_server: RedisServer,
                                           caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="broker.store.redis_store"):
        RedisStore.from_url(redis_server.url + "?durability=require").close()
    assert caplog.text == ""


def test_url_parameters_set_the_store_and_the_rest_reach_the_client(redis_server: RedisServer) -> None:
    opened = RedisStore.from_url(redis_server.url + "?audit_max=3&prefix=team-x&client_name=broker-test")
    try:
        assert (opened.settings.audit_max, opened.settings.prefix) == (3, "team-x")
        with redis_server.client() as raw:
            assert "name=broker-test" in raw.execute_command("CLIENT", "LIST")
    finally:
        opened.close()


@pytest.mark.parametrize(("query", "field"), [
    ("audit_max=0", "url.audit_max"),
    ("durability=maybe", "url.durability"),
    ("prefix=a{b}", "url.prefix"),
    ("replicas=-1", "url.replicas"),
], ids=["audit-max-zero", "unknown-durability", "prefix-with-braces", "negative-replicas"])
def test_a_bad_url_parameter_names_its_field(redis_server: RedisServer, query: str, field: str) -> None:
    with pytest.raises(InputError) as caught:
        RedisStore.from_url(f"{redis_server.url}?{query}")
    assert caught.value.field == field


def test_a_url_that_is_not_redis_is_an_input_error() -> None:
    with pytest.raises(InputError, match="http:// is not one of redis, rediss, unix"):
        RedisStore.from_url("http://127.0.0.1:6379/0")


def test_a_server_that_is_not_there_is_a_temporary_peer_error(redis_server: RedisServer) -> None:
    redis_server.kill()
    with pytest.raises(TemporaryPeerError) as caught:
        RedisStore.from_url(redis_server.url)
    assert caught.value.peer == "redis" and str(redis_server.port) in caught.value.message


def test_a_write_no_replica_confirms_is_reported_not_silently_acknowledged(redis_server: RedisServer) -> None:
    opened = RedisStore.from_url(redis_server.url + "?replicas=1&replica_timeout_ms=50")
    try:
        with pytest.raises(TemporaryPeerError, match="only 0 of 1 replicas confirmed it"):
            log_of(opened).apply(policy(group("a")), "alice")
        assert opened.head() == 1, "the primary has it: the caller must re-read before retrying"
    finally:
        opened.close()
