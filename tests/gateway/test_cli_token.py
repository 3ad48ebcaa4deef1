"""`edge-gateway token create|list|revoke` as a process: the token alone on the last line."""

import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from gateway.cli import app
from gateway.store import DATABASE_FILENAME, open_database, tokens
from gateway.store.tokens import Scope


def cli(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from gateway.cli import main; main()",
            *args,
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        check=False,
    )


def run_in_process(*args: str, config: Path):
    return CliRunner().invoke(app, [*args, "--config", str(config)])


def write_config(tmp_path: Path) -> tuple[Path, Path]:
    data = tmp_path / "data"
    config = tmp_path / "gateway.toml"
    config.write_text(f'data_dir = "{data}"\n')
    return config, data


def test_create_prints_token_alone_on_last_line_and_stores_hash(tmp_path) -> None:
    config, data = write_config(tmp_path)
    result = cli("token", "create", "--scope", "admin", "--label", "nurse station", config=config)
    assert result.returncode == 0, result.stderr
    token = result.stdout.splitlines()[-1]
    assert token.startswith("egw_")
    assert token == token.strip()
    assert "shown once" in result.stderr
    assert f"created database {data / DATABASE_FILENAME}" in result.stderr
    again = cli("token", "create", "--scope", "read", config=config)
    assert f"using database {data / DATABASE_FILENAME}" in again.stderr
    db = open_database(data / DATABASE_FILENAME)
    try:
        assert tokens.verify_token(db, token) is Scope.ADMIN
        assert token not in (data / DATABASE_FILENAME).read_bytes().decode("latin-1")
    finally:
        db.close()
    listed = run_in_process("token", "list", config=config)
    assert "admin\tactive\tnurse station" in listed.stdout
    assert token not in listed.stdout


def test_read_scope_then_revoke(tmp_path) -> None:
    config, data = write_config(tmp_path)
    token = run_in_process("token", "create", "--scope", "read", config=config).stdout.splitlines()[
        -1
    ]
    db = open_database(data / DATABASE_FILENAME)
    try:
        assert tokens.verify_token(db, token) is Scope.READ
        [info] = tokens.list_tokens(db)
    finally:
        db.close()
    assert run_in_process("token", "revoke", str(info.id), config=config).exit_code == 0
    again = run_in_process("token", "revoke", str(info.id), config=config)
    assert again.exit_code == 2
    assert "no active token" in again.stderr


def test_bad_scope_and_bad_config_are_clean_errors(tmp_path) -> None:
    config, _ = write_config(tmp_path)
    bad = run_in_process("token", "create", "--scope", "root", config=config)
    assert bad.exit_code == 2
    assert "root" in bad.stderr
    broken = tmp_path / "broken.toml"
    broken.write_text("data_dir = [\n")
    result = run_in_process("token", "create", "--scope", "read", config=broken)
    assert result.exit_code == 2
    assert "not valid TOML" in result.stderr
    assert result.stdout == ""
