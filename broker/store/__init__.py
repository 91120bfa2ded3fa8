"""The policy store: versioned quota policies (with author, time and diff), rollback and the last observation.

``PolicyStore`` is the contract (compare-and-set on the version); ``MemoryStore`` and ``FileStore`` implement
it (a Redis one can be added behind the same protocol). ``PolicyLog`` is the administration both the CLI and
the admin API use on top of any store.
"""

from broker.store.base import PolicyStore
from broker.store.file import FileStore, default_path
from broker.store.memory import MemoryStore
from broker.store.policy_log import Outcome, PolicyLog, Preview
from broker.store.records import Action, Observation, PolicyRecord

__all__ = [
    "Action",
    "FileStore",
    "MemoryStore",
    "Observation",
    "Outcome",
    "PolicyLog",
    "PolicyRecord",
    "PolicyStore",
    "Preview",
    "default_path",
]
