"""schemathesis against the app's own OpenAPI: no 5xx, no schema violations.

Runs against a real uvicorn with the loopback exemption off and an admin token (so the
security scheme is exercised too: schemathesis also checks that requests without it are
refused), over a store that holds readings, users, a binding and a kiosk session.
`/v1/events` (an endless stream) is tested in test_events_route.py instead.
"""

import asyncio
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import positive_data_acceptance

from gateway.app import create_app
from gateway.services import ScriptedPairing, Services
from gateway.store import kiosk, readings, tokens, users
from gateway.store.tokens import Scope
from tests.gateway.api.conftest import make_services
from tests.sync.factories import blood_pressure, body, glucose

EXAMPLES = 12  # per operation; the whole run stays within a few seconds on 2 cores


def _seeded(data_dir: Path) -> Services:
    services = make_services(data_dir, trust_loopback=False)
    services.pairing = ScriptedPairing({"C0:FF:EE:00:00:02": 123456})
    users.bind(services.db, "C0:FF:EE:00:00:01", "u1")
    kiosk.start_session(services.db, "u1", duration=timedelta(hours=1))
    items = [glucose(seq) for seq in range(1, 6)] + [blood_pressure(6), body(7)]
    readings.save_transfer(services.db, items, zone=services.settings.zone)
    return services


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[str, str]]:
    services = _seeded(tmp_path_factory.mktemp("schemathesis") / "data")
    token, _ = tokens.create_token(services.db, Scope.ADMIN, "schemathesis")
    config = uvicorn.Config(
        create_app(services), host="127.0.0.1", port=0, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            pytest.fail("uvicorn did not start")
        threading.Event().wait(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}", token
    server.should_exit = True
    thread.join(10)
    services.db.close()


@pytest.fixture(scope="module")
def api_schema(server):
    return schemathesis.openapi.from_url(f"{server[0]}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.exclude(path="/v1/events").parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,  # the same examples every run: CI verdicts don't depend on luck
    deadline=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate],
)
def test_api_conforms(case, server) -> None:
    base_url, token = server
    # A schema-valid but unknown cursor (or reading id) is rightly refused with 400/404, which
    # positive_data_acceptance would count against us; every other default check runs.
    case.call_and_validate(
        base_url=base_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
        excluded_checks=[positive_data_acceptance],
    )
