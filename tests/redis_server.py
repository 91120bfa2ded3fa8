"""A real ``redis-server`` for tests: started on a free loopback port, killable with SIGKILL and restartable.

Any test package may use it (``from tests.redis_server import RedisServer``). The server is durable the way
production must be (``appendonly yes``, ``appendfsync always``, no RDB snapshots), keeps its files in a test
directory, and ``restart`` brings it back on the same port and directory, so a client that knew the old
address must find the data there again. When no ``redis-server`` binary is installed, ``start`` skips the test
with a message saying so.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

START_TIMEOUT_S = 10.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RedisServer:
    """One ``redis-server`` process bound to 127.0.0.1, with its append-only files in ``directory``."""

    def __init__(self, directory: Path, *extra_args: str) -> None:
        self.directory = directory
        self.extra_args = extra_args
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start on a free port (a fresh one per attempt, in case another process took it meanwhile)."""
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("no redis-server binary on PATH (apt-get install redis-server): Redis tests skipped")
        self.directory.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            self.port = _free_port()
            if self._launch(binary):
                return self
        raise RuntimeError(f"redis-server did not start; see {self.directory / 'redis.log'}")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final fsync; only what Redis had written and fsync-ed survives."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def restart(self) -> None:
        """Start again on the same port and directory (after ``kill``), replaying the append-only file."""
        binary = shutil.which("redis-server")
        assert binary is not None
        if not self._launch(binary):
            raise RuntimeError(f"redis-server did not restart; see {self.directory / 'redis.log'}")

    def client(self) -> redis.Redis:
        """A plain client, for tests that must act behind the store's back (another writer, a tamperer)."""
        return redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True, socket_timeout=5)

    def _launch(self, binary: str) -> bool:
        with open(self.directory / "redis.log", "ab") as log:  # the child keeps its own copy of the handle
            self._process = subprocess.Popen(
                [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "yes",
                 "--appendfsync", "always", "--dir", str(self.directory), "--daemonize", "no",
                 *self.extra_args],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._process = None
                return False
            with contextlib.suppress(redis.RedisError), self.client() as probe:
                if probe.ping():
                    return True
            time.sleep(0.02)
        self.kill()
        return False


@contextlib.contextmanager
def running_redis(directory: Path, *extra_args: str) -> Iterator[RedisServer]:
    """A started server, killed when the block ends (also when the test fails)."""
    server = RedisServer(directory, *extra_args).start()
    try:
        yield server
    finally:
        server.kill()
