"""The command line tells a new user what it does: --version, --help, and clear usage errors."""

import subprocess

import pytest

from tests.gateway.e2e import EDGE_GATEWAY


def edge_gateway(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EDGE_GATEWAY, *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={"COLUMNS": "100", "PATH": "/usr/bin:/bin"},
        check=False,
    )


def test_version() -> None:
    result = edge_gateway("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("edge-gateway 0.")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["token", "--help"], ["create", "list", "revoke"]),
        (["junction-stub", "--help"], ["/_stub/samples", "/_stub/faults", "rate_limit", "0-1"]),
    ],
)
def test_help_documents_every_command(args: list[str], expected: list[str]) -> None:
    result = edge_gateway(*args)
    assert result.returncode == 0
    for text in expected:
        assert text in result.stdout


def test_a_bad_stub_fault_lists_the_names_and_the_range() -> None:
    result = edge_gateway("junction-stub", "--fault", "bogus=1", "--fault", "rate_limit=3")
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "--fault bogus: no such fault; known faults: rate_limit, " in line
    assert "--fault rate_limit=3: a probability from 0 to 1" in line
    assert "pydantic" not in line


def test_pair_refuses_a_malformed_address_at_once() -> None:
    result = edge_gateway("pair", "C0:FF:EE:1", "--timeout", "10")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: 'C0:FF:EE:1' is not a Bluetooth address; write it like AA:BB:CC:DD:EE:FF "
        "(`edge-gateway scan` lists them)"
    )
