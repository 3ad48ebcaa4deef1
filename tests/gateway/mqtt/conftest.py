"""A real mosquitto on loopback (plain, TLS, password auth) and a subscriber that records."""

import asyncio
import contextlib
import json
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from gateway.config import MqttSettings
from gateway.mqtt.broker import BrokerTls, LocalBroker
from gateway.mqtt.sink import MqttSink
from gateway.store import DATABASE_FILENAME, Database, open_database

USER = "hub"
PASSWORD = "s3cret-Pa55"  # noqa: S105 - the test broker's own throwaway password


@dataclass(frozen=True)
class Received:
    topic: str
    payload: str
    retain: bool

    def json(self) -> Any:
        return json.loads(self.payload)

    def value(self) -> Any:
        """The JSON document, or the text for plain payloads (``online``, ``42``)."""
        try:
            return json.loads(self.payload)
        except ValueError:
            return self.payload


@dataclass
class Recorder:
    """Everything a subscriber to ``#`` saw, in arrival order."""

    messages: list[Received] = field(default_factory=list)

    def on(self, topic_suffix: str) -> list[Received]:
        return [m for m in self.messages if m.topic.endswith(topic_suffix)]

    def matching(self, predicate: Callable[[Received], bool]) -> list[Received]:
        return [m for m in self.messages if predicate(m)]

    async def wait_for(
        self, predicate: Callable[["Recorder"], bool], what: str, timeout: float = 20.0
    ) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() > deadline:
                topics = sorted({m.topic for m in self.messages})
                pytest.fail(f"timed out waiting for {what}; topics seen: {topics}")
            await asyncio.sleep(0.05)


async def until(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Wait (polling) until `condition()` holds, or fail naming `what`."""
    await Recorder().wait_for(lambda _r: condition(), what, timeout)


@contextlib.asynccontextmanager
async def subscribe(
    broker: LocalBroker,
    *,
    topic: str = "#",
    recorder: Recorder | None = None,
    client_id: str | None = None,
    persistent: bool = False,
    **client_kwargs: Any,
) -> AsyncIterator[Recorder]:
    """Subscribe to `topic` on `broker` and record every message until the block exits."""
    recorder = recorder or Recorder()
    client = aiomqtt.Client(
        broker.host,
        broker.port,
        identifier=client_id,
        clean_session=not persistent,
        **client_kwargs,
    )
    async with client:
        await client.subscribe(topic, qos=1)

        async def pump() -> None:
            async for message in client.messages:
                payload = message.payload
                text = payload.decode() if isinstance(payload, bytes) else str(payload)
                recorder.messages.append(Received(str(message.topic), text, message.retain))

        task = asyncio.create_task(pump())
        try:
            yield recorder
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await task


async def retained(broker: LocalBroker, topic: str = "#", settle_s: float = 0.5) -> Recorder:
    """What a new subscriber gets at once: the broker's retained messages."""
    async with subscribe(broker, topic=topic) as recorder:
        await asyncio.sleep(settle_s)
    return recorder


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[LocalBroker]:
    with LocalBroker(tmp_path / "broker") as running:
        yield running


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = open_database(tmp_path / DATABASE_FILENAME)
    yield database
    database.close()


def mqtt_settings(broker: LocalBroker, **overrides: Any) -> MqttSettings:
    return MqttSettings(enabled=True, host=broker.host, port=broker.port, **overrides)


@contextlib.asynccontextmanager
async def running_sink(sink: MqttSink) -> AsyncIterator[MqttSink]:
    task = asyncio.create_task(sink.run())
    try:
        yield sink
    finally:
        sink.stop()
        await asyncio.wait_for(task, 15)


def fast_sink(db: Database, settings: MqttSettings, **kwargs: Any) -> MqttSink:
    """A sink that re-checks often and retries quickly (tests wait on it)."""
    kwargs.setdefault("status_interval_s", 0.2)
    kwargs.setdefault("retry_max_s", 0.5)
    kwargs.setdefault("timeout_s", 3.0)
    return MqttSink(db, settings, **kwargs)


# ---------------------------------------------------------------- TLS material


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A throwaway CA, a server certificate for 127.0.0.1/localhost and a client certificate."""
    d = tmp_path_factory.mktemp("tls")
    ca_key, ca = d / "ca.key", d / "ca.pem"
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(ca_key))
    _openssl(
        "req", "-x509", "-new", "-key", str(ca_key), "-sha256", "-days", "2",
        "-subj", "/CN=edge-gateway test CA", "-out", str(ca),
    )  # fmt: skip
    files = {"ca": ca, "ca_key": ca_key}
    for name, san in (("server", "IP:127.0.0.1,DNS:localhost"), ("client", "DNS:hub-client")):
        key, csr, cert = d / f"{name}.key", d / f"{name}.csr", d / f"{name}.pem"
        ext = d / f"{name}.ext"
        ext.write_text(f"subjectAltName={san}\n")
        _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(key))
        _openssl("req", "-new", "-key", str(key), "-subj", f"/CN={name}", "-out", str(csr))
        _openssl(
            "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
            "-CAcreateserial", "-days", "2", "-sha256", "-extfile", str(ext), "-out", str(cert),
        )  # fmt: skip
        files[name] = cert
        files[f"{name}_key"] = key
    return files


def broker_tls(files: dict[str, Path], *, require_client_cert: bool = False) -> BrokerTls:
    return BrokerTls(files["ca"], files["server"], files["server_key"], require_client_cert)
