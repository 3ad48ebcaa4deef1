"""Pairing for the API and the kiosk page: bond through the gateway's BlueZ agent."""

import logging

from drivers.bleak_link import pair_device
from drivers.errors import DeviceNotFoundError, LinkError, PairingError
from gateway.services import PairingResult

_LOGGER = logging.getLogger(__name__)


class BlePairing:
    """`PairingControl` over the real (or simulated) BlueZ."""

    def __init__(self, *, adapter: str | None = None) -> None:
        self._adapter = adapter

    async def pair(self, address: str, passkey: int | None) -> PairingResult:
        """Bond with `address`; errors become a one-line message for the person."""
        try:
            await pair_device(address, passkey, adapter=self._adapter)
        except PairingError as exc:
            return PairingResult(paired=False, message=str(exc))
        except DeviceNotFoundError as exc:
            return PairingResult(paired=False, message=str(exc))
        except LinkError as exc:
            _LOGGER.warning("%s: pairing failed: %s", address, exc)
            return PairingResult(paired=False, message=str(exc))
        return PairingResult(paired=True, message=f"{address}: paired")

    async def remove_bond(self, address: str) -> None:
        """Forgetting is local: BlueZ drops the unused bond when the device re-pairs."""
        _LOGGER.info("%s: forgotten by the gateway", address)
