"""The extender itself: request bytes in, answer bytes out, from the current plan's tables and the ledger.

This is the part the HTTP app and the benchmark share, with no HTTP in it: ``handle(verb, body)`` reads the
request, decides with the pure functions of ``filtering``, ``scoring`` and ``preemption``, encodes the answer
and records metrics. A malformed body is a 400 with a message naming the field; nothing a client sends makes
it raise.

**No plan, or a stale one.** A plan older than ``max_plan_age_s`` (by its ``created_at_s``) is stale. For
offline pods the extender then follows ``stale_policy``:

- ``closed`` (default): every candidate goes to ``FailedAndUnresolvableNodes`` with the reason (``no plan
  yet``, ``plan v7 is 95 s old, limit 60 s``); the pod waits, and is never placed against capacity nobody
  planned;
- ``open``: every candidate passes, and the broker's quotas and labels are not enforced until a plan arrives;
- ``error``: filter answers with ``Error`` set, so kube-scheduler decides: an ``ignorable`` extender is
  skipped (fail open), otherwise the pod's scheduling attempt fails (fail closed, retried with back-off).

Prioritize scores every node 0 and preempt answers "no candidate node" while the plan is unusable, whatever
the policy (under ``open``, preempt keeps the scheduler's candidates). Pods that request no managed resource
are not the broker's business: every node passes, scores 0, and preemption is left as proposed.

**Bind** is off unless a ``Binder`` is given (see ``binder``): without one, every bind is answered with
``Error`` saying so. It is the one verb that waits on I/O, so it is a coroutine (``bind``), not ``handle``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from prometheus_client import CollectorRegistry

from broker.errors import InputError, PeerError
from broker.model.plan import Plan
from broker.model.resources import Resources
from broker.service.extender.binder import Binder
from broker.service.extender.conventions import Conventions
from broker.service.extender.filtering import (
    PodKind,
    filter_nodes,
    kind_of,
    pass_all,
    quota_shortfall,
    refuse,
    reject_all,
    team_of,
    team_usage,
)
from broker.service.extender.ledger import Ledger, SeenPod
from broker.service.extender.metrics import ExtenderMetrics
from broker.service.extender.pod import PodFacts, read_pod
from broker.service.extender.preemption import choose_victims
from broker.service.extender.scoring import score_nodes
from broker.service.extender.tables import PlanTables, build_tables
from broker.service.extender.wire import (
    ExtenderArgs,
    FilterResult,
    PreemptionArgs,
    read_binding_args,
    read_extender_args,
    read_preemption_args,
    write_binding_result,
    write_error,
    write_filter_result,
    write_host_priorities,
    write_preemption_result,
)

_MAX_MEMO_KINDS = 4096
"""Pod kinds whose per-node verdicts are memoised per plan; past this the memo starts over."""


class Verb(StrEnum):
    """The extender verbs served; ``bind`` only does something when a binder is configured."""

    FILTER = "filter"
    PRIORITIZE = "prioritize"
    PREEMPT = "preempt"
    BIND = "bind"


BIND_NOT_CONFIGURED = ("bind is not configured on this extender (no binder); remove bindVerb from the "
                       "scheduler's extender configuration")


log = logging.getLogger(__name__)


class StalePolicy(StrEnum):
    """What filter does for offline pods when there is no plan or it is stale (see the module docstring)."""

    CLOSED = "closed"
    OPEN = "open"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class ExtenderConfig:
    """How the extender behaves; every field has a CLI flag in ``broker serve extender``."""

    conventions: Conventions = field(default_factory=Conventions.for_domain)
    cluster: str | None = None
    max_plan_age_s: float = 60.0
    stale_policy: StalePolicy = StalePolicy.CLOSED
    assume_ttl_s: float = 60.0


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP status and JSON body."""

    status: int
    body: bytes


@dataclass(frozen=True, slots=True)
class _Managed:
    """An offline pod of a known team, under a usable plan."""

    facts: PodFacts
    kind: PodKind
    tables: PlanTables


