"""The systemd unit: `systemd-analyze verify` accepts it, and it keeps what the gateway needs."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.packaging.readers import REPO, read_unit, values

UNIT = REPO / "systemd" / "edge-gateway.service"
INSTALLED_ENTRY_POINT = "/opt/edge-gateway/.venv/bin/edge-gateway"
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze is not installed (apt-get install systemd)"
)


def venv_entry_point() -> Path:
    path = Path(sys.prefix) / "bin" / "edge-gateway"
    assert path.is_file(), (
        f"{path}: the edge-gateway console script is missing; run scripts/install"
    )
    return path


def local_copy(tmp_path: Path, *, extra: str = "") -> Path:
    """The unit with ExecStart pointing at this venv's edge-gateway (and `extra` in [Service])."""
    text = UNIT.read_text()
    assert INSTALLED_ENTRY_POINT in text
    text = text.replace(INSTALLED_ENTRY_POINT, str(venv_entry_point()))
    if extra:
        text = text.replace("[Service]\n", f"[Service]\n{extra}\n", 1)
    copy = tmp_path / UNIT.name
    copy.write_text(text)
    return copy


def verify(unit: Path) -> subprocess.CompletedProcess[str]:
    assert ANALYZE is not None
    return subprocess.run(
        [ANALYZE, "verify", str(unit)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@needs_analyze
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    result = verify(local_copy(tmp_path))
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


@needs_analyze
def test_verify_does_catch_mistakes_here(tmp_path: Path) -> None:
    """The check above means something: a misspelt key is reported on this machine."""
    result = verify(local_copy(tmp_path, extra="Restrat=always"))
    assert "Restrat" in result.stderr


def test_it_starts_after_bluetooth_and_restarts_on_failure() -> None:
    unit = read_unit(UNIT)
    assert "bluetooth.service" in values(unit["Unit"], "After")
    assert "bluetooth.service" in values(unit["Unit"], "Wants")
    service = unit["Service"]
    assert values(service, "Restart") == ["on-failure"]
    assert values(service, "ExecStart") == [INSTALLED_ENTRY_POINT, "run"]


def test_the_database_lives_in_its_state_directory() -> None:
    service = read_unit(UNIT)["Service"]
    (state,) = values(service, "StateDirectory")
    assert f"GATEWAY_DATA_DIR=/var/lib/{state}" in values(service, "Environment")
    writable = values(service, "ReadWritePaths")
    assert not writable or f"/var/lib/{state}" in writable


def test_nothing_cuts_the_gateway_off_the_system_d_bus() -> None:
    """BlueZ is reached over the system D-Bus socket (AF_UNIX); the sandbox must allow it."""
    service = read_unit(UNIT)["Service"]
    assert values(service, "PrivateNetwork") in ([], ["no"], ["false"])
    families = values(service, "RestrictAddressFamilies")
    if families:
        denied = families[0].startswith("~")
        named = [f.removeprefix("~") for f in families]
        if denied:
            assert "AF_UNIX" not in named
        else:
            assert {"AF_UNIX", "AF_INET", "AF_INET6"} <= set(named)
    # ProtectSystem=strict makes / read-only; /run/dbus must not be hidden.
    assert not any("/run/dbus" in v for v in values(service, "InaccessiblePaths"))
