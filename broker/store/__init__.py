"""The policy store: versioned quota policies (with author, time and diff), rollback and the last observation.

``PolicyStore`` is the contract (compare-and-set on the version); ``MemoryStore``, ``FileStore`` and
``RedisStore`` implement it, and ``RedisStore`` also keeps the last plan, the audit log and leases with
fencing tokens for replicas sharing one Redis. ``open_store`` picks the store from ``--store`` /
``$BROKER_STORE``. ``PolicyLog`` is the administration both the CLI and the admin API use on top of any store.
"""

from broker.store.base import PolicyStore
from broker.store.file import FileStore, default_path
from broker.store.location import is_redis_url, open_store
from broker.store.memory import MemoryStore
from broker.store.policy_log import Outcome, PolicyLog, Preview
from broker.store.records import Action, AuditEntry, Fence, Observation, PolicyRecord, StoredPlan
from broker.store.redis_store import Durability, RedisSettings, RedisStore

__all__ = [
    "Action",
    "AuditEntry",
    "Durability",
    "Fence",
    "FileStore",
    "MemoryStore",
    "Observation",
    "Outcome",
    "PolicyLog",
    "PolicyRecord",
    "PolicyStore",
    "Preview",
    "RedisSettings",
    "RedisStore",
    "StoredPlan",
    "default_path",
    "is_redis_url",
    "open_store",
]
