"""The node agent: reads the node's usage (procfs) and its offline containers (cgroup v2) every second and streams
them to the broker over gRPC (``wire``); see ``docs/agent.md``."""

from plugins.node_agent.cgroup import Discovery, FoundContainer, cgroup2_mount, read_usage
from plugins.node_agent.client import Agent, AgentConfig, AgentStats, ClientTls, SampleSource, read_token
from plugins.node_agent.procfs import CpuTimes, MemInfo, cpu_milli_between, read_cpu_times, read_meminfo
from plugins.node_agent.sampler import Sampler
from plugins.node_agent.wire import (
    MAX_CONTAINERS,
    MAX_MESSAGE_BYTES,
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
    "MAX_CONTAINERS",
    "MAX_MESSAGE_BYTES",
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
    "cpu_milli_between",
    "decode_ack",
    "decode_sample",
    "encode",
    "read_cpu_times",
    "read_meminfo",
    "read_token",
    "read_usage",
]
