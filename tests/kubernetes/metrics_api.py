"""``metrics.k8s.io/v1beta1``, as metrics-server serves it through the API server's aggregator.

- ``GET /apis/metrics.k8s.io/v1beta1/nodes``: a ``NodeMetricsList``; each item has ``metadata.name``,
  ``timestamp`` (RFC 3339, when the kubelet was scraped), ``window`` (a Go duration such as ``"20.042s"``) and
  ``usage`` with ``cpu`` and ``memory`` quantities. metrics-server writes CPU in nanocores (``"1234567n"``) and
  memory in kibibytes (``"123456Ki"``); other spellings are legal quantities and are served as given. A node it
  could not scrape is absent from the list.
- ``GET /apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods``: a ``PodMetricsList`` for one namespace; each item
  has ``metadata.name`` / ``namespace``, ``timestamp``, ``window`` and ``containers[]`` with ``name`` and
  ``usage``.

The lists carry an empty ``metadata`` (metrics are not stored objects: no resourceVersion, no watch). Query
parameters outside this model (``labelSelector``, ``fieldSelector``, ``watch``) get a 400 naming them.
"""

from __future__ import annotations

import threading
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .wire import ApiError, answer, error, refuse_unknown_params

_BASE = "/apis/metrics.k8s.io/v1beta1"
_API_VERSION = "metrics.k8s.io/v1beta1"


class MetricsApi:
    """The metrics the tests set, served as metrics-server would; ``requests`` counts the paths asked for."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._nodes: dict[str, dict[str, Any]] = {}
        self._pods: dict[tuple[str, str], dict[str, Any]] = {}
        self.requests: list[str] = []

    def routes(self) -> list[Route]:
        return [
            Route(f"{_BASE}/nodes", self._list_nodes, methods=["GET"]),
            Route(f"{_BASE}/namespaces/{{namespace}}/pods", self._list_pods, methods=["GET"]),
        ]

    def set_node(self, name: str, cpu: str, memory: str, timestamp: str, window: str = "20.042s") -> None:
        with self._lock:
            self._nodes[name] = {
                "metadata": {"name": name, "creationTimestamp": timestamp},
                "timestamp": timestamp,
                "window": window,
                "usage": {"cpu": cpu, "memory": memory},
            }

    def forget_node(self, name: str) -> None:
        """metrics-server could not scrape the node: it leaves the list."""
        with self._lock:
            del self._nodes[name]

    def set_pod(self, namespace: str, name: str, timestamp: str, **containers: tuple[str, str]) -> None:
        """``containers``: container name -> (cpu, memory)."""
        with self._lock:
            self._pods[(namespace, name)] = {
                "metadata": {"name": name, "namespace": namespace, "creationTimestamp": timestamp},
                "timestamp": timestamp,
                "window": "15.5s",
                "containers": [
                    {"name": c, "usage": {"cpu": cpu, "memory": memory}} for c, (cpu, memory) in containers.items()
                ],
            }

    async def _list_nodes(self, request: Request) -> Response:
        try:
            refuse_unknown_params(request, frozenset())
        except ApiError as exc:
            return error(exc)
        with self._lock:
            self.requests.append(request.url.path)
            items = list(self._nodes.values())
        return answer({"kind": "NodeMetricsList", "apiVersion": _API_VERSION, "metadata": {}, "items": items})

    async def _list_pods(self, request: Request) -> Response:
        namespace = request.path_params["namespace"]
        try:
            refuse_unknown_params(request, frozenset())
        except ApiError as exc:
            return error(exc)
        with self._lock:
            self.requests.append(request.url.path)
            items = [pod for (ns, _), pod in self._pods.items() if ns == namespace]
        return answer({"kind": "PodMetricsList", "apiVersion": _API_VERSION, "metadata": {}, "items": items})
