"""org.bluez.AgentManager1, and bonding through the agent a client registered.

Real BlueZ asks the registered agent for the passkey / PIN / confirmation when a device that
demands authentication pairs. The gateway exports its own org.bluez.Agent1 (Bleak has none), so
the simulator calls it back over D-Bus exactly as BlueZ would.

No ``from __future__ import annotations`` here: dbus-fast reads the annotations at runtime.
"""

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dbus_fast import Message, MessageType
from dbus_fast.annotations import DBusObjectPath, DBusStr
from dbus_fast.service import ServiceInterface, dbus_method

from drivers.simulator import bluez_errors

if TYPE_CHECKING:
    from drivers.simulator.device import SimDevice
    from drivers.simulator.server import Simulator

AGENT_INTERFACE = "org.bluez.Agent1"
# BlueZ gives an agent this long to answer before pairing fails with AuthenticationTimeout.
AGENT_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class RegisteredAgent:
    """An agent object some client exported and registered."""

    sender: str
    path: str
    capability: str


class Agents:
    """The agents clients registered, and the authentication step of pairing."""

    def __init__(self, simulator: "Simulator") -> None:
        self._simulator = simulator
        self._agents: dict[str, RegisteredAgent] = {}  # by sender
        self._default: str | None = None
        self._pending: dict[str, asyncio.Task[Message]] = {}

    def register(self, sender: str, path: str, capability: str) -> None:
        """AgentManager1.RegisterAgent."""
        if sender in self._agents:
            raise bluez_errors.bluez_error("AlreadyExists", "Already Exists")
        self._agents[sender] = RegisteredAgent(sender, path, capability or "KeyboardDisplay")

    def unregister(self, sender: str, path: str) -> None:
        """AgentManager1.UnregisterAgent."""
        agent = self._agents.get(sender)
        if agent is None or agent.path != path:
            raise bluez_errors.bluez_error("DoesNotExist", "No such Agent")
        del self._agents[sender]
        if self._default == sender:
            self._default = None

    def request_default(self, sender: str, path: str) -> None:
        """AgentManager1.RequestDefaultAgent."""
        agent = self._agents.get(sender)
        if agent is None or agent.path != path:
            raise bluez_errors.bluez_error("DoesNotExist", "Does Not Exist")
        self._default = sender

    def forget_sender(self, sender: str) -> None:
        """A client left the bus: its agent goes with it."""
        self._agents.pop(sender, None)
        if self._default == sender:
            self._default = None

    def _agent_for(self, sender: str) -> RegisteredAgent | None:
        # BlueZ prefers the pairing client's own agent, then the default one.
        if sender in self._agents:
            return self._agents[sender]
        return self._agents.get(self._default) if self._default else None

    async def authenticate(self, device: "SimDevice", sender: str) -> None:
        """Run the device's authentication through an agent or fail as BlueZ does."""
        pairing = device.pairing
        assert pairing is not None  # noqa: S101 - callers check needs_bonding
        agent = self._agent_for(sender)
        if agent is None or agent.capability == "NoInputNoOutput":
            raise bluez_errors.bluez_error("AuthenticationFailed", "Authentication Failed")
        if pairing.method == "confirm":
            call = self._call(agent, "RequestConfirmation", "ou", [device.path, pairing.passkey])
        elif pairing.method == "pin":
            call = self._call(agent, "RequestPinCode", "o", [device.path])
        else:
            call = self._call(agent, "RequestPasskey", "o", [device.path])
        task = asyncio.ensure_future(call)
        self._pending[device.address] = task
        try:
            reply = await asyncio.wait_for(task, AGENT_TIMEOUT_S)
        except asyncio.CancelledError:
            raise bluez_errors.bluez_error(
                "AuthenticationCanceled", "Authentication Canceled"
            ) from None
        except TimeoutError:
            raise bluez_errors.bluez_error(
                "AuthenticationTimeout", "Authentication Timeout"
            ) from None
        finally:
            self._pending.pop(device.address, None)
        if reply.message_type == MessageType.ERROR:
            if reply.error_name in ("org.bluez.Error.Canceled",):
                raise bluez_errors.bluez_error("AuthenticationCanceled", "Authentication Canceled")
            raise bluez_errors.bluez_error("AuthenticationRejected", "Authentication Rejected")
        if not _answer_matches(pairing.method, pairing.passkey, reply.body):
            device.drop_link("authentication failed")
            raise bluez_errors.bluez_error("AuthenticationFailed", "Authentication Failed")

    def cancel(self, device: "SimDevice") -> None:
        """Device1.CancelPairing."""
        task = self._pending.get(device.address)
        if task is None:
            raise bluez_errors.bluez_error("DoesNotExist", "Does Not Exist")
        task.cancel()

    async def _call(
        self, agent: RegisteredAgent, member: str, signature: str, body: list[object]
    ) -> Message:
        reply = await self._simulator.bus.call(
            Message(
                destination=agent.sender,
                path=agent.path,
                interface=AGENT_INTERFACE,
                member=member,
                signature=signature,
                body=body,
            )
        )
        assert reply is not None  # noqa: S101 - method calls always get a reply
        return reply


def _answer_matches(method: str, expected: int | None, body: list[object]) -> bool:
    if method == "confirm":
        return True  # an agent that did not reject has confirmed
    if not body:
        return False
    answer = body[0]
    if method == "pin":
        return str(answer) == str(expected)
    return isinstance(answer, int) and answer == expected


class AgentManager1(ServiceInterface):
    """org.bluez.AgentManager1 at /org/bluez."""

    def __init__(self, simulator: "Simulator") -> None:
        super().__init__("org.bluez.AgentManager1")
        self._simulator = simulator

    @dbus_method()
    def RegisterAgent(self, agent: DBusObjectPath, capability: DBusStr) -> None:
        self._simulator.agents.register(self._simulator.current_sender(), agent, capability)

    @dbus_method()
    def UnregisterAgent(self, agent: DBusObjectPath) -> None:
        self._simulator.agents.unregister(self._simulator.current_sender(), agent)

    @dbus_method()
    def RequestDefaultAgent(self, agent: DBusObjectPath) -> None:
        self._simulator.agents.request_default(self._simulator.current_sender(), agent)
