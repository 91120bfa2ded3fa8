"""The node agent: reads the node's usage (procfs) and its offline containers (cgroup v2) every second and streams
them to the broker over gRPC (``wire``); which pods are drivers it learns from the Kubernetes API
(``plugins.node_agent.driver_pods``, not re-exported here: it needs the Kubernetes client, which an agent without
``--driver-pods`` never imports); see ``docs/agent.md``."""

from plugins.node_agent.cgroup import Discovery, FoundContainer, cgroup2_mount, read_usage
from plugins.node_agent.client import Agent, AgentConfig, AgentStats, ClientTls, SampleSource, read_token
from plugins.node_agent.procfs import CpuTimes, MemInfo, cpu_milli_between, read_cpu_times, read_meminfo
from plugins.node_agent.sampler import Sampler
from plugins.node_agent.selectors import DEFAULT_SELECTORS, check_selector
from plugins.node_agent.wire import (
    MAX_CONTAINERS,
    MAX_MESSAGE_BYTES,
    NOT_LEADER,
    REPORT_PATH,
    SERVICE,
    NodeSample,
    OfflineContainer,
    ReportAck,
    decode_ack,
    decode_sample,
    encode,
)

__all__ = [
    "DEFAULT_SELECTORS",
    "MAX_CONTAINERS",
    "MAX_MESSAGE_BYTES",
    "NOT_LEADER",
    "REPORT_PATH",
    "SERVICE",
    "Agent",
    "AgentConfig",
    "AgentStats",
    "ClientTls",
    "CpuTimes",
    "Discovery",
    "FoundContainer",
    "MemInfo",
    "NodeSample",
    "OfflineContainer",
    "ReportAck",
    "SampleSource",
    "Sampler",
    "cgroup2_mount",
    "check_selector",
    "cpu_milli_between",
    "decode_ack",
    "decode_sample",
    "encode",
    "read_cpu_times",
    "read_meminfo",
    "read_token",
    "read_usage",
]
