"""`edge-gateway config check`: the effective configuration (secrets masked) and its problems."""

import json
import re
from typing import Any

import typer
from pydantic import SecretStr

from gateway.commands.common import ConfigOption, config_source, fail
from gateway.config import ConfigError, Settings, is_secret, load_settings
from gateway.config_check import Note, Problem, Warn, check_settings

_URL_USERINFO = re.compile(r"^([a-z][a-z0-9+.-]*://)[^/@]*@", re.IGNORECASE)
SECRET_MASK = "***"  # noqa: S105 - what a secret is shown as
PROBLEM_EXIT = 2

config_app = typer.Typer(no_args_is_help=True, help="Inspect the gateway's configuration.")


@config_app.command("check")
def check(config: ConfigOption = None) -> None:
    """Print the effective configuration (file + GATEWAY_* env + defaults) and check it.

    Secrets show as ***. Checks: the values validate; data_dir is writable or creatable;
    timezone is an IANA name; bindings name valid addresses (AA:BB:CC:DD:EE:FF) with no
    (device, device_user) bound twice; the API port is free or held by a running gateway;
    junction base_url agrees with region and environment. Exits 0 when all is well, else 2
    with one line per problem on stderr: the key, the value and what is expected.
    """
    source = config_source(config)
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        for line in str(exc).splitlines():
            typer.secho(f"problem: {line}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=PROBLEM_EXIT) from exc
    typer.echo(f"# effective configuration ({source}, then GATEWAY_* environment)")
    typer.echo(render_toml(masked(settings)))
    findings = check_settings(settings)
    for note in (f for f in findings if isinstance(f, Note)):
        typer.echo(f"note: {note.key}: {note.text}", err=True)
    for warn in (f for f in findings if isinstance(f, Warn)):
        typer.secho(f"warning: {warn.key}: {warn.text}", fg=typer.colors.YELLOW, err=True)
    problems = [f for f in findings if isinstance(f, Problem)]
    for problem in problems:
        typer.secho(f"problem: {problem.line(source)}", fg=typer.colors.RED, err=True)
    if problems:
        noun = "problem" if len(problems) == 1 else "problems"
        msg = f"{len(problems)} {noun} in the configuration; fix them and check again"
        raise fail(msg)
    typer.echo("# config check: ok")


def masked(settings: Settings) -> dict[str, Any]:
    """The settings as plain data, every secret replaced by `***`.

    Secret: a `SecretStr`, any key that looks like a key, token or secret
    and any [junction] value but where data goes (`gateway.config.is_secret`).
    Credentials in a URL (``https://user:pass@host``) are masked too.
    """

    def walk(value: Any, loc: tuple[str, ...]) -> Any:
        if isinstance(value, dict):
            return {k: walk(v, (*loc, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, loc) for v in value]
        if value is None:
            return None
        if isinstance(value, SecretStr) or is_secret(loc):
            return SECRET_MASK
        if isinstance(value, str) and "@" in value and "://" in value:
            return _URL_USERINFO.sub(r"\1***@", value)
        return value

    data: dict[str, Any] = json.loads(
        json.dumps(walk(settings.model_dump(mode="python"), ()), default=str)
    )
    return data


def render_toml(data: dict[str, Any]) -> str:
    """A small TOML writer for the settings' shape (scalars, tables, arrays of tables).

    Unset (None) values are written as comments, since TOML has no null.
    """
    lines: list[str] = []
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict | list) or _flat(v)}
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    arrays = {k: v for k, v in data.items() if isinstance(v, list) and not _flat(v)}
    lines.extend(_pairs(scalars))
    for name, table in tables.items():
        lines.extend(["", f"[{name}]", *_pairs(table)])
    for name, items in arrays.items():
        for item in items:
            lines.extend(["", f"[[{name}]]", *_pairs(item)])
    return "\n".join(lines)


def _flat(value: Any) -> bool:
    return isinstance(value, list) and not any(isinstance(v, dict) for v in value)


def _pairs(values: dict[str, Any]) -> list[str]:
    return [
        f"# {key} = (unset)" if value is None else f"{key} = {_value(value)}"
        for key, value in values.items()
    ]


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)  # a TOML basic string


def register(app: typer.Typer) -> None:
    """Add the `config` group to the root app."""
    app.add_typer(config_app, name="config")
