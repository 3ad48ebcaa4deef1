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
    port: Annotated[int, typer.Option(min=0, max=65535, help="API port on 127.0.0.1.")] = 8090,
    api_key: Annotated[
        str | None,
        typer.Option(envvar="JUNCTION_STUB_API_KEY", help="Team key accepted as X-Vital-API-Key."),
    ] = None,
    user: Annotated[
        list[str] | None,
        typer.Option(help="Register a Junction user id (repeat); others get 404 user_not_found."),
    ] = None,
    region: Annotated[str, typer.Option(help="Region in Sign-In Tokens' iss: us or eu.")] = "us",
    environment: Annotated[
        str, typer.Option(help="Environment in Sign-In Tokens' iss: production, sandbox or dev.")
    ] = "sandbox",
    fault: Annotated[
        list[str] | None,
        typer.Option(help=_fault_help()),
    ] = None,
) -> None:
    """Serve a strict local Junction until Ctrl-C.

    Stdout line 1: the API base URL. Line 2: the token endpoint's base URL,
    on its own origin like Junction's auth host (set it as junction.auth_url).

    Strict where Junction's docs are (rules and sources: sync/junction/stub.py):
    unknown users: 404 user_not_found;
    data for a (user, provider) never linked: 400 connection_not_found;
    a resource the provider table does not list for the slug: 400 unsupported_resource;
    a body that is not Content-Type application/json: 415;
    implausible values, blood-pressure parts at different times: 422;
    historical samples outside the envelope's window: dropped and counted;
    Sign-In Tokens: JWTs with uid and iss.

    Read back, team key or the user's bearer token required:
    GET /v2/timeseries/{user}/{resource} (glucose, blood_pressure, body_weight, body_fat);
    GET /v2/timeseries/{user}/{resource}/grouped?start_date=...&end_date=...;
    GET /v2/summary/body/{user}?start_date=....

    Operator routes (no auth):
    GET /_stub/requests (every request: headers with secrets redacted, decoded body);
    GET /_stub/samples (every sample stored); GET /_stub/dropped;
    GET|PUT /_stub/faults (the fault settings as JSON, same names as --fault);
    POST /_stub/reset (forget samples, requests, connections and faults).
    """
    try:
        faults = Faults.from_flags(fault or [])
    except ValidationError as exc:
        raise fail(describe_fault_error(exc)) from exc
    except ValueError as exc:
        message = f"--fault: {exc}"
        raise fail(message) from exc
    if region not in {"us", "eu"} or environment not in {"production", "sandbox", "dev"}:
        message = (
            f"--region {region} --environment {environment}: expected us|eu and "
            "production|sandbox|dev"
        )
        raise fail(message)

    def ready(url: str, auth_url: str) -> None:
        sys.stdout.write(f"{url}\n{auth_url}\n")
        sys.stdout.flush()

    run(
        port,
        api_key=api_key,
        faults=faults,
        users=user or [],
        region=region,
        environment=environment,
        on_ready=ready,
    )


def register(app: typer.Typer) -> None:
    """Add the command to the root app."""
    app.command("junction-stub")(junction_stub)
