"""Leader election through a coordination.k8s.io/v1 Lease (``plugins.kubernetes.lease``), against the stand-in
API server's Lease endpoints, on a clock the tests move by hand."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from kubernetes import client

from broker.errors import TemporaryPeerError
from plugins.kubernetes.lease import LeaseElector, MicroTime

from .conftest import Clock
from .kube_apiserver import StandInApiServer

NS, NAME = "broker-system", "broker-leader"


def candidate(api: client.ApiClient, identity: str, clock: Clock) -> LeaseElector:
    return LeaseElector(
        client.CoordinationV1Api(api), NS, NAME, identity, peer="kube-apiserver test",
        lease_duration_s=15, renew_deadline_s=10, clock=clock,
    )


def spec(server: StandInApiServer) -> dict[str, object]:
    found: dict[str, object] = server.leases.get(NS, NAME)["spec"]
    return found


def test_the_first_candidate_creates_the_lease_and_leads(
    api: client.ApiClient, server: StandInApiServer, clock: Clock
) -> None:
    a = candidate(api, "broker-a", clock)
    assert a.try_acquire_or_renew() and a.leading and a.token == 0
    assert spec(server) == {
        "holderIdentity": "broker-a",
        "leaseDurationSeconds": 15,
        "acquireTime": "2026-11-21T10:00:00.000000Z",  # a whole second still has six digits (MicroTime)
        "renewTime": "2026-11-21T10:00:00.000000Z",
        "leaseTransitions": 0,
    }


def test_of_two_candidates_only_one_leads(api: client.ApiClient, clock: Clock) -> None:
    a, b = candidate(api, "broker-a", clock), candidate(api, "broker-b", clock)
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()
    clock.advance(5)
    assert a.try_acquire_or_renew() and not b.try_acquire_or_renew()
    assert a.leading and not b.leading and b.token is None


def test_renewing_keeps_the_acquire_time_and_the_token(
    api: client.ApiClient, server: StandInApiServer, clock: Clock
) -> None:
    a = candidate(api, "broker-a", clock)
    a.try_acquire_or_renew()
    clock.advance(2.5)
    assert a.try_acquire_or_renew()
    assert spec(server)["acquireTime"] == "2026-11-21T10:00:00.000000Z"
    assert spec(server)["renewTime"] == "2026-11-21T10:00:02.500000Z"
    assert a.token == 0


def test_the_other_candidate_takes_over_only_after_the_lease_expired(
    api: client.ApiClient, server: StandInApiServer, clock: Clock
) -> None:
    a, b = candidate(api, "broker-a", clock), candidate(api, "broker-b", clock)
    a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()  # b sees a's record at 10:00:00
    clock.advance(14.9)
    assert not b.try_acquire_or_renew()  # a stopped renewing, but 15 s have not passed
    clock.advance(0.1)
    assert b.try_acquire_or_renew() and b.token == 1
    assert spec(server)["holderIdentity"] == "broker-b"
    assert spec(server)["acquireTime"] == "2026-11-21T10:00:15.000000Z"


def test_expiry_counts_from_when_the_record_was_seen_not_from_its_renew_time(
    api: client.ApiClient, clock: Clock
) -> None:
    a = candidate(api, "broker-a", clock)
    a.try_acquire_or_renew()
    clock.advance(60)  # a's renewTime is a minute old, but b has never seen the lease (its clock may differ)
    b = candidate(api, "broker-b", clock)
    assert not b.try_acquire_or_renew()
    clock.advance(15)
    assert b.try_acquire_or_renew()


def test_a_stale_leaders_renewal_is_refused_and_it_stops_leading(
    api: client.ApiClient, server: StandInApiServer, clock: Clock
) -> None:
    a, b = candidate(api, "broker-a", clock), candidate(api, "broker-b", clock)
    a.try_acquire_or_renew()
    b.try_acquire_or_renew()
    clock.advance(15)
    assert b.try_acquire_or_renew()
    writes = server.leases.writes
    assert not a.try_acquire_or_renew()  # its cached resourceVersion is stale: 409, re-read, b holds it
    assert server.leases.writes == writes
    assert not a.leading and a.token is None
    assert spec(server)["holderIdentity"] == "broker-b"


def test_a_deposed_leader_is_recognised_by_its_older_token(api: client.ApiClient, clock: Clock) -> None:
    a, b = candidate(api, "broker-a", clock), candidate(api, "broker-b", clock)
    a.try_acquire_or_renew()
    old = a.token
    b.try_acquire_or_renew()
    clock.advance(15)
    b.try_acquire_or_renew()
    current = b.read()
    assert current is not None and current.holder == "broker-b"
    assert old is not None and b.token == current.transitions > old


def test_a_leader_that_cannot_renew_stops_leading_after_the_renew_deadline(
    api: client.ApiClient, clock: Clock
) -> None:
    a = candidate(api, "broker-a", clock)
    a.try_acquire_or_renew()
    clock.advance(9.9)
    assert a.leading
    clock.advance(0.1)
    assert not a.leading and a.token is None  # before anyone may take over at 15 s


class WriteHook(client.CoordinationV1Api):
    """The official API, running ``before_write`` once just before the first replace goes out."""

    def __init__(self, api: client.ApiClient, before_write: Callable[[], object]) -> None:
        super().__init__(api)
        self._before_write: Callable[[], object] | None = before_write

    def replace_namespaced_lease(self, *args: Any, **kwargs: Any) -> client.V1Lease:
        hook, self._before_write = self._before_write, None
        if hook is not None:
            hook()
        return super().replace_namespaced_lease(*args, **kwargs)


def test_when_two_candidates_race_for_an_expired_lease_one_wins(
    api: client.ApiClient, server: StandInApiServer, clock: Clock
) -> None:
    a, c = candidate(api, "broker-a", clock), candidate(api, "broker-c", clock)
    b = LeaseElector(
        WriteHook(api, c.try_acquire_or_renew), NS, NAME, "broker-b", peer="kube-apiserver test", clock=clock
    )
    a.try_acquire_or_renew()
    b.try_acquire_or_renew()
    c.try_acquire_or_renew()
    clock.advance(15)
    assert not b.try_acquire_or_renew()  # b read the expired lease, c wrote first, b's write got 409
    assert c.leading and not b.leading
    assert spec(server)["holderIdentity"] == "broker-c" and spec(server)["leaseTransitions"] == 1


def test_a_released_lease_is_taken_at_once(api: client.ApiClient, server: StandInApiServer, clock: Clock) -> None:
    a, b = candidate(api, "broker-a", clock), candidate(api, "broker-b", clock)
    a.try_acquire_or_renew()
    b.try_acquire_or_renew()
    assert a.release() and not a.leading
    assert spec(server)["holderIdentity"] == "" and spec(server)["leaseTransitions"] == 0
    assert b.try_acquire_or_renew() and b.token == 1


def test_a_candidate_that_does_not_hold_the_lease_has_nothing_to_release(
    api: client.ApiClient, clock: Clock
) -> None:
    a, b = candidate(api, "broker-a", clock), candidate(api, "broker-b", clock)
    a.try_acquire_or_renew()
    b.try_acquire_or_renew()
    assert not b.release()


def test_create_conflict_means_another_candidate_created_it_first(
    api: client.ApiClient, server: StandInApiServer, clock: Clock
) -> None:
    a, b = candidate(api, "broker-a", clock), candidate(api, "broker-b", clock)
    assert b.read() is None
    a.try_acquire_or_renew()
    assert not b._create(clock())
    assert spec(server)["holderIdentity"] == "broker-a"


def test_an_unreachable_server_is_a_temporary_peer_error(clock: Clock) -> None:
    configuration = client.Configuration()
    configuration.host = "http://127.0.0.1:9"
    with client.ApiClient(configuration) as api, pytest.raises(TemporaryPeerError):
        candidate(api, "broker-a", clock).try_acquire_or_renew()


def test_run_leads_until_stopped_then_releases(api: client.ApiClient, server: StandInApiServer) -> None:
    elector = LeaseElector(
        client.CoordinationV1Api(api), NS, NAME, "broker-a", peer="kube-apiserver test",
        lease_duration_s=15, renew_deadline_s=10,
    )
    stop = threading.Event()
    thread = threading.Thread(target=elector.run, args=(stop, 0.02), daemon=True)
    thread.start()
    try:
        deadline = datetime.now(UTC).timestamp() + 5
        while server.leases.writes < 3 and datetime.now(UTC).timestamp() < deadline:
            stop.wait(0.02)
        assert server.leases.writes >= 3 and elector.leading
    finally:
        stop.set()
        thread.join(timeout=5)
    assert spec(server)["holderIdentity"] == "" and elector.last_error is None


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2026, 11, 21, 10, 0, tzinfo=UTC), "2026-11-21T10:00:00.000000+00:00"),
        (datetime(2026, 11, 21, 10, 0, 0, 1500, tzinfo=UTC), "2026-11-21T10:00:00.001500+00:00"),
    ],
)
def test_micro_time_always_has_six_fractional_digits(moment: datetime, text: str) -> None:
    assert MicroTime.of(moment).isoformat() == text


# --- the stand-in enforces what the real API server enforces ----------------------------------------------

LEASES = f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases"


def lease_body(renew_time: str, **spec_fields: object) -> dict[str, object]:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": NAME},
        "spec": {"holderIdentity": "x", "renewTime": renew_time, **spec_fields},
    }


@pytest.mark.parametrize("renew_time", ["2026-11-21T10:00:00+00:00", "2026-11-21T10:00:00.123Z",
                                        "2026-11-21T10:00:00.123456789Z", "2026-11-21T10:00:00.000000"])
def test_the_stand_in_refuses_a_renew_time_without_exactly_six_digits_and_a_zone(url: str, renew_time: str) -> None:
    response = httpx.post(url + LEASES, json=lease_body(renew_time))
    assert response.status_code == 400 and "parsing time" in response.json()["message"]


def test_the_stand_in_refuses_a_zero_lease_duration(url: str) -> None:
    response = httpx.post(url + LEASES, json=lease_body("2026-11-21T10:00:00.000000Z", leaseDurationSeconds=0))
    assert response.status_code == 422 and "leaseDurationSeconds" in response.json()["message"]


def test_the_stand_in_answers_a_stale_update_with_409_conflict(url: str) -> None:
    created = httpx.post(url + LEASES, json=lease_body("2026-11-21T10:00:00.000000Z")).json()
    stale = dict(created, metadata={**created["metadata"]})
    assert httpx.put(f"{url}{LEASES}/{NAME}", json=created).status_code == 200
    response = httpx.put(f"{url}{LEASES}/{NAME}", json=stale)
    assert response.status_code == 409 and response.json()["reason"] == "Conflict"


def test_the_stand_in_refuses_a_second_create_and_an_update_of_another_name(url: str) -> None:
    body = lease_body("2026-11-21T10:00:00.000000Z")
    assert httpx.post(url + LEASES, json=body).status_code == 201
    assert httpx.post(url + LEASES, json=body).json()["reason"] == "AlreadyExists"
    assert httpx.put(f"{url}{LEASES}/other", json=body).status_code == 400
