"""The greedy baseline: first-fit decreasing, as a standard scheduler places.

Classes in order of priority, then size (largest first); each class fills the nodes in inventory order, every
hard constraint respected (labels, cluster, data reachability, capacity, NIC, links, quota, demand, AM
share). AM
classes that executors name go first, as YARN allocates an application's AM before its executors. This is what
YARN's and Kubernetes' schedulers get when they take requests one by one: they do not look ahead, so general
work lands on the scarce ``stable`` and ``disk`` nodes and on the cross-site links before the work that can
use nothing else arrives. It is reported with every plan, and the planner never returns a plan scoring below
it.
"""

from __future__ import annotations

import numpy as np

from broker.scheduler.compiled import Compiled
from broker.scheduler.objective import Terms
from broker.scheduler.residual import Residual


def greedy(compiled: Compiled, terms: Terms) -> Residual:
    """Place every class first-fit in (AM classes named by executors first, priority desc, size desc, input
    order) order."""
    state = Residual.start(compiled)
    everywhere = np.arange(compiled.n_nodes)
    leads = compiled.leads
    order = sorted(range(compiled.n_classes),
                   key=lambda k: (not leads[k], -int(compiled.priority[k]), -float(terms.share[k]), k))
    for k in order:
        state.first_fit(k, everywhere, int(compiled.count[k]))
    return state


__all__ = ["greedy"]
