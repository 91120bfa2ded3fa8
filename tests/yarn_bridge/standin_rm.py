"""A stand-in YARN ResourceManager that enforces the REST contract of ``/work/shared/contracts/yarn-rm``.

It is written from the contract, not from the bridge: it answers what the real RM answers, quirks included, so
that a bridge that talks to it correctly talks to a real RM correctly.

- ``POST /nodes/{id}/resource`` parses only the nested ``{"resource": {"memory", "vCores"}}`` body; a flat
  body parses into an empty resource and zeroes the node (200); the answer carries the total *before* the
  update (the real RM reads it back before the scheduler has processed the event); unknown node -> 404; LOST
  node -> 500; no ``user.name`` -> 401; no JSON/XML content type -> 415.
- node-label writes need an admin (non-admin -> 401, not 403); exclusivity is fixed at creation and defaults
  to false when omitted; a label used by a queue cannot be removed; a node carries at most one label.
- ``scheduler-conf``: 400 with the ``file`` store; admin only (401) for reads and writes; ``params`` given as
  a plain object arrive as an empty map (200, nothing changes); ``update-queue`` on a missing queue stores
  orphan keys (200); validation of sibling sums (100 within 0.05), no mixing of percent / weight / absolute
  among siblings, capacity at most maximum-capacity, absolute children within an absolute parent, add-queue
  needs a capacity, a leaf becomes a parent only when stopped, remove only a stopped queue without apps, root
  keeps one child, accessible labels must exist, per-label sibling capacities sum to 100, a queue's
  ``default-node-label-expression`` names labels the queue can access (own, inherited, root ``*``) and the
  cluster has. The version starts at 1.
- HA: a standby answers ``/info`` with ``haState: STANDBY`` and every other path with a 307 whose ``Location``
  keeps the query string, or, with no active RM known, a 307 with a ``Refresh`` header and no ``Location``.
- Auth: simple (``user.name``) by default; with ``negotiate`` set, SPNEGO as Hadoop's ``AuthenticationFilter``
  does it, every token checked by a real ``spnego.server`` acceptor (see ``Negotiate``).
- ``POST /containers/{id}/signal/{command}`` (Hadoop 3.2+, ``RMWebServices.signalToContainer``): admin only
  (401); the command, case-insensitive, must be a ``SignalContainerCommand`` (``OUTPUT_THREAD_DUMP``,
  ``GRACEFUL_SHUTDOWN``, ``FORCEFUL_SHUTDOWN``), else 400 with a plain-text reason; a malformed container id or
  one the RM does not have answers 500 with a plain-text reason ("Trying to signal an absent container ..."), as
  the RM wraps every exception of the call; otherwise 200 with an empty body. The NodeManager acts on its next
  heartbeat; the stand-in records the signal and, for the two shutdowns, removes the container at once.
- Faults on command: answer a status, hang, drop the connection without an answer, or answer and close the
  connection, for matching requests. ``RMServer(rm, port=...)`` serves on a given port, so that a test can stop
  the RM (connections refused) and bring it back at the same address.

Runs in a thread (``RMServer(rm).start()``) for tests, or as a process (``python standin_rm.py --nodes 5000``,
prints ``PORT <n>``) for the benchmark, where its receipt log is read through ``GET /_standin/log``.
Standard library only (``pyspnego`` is imported only when Negotiate is on), so that it can run as a plain script.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

PREFIX = "/ws/v1/cluster"
CS = "yarn.scheduler.capacity."
DEFAULT_LABEL = "default-node-label-expression"
_ABSOLUTE = re.compile(r"^\[(?P<body>[^\]]*)\]$")
_WEIGHT = re.compile(r"^(?P<w>\d+(\.\d+)?)w$")


class RMError(Exception):
    """An error answer: status and ``RemoteException`` body, as the RM's GenericExceptionHandler writes."""

    def __init__(self, status: int, exception: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.exception = exception
        self.message = message


@dataclass
class StandinNode:
    """One NodeManager as the RM sees it."""

    id: str
    total_mb: int
    total_vcores: int
    state: str = "RUNNING"
    label: str | None = None
    used_mb: int = 0
    used_vcores: int = 0

    @property
    def host(self) -> str:
        return self.id.rsplit(":", 1)[0]

    def render(self, old_jersey: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rack": "/default-rack",
            "state": self.state,
            "id": self.id,
            "nodeHostName": self.host,
            "nodeHTTPAddress": f"{self.host}:8042",
            "healthReport": "",
            "numContainers": 0,
            "usedMemoryMB": self.used_mb,
            "availMemoryMB": max(self.total_mb - self.used_mb, 0),
            "usedVirtualCores": self.used_vcores,
            "availableVirtualCores": max(self.total_vcores - self.used_vcores, 0),
            "totalResource": {"memory": self.total_mb, "vCores": self.total_vcores},
        }
        if self.label is not None:  # absent on unlabelled nodes, as the RM renders it
            out["nodeLabels"] = self.label if old_jersey else [self.label]
        return _stringify(out) if old_jersey else out


SIGNAL_COMMANDS = ("OUTPUT_THREAD_DUMP", "GRACEFUL_SHUTDOWN", "FORCEFUL_SHUTDOWN")
_CONTAINER_ID = re.compile(r"^container_(e\d+_)?\d+_\d+_\d+_\d+$")


@dataclass
class StandinContainer:
    """One running container as the RM's scheduler holds it."""

    id: str
    node_id: str


@dataclass
class Fault:
    """Misbehave on requests whose method matches and whose path starts with ``path``, ``times`` times.

    ``kind``: ``status`` (answer ``status``), ``hang`` (sleep ``seconds`` then answer normally), ``drop``
    (close the connection without an answer), ``close`` (answer normally with ``Connection: close``, then
    close the connection without reading the requests pipelined behind it).
    """

    path: str
    kind: str
    method: str = ""
    status: int = 503
    seconds: float = 0.0
    times: int = 1


@dataclass
class Negotiate:
    """Require HTTP Negotiate (SPNEGO) as Hadoop's ``AuthenticationFilter`` with the Kerberos handler does.

    - a valid ``hadoop.auth`` cookie (signed by this RM, not expired) authenticates the request;
    - otherwise no ``Authorization: Negotiate`` header -> 401 with a bare ``WWW-Authenticate: Negotiate``;
    - a token is stepped through a real ``spnego.server`` acceptor (one per connection, as NTLM's two legs
      need; Kerberos needs one): not yet established -> 401 with ``WWW-Authenticate: Negotiate <token>``; a
      token the acceptor rejects -> 403 with the reason; established -> the request is served as the
      principal's short name (``user.name`` is ignored), with the acceptor's final token in
      ``WWW-Authenticate`` (mutual authentication) and a new signed ``hadoop.auth`` cookie;
    - every refusal clears the cookie (``Set-Cookie: hadoop.auth=``).

    The acceptor finds its credentials through ``NTLM_USER_FILE`` (NTLM) or the keytab (Kerberos, with gssapi).
    """

    hostname: str = "rm.example"
    service: str = "HTTP"
    validity_s: float = 3600.0
    secret: bytes = field(default_factory=lambda: os.urandom(16))
    negotiations: int = 0
    """Handshakes completed: how many times a client had to negotiate."""
    omit_final_token: bool = False
    """Fault on command: complete a handshake without sending the acceptor's final token, as a server that
    cannot prove to be the RM would."""

    def cookie(self, principal: str) -> str:
        user = short_name(principal)
        expires = int((time.time() + self.validity_s) * 1000)
        text = f"u={user}&p={principal}&t=kerberos&e={expires}"
        return f'"{text}&s={self._sign(text)}"'

    def user_of(self, cookie: str) -> str | None:
        """The user of a valid cookie; ``None`` when unsigned, forged or expired."""
        text, _, signature = cookie.strip('"').rpartition("&s=")
        if not text or not hmac.compare_digest(signature, self._sign(text)):
            return None
        fields = dict(part.partition("=")[::2] for part in text.split("&"))
        if int(fields.get("e", "0")) < time.time() * 1000:
            return None
        return fields.get("u") or None

    def _sign(self, text: str) -> str:
        return base64.b64encode(hmac.new(self.secret, text.encode(), hashlib.sha256).digest()).decode()


def short_name(principal: str) -> str:
    """``alice@REALM`` or ``DOMAIN\\alice`` -> ``alice`` (Hadoop's default auth_to_local rule)."""
    return principal.rsplit("\\", 1)[-1].split("@", 1)[0]


@dataclass
class Received:
    """One request as received: for asserting what the bridge sent, and when."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: bytes
    at: float


@dataclass
class StandinRM:
    """The state of one ResourceManager."""

    nodes: dict[str, StandinNode] = field(default_factory=dict)
    admins: set[str] = field(default_factory=lambda: {"yarn"})
    ha_state: str = "ACTIVE"
    active_url: str | None = None
    """When standby: where the active RM is (307 with ``Location``); ``None`` -> 307 with ``Refresh`` only."""
    conf_store: str = "memory"
    conf: dict[str, str] = field(default_factory=dict)
    conf_version: int = 1
    labels: dict[str, bool] = field(default_factory=dict)
    apps: list[dict[str, Any]] = field(default_factory=list)
    old_jersey: bool = False
    faults: list[Fault] = field(default_factory=list)
    containers: dict[str, StandinContainer] = field(default_factory=dict)
    signals: list[tuple[str, str]] = field(default_factory=list)
    """(container id, command) of every signal accepted, in order."""
    negotiate: Negotiate | None = None
    """When set, every ``/ws/v1/cluster`` request must authenticate with SPNEGO (see ``Negotiate``)."""
    received: list[Received] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)

    @classmethod
    def with_nodes(cls, count: int, memory_mb: int = 65536, vcores: int = 32, **kwargs: Any) -> StandinRM:
        """An active RM with ``count`` nodes ``nm-<i>.example:8041`` and a one-queue capacity scheduler."""
        rm = cls(**kwargs)
        for i in range(count):
            node_id = f"nm-{i}.example:8041"
            rm.nodes[node_id] = StandinNode(node_id, memory_mb, vcores)
        if not rm.conf:
            rm.conf = {
                f"{CS}root.queues": "default",
                f"{CS}root.default.capacity": "100",
                f"{CS}maximum-applications": "10000",
            }
        return rm

    # --- fault injection and inspection --------------------------------------------------------------------

    def inject(self, fault: Fault) -> None:
        with self.lock:
            self.faults.append(fault)

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if path.startswith(fault.path) and fault.method in ("", method) and fault.times > 0:
                    fault.times -= 1
                    return fault
        return None

    def writes(self) -> list[Received]:
        """Every request that could change state (POST/PUT), validations included."""
        with self.lock:
            return [r for r in self.received if r.method in ("POST", "PUT")]

    def requests(self, method: str = "", path: str = "") -> list[Received]:
        with self.lock:
            return [r for r in self.received if method in ("", r.method) and r.path.startswith(path)]

    def record(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> None:
        """Log a request as it arrives (faulted ones too)."""
        with self.lock:
            self.received.append(Received(method, path, query, body, time.time()))

    def clear_log(self) -> None:
        with self.lock:
            self.received.clear()

    # --- dispatch ------------------------------------------------------------------------------------------

    def handle(
        self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """Answer one request: (status, headers, body); errors become RemoteException bodies."""
        if path == "/_standin/log":
            return self._json(200, [[r.method, r.path, r.at] for r in self.requests()])
        if not path.startswith(PREFIX):
            return 404, {"Content-Type": "text/plain"}, b"Not Found"
        sub = path[len(PREFIX) :] or "/"
        if sub == "/info" and method == "GET":
            return self._json(
                200,
                {
                    "clusterInfo": {
                        "id": 1476912658570,
                        "state": "STARTED",
                        "haState": self.ha_state,
                        "resourceManagerVersion": "3.3.6",
                    }
                },
            )
        if self.ha_state != "ACTIVE":
            text = b"This is standby RM. The redirect url is: " + (self.active_url or "").encode()
            if self.active_url is None:
                return 307, {"Refresh": "3", "Content-Type": "text/plain"}, text
            qs = "&".join(f"{quote(k)}={quote(v)}" for k, vs in query.items() for v in vs)
            location = self.active_url + path + (f"?{qs}" if qs else "")
            return 307, {"Location": location, "Content-Type": "text/plain"}, text
        try:
            with self.lock:
                return self._route(method, sub, query, headers, body)
        except RMError as exc:
            return self._json(
                exc.status,
                {
                    "RemoteException": {
                        "exception": exc.exception,
                        "message": exc.message,
                        "javaClassName": f"x.{exc.exception}",
                    }
                },
            )

    def _route(
        self, method: str, sub: str, query: dict[str, list[str]], headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        user = (query.get("user.name") or [""])[0]
        parts = [unquote(p) for p in sub.strip("/").split("/")]
        if method == "GET" and parts == ["nodes"]:
            nodes = [n.render(self.old_jersey) for n in self.nodes.values()]
            return self._json(200, {"nodes": self._list(nodes, "node")})
        if method == "GET" and len(parts) == 2 and parts[0] == "nodes":
            return self._json(200, {"node": self._node(parts[1]).render(self.old_jersey)})
        if method == "POST" and len(parts) == 3 and parts[0] == "nodes" and parts[2] == "resource":
            self._content_type(headers)
            self._authenticated(user)
            return self._update_node(parts[1], body)
        if method == "GET" and parts == ["metrics"]:
            return self._json(200, {"clusterMetrics": self._metrics()})
        if method == "GET" and parts == ["scheduler"]:
            return self._json(200, {"scheduler": {"schedulerInfo": self._queue_info("root")}})
        if method == "GET" and parts == ["apps"]:
            states = {s.upper() for v in query.get("states", []) for s in v.split(",") if s}
            apps = [a for a in self.apps if not states or a["state"] in states]
            return self._json(200, {"apps": self._list(apps, "app")})
        if method == "GET" and parts == ["get-node-labels"]:
            info = [{"name": n, "exclusivity": e} for n, e in sorted(self.labels.items())]
            return self._json(200, {"nodeLabelInfo": self._list(info, None)})
        if method == "POST" and parts[0] in (
            "add-node-labels",
            "replace-node-to-labels",
            "remove-node-labels",
        ):
            if parts[0] != "remove-node-labels":
                self._content_type(headers)
            self._admin(user)
            return self._label_write(parts[0], query, body)
        if parts[0] == "scheduler-conf":
            return self._scheduler_conf(method, parts[1:], user, headers, body)
        if method == "POST" and len(parts) == 4 and parts[0] == "containers" and parts[2] == "signal":
            self._admin(user)
            return self._signal(parts[1], parts[3])
        raise RMError(404, "NotFoundException", f"no resource at {sub}")

    # --- helpers for the answer's shape --------------------------------------------------------------------

    def _json(self, status: int, data: Any) -> tuple[int, dict[str, str], bytes]:
        return status, {"Content-Type": "application/json"}, json.dumps(data).encode()

    def _list(self, items: list[Any], key: str | None) -> Any:
        """An RM list: ``null`` when empty, a bare object for one element in the old Jersey style."""
        if not items:
            return None
        value: Any = items[0] if self.old_jersey and len(items) == 1 else items
        return {key: value} if key else value

    def _content_type(self, headers: dict[str, str]) -> None:
        kind = headers.get("content-type", "")
        if "json" not in kind and "xml" not in kind:
            raise RMError(415, "UnsupportedMediaTypeException", f"unsupported content type {kind!r}")

    def _authenticated(self, user: str) -> None:
        if not user:
            raise RMError(401, "AuthorizationException", "Unable to obtain user name, user not authenticated")

    def _admin(self, user: str) -> None:
        self._authenticated(user)
        if user not in self.admins:
            raise RMError(401, "AuthorizationException", f"User {user} not authorized for action")

    def _node(self, node_id: str) -> StandinNode:
        node = self.nodes.get(node_id)
        if node is None:
            raise RMError(404, "NotFoundException", f"nodeId, {node_id}, is not found")
        return node

    # --- nodes ---------------------------------------------------------------------------------------------

    def _update_node(self, node_id: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        node = self._node(node_id)
        if node.state == "LOST":
            raise RMError(
                500, "YarnRuntimeException", f"Cannot update resource of node {node_id} in state LOST"
            )
        data = _json_body(body)
        resource = data.get("resource") if isinstance(data, dict) else None
        # ResourceOptionInfo ignores unknown fields; a missing nested resource is empty (0 MB, 0 vCores).
        memory = _int_field(resource, "memory")
        vcores = _int_field(resource, "vCores")
        before = {"memory": node.total_mb, "vCores": node.total_vcores}
        node.total_mb, node.total_vcores = memory, vcores
        return self._json(200, {"resourceInfo": before})

    def _signal(self, container_id: str, command: str) -> tuple[int, dict[str, str], bytes]:
        """``signalToContainer``: its refusals are plain-text entities, not ``RemoteException`` bodies."""
        text = {"Content-Type": "text/plain"}
        if command.upper() not in SIGNAL_COMMANDS:
            reason = f"Invalid command: {command.upper()}, valid commands are: [{', '.join(SIGNAL_COMMANDS)}]"
            return 400, text, reason.encode()
        if not _CONTAINER_ID.match(container_id):
            return 500, text, f"Invalid ContainerId: {container_id}".encode()
        if container_id not in self.containers:
            return 500, text, f"Trying to signal an absent container {container_id}".encode()
        self.signals.append((container_id, command.upper()))
        if command.upper() != "OUTPUT_THREAD_DUMP":
            del self.containers[container_id]
        return 200, text, b""

    def _metrics(self) -> dict[str, Any]:
        labels_used = any(n.label for n in self.nodes.values())
        counted = [n for n in self.nodes.values() if not (labels_used and n.label)]
        return {
            "totalMB": sum(n.total_mb for n in counted),
            "totalVirtualCores": sum(n.total_vcores for n in counted),
            "activeNodes": sum(1 for n in self.nodes.values() if n.state == "RUNNING"),
            "lostNodes": sum(1 for n in self.nodes.values() if n.state == "LOST"),
            "appsPending": sum(1 for a in self.apps if a["state"] == "ACCEPTED"),
            "appsRunning": sum(1 for a in self.apps if a["state"] == "RUNNING"),
            "totalNodes": len(self.nodes),
        }

    # --- node labels ---------------------------------------------------------------------------------------

    def _label_write(
        self, verb: str, query: dict[str, list[str]], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        if verb == "add-node-labels":
            items = _as_list(_json_body(body).get("nodeLabelInfo"))
            for item in items:
                name, exclusive = item.get("name"), bool(item.get("exclusivity", False))
                if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", name):
                    raise RMError(400, "IOException", f"label name {name!r} is not valid")
                if name in self.labels and self.labels[name] != exclusive:
                    raise RMError(
                        400, "IOException", f"Exclusivity cannot be modified for an existing label {name}"
                    )
            for item in items:
                self.labels.setdefault(item["name"], bool(item.get("exclusivity", False)))
        elif verb == "replace-node-to-labels":
            entries = _as_list(_json_body(body).get("nodeToLabels"))
            for entry in entries:
                labels = _as_list(entry.get("labels"))
                if len(labels) > 1:
                    raise RMError(
                        400, "IOException", f"node {entry.get('nodeId')} cannot carry more than one label"
                    )
                for label in labels:
                    if label not in self.labels:
                        raise RMError(400, "IOException", f"Label {label} doesn't exist in the cluster")
            for entry in entries:
                labels = _as_list(entry.get("labels"))
                node = self.nodes.get(str(entry.get("nodeId")))
                if node is not None:
                    node.label = labels[0] if labels else None
        else:
            for name in (v for vs in query.get("labels", []) for v in vs.split(",") if v):
                users = [
                    k
                    for k, v in self.conf.items()
                    if k.endswith("accessible-node-labels") and name in v.split(",")
                ]
                if users:
                    raise RMError(
                        400, "IOException", f"Cannot remove label {name}: used by queue ({users[0]})"
                    )
                self.labels.pop(name, None)
                for node in self.nodes.values():
                    if node.label == name:
                        node.label = None
        return 200, {"Content-Type": "text/plain"}, b""

    # --- scheduler configuration ---------------------------------------------------------------------------

    def _scheduler_conf(
        self, method: str, rest: list[str], user: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        if self.conf_store == "file":
            return (
                400,
                {"Content-Type": "text/plain"},
                b"Configuration change only supported by MutableConfScheduler.",
            )
        self._admin(user)
        if method == "GET" and not rest:
            props = [{"name": k, "value": v} for k, v in sorted(self.conf.items())]
            return self._json(200, {"property": self._list(props, None)})
        if method == "GET" and rest == ["version"]:
            return self._json(
                200, {"versionID": str(self.conf_version) if self.old_jersey else self.conf_version}
            )
        if (method, rest) in (("PUT", []), ("POST", ["validate"])):
            self._content_type(headers)
            try:
                new = apply_sched_conf(self.conf, _json_body(body), set(self.labels))
            except RMError as exc:
                return 400, {"Content-Type": "text/plain"}, exc.message.encode()
            if method == "PUT":
                self.conf = new
                self.conf_version += 1
                return 200, {"Content-Type": "text/plain"}, b"Configuration change successfully applied."
            return 200, {"Content-Type": "text/plain"}, b"Configuration change validation successful."
        raise RMError(404, "NotFoundException", "no such scheduler-conf resource")

    def _queue_info(self, path: str) -> dict[str, Any]:
        children = _children(self.conf, path)
        info: dict[str, Any] = {
            "queueName": path.rsplit(".", 1)[-1],
            "queuePath": path,
            "state": self.conf.get(f"{CS}{path}.state", "RUNNING"),
            "capacity": _percent_or_zero(self.conf.get(f"{CS}{path}.capacity", "100")),
        }
        if children:
            info["queues"] = {"queue": [self._queue_info(f"{path}.{c}") for c in children]}
            return info
        apps = [a for a in self.apps if a["queue"] in (path, info["queueName"]) and a["state"] == "RUNNING"]
        info.update(
            {
                "type": "capacitySchedulerLeafQueueInfo",
                "numApplications": len(apps),
                "numPendingApplications": sum(
                    1
                    for a in self.apps
                    if a["queue"] in (path, info["queueName"]) and a["state"] == "ACCEPTED"
                ),
                "numContainers": sum(int(a.get("runningContainers", 0)) for a in apps),
                "resourcesUsed": {
                    "memory": sum(int(a.get("allocatedMB", 0)) for a in apps),
                    "vCores": sum(int(a.get("allocatedVCores", 0)) for a in apps),
                },
            }
        )
        return info


# --- the scheduler-conf mutation and its validation (pure functions over the flat configuration) ----------


def apply_sched_conf(conf: dict[str, str], update: Any, cluster_labels: set[str]) -> dict[str, str]:
    """The configuration after ``update`` (a ``sched-conf`` JSON body), or ``RMError(400)``: the reason."""
    if not isinstance(update, dict):
        raise RMError(400, "BadRequestException", "sched-conf body must be an object")
    new = dict(conf)
    for path in _as_list(update.get("remove-queue")):
        path = str(path)
        if f"{CS}{path}.capacity" not in new and not _children(new, path):
            raise RMError(400, "IOException", f"Queue {path} not found")
        if new.get(f"{CS}{path}.state") != "STOPPED":
            raise RMError(400, "IOException", f"Failed to remove queue {path}: it is not STOPPED")
        parent, leaf = path.rsplit(".", 1)
        siblings = [c for c in _children(new, parent) if c != leaf]
        if parent == "root" and not siblings:
            raise RMError(400, "IOException", "root must keep at least one child queue")
        new[f"{CS}{parent}.queues"] = ",".join(siblings)
        for key in [k for k in new if k.startswith(f"{CS}{path}.")]:
            del new[key]
    for item in _as_list(update.get("add-queue")):
        path, params = str(item.get("queue-name", "")), _params(item.get("params"))
        if "." not in path:
            raise RMError(400, "IOException", f"cannot add queue {path!r}: give the full path")
        parent, leaf = path.rsplit(".", 1)
        if f"{CS}{parent}.capacity" not in new and parent != "root":
            raise RMError(400, "IOException", f"Parent queue {parent} of {path} does not exist")
        if leaf in _children(new, parent):
            raise RMError(400, "IOException", f"Queue {path} already exists")
        if "capacity" not in params:
            raise RMError(400, "IOException", f"Queue {path} is added without a capacity")
        if not _children(new, parent) and parent != "root" and new.get(f"{CS}{parent}.state") != "STOPPED":
            raise RMError(
                400, "IOException", f"Leaf queue {parent} must be STOPPED before it becomes a parent"
            )
        new[f"{CS}{parent}.queues"] = ",".join([*_children(new, parent), leaf])
        new.update({f"{CS}{path}.{k}": v for k, v in params.items()})
    for item in _as_list(update.get("update-queue")):
        # A missing queue is not an error: its keys are stored as orphans, as the real RM does.
        path, params = str(item.get("queue-name", "")), _params(item.get("params"))
        for key, value in params.items():
            if value == "":
                new.pop(f"{CS}{path}.{key}", None)
            else:
                new[f"{CS}{path}.{key}"] = value
    globals_ = update.get("global-updates")
    if globals_ is not None:
        new.update(_params(globals_))
    validate_conf(new, cluster_labels)
    return new


def validate_conf(conf: dict[str, str], cluster_labels: set[str]) -> None:
    """The CapacityScheduler's reinitialisation checks the contract lists; ``RMError(400)`` on the first."""
    if not _children(conf, "root"):
        raise RMError(400, "IOException", "root must keep at least one child queue")
    for parent in _all_parents(conf):
        children = [f"{parent}.{c}" for c in _children(conf, parent)]
        values = [conf.get(f"{CS}{c}.capacity", "0") for c in children]
        forms = {_form(c, v) for c, v in zip(children, values, strict=True)}
        if len(forms) > 1:
            raise RMError(400, "IOException", f"children of {parent} mix capacity forms {sorted(forms)}")
        form = forms.pop()
        if form == "percent":
            total = sum(float(v) for v in values)
            if abs(total - 100.0) > 0.05:
                raise RMError(
                    400, "IOException", f"Illegal capacity sum of {total} for children of queue {parent}"
                )
        if form == "absolute" and _form(parent, conf.get(f"{CS}{parent}.capacity", "100")) == "absolute":
            have = _absolute(conf[f"{CS}{parent}.capacity"])
            for dim in have:
                used = sum(_absolute(v).get(dim, 0) for v in values)
                if used > have[dim]:
                    raise RMError(
                        400, "IOException", f"children of {parent} need {used} {dim}, parent has {have[dim]}"
                    )
        for child, value in zip(children, values, strict=True):
            _check_max(conf, child, value)
        for label in cluster_labels | {k.split(".")[-2] for k in conf if ".accessible-node-labels." in k}:
            label_values = [conf.get(f"{CS}{c}.accessible-node-labels.{label}.capacity") for c in children]
            given = [float(v) for v in label_values if v is not None and _form(parent, v) == "percent"]
            if given and abs(sum(given) - 100.0) > 0.05:
                raise RMError(
                    400,
                    "IOException",
                    f"Illegal capacity sum of {sum(given)} for children of queue {parent} for label={label}",
                )
    for key, value in conf.items():
        queue = key[len(CS) : -len(DEFAULT_LABEL) - 1]
        if key.endswith(f".{DEFAULT_LABEL}") and _exists(conf, queue):  # orphan keys are not checked
            _check_default_label(conf, queue, value, cluster_labels)
        if key.endswith(".accessible-node-labels"):
            for label in (v.strip() for v in value.split(",")):
                if label not in ("", "*") and label not in cluster_labels:
                    raise RMError(
                        400, "IOException", f"NodeLabelManager doesn't include label = {label}, please check."
                    )


def _check_default_label(conf: dict[str, str], queue: str, expression: str, cluster_labels: set[str]) -> None:
    """A queue's default label expression: every label in it must be accessible to the queue (its own
    ``accessible-node-labels``, else its parent's, root's defaulting to ``*``) and known to the cluster, as
    the queue's reinitialisation checks (``SchedulerUtils.checkQueueLabelExpression``)."""
    accessible = _accessible(conf, queue)
    for label in (part.strip() for part in expression.split("&&")):
        if not label:
            continue
        if label not in accessible and "*" not in accessible:
            raise RMError(
                400,
                "IOException",
                f"Invalid default label expression of  queue={queue} doesn't have permission to access all "
                f"labels in default label expression. labelExpression of resource request={expression}. "
                f"Queue labels={','.join(sorted(accessible))}",
            )
        if label not in cluster_labels:
            raise RMError(
                400, "IOException", f"NodeLabelManager doesn't include label = {label}, please check."
            )


def _exists(conf: dict[str, str], queue: str) -> bool:
    if queue == "root":
        return True
    parent, _, leaf = queue.rpartition(".")
    return bool(parent) and leaf in _children(conf, parent) and _exists(conf, parent)


def _accessible(conf: dict[str, str], queue: str) -> set[str]:
    """The labels a queue may use: its own ``accessible-node-labels``, else inherited (root: ``*``)."""
    own = conf.get(f"{CS}{queue}.accessible-node-labels")
    if own is not None:
        return {label.strip() for label in own.split(",") if label.strip()}
    return {"*"} if "." not in queue else _accessible(conf, queue.rsplit(".", 1)[0])


def _check_max(conf: dict[str, str], queue: str, capacity: str) -> None:
    maximum = conf.get(f"{CS}{queue}.maximum-capacity")
    if maximum is None:
        return
    if _form(queue, capacity) == "absolute" and _form(queue, maximum) == "absolute":
        low, high = _absolute(capacity), _absolute(maximum)
        if any(low.get(d, 0) > high.get(d, 0) for d in low):
            raise RMError(
                400, "IOException", f"Illegal queue capacity setting for {queue}: {capacity} > {maximum}"
            )
    elif (
        _form(queue, capacity) == "percent"
        and _form(queue, maximum) == "percent"
        and float(capacity) > float(maximum)
    ):
        raise RMError(
            400, "IOException", f"Illegal queue capacity setting for {queue}: {capacity} > {maximum}"
        )


def _form(queue: str, value: str) -> str:
    value = value.strip()
    if _ABSOLUTE.match(value):
        _absolute(value)
        return "absolute"
    if _WEIGHT.match(value):
        return "weight"
    try:
        number = float(value)
    except ValueError:
        raise RMError(
            400, "NumberFormatException", f"capacity of {queue} is not a number: {value!r}"
        ) from None
    if not 0 <= number <= 100:
        raise RMError(400, "IOException", f"capacity of {queue} must be within 0..100, got {value}")
    return "percent"


def _absolute(value: str) -> dict[str, int]:
    match = _ABSOLUTE.match(value.strip())
    if match is None:
        raise RMError(400, "IOException", f"not an absolute resource: {value!r}")
    out: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in match["body"].split(","))):
        key, _, amount = part.partition("=")
        if key not in ("memory", "memory-mb", "vcores") or not amount.isdigit():
            raise RMError(400, "IOException", f"bad absolute resource entry {part!r}")
        out["memory" if key.startswith("memory") else "vcores"] = int(amount)
    return out


