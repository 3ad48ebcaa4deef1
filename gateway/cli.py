"""The `edge-gateway` command line: the root app; commands live in `gateway.commands`.

Commands load lazily: `edge-gateway run` imports `gateway.commands.run` and what it needs,
not the simulator, the Junction stub, rich tables or the other commands (issue 18: the
resident memory of `run` and the start-up time of every command). `--help` loads them all.
"""

import importlib
import logging
import sys
from collections.abc import Iterator, MutableMapping
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any

import typer
import typer.main
from typer.core import TyperGroup

if TYPE_CHECKING:
    # Typer's vendored click (Typer >= 0.23 no longer uses the `click` package).
    from typer._click import Command

# httpx's package imports its own command line (`httpx._main`: rich, pygments, ~3.5 MiB
# resident) whenever those are installed; no gateway command runs it, so a module entry of
# None makes that import fail and httpx falls back to its stub `main` (Python's import
# system: a None in sys.modules raises ImportError).
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

# Command name -> module in `gateway.commands` whose `register(app)` adds it, in `--help`'s
# order (commands, then groups). tests/gateway/test_cli_lazy.py checks it against the modules.
COMMANDS: dict[str, str] = {
    "scan": "ble",
    "pair": "ble",
    "demo": "demo",
    "reparse": "reparse",
    "run": "run",
    "serve-api": "serve_api",
    "simulate": "simulate",
    "status": "status",
    "junction-stub": "stub",
    "capture": "capture",
    "config": "config_cmd",
    "kiosk": "kiosk_cmd",
    "token": "token",
}


@cache
def load_commands(module_name: str) -> dict[str, "Command"]:
    """Import `gateway.commands.<module_name>` and build the click commands it registers."""
    module = importlib.import_module(f"gateway.commands.{module_name}")
    holder = typer.Typer()
    module.register(holder)
    return dict(typer.main.get_group(holder).commands)


class _LazyCommands(MutableMapping[str, "Command"]):
    """The root group's commands: names known up front, each module imported on first use.

    Typer's group reads `commands` for dispatch (one entry), `--help` (all) and its
    "Did you mean …?" suggestions (names only).
    """

    def __init__(self) -> None:
        self._added: dict[str, Command] = {}

    def __getitem__(self, name: str) -> "Command":
        if name in self._added:
            return self._added[name]
        return load_commands(COMMANDS[name])[name]

    def __contains__(self, name: object) -> bool:
        # Without this, Mapping's `in` would import the module to answer.
        return name in COMMANDS or name in self._added

    def __setitem__(self, name: str, command: "Command") -> None:
        self._added[name] = command

    def __delitem__(self, name: str) -> None:
        del self._added[name]

    def __iter__(self) -> Iterator[str]:
        yield from COMMANDS
        yield from (name for name in self._added if name not in COMMANDS)

    def __len__(self) -> int:
        return len(COMMANDS.keys() | self._added.keys())


class _LazyGroup(TyperGroup):
    """The root group, with `_LazyCommands` for its commands."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        lazy = _LazyCommands()
        lazy.update(self.commands)
        self.commands = lazy


app = typer.Typer(
    cls=_LazyGroup,
    no_args_is_help=True,
    add_completion=False,
    help="Edge Gateway: BLE glucose meters, BP cuffs and scales to Junction.",
)


def _version(value: bool) -> None:
    if value:
        # Imported here: importlib.metadata pulls email, zipfile, csv; only --version needs it.
        from importlib import metadata

        typer.echo(f"edge-gateway {metadata.version('edge-gateway')}")
        raise typer.Exit


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log at DEBUG.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Edge Gateway: BLE glucose meters, BP cuffs and scales to Junction."""
    del version  # handled by its callback
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not verbose:
        # Each upload and scheduler tick would be an INFO line; the gateway logs its own.
        for chatty in ("httpx", "apscheduler", "uvicorn.access"):
            logging.getLogger(chatty).setLevel(logging.WARNING)


def main() -> None:
    """Console-script entry point."""
    app()
