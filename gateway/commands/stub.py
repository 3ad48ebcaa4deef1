"""`edge-gateway junction-stub`: the local Junction stand-in on 127.0.0.1."""

import sys
from typing import Annotated

import typer
from pydantic import ValidationError

from gateway.commands.common import fail
from sync.junction.stub_faults import Faults
from sync.junction.stub_server import run

# Faults whose value is a probability per request (the rest are settings of a fault).
_PROBABILITIES = tuple(
    name
    for name, field in Faults.model_fields.items()
    if field.annotation is float and any(getattr(m, "le", None) == 1 for m in field.metadata)
)


def _fault_help() -> str:
    rows = [
        f"{name} ({field.description})" if field.description else name
        for name, field in Faults.model_fields.items()
    ]
    return (
        "Inject a fault as name=value (repeatable). Probabilities 0-1 per request: "
        + ", ".join(r for r in rows if r.split(" ")[0] in _PROBABILITIES)
        + ". Settings: "
        + ", ".join(r for r in rows if r.split(" ")[0] not in _PROBABILITIES)
        + ". E.g. --fault rate_limit=0.1 --fault server_error=0.05"
    )


def describe_fault_error(exc: ValidationError) -> str:
    """One line per bad --fault: the flag, and what is expected (names, or a 0-1 value)."""
    lines = []
    for err in exc.errors():
        name = str(err["loc"][0]) if err["loc"] else "?"
        if err["type"] == "extra_forbidden":
            lines.append(
                f"--fault {name}: no such fault; known faults: " + ", ".join(Faults.model_fields)
            )
        elif name in _PROBABILITIES:
            lines.append(
                f"--fault {name}={err.get('input')}: a probability from 0 to 1 per request "
                f"(e.g. {name}=0.1)"
            )
        else:
            lines.append(f"--fault {name}={err.get('input')}: {err['msg']}")
    return "; ".join(lines)


def junction_stub(
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port on 127.0.0.1.")] = 8090,
    api_key: Annotated[
        str | None,
        typer.Option(envvar="JUNCTION_STUB_API_KEY", help="Team key accepted as X-Vital-API-Key."),
    ] = None,
    fault: Annotated[
        list[str] | None,
        typer.Option(help=_fault_help()),
    ] = None,
) -> None:
    """Serve a faithful local Junction (timeseries, body summary, link, tokens) until Ctrl-C.

    Prints its base URL as the first stdout line.

    Routes beyond Junction's own, for tests and demos:
    GET /_stub/samples (every sample stored);
    GET /_stub/requests (the request log);
    GET|PUT /_stub/faults (the fault settings as JSON, same names as --fault);
    POST /_stub/reset (forget samples, requests and faults).
    """
    try:
        faults = Faults.from_flags(fault or [])
    except ValidationError as exc:
        raise fail(describe_fault_error(exc)) from exc
    except ValueError as exc:
        message = f"--fault: {exc}"
        raise fail(message) from exc

    def ready(url: str) -> None:
        sys.stdout.write(f"{url}\n")
        sys.stdout.flush()

    run(port, api_key=api_key, faults=faults, on_ready=ready)


def register(app: typer.Typer) -> None:
    """Add the command to the root app."""
    app.command("junction-stub")(junction_stub)
