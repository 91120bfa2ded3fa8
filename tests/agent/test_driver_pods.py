"""Driver pods: the agent learns from the Kubernetes API which pods on its node are drivers and reports them
``is_am``; it keeps what it knew when the API goes away, says so, and never stops sampling. Against the stand-in
API server (``tests/kubernetes``) with label selectors, selector watches and RBAC (``kube_pods``), through the
official client."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from broker.errors import InputError
from broker.model import Sink
from broker.service.agents import AgentHub
from broker.service.extender import TlsFiles
from plugins.node_agent.cgroup import Discovery
from plugins.node_agent.client import Agent, AgentConfig
from plugins.node_agent.driver_pods import DEFAULT_SELECTORS, DriverPods, KubeAccess, check_selector
from plugins.node_agent.sampler import Sampler
from tests.agent.conftest import TOKEN as AGENT_TOKEN
from tests.agent.conftest import Pki
from tests.agent.kube_pods import Identity, PodsApiServer, pod
from tests.agent.test_cli import invoke
from tests.agent.test_readers import write_cgroup, write_proc
from tests.extender.live_server import live_server
from tests.kubernetes.kube_apiserver import Fault

NODE, OTHER = "n1", "n2"
USER = "system:serviceaccount:broker-system:broker-agent"
TOKEN, LIST_ONLY, NOTHING = "agent-sa-token", "list-only-token", "no-rbac-token"
FLINK = "component=jobmanager,type=flink-native-kubernetes"


def uid(n: int) -> str:
    return f"0a1b2c3d-0000-4000-8000-{n:012d}"


SPARK_DRIVER, SPARK_EXECUTOR, BROKER_AM, JOBMANAGER, TASKMANAGER, ELSEWHERE, LATER = (uid(i) for i in range(1, 8))
POPULATION = [
    pod("spark-pi-driver", NODE, SPARK_DRIVER, {"spark-role": "driver", "spark-app-selector": "spark-1"}),
    pod("spark-pi-exec-1", NODE, SPARK_EXECUTOR, {"spark-role": "executor", "spark-app-selector": "spark-1"}),
    pod("etl-am", NODE, BROKER_AM, {"broker.elastic.io/role": "am"}),
    pod("wordcount-jobmanager", NODE, JOBMANAGER, {"component": "jobmanager", "type": "flink-native-kubernetes"}),
    pod("wordcount-taskmanager-1", NODE, TASKMANAGER, {"component": "taskmanager", "type": "flink-native-kubernetes"}),
    pod("other-driver", OTHER, ELSEWHERE, {"spark-role": "driver"}),
]


@pytest.fixture
def api_server() -> PodsApiServer:
    server = PodsApiServer(tokens={TOKEN: Identity(USER), LIST_ONLY: Identity(USER, frozenset({"list"})),
                                   NOTHING: Identity(USER, frozenset())})
    for item in POPULATION:
        server.put("pods", item)
    return server


@pytest.fixture
def url(api_server: PodsApiServer) -> Iterator[str]:
    with live_server(api_server.app) as base:
        yield base


def kubeconfig(directory: Path, server: str, token: str = TOKEN) -> Path:
    path = directory / f"kubeconfig-{token}"
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "agent",
        "clusters": [{"name": "stand-in", "cluster": {"server": server}}],
        "users": [{"name": "agent", "user": {"token": token}}],
        "contexts": [{"name": "agent", "context": {"cluster": "stand-in", "user": "agent"}}],
    }))
    return path


def driver_pods(directory: Path, server: str, token: str = TOKEN, selectors: tuple[str, ...] = DEFAULT_SELECTORS,
                **options: Any) -> DriverPods:
    api = KubeAccess(kubeconfig(directory, server, token)).api_client()
    settings: dict[str, Any] = {"watch_timeout_s": 1, "retry_initial_s": 0.05, "retry_max_s": 0.2, **options}
    return DriverPods(api, NODE, selectors, **settings)


def eventually(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("not within the time limit")
        time.sleep(0.02)


def core(url: str, token: str = TOKEN) -> client.CoreV1Api:
    configuration = client.Configuration()
    configuration.host = url
    configuration.api_key = {"authorization": token}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    return client.CoreV1Api(client.ApiClient(configuration))


# --- the stand-in behaves as kube-apiserver does --------------------------------------------------------------------

SELECTED = {
    "equals": ("spark-role=driver", {"spark-pi-driver"}),
    "double-equals": ("spark-role==driver", {"spark-pi-driver"}),
    "not-equals-includes-unlabelled": ("spark-role!=driver", {"spark-pi-exec-1", "etl-am", "wordcount-jobmanager",
                                                              "wordcount-taskmanager-1"}),
    "in": ("component in (jobmanager, taskmanager)", {"wordcount-jobmanager", "wordcount-taskmanager-1"}),
    "notin-includes-unlabelled": ("component notin (jobmanager)", {"spark-pi-driver", "spark-pi-exec-1", "etl-am",
                                                                   "wordcount-taskmanager-1"}),
    "exists": ("spark-role", {"spark-pi-driver", "spark-pi-exec-1"}),
    "does-not-exist": ("!spark-role", {"etl-am", "wordcount-jobmanager", "wordcount-taskmanager-1"}),
    "all-terms-hold": (FLINK, {"wordcount-jobmanager"}),
}


@pytest.mark.parametrize(("selector", "names"), SELECTED.values(), ids=SELECTED.keys())
def test_the_stand_in_lists_the_nodes_pods_by_label_as_the_api_server_does(url: str, selector: str,
                                                                           names: set[str]) -> None:
    listing = core(url).list_pod_for_all_namespaces(field_selector=f"spec.nodeName={NODE}", label_selector=selector)
    assert {item.metadata.name for item in listing.items} == names


def test_the_stand_in_refuses_a_selector_it_cannot_parse(url: str) -> None:
    with pytest.raises(ApiException) as refused:
        core(url).list_pod_for_all_namespaces(label_selector="spark-role=driver=x")
    assert refused.value.status == 400 and "unable to parse requirement" in refused.value.body


def test_the_stand_in_watch_sends_a_pod_that_starts_or_stops_matching_as_added_or_deleted(
        url: str, api_server: PodsApiServer) -> None:
    since = core(url).list_pod_for_all_namespaces(label_selector="spark-role=driver").metadata.resource_version
    executor = api_server.objects("pods")["batch/spark-pi-exec-1"]
    api_server.put("pods", {**executor, "metadata": {**executor["metadata"], "labels": {"spark-role": "driver"}}})
    api_server.put("pods", pod("spark-pi-driver", NODE, SPARK_DRIVER, {"spark-role": "driver", "touched": "yes"}))
    api_server.put("pods", pod("etl-am", NODE, BROKER_AM, {"broker.elastic.io/role": "am", "touched": "yes"}))
    api_server.put("pods", pod("spark-pi-driver", NODE, SPARK_DRIVER, {"spark-role": "gone"}))
    api_server.delete("pods", "batch/spark-pi-exec-1")
    api_server.delete("pods", "batch/other-driver")
    events = [(event["type"], event["object"].metadata.name) for event in watch.Watch().stream(
        core(url).list_pod_for_all_namespaces, field_selector=f"spec.nodeName={NODE}",
        label_selector="spark-role=driver", resource_version=since, timeout_seconds=1)]
    assert events == [("ADDED", "spark-pi-exec-1"), ("MODIFIED", "spark-pi-driver"), ("DELETED", "spark-pi-driver"),
                      ("DELETED", "spark-pi-exec-1")]


@pytest.mark.parametrize(("token", "verb", "code"), [
    (None, "list", 401), ("stolen", "list", 401), (NOTHING, "list", 403), (LIST_ONLY, "watch", 403),
], ids=["no-token", "unknown-token", "no-list", "no-watch"])
def test_the_stand_in_answers_as_authentication_and_rbac_do(url: str, token: str | None, verb: str,
                                                            code: int) -> None:
    api = core(url, token or "")
    if token is None:
        api.api_client.configuration.api_key = {}
    with pytest.raises(ApiException) as refused:
        if verb == "list":
            api.list_pod_for_all_namespaces()
        else:
            list(watch.Watch().stream(api.list_pod_for_all_namespaces, timeout_seconds=1))
    assert refused.value.status == code
    if code == 403:
        body = refused.value.body
        message = json.loads(body)["message"] if body else str(refused.value.reason)
        assert message == f'pods is forbidden: User "{USER}" cannot {verb} resource "pods" in API group "" at the ' \
            'cluster scope'



# --- what the agent learns ------------------------------------------------------------------------------------------

def test_the_default_selectors_find_spark_drivers_and_broker_ams_on_this_node_only(url: str, tmp_path: Path) -> None:
    pods = driver_pods(tmp_path, url)
    try:
        pods.refresh()
        assert pods.uids() == {SPARK_DRIVER, BROKER_AM}
        assert SPARK_DRIVER in pods and SPARK_EXECUTOR not in pods and ELSEWHERE not in pods
        assert pods.errors() == {} and pods.age_s() == 0.0
    finally:
        pods.close()


def test_a_pod_matching_any_of_several_selectors_is_a_driver(url: str, tmp_path: Path) -> None:
    pods = driver_pods(tmp_path, url, selectors=("spark-role=driver", FLINK, "spark-role=driver"))
    try:
        pods.refresh()
        assert pods.selectors == ("spark-role=driver", FLINK)
        assert pods.uids() == {SPARK_DRIVER, JOBMANAGER}
    finally:
        pods.close()


def test_drivers_bound_relabelled_and_deleted_later_are_followed_by_the_watch(
        url: str, api_server: PodsApiServer, tmp_path: Path) -> None:
    with driver_pods(tmp_path, url) as pods:
        eventually(lambda: pods.uids() == {SPARK_DRIVER, BROKER_AM})
        api_server.put("pods", pod("late-driver", NODE, LATER, {"spark-role": "driver"}))
        eventually(lambda: LATER in pods)
        api_server.put("pods", pod("etl-am", NODE, BROKER_AM, {"broker.elastic.io/role": "worker"}))
        api_server.delete("pods", "batch/spark-pi-driver")
        eventually(lambda: pods.uids() == {LATER})


def test_after_the_watch_expires_the_agent_lists_again(url: str, api_server: PodsApiServer, tmp_path: Path) -> None:
    with driver_pods(tmp_path, url) as pods:
        eventually(lambda: pods.uids() == {SPARK_DRIVER, BROKER_AM})
        # The API server restarts after etcd compacted the history: the watch's version is gone (410).
        api_server.restart(lambda server: server.put("pods", pod("late-driver", NODE, LATER,
                                                                 {"spark-role": "driver"})))
        api_server.put("pods", pod("unrelated", OTHER, uid(99)))  # moves the version on, past the agent's
        eventually(lambda: LATER in pods)
        assert pods.errors() == {}


def test_discovery_and_the_sampler_report_a_driver_pod_as_an_am(url: str, tmp_path: Path) -> None:
    slice_ = tmp_path / "cgroup" / "kubepods.slice" / "kubepods-besteffort.slice"
    for pod_uid in (SPARK_DRIVER, SPARK_EXECUTOR, LATER):
        write_cgroup(slice_ / f"kubepods-besteffort-pod{pod_uid.replace('-', '_')}.slice", 1_000, 64 << 20)
    with driver_pods(tmp_path, url) as pods:
        eventually(lambda: SPARK_DRIVER in pods)
        sampler = Sampler(NODE, write_proc(tmp_path / "proc", 100, 100), Discovery.under(tmp_path / "cgroup",
                                                                                         am_pods=pods))
        sampler.prime()
        sample = sampler.sample()
    assert {(c.sink, c.container, c.is_am) for c in sample.offline} == {
        (Sink.KUBERNETES, SPARK_DRIVER, True), (Sink.KUBERNETES, SPARK_EXECUTOR, False),
        (Sink.KUBERNETES, LATER, False)}


# --- when the API cannot be read ------------------------------------------------------------------------------------

def test_while_the_api_fails_the_known_drivers_are_kept_the_log_says_so_and_recovery_is_logged(
        url: str, api_server: PodsApiServer, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="plugins.node_agent.driver_pods")
    now = [1_000.0]
    with driver_pods(tmp_path, url, stale_after_s=300, clock=lambda: now[0]) as pods:
        eventually(lambda: pods.uids() == {SPARK_DRIVER, BROKER_AM})
        api_server.inject(Fault("status", path="/api/v1/pods", status=503, times=1_000_000))
        eventually(lambda: len(pods.errors()) == 2)  # at the latest when the open watches (1 s) end
        api_server.put("pods", pod("late-driver", NODE, LATER, {"spark-role": "driver"}))
        assert pods.uids() == {SPARK_DRIVER, BROKER_AM}
        assert "503" in pods.errors()["spark-role=driver"]
        now[0] += 400  # the outage goes on: the kept set gets older than stale_after_s
        eventually(lambda: any("still failing" in r.getMessage() for r in caplog.records))
        assert pods.age_s() == pytest.approx(400, abs=1)
        assert pods.uids() == {SPARK_DRIVER, BROKER_AM}
        api_server.clear_faults()
        eventually(lambda: LATER in pods and not pods.errors())
        assert pods.age_s() == 0.0
    messages = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "plugins.node_agent.driver_pods"]
    warned = [m for level, m in messages if level == "WARNING"]
    assert warned and "503" in warned[0] and "keeping the 1 driver pod(s) known" in warned[0]
    stale = [m for level, m in messages if level == "ERROR" and "still failing" in m]
    assert stale and "400 s ago" in stale[0] and "drivers started since are reported as workers" in stale[0]
    assert any(level == "INFO" and "answers again after 400 s" in m for level, m in messages)


@pytest.mark.parametrize(("token", "known"), [(NOTHING, set()), (LIST_ONLY, {SPARK_DRIVER})],
                         ids=["may-not-list", "may-list-not-watch"])
def test_forbidden_is_an_error_in_the_log_and_what_could_be_read_is_kept(
        url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture, token: str, known: set[str]) -> None:
    caplog.set_level(logging.INFO, logger="plugins.node_agent.driver_pods")
    with driver_pods(tmp_path, url, token=token, selectors=("spark-role=driver",)) as pods:
        eventually(lambda: bool(pods.errors()))
        assert pods.uids() == known
    assert "403 Forbidden" in pods.errors()["spark-role=driver"]
    (error,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "cannot" in error.getMessage() and 'resource "pods"' in error.getMessage()


def test_an_agent_whose_api_server_is_unreachable_still_streams_every_sample(tmp_path: Path,
                                                                            token_file: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on: connections are refused
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    write_cgroup(tmp_path / "cgroup" / "kubepods" / "besteffort" / f"pod{SPARK_DRIVER}", 1_000, 64 << 20)

    async def scenario(pods: DriverPods) -> None:
        async with AgentHub(AGENT_TOKEN) as hub:
            sampler = Sampler(NODE, write_proc(tmp_path / "proc", 100, 100),
                              Discovery.under(tmp_path / "cgroup", am_pods=pods))
            agent = Agent(AgentConfig(f"127.0.0.1:{hub.port}", token_file, interval_s=0.05), sampler)
            stop = asyncio.Event()
            task = asyncio.create_task(agent.run(stop))
            deadline = time.monotonic() + 10
            while (agent.stats.acked < 5 or not pods.errors()) and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            stop.set()
            await task
            assert agent.stats.acked >= 5
            (container,) = hub.latest()[NODE].offline
            assert (container.container, container.is_am) == (SPARK_DRIVER, False)

    with driver_pods(tmp_path, dead) as pods:
        asyncio.run(asyncio.wait_for(scenario(pods), 30))
    assert pods.age_s() is None and "Connection refused" in pods.errors()["spark-role=driver"]


# --- how the agent reaches the API server ---------------------------------------------------------------------------

def test_in_cluster_access_uses_the_service_account_token_and_ca(
        api_server: PodsApiServer, pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kubernetes.config import incluster_config

    token = tmp_path / "token"
    token.write_text(TOKEN)
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(token))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(pki.ca))
    with live_server(api_server.app, TlsFiles(pki.server_cert, pki.server_key)) as base:
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        monkeypatch.setenv("KUBERNETES_SERVICE_PORT", base.rsplit(":", 1)[1])
        pods = DriverPods(KubeAccess().api_client(), NODE)
        try:
            pods.refresh()
            assert pods.uids() == {SPARK_DRIVER, BROKER_AM} and pods.errors() == {}
        finally:
            pods.close()


def test_in_cluster_access_outside_a_pod_is_an_input_error_naming_the_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(InputError) as error:
        KubeAccess().api_client()
    assert error.value.field == "--driver-pods" and "--kubeconfig" in error.value.message


def test_a_kubeconfig_that_is_missing_or_lacks_the_context_is_an_input_error_naming_the_flag(tmp_path: Path) -> None:
    with pytest.raises(InputError) as missing:
        KubeAccess(tmp_path / "nope").api_client()
    with pytest.raises(InputError) as no_context:
        KubeAccess(kubeconfig(tmp_path, "http://127.0.0.1:1"), "elsewhere").api_client()
    assert (missing.value.field, no_context.value.field) == ("--kubeconfig", "--kube-context")


@pytest.mark.parametrize("selector", ["", "  ", "spark-role=driver=x", "a in b", "=driver", "spark-role=driver,"],
                         ids=["empty", "blank", "two-operators", "in-without-parentheses", "no-key", "empty-term"])
def test_a_selector_that_is_not_a_label_selector_is_refused_naming_the_flag(selector: str) -> None:
    with pytest.raises(InputError) as error:
        check_selector(selector)
    assert error.value.field == "--driver-selector"


# --- the command ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("flags", "flag"), [
    (["--driver-selector", "spark-role=driver"], "--driver-selector"),
    (["--kubeconfig", "k"], "--kubeconfig"),
    (["--driver-pods", "--driver-selector", "spark-role"], "--driver-pods"),
    (["--driver-pods", "--driver-selector", "a in b"], "--driver-selector"),
    (["--driver-pods", "--kubeconfig", "/nonexistent/kubeconfig"], "--kubeconfig"),
    (["--driver-pods", "--kube-context", "ctx"], "--kube-context"),
], ids=["selector-without-driver-pods", "kubeconfig-without-driver-pods", "in-cluster-outside-a-pod",
        "bad-selector", "kubeconfig-missing", "context-without-kubeconfig"])
def test_driver_pod_flags_are_refused_by_name(flags: list[str], flag: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    code, output = invoke("--node", NODE, "--once", *flags)
    assert code == 2, output
    assert output.startswith(f"error: {flag}")


def test_once_json_marks_the_driver_pod_as_an_am(url: str, tmp_path: Path) -> None:
    pods_root = tmp_path / "cgroup" / "kubepods" / "besteffort"
    for pod_uid in (SPARK_DRIVER, SPARK_EXECUTOR):
        write_cgroup(pods_root / f"pod{pod_uid}", 1_000, 64 << 20)
    code, output = invoke("--node", NODE, "--once", "--json", "--interval-s", "0.05",
                          "--proc-root", str(write_proc(tmp_path / "proc", 100, 100)),
                          "--cgroup-root", str(tmp_path / "cgroup"), "--driver-pods",
                          "--kubeconfig", str(kubeconfig(tmp_path, url)))
    assert code == 0, output
    assert {c["container"]: c["is_am"] for c in json.loads(output)["offline"]} == {SPARK_DRIVER: True,
                                                                                 SPARK_EXECUTOR: False}


def test_stop_ends_the_following_threads_at_once(url: str, tmp_path: Path) -> None:
    before = set(threading.enumerate())
    pods = driver_pods(tmp_path, url, watch_timeout_s=60)
    pods.start()
    eventually(lambda: pods.uids() == {SPARK_DRIVER, BROKER_AM})
    started = time.monotonic()
    pods.close()  # the open watches (60 s) are closed, not waited for
    assert time.monotonic() - started < 2
    assert not [t for t in set(threading.enumerate()) - before if t.name.startswith("driver-pods-")]
