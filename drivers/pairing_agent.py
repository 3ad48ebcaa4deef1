"""The gateway's BlueZ pairing agent (org.bluez.Agent1), since Bleak ships none.

Meters and cuffs that bond with a passkey or PIN make BlueZ ask the registered agent for it.
The agent asks a `PasskeySource` (the CLI's ``--pin``, the API's pairing request) and answers
BlueZ; with no passkey at hand it rejects, so pairing fails fast instead of hanging.

No ``from __future__ import annotations`` here: dbus-fast reads the annotations at runtime.
"""

import logging
from collections.abc import Callable
from types import TracebackType

from dbus_fast import BusType, DBusError, Message
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import DBusObjectPath, DBusStr, DBusUInt16, DBusUInt32
from dbus_fast.service import ServiceInterface, dbus_method

from drivers.errors import PairingError

_LOGGER = logging.getLogger(__name__)

AGENT_PATH = "/org/edge_gateway/agent"
# We can be told a passkey (keyboard) and show one (display): BlueZ then offers every method.
CAPABILITY = "KeyboardDisplay"

PasskeySource = Callable[[str], int | None]
"""Given a device address (``AA:BB:…``), the passkey/PIN to answer with, or None."""


def address_from_path(device_path: str) -> str:
    """``/org/bluez/hci0/dev_AA_BB_CC_DD_EE_FF`` → ``AA:BB:CC:DD:EE:FF``."""
    return device_path.rsplit("/dev_", 1)[-1].replace("_", ":").upper()


class Agent1(ServiceInterface):
    """org.bluez.Agent1 answering from a `PasskeySource`."""

    def __init__(self, passkeys: PasskeySource) -> None:
        super().__init__("org.bluez.Agent1")
        self._passkeys = passkeys

    def _passkey(self, device: str) -> int:
        address = address_from_path(device)
        passkey = self._passkeys(address)
        if passkey is None:
            _LOGGER.warning("%s asked for a passkey and none was given; rejecting", address)
            raise DBusError("org.bluez.Error.Rejected", "No passkey for this device")
        return passkey

    @dbus_method()
    def Release(self) -> None:
        _LOGGER.debug("pairing agent released by BlueZ")

    @dbus_method()
    def RequestPinCode(self, device: DBusObjectPath) -> DBusStr:
        return str(self._passkey(device))

    @dbus_method()
    def DisplayPinCode(self, device: DBusObjectPath, pincode: DBusStr) -> None:
        _LOGGER.info("%s: enter PIN shown by the gateway on the device", device)

    @dbus_method()
    def RequestPasskey(self, device: DBusObjectPath) -> DBusUInt32:
        return self._passkey(device)

    @dbus_method()
    def DisplayPasskey(
        self, device: DBusObjectPath, passkey: DBusUInt32, entered: DBusUInt16
    ) -> None:
        _LOGGER.info("%s: passkey typed so far: %d digit(s)", device, entered)

    @dbus_method()
    def RequestConfirmation(self, device: DBusObjectPath, passkey: DBusUInt32) -> None:
        expected = self._passkeys(address_from_path(device))
        if expected is not None and expected != passkey:
            raise DBusError("org.bluez.Error.Rejected", "Passkey does not match")

    @dbus_method()
    def RequestAuthorization(self, device: DBusObjectPath) -> None:
        _LOGGER.debug("%s: authorising just-works pairing", device)

    @dbus_method()
    def AuthorizeService(self, device: DBusObjectPath, uuid: DBusStr) -> None:
        _LOGGER.debug("%s: authorising service %s", device, uuid)

    @dbus_method()
    def Cancel(self) -> None:
        _LOGGER.info("pairing cancelled by BlueZ")


class PairingAgent:
    """Registers `Agent1` as BlueZ's default agent for as long as the context is open.

    Example:
        ``async with PairingAgent(lambda address: 123456): await client.pair()``
    """

    def __init__(self, passkeys: PasskeySource) -> None:
        self._agent = Agent1(passkeys)
        self._bus: MessageBus | None = None

    async def start(self) -> None:
        """Connect to the system bus and register as the default agent."""
        try:
            self._bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
            self._bus.export(AGENT_PATH, self._agent)
            await self._call("RegisterAgent", "os", [AGENT_PATH, CAPABILITY])
            await self._call("RequestDefaultAgent", "o", [AGENT_PATH])
        except (OSError, DBusError) as exc:
            await self.stop()
            msg = f"BlueZ pairing agent: cannot register ({exc}); is bluetoothd running?"
            raise PairingError(msg) from exc

    async def stop(self) -> None:
        """Unregister and leave the bus."""
        if self._bus is None:
            return
        try:
            await self._call("UnregisterAgent", "o", [AGENT_PATH])
        except DBusError:
            _LOGGER.debug("agent was already unregistered")
        except (OSError, EOFError) as exc:
            # BlueZ or the bus went away (the pairing itself reports that): nothing to undo.
            _LOGGER.debug("agent not unregistered, the bus is gone: %r", exc)
        finally:
            self._bus.disconnect()
            self._bus = None

    async def _call(self, member: str, signature: str, body: list[object]) -> None:
        assert self._bus is not None  # noqa: S101 - only called between start and stop
        reply = await self._bus.call(
            Message(
                destination="org.bluez",
                path="/org/bluez",
                interface="org.bluez.AgentManager1",
                member=member,
                signature=signature,
                body=body,
            )
        )
        if reply is not None and reply.error_name:
            raise DBusError(reply.error_name, str(reply.body[0] if reply.body else ""))

    async def __aenter__(self) -> "PairingAgent":
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
