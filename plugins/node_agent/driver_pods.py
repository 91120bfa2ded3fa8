"""Which pods on this node are drivers (Spark drivers, Flink jobmanagers, the broker's own AMs), so that the agent
reports them ``is_am`` and the fast path kills them after their workers. A pod's cgroup carries its UID, not its
labels, so the agent asks the Kubernetes API.

**What is read.** For each label selector, the pods bound to this node that match it: ``GET /api/v1/pods`` with
``fieldSelector=spec.nodeName=<node>`` and ``labelSelector=<selector>``, listed once and then watched with the
list/watch protocol of ``plugins.kubernetes.informer`` (resume from the last ``resourceVersion``; list again after
410 Gone), the way the kubelet follows its own pods. A pod matching any selector is a driver; its UID is the one the
cgroup tree shows. Watching, not polling: the API server announces a driver as soon as it is bound to the node,
usually before the kubelet has created its cgroup, and a fleet of agents costs one open watch per selector and node
instead of a list per node every few seconds. Lists ask for ``resourceVersion=0`` (served from the API server's
watch cache, as informers do) so that thousands of agents starting together do not each read etcd.

Default selectors: ``spark-role=driver`` (Spark on Kubernetes labels its driver pod so) and
``broker.elastic.io/role=am`` (the broker's own AM label, which the extender reads too).

**When the API cannot be read** (unreachable, 5xx, 401/403 because the service account or RBAC is missing) the
agent keeps the last set it knew and goes on sampling. It logs the failure when it starts or changes (a warning; an
error for a refusal, which will not go away by itself), once more as an error when the kept set gets older than
``stale_after_s``, and the recovery; it retries with jittered backoff (``retry_initial_s`` doubling to
``retry_max_s``) so that a fleet does not hammer an API server that is coming back. The kept set is not dropped
when it gets old: a pod UID names one pod forever, so an old set is incomplete (drivers started since are reported
as workers) but never wrong about the pods it names, and dropping it would take the protection away from the
drivers it does know. ``age_s`` says how old it is.

A half-open connection cannot hang a watch for ever: every request has a read timeout (a watch's is its
``timeoutSeconds`` plus ``request_timeout_s``), after which it fails like any other.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config
from kubernetes.client import V1PodList
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from broker.errors import InputError, PermanentPeerError
from plugins.kubernetes.errors import peer_error
from plugins.kubernetes.informer import Informer
from plugins.node_agent.selectors import DEFAULT_SELECTORS, check_selector

log = logging.getLogger(__name__)

_GONE = 410
_PEER = "kube-apiserver"


@dataclass(frozen=True, slots=True)
class KubeAccess:
    """How the agent reaches the API server: the pod's service account (in-cluster, the DaemonSet's way) when
    ``kubeconfig`` is ``None``, otherwise that kubeconfig file and one of its contexts (its current one without)."""

    kubeconfig: Path | None = None
    context: str | None = None

    def api_client(self) -> client.ApiClient:
        """An official ``ApiClient``; ``InputError`` naming the flag to fix when it cannot be built (no service
        account in this process, a kubeconfig that cannot be read or lacks the context)."""
        configuration = client.Configuration()
        if self.kubeconfig is None:
            if self.context is not None:
                raise InputError("--kube-context", "only with --kubeconfig")
            try:
                config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            except ConfigException as exc:
                raise InputError("--driver-pods", f"no in-cluster service account ({exc}); outside a pod, give "
                                 "--kubeconfig") from None
        else:
            if not self.kubeconfig.is_file():
                raise InputError("--kubeconfig", f"{self.kubeconfig}: no such file")
            try:
                config.load_kube_config(  # type: ignore[no-untyped-call]
                    config_file=str(self.kubeconfig), context=self.context, client_configuration=configuration,
                    persist_config=False)  # never write refreshed credentials back: the agent's files are read-only
            except (ConfigException, yaml.YAMLError, ValueError, TypeError) as exc:
                where = "--kube-context" if self.context and "context" in str(exc).lower() else "--kubeconfig"
                raise InputError(where, str(exc)) from None
        # No retries inside urllib3: DriverPods retries with its own backoff and logs a failure once; urllib3 would
        # triple the attempts and log each of them.
        configuration.retries = False
        return client.ApiClient(configuration)


@dataclass
class _Followed:
    """One selector's informer and how its copy stands."""

    selector: str
    informer: Informer
    ok_at: float | None = None
    """When its copy was last known complete (a list, or a watch starting or ending cleanly)."""
    failing: str | None = None
    """The current failure, ``None`` while it follows the API."""
    failing_on: str = ""
    """What failed last, ``list`` or ``watch``: only that succeeding ends the failure (a service account that may
    list but not watch must not look healthy after every list)."""
    failing_since: float = 0.0
    stale_told: bool = False

    def uids(self) -> set[str]:
        return {str(pod.metadata.uid) for pod in self.informer.snapshot().values() if pod.metadata.uid}


