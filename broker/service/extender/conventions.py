"""The names by which a pod tells the extender what it is: managed resources, team, role, class, disk.

kube-scheduler sends a pod to the extender only when it requests one of the ``managedResources``; the same
names are what the node sink writes to node status, so one domain ties the three together:

============================================  ============================================================
``<domain>/batch-cpu``                        extended resource, offline CPU in **millicores** (``2000`` = 2
cores) ``<domain>/batch-memory``                     extended resource, offline memory in bytes (``4Gi``)
label ``<domain>/team``                       the team, when the namespace is shared by several teams label
``<domain>/class``                      the demand class (a plan placement's ``demand_class``) label
``<domain>/role: am`` or label ``spark-role: driver``                  an ApplicationMaster / Spark driver:
stable nodes only, evicted last label or annotation ``<domain>/needs-disk``   ``"true"``: writes shuffle data
locally, ``disk`` nodes only
============================================  ============================================================

The default domain is ``broker.elastic.io``. A pod is *offline* when it requests (or limits) either managed
resource in any container or init container, exactly the test kube-scheduler applies before calling the
extender.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_DOMAIN = "broker.elastic.io"
"""The resource and label domain the broker uses unless configured otherwise."""

SPARK_ROLE_LABEL = "spark-role"
"""The label Spark on Kubernetes puts on its pods (``driver`` / ``executor``)."""


@dataclass(frozen=True, slots=True)
class Conventions:
    """Every name derived from one domain, spelled out once so that the hot path compares plain strings."""

    domain: str
    batch_cpu: str
    batch_memory: str
    team_label: str
    class_label: str
    role_label: str
    needs_disk_key: str

    @classmethod
    def for_domain(cls, domain: str = DEFAULT_DOMAIN) -> Conventions:
        """The names under ``domain`` (see the module table)."""
        return cls(
            domain=domain,
            batch_cpu=f"{domain}/batch-cpu",
            batch_memory=f"{domain}/batch-memory",
            team_label=f"{domain}/team",
            class_label=f"{domain}/class",
            role_label=f"{domain}/role",
            needs_disk_key=f"{domain}/needs-disk",
        )


__all__ = ["DEFAULT_DOMAIN", "SPARK_ROLE_LABEL", "Conventions"]
