"""Helpers every command shares: errors on stderr, settings loading."""

from pathlib import Path
from typing import Annotated

import typer

from gateway.config import ConfigError, Settings, load_settings

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="TOML config file (default: $GATEWAY_CONFIG, else defaults)."),
]


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print `message` as an error and return the Exit to raise."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=code)


def settings_from(config: Path | None) -> Settings:
    """Load settings for a command, turning config errors into a clean exit."""
    try:
        return load_settings(config)
    except ConfigError as exc:
        raise fail(str(exc)) from exc
