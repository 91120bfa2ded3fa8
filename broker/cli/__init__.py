"""The ``broker`` command: wiring only. Each subcommand group lives in its own module and registers in ``main``."""
