"""The MQTT sink: publishes stored readings to the owner's broker, beside the Junction uploader.

It walks the store's change order from its own cursor (`gateway.store.mqtt_ledger`), so it
never depends on the collector calling it: `wake()` only makes it look sooner. For each batch
it publishes at QoS 1 and waits for the broker's PUBACKs, then moves the cursor and the ledger
in one transaction. A broker outage or a restart therefore resumes at the first reading not
acknowledged — nothing is lost, and nothing already acknowledged is sent again. (A crash
between PUBACK and the commit re-sends at most the batch in flight: MQTT QoS 1 is
at-least-once.)

The connection is aiomqtt's (paho-mqtt 2) with the gateway's availability topic as the last
will, so Home Assistant marks every entity unavailable when the gateway vanishes. Reconnects
back off from 1 s to `retry_max_s`. Logs name hosts, topics and counts, never a value or the
password (DESIGN.md §4 "Health data is private").
"""

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiomqtt
from aiomqtt.exceptions import MqttConnectError

from gateway.config import MqttSettings
from gateway.mqtt import messages
from gateway.mqtt.discovery import DeviceInfo, Discovery
from gateway.mqtt.measures import Measure, measures
from gateway.mqtt.messages import Message
from gateway.mqtt.topics import STATUS_OFFLINE, STATUS_ONLINE, Node, Topics, person_node
from gateway.store import mqtt_ledger as ledger
from gateway.store.aio import call
from gateway.store.db import Database
from gateway.store.devices import get_device, list_devices
from gateway.store.errors import StoreError

_LOGGER = logging.getLogger(__name__)
# paho's own log (socket errors at ERROR on every outage); below ours so levels can differ.
_CLIENT_LOGGER = logging.getLogger(f"{__name__}.client")

CURSOR_NAME = "mqtt"
HA_STATUS_SUFFIX = "status"  # Home Assistant's birth/last-will topic under the prefix


@dataclass
class SinkStats:
    """Counters for tests, benches and status.

    Attributes:
        readings: Readings published since start.
        messages: Messages acknowledged by the broker since start.
        connects: Successful connections since start.
        connected: A connection is up now.
        cursor: The change sequence handled so far.
        last_published: Monotonic time of the last acknowledged batch.
        state_checks: Device and gateway state checks done (each publishes what changed).
    """

    readings: int = 0
    messages: int = 0
    connects: int = 0
    connected: bool = False
    cursor: int = 0
    last_published: float = 0.0
    state_checks: int = 0


def tls_context(settings: MqttSettings) -> ssl.SSLContext | None:
    """The TLS context `settings` ask for, or None for plain TCP.

    TLS is on when a CA file or a client certificate is set; the system CAs are used when
    only a client certificate is given.
    """
    if settings.tls_ca_file is None and settings.tls_cert_file is None:
        return None
    context = ssl.create_default_context(
        cafile=str(settings.tls_ca_file) if settings.tls_ca_file else None
    )
    if settings.tls_cert_file is not None:
        key = str(settings.tls_key_file) if settings.tls_key_file else None
        context.load_cert_chain(str(settings.tls_cert_file), key)
    return context


@dataclass
class _Connection:
    """What has been sent on the current connection (reset on every connect)."""

    announced: set[tuple[str, str]] = field(default_factory=set)
    device_state: dict[str, str] = field(default_factory=dict)
    gateway_state: dict[str, str] = field(default_factory=dict)