def _percent_or_zero(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return 0.0


def _children(conf: dict[str, str], path: str) -> list[str]:
    return [c.strip() for c in conf.get(f"{CS}{path}.queues", "").split(",") if c.strip()]


def _all_parents(conf: dict[str, str]) -> list[str]:
    out, todo = [], ["root"]
    while todo:
        path = todo.pop()
        children = _children(conf, path)
        if children:
            out.append(path)
            todo.extend(f"{path}.{c}" for c in children)
    return out


def _params(value: Any) -> dict[str, str]:
    """``{"entry": [{"key", "value"}]}`` -> a map. Anything else (a plain object) arrives as an empty map."""
    if not isinstance(value, dict) or "entry" not in value:
        return {}
    return {
        str(e.get("key")): str(e.get("value", "")) for e in _as_list(value["entry"]) if isinstance(e, dict)
    }


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _json_body(body: bytes) -> Any:
    try:
        return json.loads(body or b"{}")
    except ValueError:
        raise RMError(400, "BadRequestException", "body is not valid JSON") from None


def _int_field(data: Any, key: str) -> int:
    if not isinstance(data, dict) or key not in data:
        return 0
    try:
        return int(data[key])
    except (TypeError, ValueError):
        raise RMError(400, "BadRequestException", f"{key} is not an integer") from None


def _stringify(data: Any) -> Any:
    """Old Jersey JSON: every scalar as a string."""
    if isinstance(data, dict):
        return {k: _stringify(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_stringify(v) for v in data]
    if isinstance(data, bool):
        return "true" if data else "false"
    return str(data) if isinstance(data, int | float) else data


# --- the HTTP server --------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def _serve(self) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        rm = self.server.rm
        query = parse_qs(split.query)
        rm.record(self.command, split.path, query, body)
        fault = rm.take_fault(self.command, split.path)
        if fault is not None and fault.kind == "drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault is not None and fault.kind == "hang":
            time.sleep(fault.seconds)
        headers_in = {k.lower(): v for k, v in self.headers.items()}
        auth_headers: dict[str, str] = {}
        if fault is not None and fault.kind == "status":
            status, headers, payload = fault.status, {"Content-Type": "text/plain"}, b"injected failure"
        elif rm.negotiate is not None and split.path.startswith(PREFIX):
            user, auth_headers, refusal = self._authenticate(rm.negotiate, headers_in)
            if refusal is not None:
                status, headers, payload = refusal
            else:
                caller = {**query, "user.name": [user]}  # the filter makes the principal the caller
                status, headers, payload = rm.handle(self.command, split.path, caller, headers_in, body)
        else:
            status, headers, payload = rm.handle(
                self.command, split.path, parse_qs(split.query), headers_in, body
            )
        headers = {**headers, **auth_headers}
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if fault is not None and fault.kind == "close":
            self.send_header("Connection", "close")  # http.server then closes after this answer
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _authenticate(
        self, negotiate: Negotiate, headers_in: dict[str, str]
    ) -> tuple[str, dict[str, str], tuple[int, dict[str, str], bytes] | None]:
        """(user, headers to add, refusal): Hadoop's AuthenticationFilter with the Kerberos handler."""
        clear = {"Set-Cookie": "hadoop.auth=; Path=/; HttpOnly"}
        for part in headers_in.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == "hadoop.auth" and (user := negotiate.user_of(value)) is not None:
                return user, {}, None
        scheme, _, data = headers_in.get("authorization", "").partition(" ")
        if scheme.lower() != "negotiate":
            return "", {}, (401, {**clear, "WWW-Authenticate": "Negotiate"}, b"Authentication required")
        import spnego  # only here: the stand-in runs without pyspnego when Negotiate is off
        from spnego.exceptions import SpnegoError

        acceptor = getattr(self, "_acceptor", None)
        if acceptor is None or acceptor.complete:
            acceptor = self._acceptor = spnego.server(
                hostname=negotiate.hostname, service=negotiate.service, protocol="negotiate"
            )
        try:
            out = acceptor.step(base64.b64decode(data.strip(), validate=True))
        except (SpnegoError, ValueError) as exc:
            self._acceptor = None
            return "", {}, (403, {**clear, "Content-Type": "text/plain"}, f"GSSException: {exc}".encode())
        challenge = "Negotiate" + (f" {base64.b64encode(out).decode()}" if out else "")
        if not acceptor.complete:
            return "", {}, (401, {**clear, "WWW-Authenticate": challenge}, b"")
        negotiate.negotiations += 1
        principal = str(acceptor.client_principal)
        cookie = f"hadoop.auth={negotiate.cookie(principal)}; Path=/; HttpOnly"
        final = "Negotiate" if negotiate.omit_final_token else challenge
        return short_name(principal), {"WWW-Authenticate": final, "Set-Cookie": cookie}, None

    do_GET = do_POST = do_PUT = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: tests read ``StandinRM.received`` instead."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def __init__(self, rm: StandinRM, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.rm = rm
        self.connections: set[socket.socket] = set()

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, address = super().get_request()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # headers and body are two writes
        self.connections.add(conn)
        return conn, address

    def drop_connections(self) -> None:
        """Reset every open connection, as a crashed RM process would."""
        for conn in list(self.connections):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                continue


class RMServer:
    """Serves a ``StandinRM`` on 127.0.0.1 and a free port, in a daemon thread."""

    def __init__(self, rm: StandinRM, port: int = 0) -> None:
        """``port`` 0: a free one."""
        self.rm = rm
        self._server = _Server(rm, port)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="standin-rm", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def connections_accepted(self) -> int:
        """How many TCP connections clients have opened so far."""
        return len(self._server.connections)

    def start(self) -> RMServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._server.drop_connections()
        self._thread.join(timeout=5)


def main() -> None:
    """Run as a process: ``python standin_rm.py --nodes 5000``; prints ``PORT <n>`` once it listens."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100)
    args = parser.parse_args()
    server = RMServer(StandinRM.with_nodes(args.nodes))
    print(f"PORT {server.url.rsplit(':', 1)[1]}", flush=True)
    server._server.serve_forever()


if __name__ == "__main__":
    main()
