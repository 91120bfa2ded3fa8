"""Broker replicas as real processes (``broker serve --config``), for the failover tests: they can be killed with
SIGKILL or paused with SIGSTOP, which no in-process stand-in can imitate."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServeProcess:
    """One ``broker serve`` process with its own configuration file and log."""

    def __init__(self, directory: Path, name: str, config: dict[str, Any]) -> None:
        self.name = name
        self.port = free_port()
        self.config_path = directory / f"{name}.yaml"
        self.log_path = directory / f"{name}.log"
        full = {**config, "replica": name, "http": {**config.get("http", {}), "host": "127.0.0.1", "port": self.port}}
        self.config_path.write_text(yaml.safe_dump(full), encoding="utf-8")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServeProcess:
        broker = shutil.which("broker") or str(Path(sys.executable).with_name("broker"))
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen([broker, "serve", "--config", str(self.config_path)],
                                            stdout=log, stderr=subprocess.STDOUT, env={**os.environ})
        return self

    def ready(self) -> dict[str, Any] | None:
        """The replica's /readyz body, or None when it does not answer."""
        try:
            response = httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=1.0)
        except httpx.HTTPError:
            return None
        body: dict[str, Any] = response.json()
        return body

    def metrics(self) -> str:
        return httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=2.0).text

    def wait_for(self, predicate: Any, timeout_s: float, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            body = self.ready()
            if body is not None and predicate(body):
                return body
            self._check_alive()
            time.sleep(0.1)
        raise AssertionError(f"{self.name}: {what} not seen within {timeout_s} s; log:\n{self.log()[-3000:]}")

    def _check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.process.returncode}; log:\n{self.log()[-3000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGCONT)
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
