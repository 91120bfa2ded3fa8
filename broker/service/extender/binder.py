"""Who binds pods when the extender serves ``bind``: an injected ``Binder``.

kube-scheduler hands the binding to an extender only when its configuration sets ``bindVerb`` (at most one
extender may). The broker does not need that to enforce anything, so ``bind`` is off by default: an extender
built without a binder answers every bind with ``Error: bind is not configured ...`` and the scheduler's
``bindVerb`` should stay unset (the scheduler then binds pods itself, as usual).

With a binder, the extender asks it to create the pod's ``Binding`` through the Kubernetes API and, once that
succeeded, records the binding in its ledger (see ``ledger``). The binder is the only part that does I/O; it
reports failure as a ``PeerError`` (the API refused or could not be reached), which becomes the answer's
``Error``, so the scheduler puts the pod back in its queue.
"""

from __future__ import annotations

from typing import Protocol

from broker.service.extender.wire import BindingArgs


class Binder(Protocol):
    """Binds a pod to a node through the Kubernetes API."""

    async def bind(self, binding: BindingArgs) -> None:
        """Create the binding of ``binding.pod_namespace/pod_name`` (UID ``pod_uid`` when given) to
        ``binding.node``; raise ``PeerError`` if the API refuses it or fails."""
        ...


__all__ = ["Binder"]
