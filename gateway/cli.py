"""The `edge-gateway` command line."""

import typer

app = typer.Typer(no_args_is_help=True, help="Edge Gateway: BLE health devices to Junction.")


@app.callback()
def _root() -> None:
    """Edge Gateway: BLE health devices to Junction."""


def main() -> None:
    """Console-script entry point."""
    app()
