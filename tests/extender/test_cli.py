"""``broker serve extender`` refuses bad flags with exit code 2 and a message naming the flag."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from broker.cli.main import app


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--domain", "Not A Domain"], "--domain"),
        (["--tls-cert", "cert.pem"], "--tls-key"),
        (["--tls-client-ca", "ca.pem"], "--tls-client-ca"),
        (["--url-prefix", "scheduler"], "--url-prefix"),
        (["--log-level", "loud"], "--log-level"),
    ],
    ids=["domain", "cert-without-key", "client-ca-alone", "prefix", "log-level"],
)
def test_bad_flags_exit_2_naming_the_flag(tmp_path: Path, flags: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["serve", "extender", "--plan", str(tmp_path / "plan.json"), *flags])
    assert result.exit_code == 2
    assert message in result.output


def test_a_missing_tls_key_file_is_refused(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("not a certificate")
    flags = ["--tls-cert", str(cert), "--tls-key", str(tmp_path / "missing.pem")]
    result = CliRunner().invoke(app, ["serve", "extender", "--plan", str(tmp_path / "p.json"), *flags])
    assert result.exit_code == 2 and "tls-key" in result.output
