"""The fallback for RMs without the node-resource REST endpoint: ``dynamic-resources.xml`` + ``rmadmin``.

Older ResourceManagers read node capacities from ``$HADOOP_CONF_DIR/dynamic-resources.xml`` when an operator
runs ``yarn rmadmin -refreshNodesResources``. The file lists the NodeIds in ``yarn.resource.dynamic.nodes``
and, per node, ``yarn.resource.dynamic.<host:port>.memory`` (MB), ``.vcores`` and ``.overcommittimeout`` (ms,
negative = no timeout). The bridge renders the file and the command; running the command on an RM host is the
deployment's job (the broker has no shell on RM hosts). After the refresh, ``broker yarn sync`` reads
``totalResource`` back as usual and reports any node the refresh did not change.
"""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape

from broker.yarn_bridge.nodes import NodeTarget

REFRESH_COMMAND = ("yarn", "rmadmin", "-refreshNodesResources")
"""Makes the RM re-read ``dynamic-resources.xml``."""


def render(targets: Sequence[NodeTarget], overcommit_timeout_ms: int) -> str:
    """The ``dynamic-resources.xml`` that sets every target's capacity (sorted by NodeId: stable diffs)."""
    ordered = sorted(targets, key=lambda t: t.node_id)
    props = [("yarn.resource.dynamic.nodes", ",".join(t.node_id for t in ordered))]
    for target in ordered:
        prefix = f"yarn.resource.dynamic.{target.node_id}"
        props += [
            (f"{prefix}.memory", str(target.want.memory_mb)),
            (f"{prefix}.vcores", str(target.want.vcores)),
            (f"{prefix}.overcommittimeout", str(overcommit_timeout_ms)),
        ]
    body = "".join(
        f"  <property>\n    <name>{escape(k)}</name>\n    <value>{escape(v)}</value>\n  </property>\n"
        for k, v in props
    )
    return f'<?xml version="1.0"?>\n<configuration>\n{body}</configuration>\n'


def update_command(target: NodeTarget, overcommit_timeout_ms: int) -> tuple[str, ...]:
    """The one-node alternative: ``yarn rmadmin -updateNodeResource NodeID MemMB vCores [timeout]``."""
    return (
        "yarn",
        "rmadmin",
        "-updateNodeResource",
        target.node_id,
        str(target.want.memory_mb),
        str(target.want.vcores),
        str(overcommit_timeout_ms),
    )


__all__ = ["REFRESH_COMMAND", "render", "update_command"]
