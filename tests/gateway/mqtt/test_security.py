"""TLS (server and mutual) and password authentication against a real mosquitto."""

import gc
import logging
from zoneinfo import ZoneInfo

import aiomqtt
import pytest
from pydantic import SecretStr

from gateway.mqtt.broker import LocalBroker
from gateway.store.readings import save_transfer
from tests.gateway.mqtt.conftest import (
    PASSWORD,
    USER,
    broker_tls,
    fast_sink,
    mqtt_settings,
    running_sink,
    subscribe,
    until,
)
from tests.sync.factories import glucose

UTCZ = ZoneInfo("UTC")


def _tls_client(files, *, client_cert: bool = False) -> dict:
    params = aiomqtt.TLSParameters(
        ca_certs=str(files["ca"]),
        certfile=str(files["client"]) if client_cert else None,
        keyfile=str(files["client_key"]) if client_cert else None,
    )
    return {"tls_params": params}


@pytest.mark.parametrize("mutual", [False, True], ids=["server-tls", "mutual-tls"])
async def test_readings_arrive_over_tls(db, tmp_path, tls_files, mutual):
    save_transfer(db, [glucose(1)], zone=UTCZ)
    tls = broker_tls(tls_files, require_client_cert=mutual)
    client_files = {"tls_cert_file": tls_files["client"], "tls_key_file": tls_files["client_key"]}
    with LocalBroker(tmp_path / "broker", tls=tls) as broker:
        settings = mqtt_settings(
            broker, tls_ca_file=tls_files["ca"], **(client_files if mutual else {})
        )
        listener = _tls_client(tls_files, client_cert=mutual)
        async with (
            subscribe(broker, topic="edge-gateway/+/reading", **listener) as live,
            running_sink(fast_sink(db, settings)),
        ):
            await live.wait_for(lambda r: len(r.messages) == 1, "the reading over TLS")
        assert live.messages[0].json()["reading_id"] == glucose(1).id


@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_a_broker_certificate_from_another_ca_is_refused(db, tmp_path, tls_files, caplog):
    caplog.set_level(logging.WARNING, logger="gateway.mqtt")
    save_transfer(db, [glucose(1)], zone=UTCZ)
    with LocalBroker(tmp_path / "broker", tls=broker_tls(tls_files)) as broker:
        # The client certificate is no CA: the server's chain cannot verify against it.
        sink = fast_sink(db, mqtt_settings(broker, tls_ca_file=tls_files["client"]))
        async with running_sink(sink):
            await until(lambda: "TLS" in caplog.text or "certificate" in caplog.text, "refusal")
            assert sink.stats.connects == 0
            assert sink.stats.readings == 0
    # paho leaves the socket of a failed handshake to the garbage collector (its bug, not
    # ours); collect it here, under this test's filter, not in whichever test runs next.
    caplog.clear()
    gc.collect()


async def test_password_auth_publishes_and_a_wrong_password_is_refused_without_echo(
    db, tmp_path, caplog
):
    caplog.set_level(logging.DEBUG, logger="gateway.mqtt")
    save_transfer(db, [glucose(1)], zone=UTCZ)
    with LocalBroker(tmp_path / "broker", users={USER: PASSWORD}) as broker:
        wrong = fast_sink(
            db, mqtt_settings(broker, username=USER, password=SecretStr("not-the-password"))
        )
        async with running_sink(wrong):
            await until(lambda: "check [mqtt] username and password" in caplog.text, "refusal")
            assert wrong.stats.connects == 0
        assert "not-the-password" not in caplog.text

        with pytest.raises(aiomqtt.MqttError):  # anonymous clients are refused
            async with subscribe(broker):
                pass

        right = fast_sink(db, mqtt_settings(broker, username=USER, password=SecretStr(PASSWORD)))
        async with (
            subscribe(
                broker, topic="edge-gateway/+/reading", username=USER, password=PASSWORD
            ) as live,
            running_sink(right),
        ):
            await live.wait_for(lambda r: len(r.messages) == 1, "the reading with auth")
    assert PASSWORD not in caplog.text
