"""``broker agent``: one sample of this machine with ``--once --json``, flags refused by name, and a real agent
process streaming to a hub until SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from broker.cli.agent import HELP, agent
from broker.service.agents import AgentHub
from tests.agent.conftest import TOKEN

app = typer.Typer()
app.command("agent", help=HELP)(agent)


@app.callback()
def _root() -> None:
    """Stands for ``broker`` (the command is registered in ``broker.cli.main`` the same way)."""


def invoke(*flags: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["agent", *flags])
    return result.exit_code, result.output


def test_once_json_prints_one_sample_of_this_machine() -> None:
    code, output = invoke("--node", "this-node", "--once", "--json", "--interval-s", "0.2")
    assert code == 0, output
    sample = json.loads(output)
    assert sample["node"] == "this-node" and sample["seq"] == 0
    assert sample["capacity_cpu_milli"] == (os.cpu_count() or 0) * 1000
    assert 0 < sample["online_memory_mib"] < sample["capacity_memory_mib"]
    assert abs(sample["sampled_at_s"] - time.time()) < 60


def test_once_prints_a_summary_for_people() -> None:
    code, output = invoke("--node", "this-node", "--once", "--interval-s", "0.1")
    assert code == 0 and output.startswith("node this-node: capacity cpu")


def test_help_says_how_to_check_a_node() -> None:
    code, output = invoke("--help")
    assert code == 0 and "--once" in output and "--token-file" in output


@pytest.mark.parametrize(
    ("flags", "flag"),
    [
        (["--node", "bad node", "--once"], "--node"),
        (["--node", "n1", "--json"], "--json"),
        (["--node", "n1", "--token-file", "t"], "--broker"),
        (["--node", "n1", "--broker", "no-port", "--token-file", "t"], "--broker"),
        (["--node", "n1", "--broker", "h:99999", "--token-file", "t"], "--broker"),
        (["--node", "n1", "--broker", "h:1"], "--token-file"),
        (["--node", "n1", "--broker", "h:1", "--token-file", "/nonexistent/token"], "--token-file"),
        (["--node", "n1", "--once", "--proc-root", "/nonexistent"], "--proc-root"),
        (["--node", "n1", "--once", "--cgroup-root", "/nonexistent"], "--cgroup-root"),
        (["--node", "n1", "--once", "--interval-s", "0"], "--interval-s"),
        (["--node", "n1", "--once", "--log-level", "loud"], "--log-level"),
    ],
    ids=["node", "json-without-once", "no-broker", "broker-no-port", "broker-port-range", "no-token",
         "token-missing", "proc-root", "cgroup-root", "interval", "log-level"],
)
def test_bad_flags_exit_2_naming_the_flag(flags: list[str], flag: str) -> None:
    code, output = invoke(*flags)
    assert code == 2, output
    assert output.startswith(f"error: {flag}")


def test_tls_files_that_do_not_exist_are_refused_by_flag(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text(TOKEN)
    code, output = invoke("--node", "n1", "--broker", "h:1", "--token-file", str(token), "--tls-ca",
                          str(tmp_path / "ca.pem"))
    assert (code, output.startswith("error: --tls-ca")) == (2, True)
    code, output = invoke("--node", "n1", "--broker", "h:1", "--token-file", str(token), "--tls-cert", str(token))
    assert (code, output.startswith("error: --tls-key")) == (2, True)


def test_an_agent_process_streams_to_the_hub_and_stops_on_sigterm(token_file: Path) -> None:
    async def scenario() -> None:
        async with AgentHub(TOKEN) as hub:
            process = subprocess.Popen(
                [sys.executable, "-c", "import typer; from broker.cli.agent import agent; typer.run(agent)",
                 "--node", "proc-node", "--broker", f"127.0.0.1:{hub.port}", "--token-file", str(token_file),
                 "--interval-s", "0.1"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )
            try:
                deadline = time.monotonic() + 20
                while "proc-node" not in hub.latest() and time.monotonic() < deadline and process.poll() is None:
                    await asyncio.sleep(0.05)
                assert "proc-node" in hub.latest(), process.stderr.read().decode() if process.poll() else ""
            finally:
                process.send_signal(signal.SIGTERM)
                _, stderr = await asyncio.to_thread(process.communicate, timeout=10)
        assert process.returncode == 0, stderr.decode()
        assert b"Traceback" not in stderr

    asyncio.run(scenario())


def test_the_broker_command_runs_the_agent_without_importing_the_other_subcommands() -> None:
    """The agent runs on every node: ``broker agent`` must not load OR-Tools or the Kubernetes client (about 90 MiB
    that the other subcommands need), unless ``--driver-pods`` asks for the API."""
    probe = ("import sys\n"
             "sys.argv = ['broker', 'agent', '--node', 'n1', '--once', '--json', '--interval-s', '0.05']\n"
             "from broker.cli.entry import main\n"
             "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
             "print(sorted(m for m in ('ortools', 'kubernetes', 'broker.scheduler', 'broker.cli.main') "
             "if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(result.stdout[:result.stdout.rindex("}") + 1])["node"] == "n1"
    assert result.stdout.strip().endswith("[]"), result.stdout
