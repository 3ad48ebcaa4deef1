"""`edge-gateway kiosk set-pin`: the staff PIN of the kiosk page, stored as a hash in the config."""

import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import tomlkit
import typer
from tomlkit.exceptions import TOMLKitError

from gateway.commands.common import ConfigOption, fail
from gateway.config import CONFIG_ENV
from gateway.kiosk.pin import PinFormatError, check_pin_rule, hash_pin

kiosk_app = typer.Typer(no_args_is_help=True, help="The clinic kiosk page: staff PIN.")


def _config_path(config: Path | None) -> Path:
    path = config or (Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else None)
    if path is None:
        msg = f"no config file to write the PIN hash to; pass --config PATH or set ${CONFIG_ENV}"
        raise fail(msg)
    return path


def _read_pin(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().strip()
    return str(
        typer.prompt(
            "New staff PIN (4-12 digits)", hide_input=True, confirmation_prompt=True, err=True
        )
    ).strip()


def _write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` in one step, keeping its mode (0600 for a new file)."""
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        Path(temp).chmod(mode)
        Path(temp).replace(path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


@kiosk_app.command("set-pin")
def set_pin(
    pin_stdin: Annotated[
        bool, typer.Option("--pin-stdin", help="Read the PIN from the first line of stdin.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Set the staff PIN: its scrypt hash goes to `[kiosk] staff_pin_hash` in the config file.

    The PIN is asked twice without echo (or read from stdin) and never printed or logged.
    The rest of the file, comments included, is kept. Restart the gateway to use it.
    """
    path = _config_path(config)
    try:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        document = tomlkit.parse(text)
    except (OSError, UnicodeDecodeError, TOMLKitError) as exc:
        msg = f"{path}: cannot read the config file ({exc}); fix it or pass another --config"
        raise fail(msg) from exc
    pin = _read_pin(pin_stdin)
    try:
        check_pin_rule(pin)
    except PinFormatError as exc:
        raise fail(str(exc)) from exc
    section = document.get("kiosk")
    if section is None:
        section = tomlkit.table()
        document["kiosk"] = section
    elif not isinstance(section, dict):
        msg = f"{path}: 'kiosk' is not a table; make it a [kiosk] section"
        raise fail(msg)
    section["staff_pin_hash"] = hash_pin(pin)
    try:
        _write_atomically(path, tomlkit.dumps(document))
    except OSError as exc:
        msg = f"{path}: cannot write the config file ({exc.strerror}); check its permissions"
        raise fail(msg) from exc
    typer.echo(f"staff PIN set in {path} ([kiosk] staff_pin_hash); restart the gateway to use it")


def register(app: typer.Typer) -> None:
    """Add the `kiosk` group to the root app."""
    app.add_typer(kiosk_app, name="kiosk")
