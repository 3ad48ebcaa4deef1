"""Bonding with a device from the gateway: `pair_device`."""

import logging

from bleak.backends.device import BLEDevice

from drivers.bleak_link.errors import PAIR_REMEDY
from drivers.bleak_link.link import FIND_TIMEOUT_S, BleakLink
from drivers.pairing_agent import PairingAgent

_LOGGER = logging.getLogger(__name__)


async def pair_device(
    address: str,
    passkey: int | None,
    *,
    hint: str = PAIR_REMEDY,
    adapter: str | None = None,
    find_timeout_s: float = FIND_TIMEOUT_S,
    device: BLEDevice | None = None,
) -> None:
    """Bond with a device, answering BlueZ's passkey or PIN request with `passkey`.

    Registers the gateway's `PairingAgent` for the duration, connects with bonding, and
    hangs up. A device that is already bonded succeeds at once.

    Args:
        address: The device.
        passkey: The passkey or PIN the device shows (None for just-works devices).
        hint: How to put this device in pairing mode, for the error message.
        adapter: BlueZ adapter, or the default.
        find_timeout_s: How long to look for the device.
        device: Bleak's device from a scan already running (`BleakRadio.device`); without
            it the device is looked for with a scan of its own.

    Raises:
        PairingError: Wrong passkey, no passkey, refused, or no agent could be registered.
        DeviceNotFoundError: The device is not advertising.
        LinkError: Anything else on the way.
    """
    wanted = address.upper()

    def passkey_for(asking: str) -> int | None:
        return passkey if asking.upper() == wanted else None

    async with PairingAgent(passkey_for):
        link = await BleakLink.connect(
            wanted,
            device=device,
            adapter=adapter,
            pair=True,
            find_timeout_s=find_timeout_s,
            hint=hint,
        )
        await link.disconnect()
    _LOGGER.info("%s: bonded", wanted)