class DriverPods:
    """The UIDs of the driver pods on ``node`` (see the module docstring). ``uid in driver_pods`` is what
    ``Discovery`` asks; ``start`` follows the API on one daemon thread per selector until ``stop``; ``close``
    stops and closes ``api``."""

    def __init__(self, api: client.ApiClient, node: str, selectors: Sequence[str] = DEFAULT_SELECTORS, *,
                 watch_timeout_s: int = 300, request_timeout_s: float = 30.0, retry_initial_s: float = 1.0,
                 retry_max_s: float = 60.0, stale_after_s: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not selectors:
            raise InputError("--driver-selector", "give at least one")
        if watch_timeout_s <= 0 or request_timeout_s <= 0 or not 0 < retry_initial_s <= retry_max_s:
            raise InputError("driver_pods", "timeouts and retry_initial_s must be positive, retry_max_s >= initial")
        self.node = node
        self.watch_timeout_s = watch_timeout_s
        self.request_timeout_s = request_timeout_s
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.stale_after_s = stale_after_s
        self._clock = clock
        self._api = api
        self._core = client.CoreV1Api(api)
        self.selectors = tuple(dict.fromkeys(check_selector(selector) for selector in selectors))
        self._followed = [_Followed(s, Informer(self._lister(s), _PEER, watch_timeout_s=watch_timeout_s))
                          for s in self.selectors]
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # --- what Discovery and the CLI read ---------------------------------------------------------------------------

    def __contains__(self, uid: object) -> bool:
        return any(uid in followed.uids() for followed in self._followed)

    def uids(self) -> frozenset[str]:
        """Every driver pod's UID known now."""
        return frozenset().union(*(followed.uids() for followed in self._followed))

    def age_s(self) -> float | None:
        """How old the set is: 0 while every selector follows the API, the time since the oldest failing one was
        last known complete otherwise, ``None`` until each has been listed once."""
        with self._lock:
            if any(followed.ok_at is None for followed in self._followed):
                return None
            failing = [followed.ok_at for followed in self._followed
                       if followed.failing is not None and followed.ok_at is not None]
        return max(self._clock() - ok_at for ok_at in failing) if failing else 0.0

    def errors(self) -> dict[str, str]:
        """The current failure per selector (empty while all follow the API)."""
        with self._lock:
            return {followed.selector: followed.failing for followed in self._followed if followed.failing}

    # --- running ---------------------------------------------------------------------------------------------------

    def refresh(self) -> None:
        """List every selector now, on this thread (``broker agent --once``); failures are logged and kept in
        ``errors``, as while following."""
        for followed in self._followed:
            try:
                followed.informer.relist()
                self._succeeded(followed, "list")
            except Exception as exc:  # the client raises ApiException, urllib3 errors, OSError
                self._failed(followed, exc, "list")

    def start(self) -> None:
        """Follow every selector on its own daemon thread (list, then watch; see the module docstring)."""
        for i, followed in enumerate(self._followed):
            thread = threading.Thread(target=self._follow, args=(followed,), name=f"driver-pods-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop following: open watches are closed, a list in flight ends at its timeout (the threads are daemons,
        so they never hold up the process's exit)."""
        self._stop.set()
        for followed in self._followed:
            followed.informer.stop_watching()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(deadline - time.monotonic(), 0.0))

    def close(self) -> None:
        """``stop``, then close the API client (its connection pool)."""
        self.stop()
        self._api.close()  # type: ignore[no-untyped-call]

    def __enter__(self) -> DriverPods:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _follow(self, followed: _Followed) -> None:
        """List, then watch until stopped; list again after 410 Gone; after a failure, retry with jittered backoff
        (reset once the list or watch that failed succeeds)."""
        needs_list, delay = True, self.retry_initial_s
        while not self._stop.is_set():
            step = "list" if needs_list else "watch"
            try:
                if needs_list:
                    followed.informer.relist()
                    needs_list = False
                    if self._succeeded(followed, "list"):
                        delay = self.retry_initial_s
                    step = "watch"
                if self._stop.is_set():
                    break
                with self._lock:
                    followed.ok_at = self._clock()
                followed.informer.watch_once()
                if self._succeeded(followed, "watch"):
                    delay = self.retry_initial_s
            except ApiException as exc:
                needs_list = True
                if exc.status == _GONE:
                    log.debug("driver pods %r: watch expired (410), listing again", followed.selector)
                    continue
                self._failed(followed, exc, step)
                self._stop.wait(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, self.retry_max_s)
            except Exception as exc:  # connection refused, reset, read timeouts: urllib3 errors, OSError
                if self._stop.is_set():
                    break  # stop() closed the watch's socket
                needs_list = True
                self._failed(followed, exc, step)
                self._stop.wait(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, self.retry_max_s)

    def _lister(self, selector: str) -> Callable[..., Any]:
        field = f"spec.nodeName={self.node}"

        def list_pods(**kwargs: Any) -> V1PodList:  # the watch reads the item type (V1Pod) from this annotation
            watching = bool(kwargs.get("watch"))
            if not watching:
                kwargs.setdefault("resource_version", "0")
            read_s = self.watch_timeout_s + self.request_timeout_s if watching else self.request_timeout_s
            return self._core.list_pod_for_all_namespaces(
                field_selector=field, label_selector=selector, _request_timeout=(self.request_timeout_s, read_s),
                **kwargs)

        return list_pods

    def _succeeded(self, followed: _Followed, step: str) -> bool:
        """Record that ``step`` (``list``, ``watch``) worked; true when that ended a failure (logged)."""
        with self._lock:
            now, was = self._clock(), followed.failing
            followed.ok_at = now
            recovered = was is not None and followed.failing_on == step
            if recovered:
                followed.failing, followed.stale_told = None, False
            since = followed.failing_since
        count = len(followed.uids())
        if recovered:
            log.info("driver pods %r on %s: the API answers again after %.0f s; %d driver pod(s)", followed.selector,
                     self.node, now - since, count)
        elif step == "list":
            log.debug("driver pods %r on %s: listed, %d driver pod(s)", followed.selector, self.node, count)
        return recovered

    def _failed(self, followed: _Followed, exc: Exception, step: str) -> None:
        """Record and log (when it starts or changes, or gets stale) that ``step`` failed with ``exc``."""
        error = peer_error(followed.informer.peer, exc)
        with self._lock:
            now = self._clock()
            changed = followed.failing != error.message
            if followed.failing is None:
                followed.failing_since = now
            followed.failing, followed.failing_on = error.message, step
            age = None if followed.ok_at is None else now - followed.ok_at
            tell_stale = age is not None and age > self.stale_after_s and not followed.stale_told
            followed.stale_told = followed.stale_told or tell_stale
        if age is None:
            kept = "no driver known yet: every pod is reported as a worker"
        else:
            kept = f"keeping the {len(followed.uids())} driver pod(s) known {age:.0f} s ago"
        if changed:
            (log.error if isinstance(error, PermanentPeerError) else log.warning)(
                "driver pods %r on %s: %s; %s, retrying", followed.selector, self.node, error, kept)
        elif tell_stale:
            log.error("driver pods %r on %s: still failing (%s); %s: drivers started since are reported as "
                      "workers", followed.selector, self.node, error.message, kept)


__all__ = ["DEFAULT_SELECTORS", "DriverPods", "KubeAccess", "check_selector"]
