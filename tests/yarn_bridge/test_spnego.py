"""SPNEGO (HTTP Negotiate, RFC 4559) against a stand-in RM that validates every token with a real
``spnego.server`` acceptor. No KDC here: both sides speak NTLM inside Negotiate (credentials from
``NTLM_USER_FILE``), which runs the same client code path as Kerberos."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import orjson
import pytest
from typer.testing import CliRunner

from broker.cli.main import app
from broker.errors import InputError, PermanentPeerError, TemporaryPeerError
from broker.model import parse
from broker.yarn_bridge import RMClient, SpnegoAuth, YarnCluster

from .conftest import cluster, node, plan, run, sync
from .standin_rm import Negotiate, RMServer, StandinRM

PRINCIPAL = "EXAMPLE\\alice"
SPNEGO = {"kind": "spnego", "principal": PRINCIPAL}


@pytest.fixture(autouse=True)
def credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """alice's NTLM credentials, read by the client (initiator) and the stand-in's acceptor alike."""
    store = tmp_path / "ntlm-users"
    store.write_text("EXAMPLE:alice:Secret-123\n", encoding="utf-8")
    monkeypatch.setenv("NTLM_USER_FILE", str(store))
    return store


@pytest.fixture
def rm() -> StandinRM:
    return StandinRM.with_nodes(4, admins={"alice"}, negotiate=Negotiate())


@pytest.fixture
def negotiate(rm: StandinRM) -> Negotiate:
    assert rm.negotiate is not None
    return rm.negotiate


def get_twice(*urls: str, path: str = "/nodes", **overrides: object) -> list[object]:
    async def go() -> list[object]:
        async with RMClient(cluster(*urls, **{"auth": SPNEGO, **overrides})) as client:
            return [await client.get(path), await client.get(path)]

    return run(go())


def test_the_first_request_negotiates_and_later_ones_ride_the_session_cookie(
    server: RMServer, rm: StandinRM, negotiate: Negotiate
) -> None:
    first, second = get_twice(server.url)
    assert first == second and negotiate.negotiations == 1
    # /info: bare 401, 401 with the NTLM challenge, then 200; each /nodes once, with the cookie
    assert [r.path.rsplit("/", 1)[-1] for r in rm.requests()] == ["info", "info", "info", "nodes", "nodes"]


def test_the_caller_is_the_authenticated_principal_not_user_name(server: RMServer, rm: StandinRM) -> None:
    conf = get_twice(server.url, path="/scheduler-conf")[0]  # admin only: alice is an admin, "yarn" is not
    assert conf["property"]  # type: ignore[index]
    assert all("user.name" not in r.query for r in rm.requests())


def test_a_session_the_rm_no_longer_accepts_is_renegotiated_transparently(
    server: RMServer, negotiate: Negotiate
) -> None:
    async def go() -> None:
        async with RMClient(cluster(server.url, auth=SPNEGO)) as client:
            await client.get("/nodes")
            negotiate.secret = b"restarted-rm-new-secret"  # every cookie issued so far is now invalid
            await client.get("/nodes")

    run(go())
    assert negotiate.negotiations == 2


def test_a_pipelined_batch_of_pushes_carries_the_session_cookie(
    server: RMServer, rm: StandinRM, negotiate: Negotiate
) -> None:
    report = sync(server.url, plan(*(node(i, cpu="2", memory="4Gi") for i in range(4))), auth=SPNEGO)
    assert report.ok and len(report.nodes) == 4
    assert rm.nodes["nm-3.example:8041"].total_mb == 4096
    assert negotiate.negotiations == 1
    assert len(rm.requests("POST")) == 4  # none was refused for want of the cookie and sent again


def test_an_expired_session_in_a_pipelined_batch_is_renegotiated_once(
    server: RMServer, rm: StandinRM, negotiate: Negotiate
) -> None:
    async def go() -> list[object]:
        async with RMClient(cluster(server.url, auth=SPNEGO)) as client:
            await client.get("/nodes")
            negotiate.secret = b"restarted-rm-new-secret"
            body = {"resource": {"memory": 2048, "vCores": 1}, "overCommitTimeout": -1}
            return list(await client.post_batch([(f"/nodes/nm-{i}.example:8041/resource", body) for i in range(4)]))

    assert run(go()) == [None] * 4
    assert rm.nodes["nm-0.example:8041"].total_mb == 2048
    assert negotiate.negotiations == 2  # one negotiation for all the writes the RM refused, not one each


def test_each_rm_of_a_pair_gets_its_own_session() -> None:
    active = RMServer(StandinRM.with_nodes(2, admins={"alice"}, negotiate=Negotiate())).start()
    standby_rm = StandinRM.with_nodes(0, ha_state="STANDBY", active_url=active.url, negotiate=Negotiate())
    standby = RMServer(standby_rm).start()
    try:

        async def go() -> None:
            async with RMClient(cluster(standby.url, active.url, auth=SPNEGO)) as client:
                for _ in range(3):
                    assert await client.ha_states() == {standby.url: "STANDBY", active.url: "ACTIVE"}

        run(go())
        # both RMs listen on 127.0.0.1: cookies kept by host would overwrite each other and renegotiate
        assert active.rm.negotiate is not None and active.rm.negotiate.negotiations == 1
        assert standby_rm.negotiate is not None and standby_rm.negotiate.negotiations == 1
    finally:
        standby.stop()
        active.stop()


def test_missing_credentials_are_a_clear_permanent_error(
    server: RMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NTLM_USER_FILE")
    with pytest.raises(PermanentPeerError, match="no usable credentials of the default principal") as caught:
        get_twice(server.url, auth={"kind": "spnego"})
    assert "kinit" in caught.value.message and "KRB5_CLIENT_KTNAME" in caught.value.message


def test_an_answer_without_the_final_token_fails_mutual_authentication(
    server: RMServer, negotiate: Negotiate
) -> None:
    negotiate.omit_final_token = True
    with pytest.raises(PermanentPeerError, match="did not prove to be the RM"):
        get_twice(server.url)


def test_simple_auth_against_a_negotiate_rm_says_what_to_configure(server: RMServer) -> None:
    with pytest.raises(TemporaryPeerError, match=r"401 .*the RM asks for SPNEGO"):
        get_twice(server.url, auth={"kind": "simple"}, retries=0)


def test_the_standin_refuses_a_token_its_acceptor_rejects_with_403(server: RMServer) -> None:
    garbage = base64.b64encode(b"not a token").decode()
    response = httpx.get(f"{server.url}/ws/v1/cluster/nodes", headers={"Authorization": f"Negotiate {garbage}"})
    assert response.status_code == 403 and response.text.startswith("GSSException")
    assert response.headers["set-cookie"].startswith("hadoop.auth=;")


def test_spnego_auth_is_for_async_clients_only() -> None:
    with pytest.raises(TypeError, match="AsyncClient only"), httpx.Client(auth=SpnegoAuth("rm")) as client:
        client.get("http://127.0.0.1:9/")


def test_the_auth_kind_is_validated_naming_the_field() -> None:
    with pytest.raises(InputError, match="auth"):
        parse(YarnCluster, {"name": "a", "rm_urls": ["http://rm:8088"], "auth": {"kind": "kerberos"}}, "yarn.yaml")


def test_cli_status_and_sync_with_auth_spnego(server: RMServer, rm: StandinRM, tmp_path: Path) -> None:
    runner = CliRunner()
    status = runner.invoke(app, ["yarn", "status", "--rm", server.url, "--auth", "spnego"])
    assert status.exit_code == 0, status.output
    assert f"{server.url}: ACTIVE" in status.output
    plan_file = tmp_path / "plan.json"
    plan_file.write_bytes(orjson.dumps(plan(node(0, cpu="2", memory="4Gi")).model_dump(mode="json")))
    synced = runner.invoke(app, ["yarn", "sync", "--rm", server.url, "--plan", str(plan_file), "--auth", "spnego"])
    assert synced.exit_code == 0, synced.output
    assert rm.nodes["nm-0.example:8041"].total_mb == 4096
