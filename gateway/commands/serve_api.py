"""`edge-gateway serve-api`: the local API and kiosk page alone, over the store (no radio)."""

import contextlib

import typer
import uvicorn

from gateway import instance_lock
from gateway.api.server import server_config
from gateway.app import create_app
from gateway.commands.common import ConfigOption, fail, settings_from
from gateway.instance_lock import InstanceLockedError
from gateway.services import standalone_services
from gateway.store import StoreError


def serve_api(config: ConfigOption = None) -> None:
    """Serve /v1, /v1/events, /metrics and the kiosk page over the store, without a radio.

    Useful on a second machine reading a copy of the data, or to develop the page. Like
    `run`, it holds `data_dir`'s instance lock: it does not start beside a running gateway.
    """
    settings = settings_from(config)
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(instance_lock.hold(settings.data_dir))
            services = standalone_services(settings)
        except InstanceLockedError as exc:
            raise fail(str(exc)) from exc
        except (StoreError, OSError) as exc:
            msg = f"{settings.data_dir}: cannot open the store ({exc})"
            raise fail(msg) from exc
        app = create_app(services)
        uvicorn.Server(server_config(app, settings.api, log_level="info")).run()


def register(app: typer.Typer) -> None:
    """Add the command to the root app."""
    app.command("serve-api")(serve_api)
