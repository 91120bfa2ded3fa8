"""A real uvicorn server on 127.0.0.1 and a free port, in a background thread, for tests over HTTP."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import uvicorn
from starlette.applications import Starlette

from broker.service.extender import TlsFiles, uvicorn_config


@contextlib.contextmanager
def live_server(app: Starlette, tls: TlsFiles | None = None) -> Iterator[str]:
    """Serve ``app`` while the block runs; yields its base URL."""
    server = uvicorn.Server(uvicorn_config(app, "127.0.0.1", 0, tls, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
