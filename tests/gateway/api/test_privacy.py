"""Health data and secrets stay out of logs above DEBUG (DESIGN.md §4)."""

import logging

from gateway.api.reading_events import publish_readings
from gateway.store import readings, users
from tests.gateway.api.conftest import REMOTE, client_for
from tests.sync.factories import glucose


async def test_no_values_or_tokens_in_logs(services, admin_token, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    users.bind(services.db, "C0:FF:EE:00:00:01", "u1")
    reading = glucose(1, concentration=0.00123)  # 6.827 mmol/L
    readings.save_transfer(services.db, [reading], zone=services.settings.zone)
    publish_readings(services.events, [readings.get_reading(services.db, reading.id)])
    async with client_for(services, REMOTE, admin_token) as client:
        assert (await client.get("/v1/readings")).status_code == 200
        assert (await client.get("/v1/readings/latest")).status_code == 200
        await client.post("/v1/devices/C0:FF:EE:00:00:02/pair", json={"passkey": 123456})
        await client.put("/v1/users/u1/sign_in_token", json={"sign_in_token": "sit_secret_42"})
    async with client_for(services, REMOTE, "egw_wrong_token_xyz") as client:
        assert (await client.get("/v1/readings")).status_code == 401
    loud = "\n".join(r.getMessage() for r in caplog.records if r.levelno > logging.DEBUG)
    for secret in (
        admin_token,
        "egw_wrong_token_xyz",
        "sit_secret_42",
        "123456",
        "6.827",
        "0.00123",
    ):
        assert secret not in loud
