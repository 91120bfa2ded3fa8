"""Wiring: the long-running services (control loop, HTTP servers) that join adapters and decisions."""
