"""`scripts/install` (README's first command and the Dockerfile run it) is idempotent and cheap.

The first test runs the real script in a scratch copy of the repository whose `.venv/bin/python`
is a recorder, so nothing is downloaded or installed; the second runs it on this repository
only when its venv is already current (it must then do nothing at all).
"""

import os
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest

from tests.packaging.readers import REPO

SCRIPT = REPO / "scripts" / "install"
# A run with nothing to do only checks a few commands and file times.
NOTHING_TO_DO_S = 5.0


def needs_no_apt(extras: str = "") -> None:
    commands = ["dbus-daemon", "python3.11"] + (["chromium"] if extras == "dev" else [])
    missing = [c for c in commands if shutil.which(c) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} missing: scripts/install would apt-get them")


def run(root: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = subprocess.run(
        [str(root / "scripts" / "install"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result, time.monotonic() - started


def scratch_repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    shutil.copy2(SCRIPT, root / "scripts" / "install")
    for name in ("pyproject.toml", "requirements.lock"):
        shutil.copy2(REPO / name, root / name)
    python = root / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text('#!/bin/sh\necho "$@" >> "$(dirname "$0")/../../pip-calls.log"\n')
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    return root


def test_the_second_run_installs_nothing(tmp_path: Path) -> None:
    needs_no_apt()
    root = scratch_repo(tmp_path)
    log = root / "pip-calls.log"

    first, _ = run(root)
    assert first.returncode == 0, first.stderr
    assert "install: installing edge-gateway" in first.stderr
    calls = log.read_text().splitlines()
    assert any("-c requirements.lock -e ." in call for call in calls)

    second, elapsed = run(root)
    assert second.returncode == 0, second.stderr
    assert (second.stdout, second.stderr) == ("", "")
    assert log.read_text().splitlines() == calls
    assert elapsed < NOTHING_TO_DO_S

    # A changed lock file is installed again.
    later = time.time() + 10
    os.utime(root / "requirements.lock", (later, later))
    third, _ = run(root)
    assert "install: installing edge-gateway" in third.stderr
    assert len(log.read_text().splitlines()) > len(calls)


def test_on_this_repository_a_current_venv_is_left_alone() -> None:
    needs_no_apt("dev")
    stamp = REPO / ".venv" / ".installed-dev"
    inputs = [REPO / "requirements.lock", REPO / "pyproject.toml"]
    if not stamp.exists() or any(p.stat().st_mtime > stamp.stat().st_mtime for p in inputs):
        pytest.skip(
            "this repository's venv is not current (run scripts/install dev); the test does "
            "not reinstall into a venv other processes are using"
        )
    for _ in range(2):
        result, elapsed = run(REPO, "dev")
        assert result.returncode == 0, result.stderr
        assert "install" not in result.stderr
        assert elapsed < NOTHING_TO_DO_S
