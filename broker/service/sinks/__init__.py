"""The control loop's sinks: the peers that enforce a plan's offline capacity (see ``base`` for the contract).

- ``yarn``: one YARN cluster's ResourceManager, through the YARN bridge; victims signalled through the RM;
- ``kubernetes``: one Kubernetes cluster's node status (extended resources); victims evicted through the
  ``policy/v1`` Eviction subresource.
"""

from broker.service.sinks.base import CapacitySink, Eviction, SinkReport
from broker.service.sinks.kubernetes import KubernetesSink, kubernetes_sinks
from broker.service.sinks.yarn import ContainerSignal, YarnSink, yarn_sinks

__all__ = [
    "CapacitySink",
    "ContainerSignal",
    "Eviction",
    "KubernetesSink",
    "SinkReport",
    "YarnSink",
    "kubernetes_sinks",
    "yarn_sinks",
]
