"""Shared fixtures for the node-agent tests: a token file, certificates for mutual TLS, a scripted sample source."""

from __future__ import annotations

import datetime
import ipaddress
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from broker.model import Sink
from plugins.node_agent.wire import NodeSample, OfflineContainer

TOKEN = "s3cret-agent-token"


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    return path


@dataclass(frozen=True)
class Pki:
    """A CA, the hub's certificate (localhost, 127.0.0.1), an agent's client certificate and a stranger's."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    stranger_cert: Path
    stranger_key: Path


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _issue(subject: str, issuer_key: ec.EllipticCurvePrivateKey | None, issuer: str | None, ca: bool,
           san: list[x509.GeneralName] | None = None) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer or subject))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256()), key


def _write(directory: Path, name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> tuple[Path, Path]:
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca_cert, ca_key = _issue("agents-ca", None, None, ca=True)
    ca_path, _ = _write(directory, "ca", ca_cert, ca_key)
    server = _issue("broker", ca_key, "agents-ca", ca=False,
                    san=[x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    client = _issue("node-a", ca_key, "agents-ca", ca=False)
    stranger = _issue("stranger", None, None, ca=False)
    return Pki(ca_path, *_write(directory, "server", *server), *_write(directory, "client", *client),
               *_write(directory, "stranger", *stranger))


def sample(node: str = "node-a", seq: int = 0, online_cpu_milli: int = 1_000, offline: int = 1) -> NodeSample:
    return NodeSample(
        node=node, seq=seq, sampled_at_s=time.time(), capacity_cpu_milli=16_000, capacity_memory_mib=65_536,
        online_cpu_milli=online_cpu_milli, online_memory_mib=8_192,
        offline=tuple(OfflineContainer(sink=Sink.YARN, container=f"container_1_0001_01_{i + 1:06d}", cpu_milli=500,
                                       memory_mib=1_024, started_s=1_700_000_000.0 + i, is_am=i == 0)
                      for i in range(offline)),
    )


class Script:
    """A sample source that reports quiet samples, then (from ``spike_at``) an online CPU spike; it records when each
    sample was produced (monotonic seconds) so that tests can time the fast path."""

    def __init__(self, node: str = "node-a", spike_at: int | None = None) -> None:
        self.node = node
        self.spike_at = spike_at
        self.primes = 0
        self.seq = 0
        self.produced_at: dict[int, float] = {}

    def prime(self) -> None:
        self.primes += 1

    def sample(self) -> NodeSample:
        spiking = self.spike_at is not None and self.seq >= self.spike_at
        out = sample(self.node, self.seq, online_cpu_milli=15_000 if spiking else 1_000)
        self.produced_at[self.seq] = time.monotonic()
        self.seq += 1
        return out
