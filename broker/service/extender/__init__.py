"""The kube-scheduler HTTP extender: enforces the plan and the team quotas at scheduling time.

kube-scheduler POSTs every offline pod (one requesting the broker's managed extended resources) to ``filter``,
``prioritize`` and ``preempt`` (and ``bind``, when an injected ``binder`` does the binding); the extender
answers from tables built once per plan (``tables``), with pure decisions (``filtering``, ``scoring``,
``preemption``) over pods read from the wire (``wire``, ``pod``), and a ledger of pods admitted since the plan
(``ledger``). ``extender`` joins them behind bytes-in/bytes-out verbs, ``app`` serves them over HTTP,
``plan_source`` feeds plan documents in, ``plan_document`` turns them into tables, ``server`` runs uvicorn
(with TLS).
"""

from broker.service.extender.app import DEFAULT_MAX_BODY_BYTES, create_app, follow_plans
from broker.service.extender.binder import Binder
from broker.service.extender.conventions import DEFAULT_DOMAIN, Conventions
from broker.service.extender.extender import (
    BIND_NOT_CONFIGURED,
    Extender,
    ExtenderConfig,
    Reply,
    StalePolicy,
    Verb,
)
from broker.service.extender.plan_document import PlanDocument, tables_from_document
from broker.service.extender.plan_source import FilePlanSource, PlanSource, PlanUpdate
from broker.service.extender.server import TlsFiles, uvicorn_config
from broker.service.extender.tables import PlanTables, build_tables
from broker.service.extender.wire import BindingArgs

__all__ = [
    "BIND_NOT_CONFIGURED",
    "DEFAULT_DOMAIN",
    "DEFAULT_MAX_BODY_BYTES",
    "Binder",
    "BindingArgs",
    "Conventions",
    "Extender",
    "ExtenderConfig",
    "FilePlanSource",
    "PlanDocument",
    "PlanSource",
    "PlanTables",
    "PlanUpdate",
    "Reply",
    "StalePolicy",
    "TlsFiles",
    "Verb",
    "build_tables",
    "create_app",
    "follow_plans",
    "tables_from_document",
    "uvicorn_config",
]