class MqttSink:
    """Publishes readings, device and gateway state, and discovery configs to one broker."""

    def __init__(
        self,
        db: Database,
        settings: MqttSettings,
        *,
        upstream_online: Callable[[], bool] = lambda: True,
        rssi: Callable[[str], int | None] = lambda _address: None,
        batch_size: int = 100,
        status_interval_s: float = 15.0,
        retry_max_s: float = 30.0,
        timeout_s: float = 10.0,
    ) -> None:
        """Wire the sink (nothing connects until `run`).

        Args:
            db: The store (its cursor and ledger live there).
            settings: The `[mqtt]` section.
            upstream_online: Whether Junction is reachable (the gateway's connectivity sensor).
            rssi: Last signal strength (dBm) of a BLE address, if seen.
            batch_size: Readings read from the store per batch.
            status_interval_s: How often device and gateway state are re-checked.
            retry_max_s: Longest wait between reconnect attempts.
            timeout_s: How long a connect or a PUBACK may take before the link counts as lost.
        """
        self._db = db
        self._settings = settings
        self._topics = Topics(settings.base_topic, settings.discovery_prefix)
        self._discovery = Discovery(self._topics)
        self._table = measures(settings.glucose_unit)
        self._upstream_online = upstream_online
        self._rssi = rssi
        self._batch_size = batch_size
        self._status_interval_s = status_interval_s
        self._retry_max_s = retry_max_s
        self._timeout_s = timeout_s
        self._wake = asyncio.Event()
        self._stopping = False
        self._reannounce = False
        self._latest: dict[tuple[str, str], datetime] = {}
        self._nodes: dict[str, tuple[Node, set[str]]] = {}
        self.stats = SinkStats()

    @property
    def topics(self) -> Topics:
        """The topics this sink publishes to."""
        return self._topics

    def wake(self) -> None:
        """New readings were committed: look now instead of at the next interval."""
        self._wake.set()

    def stop(self) -> None:
        """Finish the batch in flight, publish ``offline`` and return from `run`."""
        self._stopping = True
        self._wake.set()

    def _stop_requested(self) -> bool:
        return self._stopping

    def _client(self) -> aiomqtt.Client:
        s = self._settings
        client = aiomqtt.Client(
            s.host,
            s.port,
            username=s.username,
            password=s.password.get_secret_value() if s.password else None,
            identifier=s.client_id or f"edge-gateway-{self._topics.base.replace('/', '-')}",
            will=aiomqtt.Will(self._topics.status, STATUS_OFFLINE, qos=1, retain=True),
            keepalive=s.keepalive_s,
            timeout=self._timeout_s,
            tls_context=tls_context(s),
            logger=_CLIENT_LOGGER,
            # paho's default of 20 unacknowledged QoS 1 messages halves a backlog's rate.
            max_inflight_messages=100,
        )
        # A batch is handed over at once by design; aiomqtt would warn above 10 pending.
        client.pending_calls_threshold = 10 * self._batch_size
        return client

    async def run(self) -> None:
        """Publish until `stop()`, reconnecting with backoff whenever the broker is away.

        Never returns early: a broker outage, a refused login, a TLS failure, a busy store or
        a bug in the sink is logged (the first time at WARNING, then every 10th attempt) and
        retried, because the sink is a side channel that must not stop the gateway.
        """
        self._stopping = False
        where = f"{self._settings.host}:{self._settings.port}"
        delay = 1.0
        failures = 0
        loaded = False
        while not self._stopping:
            problem: str | None = None
            try:
                if not loaded:
                    self.stats.cursor = await call(ledger.cursor, self._db, CURSOR_NAME)
                    self._latest = await call(ledger.latest_published, self._db)
                    await call(ledger.prune, self._db)
                    loaded = True
                async with self._client() as client:
                    self.stats.connected = True
                    self.stats.connects += 1
                    delay, failures = 1.0, 0
                    _LOGGER.info("mqtt: connected to %s (base topic %s)", where, self._topics.base)
                    await self._session(client)
                    with contextlib.suppress(aiomqtt.MqttError):
                        await self._publish(client, self._topics.status, STATUS_OFFLINE, True)
            except MqttConnectError as exc:
                hint = ""
                # CONNACK 4/5 (MQTT 3.1.1) or 134/135 (MQTT 5): credentials or not authorised.
                if getattr(exc.rc, "value", exc.rc) in (4, 5, 134, 135):
                    hint = "; check [mqtt] username and password"
                problem = f"{where} refused the connection ({exc}){hint}"
            except aiomqtt.MqttError as exc:
                problem = f"broker {where} unavailable ({exc})"
            except StoreError as exc:
                problem = f"store not readable ({exc})"
            except OSError as exc:  # ssl.SSLError too; a TLS file unreadable since start-up
                problem = f"TLS set-up for {where} failed ({exc}); check [mqtt] tls_* files"
            except Exception:  # a bug here must not stop the collector and uploader
                _LOGGER.exception("mqtt: the sink failed; restarting it in %.0f s", delay)
            finally:
                self.stats.connected = False
            if problem is not None:
                failures += 1
                level = logging.WARNING if failures % 10 == 1 else logging.DEBUG
                _LOGGER.log(level, "mqtt: %s; retrying in %.0f s", problem, delay)
            if self._stop_requested():
                break
            await self._sleep(delay)
            delay = min(delay * 2, self._retry_max_s)
        _LOGGER.info("mqtt: stopped at change %d", self.stats.cursor)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()

    async def _session(self, client: aiomqtt.Client) -> None:
        connection = _Connection()
        await self._publish(client, self._topics.status, STATUS_ONLINE, True)
        # Home Assistant announces its (re)start here; discovery is then sent again.
        await client.subscribe(f"{self._topics.discovery_prefix}/{HA_STATUS_SUFFIX}", qos=1)
        listener = asyncio.create_task(self._listen(client), name="mqtt-listen")
        try:
            await self._announce_known(client, connection)
            while not self._stopping:
                if listener.done():
                    listener.result()  # the link dropped: raise its error
                if self._reannounce:
                    self._reannounce = False
                    connection = _Connection()
                    await self._announce_known(client, connection)
                full = await self._drain(client, connection)
                await self._publish_state(client, connection)
                if not full:
                    # Until new readings, the next state check, or the link drops.
                    waker = asyncio.create_task(self._wake.wait())
                    await asyncio.wait(
                        {waker, listener},
                        timeout=self._status_interval_s,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                    waker.cancel()
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await listener

    async def _listen(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            if message.payload in (b"online", "online"):
                _LOGGER.info("mqtt: Home Assistant (re)started; sending discovery again")
                self._reannounce = True
                self._wake.set()

    async def _publish(
        self, client: aiomqtt.Client, topic: str, payload: str, retain: bool
    ) -> None:
        await client.publish(topic, payload, qos=1, retain=retain)
        self.stats.messages += 1

    async def _publish_all(self, client: aiomqtt.Client, batch: Iterable[Message]) -> None:
        # Issued together, acknowledged in order on one connection; waits for every PUBACK.
        await asyncio.gather(*(self._publish(client, m.topic, m.payload, m.retain) for m in batch))

    # ------------------------------------------------------------------ discovery

    async def _announce_known(self, client: aiomqtt.Client, connection: _Connection) -> None:
        await self._publish_all(
            client,
            (Message(t, messages.json_text(c), True) for t, c in self._discovery.gateway()),
        )
        owners = await call(ledger.owners, self._db, self.stats.cursor)
        for owner in owners:
            node = self._node_of(owner.device, owner.user_id, owner.user_name, owner.user_index)
            await self._announce(client, connection, node, owner.kind)

    def _node_of(
        self, device: str, user_id: str | None, user_name: str | None, user_index: int | None
    ) -> Node:
        return person_node(
            device,
            user_id=user_id,
            user_name=user_name,
            user_index=user_index,
            person_topic=self._settings.person_topic,
        )

    async def _announce(
        self, client: aiomqtt.Client, connection: _Connection, node: Node, kind: str
    ) -> None:
        known = self._nodes.setdefault(node.node_id, (node, set()))[1]
        known.add(kind)
        if (node.node_id, kind) in connection.announced:
            return
        first_of_node = not any(n == node.node_id for n, _ in connection.announced)
        connection.announced.add((node.node_id, kind))
        info = await call(_device_info, self._db, node.address)
        table: list[Measure] = [m for m in self._table if m.kind.value == kind]
        configs = self._discovery.node(node, info, table)
        if not first_of_node:  # the device sensors went out with the node's first kind
            configs = configs[: len(table)]
        await self._publish_all(
            client, (Message(t, messages.json_text(c), True) for t, c in configs)
        )
        _LOGGER.debug("mqtt: discovery sent for %s (%s)", node.node_id, kind)

    # ------------------------------------------------------------------ readings

    async def _drain(self, client: aiomqtt.Client, connection: _Connection) -> bool:
        """Publish one batch after the cursor; True when the batch was full (more may wait)."""
        self._wake.clear()
        changes = await call(ledger.changes_after, self._db, self.stats.cursor, self._batch_size)
        if not changes:
            return False
        before = await call(ledger.digests, self._db, [c.stored.reading.id for c in changes])
        done: list[ledger.Published] = []
        handled = self.stats.cursor
        # Every message of the batch goes to the client at once (one connection keeps their
        # order, paho limits what is in flight); readings then count as published in store
        # order, each once all its PUBACKs are in, up to the first failure.
        scheduled: list[tuple[int, ledger.Published | None, asyncio.Future[Any] | None]] = []
        failed = False
        try:
            for change in changes:
                stored = change.stored
                reading = stored.reading
                node = self._node_of(
                    reading.device, stored.user_id, change.user_name, reading.user_index
                )
                key = (node.node_id, reading.kind.value)
                latest = self._latest.get(key)
                newest = latest is None or stored.start_date >= latest
                built = messages.build(stored, node, self._topics, self._table, newest=newest)
                entry, acks = None, None
                if before.get(reading.id) != built.digest:
                    await self._announce(client, connection, node, reading.kind.value)
                    acks = asyncio.gather(
                        *(self._publish(client, m.topic, m.payload, m.retain) for m in built.all)
                    )
                    entry = ledger.Published(
                        reading.id, node.node_id, key[1], stored.start_date, built.digest
                    )
                    if newest:
                        self._latest[key] = stored.start_date
                scheduled.append((change.change_seq, entry, acks))
            for change_seq, entry, acks in scheduled:
                if acks is not None and entry is not None:
                    await acks
                    done.append(entry)
                handled = change_seq
        except BaseException:
            failed = True
            issued = [acks for _, _, acks in scheduled if acks is not None]
            for acks in issued:
                acks.cancel()  # no-op for those already settled
            # Collects every outcome, so no failed publish is left "never retrieved".
            await asyncio.gather(*issued, return_exceptions=True)
            raise
        finally:
            # Whatever the broker acknowledged is recorded, even if the link dropped midway.
            if handled > self.stats.cursor:
                await call(ledger.record, self._db, CURSOR_NAME, done, handled)
                self.stats.cursor = handled
                self.stats.readings += len(done)
                self.stats.last_published = asyncio.get_running_loop().time()
                if done:
                    _LOGGER.info("mqtt: published %d reading(s)", len(done))
            if failed:  # newest-per-sensor ran ahead of what was acknowledged
                self._latest = await call(ledger.latest_published, self._db)
        return len(changes) == self._batch_size

    # ------------------------------------------------------------------ state

    async def _publish_state(self, client: aiomqtt.Client, connection: _Connection) -> None:
        counts = await call(ledger.upload_counts, self._db)
        gateway = {
            "upload_queue": str(counts["queued"]),
            "dead_letters": str(counts["dead"]),
            "upstream": "ON" if self._upstream_online() else "OFF",
        }
        pending = [
            Message(self._topics.gateway(k), v, True)
            for k, v in gateway.items()
            if connection.gateway_state.get(k) != v
        ]
        connection.gateway_state.update(gateway)
        addresses = {node.address for node, _ in self._nodes.values()}
        if addresses:
            for device in await call(list_devices, self._db):
                if device.address not in addresses:
                    continue
                state: dict[str, Any] = {
                    "battery": device.battery_percent,
                    "rssi": self._rssi(device.address),
                    "last_seen": messages.iso(device.last_seen_at) if device.last_seen_at else None,
                }
                for metric, value in state.items():
                    topic = self._topics.device(device.address, metric)
                    if value is None or connection.device_state.get(topic) == str(value):
                        continue
                    connection.device_state[topic] = str(value)
                    pending.append(Message(topic, str(value), True))
        if pending:
            await self._publish_all(client, pending)
        self.stats.state_checks += 1


def _device_info(db: Database, address: str) -> DeviceInfo:
    device = get_device(db, address)
    return DeviceInfo() if device is None else DeviceInfo(device.name, device.brand, device.model)