class Extender:
    """Answers extender requests from the current plan. Runs on one event loop; not thread-safe."""

    def __init__(self, config: ExtenderConfig, registry: CollectorRegistry | None = None,
                 clock: Callable[[], float] = time.time, binder: Binder | None = None) -> None:
        self.config = config
        self._clock = clock
        self._binder = binder
        self._tables: PlanTables | None = None
        self._memo: dict[PodKind, dict[str, str]] = {}
        self._score_memo: dict[PodKind, dict[str, int]] = {}
        self.ledger = Ledger(config.assume_ttl_s)
        self.last_load_error = ""
        self.metrics = ExtenderMetrics(registry or CollectorRegistry(), self._plan_age_s)

    # --- plans ----------------------------------------------------------------------------------------------

    @property
    def tables(self) -> PlanTables | None:
        """The tables answered from, or ``None`` before the first plan."""
        return self._tables

    def install(self, plan: Plan) -> None:
        """Answer from ``plan`` from now on (see ``install_tables``)."""
        self.install_tables(build_tables(plan, self.config.cluster))

    def install_tables(self, tables: PlanTables) -> None:
        """Swap in tables already built (``build_tables`` may run off the event loop).

        Tables of a plan older (by version) than the current one are refused with an ``InputError``: a plan
        source replaying an old plan must not roll the quotas back.
        """
        current = self._tables
        if current is not None and tables.version < current.version:
            raise InputError("version",
                             f"plan v{tables.version} is older than the current v{current.version}")
        self._tables = tables
        self._memo, self._score_memo = {}, {}
        self.ledger.settle(tables.created_at_s)
        self.last_load_error = ""
        self.metrics.plan_version.set(tables.version)
        self.metrics.plan_loads.labels("ok").inc()

    def record_load_error(self, error: InputError) -> None:
        """Note that the newest plan could not be used; answers continue from the current one."""
        self.last_load_error = str(error)
        self.metrics.plan_loads.labels("error").inc()

    def _plan_age_s(self) -> float:
        return self._clock() - self._tables.created_at_s if self._tables is not None else 0.0

    def plan_problem(self) -> str:
        """Why the plan cannot be used now (``""`` when it can)."""
        tables = self._tables
        if tables is None:
            return "no plan yet"
        age = self._clock() - tables.created_at_s
        if age > self.config.max_plan_age_s:
            return f"plan v{tables.version} is {age:.0f} s old, limit {self.config.max_plan_age_s:g} s"
        return ""

    # --- requests -------------------------------------------------------------------------------------------

    def handle(self, verb: Verb, body: bytes) -> Reply:
        """Answer one filter, prioritize or preempt request, timing it and counting its outcome; bad input
        becomes a 400. ``bind`` waits on the API, so it goes through ``bind``."""
        if verb is Verb.BIND:
            raise ValueError("bind is answered by Extender.bind")
        started = time.perf_counter()
        try:
            if verb is Verb.FILTER:
                result, out = self._filter(body)
            elif verb is Verb.PRIORITIZE:
                result, out = self._prioritize(body)
            else:
                result, out = self._preempt(body)
            reply = Reply(200, out)
        except InputError as exc:
            result, reply = "bad_request", Reply(400, write_error(str(exc)))
        except Exception:  # a bug, never the client's fault: answer 500, count it, keep serving
            log.exception("extender %s failed", verb.value, extra={"verb": verb.value})
            result, reply = "internal_error", Reply(500, write_error("internal error"))
        self._count(verb, result, started)
        return reply

    def _count(self, verb: Verb, result: str, started: float) -> None:
        self.metrics.answered(verb.value, result, time.perf_counter() - started)

    async def bind(self, body: bytes) -> Reply:
        """Answer a bind request: through the binder, then recorded in the ledger (see ``binder``).

        Outcomes: ``ok``; ``not_configured`` (no binder); ``conflict`` (this extender bound the pod to
        another node); ``error`` (the binder failed); ``bad_request``. All but the last are 200 answers whose
        ``Error`` says what happened, as the scheduler reads them.
        """
        started = time.perf_counter()
        try:
            binding = read_binding_args(body)
        except InputError as exc:
            self._count(Verb.BIND, "bad_request", started)
            return Reply(400, write_error(str(exc)))
        pod = f"{binding.pod_namespace}/{binding.pod_name}"
        bound = self.ledger.bound_node(binding.pod_uid) if binding.pod_uid else None
        if self._binder is None:
            result, error = "not_configured", BIND_NOT_CONFIGURED
        elif bound == binding.node:
            result, error = "ok", ""
        elif bound is not None:
            result, error = "conflict", f"pod {pod} is already bound to node {bound}"
        else:
            try:
                await self._binder.bind(binding)
            except PeerError as exc:
                result, error = "error", f"binding pod {pod} to node {binding.node} failed: {exc}"
            except Exception:  # a binder bug: reported to the scheduler as a failed bind, counted, logged
                log.exception("extender bind failed", extra={"verb": Verb.BIND.value})
                result, error = "internal_error", f"binding pod {pod} to node {binding.node} failed: internal error"
            else:
                result, error = "ok", ""
                if binding.pod_uid:
                    self.ledger.bind(binding.pod_uid, binding.node, self._clock())
        self._count(Verb.BIND, result, started)
        return Reply(200, write_binding_result(error))

    def _managed(self, pod: dict[str, object]) -> tuple[str, _Managed | str]:
        """``(result label, the pod under a usable plan)``, or ``(label, reason)`` when the broker cannot
        judge it.

        The label ``unmanaged`` comes with an empty reason: online pods are not the broker's business.
        """
        facts = read_pod(pod, self.config.conventions)
        if not facts.offline:
            return "unmanaged", ""
        problem = self.plan_problem()
        tables = self._tables
        if problem or tables is None:
            return "no_plan", problem
        team, why = team_of(facts, tables, self.config.conventions.team_label)
        if team is None:
            return "unknown_team", why
        return "ok", _Managed(facts, kind_of(facts, team), tables)

    def _memo_for(self, kind: PodKind) -> dict[str, str]:
        memo = self._memo.get(kind)
        if memo is None:
            if len(self._memo) >= _MAX_MEMO_KINDS:
                self._memo = {}
            memo = self._memo[kind] = {}
        return memo

    def _score_memo_for(self, kind: PodKind) -> dict[str, int]:
        memo = self._score_memo.get(kind)
        if memo is None:
            if len(self._score_memo) >= _MAX_MEMO_KINDS:
                self._score_memo = {}
            memo = self._score_memo[kind] = {}
        return memo

    def _filter(self, body: bytes) -> tuple[str, bytes]:
        args = read_extender_args(body)
        label, managed = self._managed(args.pod)
        if isinstance(managed, str):
            result = self._filter_unjudged(args, label, managed)
        else:
            result = self._filter_managed(args, managed)
            label = "ok" if result.passed else "none"
        metrics = self.metrics
        metrics.nodes_passed.inc(len(result.passed))
        metrics.nodes_failed.inc(len(result.failed))
        metrics.nodes_unresolvable.inc(len(result.unresolvable))
        return label, write_filter_result(args, result)

    def _filter_unjudged(self, args: ExtenderArgs, label: str, reason: str) -> FilterResult:
        if label == "unmanaged":
            return pass_all(args.candidates)
        if label == "no_plan":
            policy = self.config.stale_policy
            if policy is StalePolicy.OPEN:
                return pass_all(args.candidates)
            if policy is StalePolicy.ERROR:
                return refuse(reason)
        return reject_all(args.candidates, reason)

    def _filter_managed(self, args: ExtenderArgs, managed: _Managed) -> FilterResult:
        now = self._clock()
        kind, tables = managed.kind, managed.tables
        team = tables.teams.get(kind.team)
        if team is None:
            return reject_all(args.candidates, f"team {kind.team} has no quota in plan v{tables.version}")
        shortfall = quota_shortfall(team, self.ledger.charged(kind.team, now), kind.shape)
        result = filter_nodes(args.candidates, tables, kind, shortfall, self._memo_for(kind))
        self.ledger.remember(kind.team, managed.facts)
        if result.passed and managed.facts.uid:
            self.ledger.assume(managed.facts.uid, kind.team, kind.shape, now)
        return result

    def _prioritize(self, body: bytes) -> tuple[str, bytes]:
        args = read_extender_args(body)
        label, managed = self._managed(args.pod)
        if isinstance(managed, str):
            return label, write_host_priorities((name, 0) for name in args.candidates)
        memo = self._score_memo_for(managed.kind)
        scores = score_nodes(args.candidates, managed.tables, managed.kind, memo)
        return label, write_host_priorities(zip(args.candidates, scores, strict=True))

    def _preempt(self, body: bytes) -> tuple[str, bytes]:
        args = read_preemption_args(body)
        label, managed = self._managed(args.pod)
        if isinstance(managed, str):
            keep_all = label == "unmanaged" or (label == "no_plan"
                                                and self.config.stale_policy is StalePolicy.OPEN)
            return label, write_preemption_result(args.nodes if keep_all else {})
        return self._preempt_managed(args, managed)

    def _preempt_managed(self, args: PreemptionArgs, managed: _Managed) -> tuple[str, bytes]:
        now = self._clock()
        kind, tables = managed.kind, managed.tables
        team = tables.teams.get(kind.team)
        if team is None or quota_shortfall(team, self.ledger.charged(kind.team, now), kind.shape):
            # Over its quota with this pod, the team would be borrowing: it may not reclaim from others.
            return "none", write_preemption_result({})
        known: dict[str, SeenPod] = {}
        for victims in args.nodes.values():
            for victim in victims.pods:
                seen = self._victim(victim.uid, victim.pod, tables)
                if seen is not None:
                    known[victim.uid] = seen
        runtime: dict[str, Resources] = {}
        usage: dict[str, Resources] = {}
        for name in {seen.team for seen in known.values()}:
            entry = tables.teams.get(name)
            if entry is not None:
                runtime[name] = entry.quota
                usage[name] = team_usage(entry, self.ledger.charged(name, now))
        decision = choose_victims(args.nodes, tables, kind, known, runtime, usage)
        return ("ok" if decision.kept else "none"), write_preemption_result(decision.kept)

    def _victim(self, uid: str, pod: dict[str, object] | None, tables: PlanTables) -> SeenPod | None:
        """The victim as an offline pod of a known team: from its Pod when sent, else from the ledger."""
        if pod is None:
            return self.ledger.seen(uid)
        facts = read_pod(pod, self.config.conventions, f"victim {uid}")
        if not facts.offline:
            return None
        team, _ = team_of(facts, tables, self.config.conventions.team_label)
        return SeenPod(team, facts) if team is not None else None


__all__ = ["BIND_NOT_CONFIGURED", "Extender", "ExtenderConfig", "Reply", "StalePolicy", "Verb"]
