"""`edge-gateway serve-api`: the local API and kiosk page alone, over the store (no radio)."""

import typer
import uvicorn

from gateway.app import create_app
from gateway.commands.common import ConfigOption, fail, settings_from
from gateway.services import standalone_services
from gateway.store import StoreError


def serve_api(config: ConfigOption = None) -> None:
    """Serve /v1, /v1/events, /metrics and the kiosk page over the store, without a radio.

    Useful on a second machine reading a copy of the data, or to develop the page.
    """
    settings = settings_from(config)
    try:
        services = standalone_services(settings)
    except (StoreError, OSError) as exc:
        msg = f"{settings.data_dir}: cannot open the store ({exc})"
        raise fail(msg) from exc
    uvicorn.run(
        create_app(services),
        host=settings.api.host,
        port=settings.api.port,
        log_level="info",
        access_log=False,  # query strings may carry user ids; the API logs what matters
    )


def register(app: typer.Typer) -> None:
    """Add the command to the root app."""
    app.command("serve-api")(serve_api)
