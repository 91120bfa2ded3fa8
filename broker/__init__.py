"""Elastic quota scheduler and YARN-on-Kubernetes resource broker.

Layers (checked by import-linter, see ``pyproject.toml``)::

    broker.cli                     wiring: commands
    broker.service                 wiring: control loop, HTTP servers
    plugins | yarn_bridge | store  adapters: talk to the world
    capacity | quota | scheduler   pure decisions
    broker.model                   values
"""

__version__ = "0.1.0"
