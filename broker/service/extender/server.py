"""Running the extender app under uvicorn, with TLS when the scheduler uses ``enableHTTPS``.

One process, one event loop: the decisions are short CPU work answered inline, so more throughput comes from
more replicas behind the Service, not from threads. uvicorn picks uvloop and httptools when they are
installed.

TLS mirrors the scheduler's ``tlsConfig``: the server presents ``cert_file``/``key_file`` (the scheduler
checks it against its ``caFile`` and ``serverName``); with ``client_ca_file`` the server also requires a
client certificate signed by that CA (the scheduler's ``certFile``/``keyFile``), i.e. mutual TLS.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from starlette.applications import Starlette

from broker.errors import InputError


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """The server's certificate and key, and optionally the CA that client certificates must chain to."""

    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None

    def check(self) -> None:
        """Refuse missing or unreadable files, or a key not matching the certificate, before serving."""
        for field, path in (("tls-cert", self.cert_file), ("tls-key", self.key_file),
                            ("tls-client-ca", self.client_ca_file)):
            if path is not None and not path.is_file():
                raise InputError(field, f"{path} is not a readable file")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(self.cert_file, self.key_file)
            if self.client_ca_file is not None:
                context.load_verify_locations(self.client_ca_file)
        except (ssl.SSLError, OSError) as exc:
            raise InputError("tls-cert", f"cannot use the certificate and key: {exc}") from None


def uvicorn_config(app: Starlette, host: str, port: int, tls: TlsFiles | None = None,
                   log_level: str = "info") -> uvicorn.Config:
    """The uvicorn configuration serving ``app`` (``port`` 0 picks a free port)."""
    if tls is not None:
        tls.check()
    client_ca = tls.client_ca_file if tls is not None else None
    return uvicorn.Config(
        app, host=host, port=port, access_log=False, log_level=log_level, timeout_keep_alive=30,
        ssl_certfile=str(tls.cert_file) if tls is not None else None,
        ssl_keyfile=str(tls.key_file) if tls is not None else None,
        ssl_ca_certs=str(client_ca) if client_ca is not None else None,
        ssl_cert_reqs=ssl.CERT_REQUIRED if client_ca is not None else ssl.CERT_NONE,
    )


__all__ = ["TlsFiles", "uvicorn_config"]
