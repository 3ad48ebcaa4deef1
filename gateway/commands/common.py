"""Helpers every command shares: errors on stderr, settings loading."""

import os
from pathlib import Path
from typing import Annotated

import typer

from gateway.config import CONFIG_ENV, ConfigError, Settings, load_settings
from gateway.config_check import validation_problems

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="TOML config file (default: $GATEWAY_CONFIG, else defaults)."),
]


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print `message` as an error and return the Exit to raise."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=code)


def config_source(config: Path | None) -> str:
    """What problems are blamed on when no environment variable set the value."""
    if config is not None:
        return str(config)
    return os.environ.get(CONFIG_ENV) or "defaults"


def settings_from(config: Path | None) -> Settings:
    """Load and validate settings for a command; a bad config exits 2 with one line.

    The validation is the one `edge-gateway config check` runs (`validation_problems`);
    nothing is created or written before it passes.
    """
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        raise fail(_one_line(str(exc).splitlines())) from exc
    problems = validation_problems(settings)
    if problems:
        raise fail(_one_line([p.line(config_source(config)) for p in problems]))
    return settings


def _one_line(lines: list[str]) -> str:
    more = len(lines) - 1
    if more <= 0:
        return lines[0]
    return f"{lines[0]} (and {more} more; see `edge-gateway config check`)"
