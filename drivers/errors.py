"""Errors raised by the drivers package.

    DriverError
    ├── ParseError          a characteristic value that does not follow its spec
    └── LinkError           talking to the device failed (translated from bleak in bleak_link)
        ├── DeviceNotFoundError     not in range / not advertising
        ├── DisconnectedError       the link dropped during an operation
        ├── PairingError            bonding failed or was refused (wrong passkey, …)
        ├── ProtocolError           the device answered with an ATT / profile error
        └── LinkTimeoutError        the device did not answer in time

Messages lead with the subject (the device, the field) and end with a remedy.
"""


class DriverError(Exception):
    """Root of every error the drivers package raises."""


class ParseError(DriverError):
    """A characteristic value does not follow its specification.

    Attributes:
        field: The field being decoded when the data ran out or was invalid.
        offset: Byte offset of that field in the value.
    """

    def __init__(self, field: str, offset: int, reason: str = "value is truncated") -> None:
        super().__init__(f"{field} at byte {offset}: {reason}")
        self.field = field
        self.offset = offset
        self.reason = reason


class LinkError(DriverError):
    """Talking to a device over its GATT link failed."""


class DeviceNotFoundError(LinkError):
    """The device is not in range or not advertising."""


class DisconnectedError(LinkError):
    """The link dropped while an operation was in progress."""


class PairingError(LinkError):
    """Bonding with the device failed or was refused."""


class ProtocolError(LinkError):
    """The device answered with an ATT or profile-level error."""


class LinkTimeoutError(LinkError):
    """The device did not answer in time."""
