"""Every Bleak, D-Bus and retry-connector error as a `drivers.errors.LinkError`.

`translate` is the one translation boundary: messages lead with the device and end with a
remedy; nothing outside this package sees a Bleak exception.
"""

from bleak.exc import (
    BleakBluetoothNotAvailableError,
    BleakCharacteristicNotFoundError,
    BleakDBusError,
    BleakDeviceNotFoundError,
    BleakError,
    BleakGATTProtocolError,
    BleakGATTProtocolErrorCode,
)
from bleak_retry_connector import (
    BleakAbortedError,
    BleakNotFoundError,
    BleakOutOfConnectionSlotsError,
)

from drivers.errors import (
    DeviceNotFoundError,
    DisconnectedError,
    LinkError,
    LinkTimeoutError,
    PairingError,
    ProtocolError,
)

PAIR_REMEDY = "put the device in pairing mode and run `edge-gateway pair ADDRESS --pin N`"

_PAIRING_ERRORS = {
    "org.bluez.Error.AuthenticationFailed": "the passkey or PIN was wrong",
    "org.bluez.Error.AuthenticationRejected": "the pairing agent had no passkey for it",
    "org.bluez.Error.AuthenticationCanceled": "pairing was cancelled",
    "org.bluez.Error.AuthenticationTimeout": "the device did not answer the pairing request",
    "org.bluez.Error.ConnectionAttemptFailed": "the device refused to bond",
}
_SECURITY_CODES = {
    BleakGATTProtocolErrorCode.INSUFFICIENT_AUTHENTICATION,
    BleakGATTProtocolErrorCode.INSUFFICIENT_AUTHORIZATION,
    BleakGATTProtocolErrorCode.INSUFFICIENT_ENCRYPTION,
    BleakGATTProtocolErrorCode.INSUFFICIENT_ENCRYPTION_KEY_SIZE,
}
# What BlueZ and Bleak say when the link is gone under an operation.
_GONE_TEXTS = (
    "Service Discovery has not been performed yet",
    "Not connected",
    "not connected",
    "Software caused connection abort",
    "le-connection-abort",
    "Disconnected",
)


def translate(exc: BaseException, address: str, doing: str, hint: str = PAIR_REMEDY) -> LinkError:
    """The `LinkError` for a Bleak / D-Bus / retry-connector failure.

    Args:
        exc: What Bleak (or the OS) raised.
        address: The device, leading the message.
        doing: What was being done (``"read 2a18"``, ``"connect"``).
        hint: How to put this device in pairing mode, for pairing failures.

    Returns:
        The translated error (raise it ``from exc``).
    """
    if isinstance(exc, LinkError):
        return exc
    pairing = pairing_failure(exc)
    if pairing is not None:
        return PairingError(f"{address}: pairing failed: {pairing}; {hint}")
    text = str(exc)
    if doing == "connect" and any(t in text for t in _GONE_TEXTS):
        return DeviceNotFoundError(
            f"{address}: could not connect (the connection was aborted); the device is out of "
            "range or asleep: wake it (take a reading or press its Bluetooth button) and bring "
            "it closer"
        )
    if isinstance(exc, BleakGATTProtocolError):
        if exc.code in _SECURITY_CODES:
            return PairingError(f"{address}: {doing} needs a bonded device ({text}); {hint}")
        return ProtocolError(
            f"{address}: {doing} refused by the device ({exc.code.name}); "
            "check the device is idle (not measuring) and retry"
        )
    if isinstance(exc, BleakDBusError):
        return _translate_dbus(exc, address, doing, hint)
    if isinstance(exc, (BleakDeviceNotFoundError, BleakNotFoundError)):
        return DeviceNotFoundError(
            f"{address}: not found in range; wake the device (take a reading or press its "
            "Bluetooth button) and bring it closer"
        )
    if isinstance(exc, BleakOutOfConnectionSlotsError):
        return LinkError(
            f"{address}: the Bluetooth adapter has no free connection slot; wait for other "
            "transfers to finish or add an adapter"
        )
    if isinstance(exc, BleakAbortedError):
        return DisconnectedError(
            f"{address}: the connection was aborted (interference or out of range); "
            "bring the device closer and retry"
        )
    if isinstance(exc, BleakCharacteristicNotFoundError):
        return ProtocolError(
            f"{address}: {doing}: the device has no such characteristic; is it the model the "
            "driver expects?"
        )
    if isinstance(exc, BleakBluetoothNotAvailableError):
        return LinkError(
            f"{address}: Bluetooth is not available ({text}); check bluetoothd runs and the "
            "adapter is powered (`bluetoothctl power on`)"
        )
    if isinstance(exc, TimeoutError):
        return LinkTimeoutError(
            f"{address}: {doing} timed out; check the device is awake and in range, then retry"
        )
    if isinstance(exc, BleakError) and any(t in text for t in _GONE_TEXTS):
        return DisconnectedError(f"{address}: link lost during {doing}; bring it closer and retry")
    if isinstance(exc, (EOFError, OSError)):
        return LinkError(
            f"{address}: cannot reach BlueZ over D-Bus during {doing} ({exc!r}); check "
            "bluetoothd and DBUS_SYSTEM_BUS_ADDRESS"
        )
    return LinkError(f"{address}: {doing} failed ({text or type(exc).__name__}); retry")


# What the D-Bus daemon answers for a call to a name nobody owns.
_NO_BLUEZ = (
    "org.freedesktop.DBus.Error.ServiceUnknown",
    "org.freedesktop.DBus.Error.NameHasNoOwner",
)


def _translate_dbus(exc: BleakDBusError, address: str, doing: str, hint: str) -> LinkError:
    name, details = exc.dbus_error, exc.dbus_error_details or ""
    if name in ("org.bluez.Error.NotPermitted", "org.bluez.Error.NotAuthorized") and (
        "pair" in details.lower() or "auth" in details.lower() or "encrypt" in details.lower()
    ):
        return PairingError(f"{address}: {doing} needs a bonded device ({details}); {hint}")
    if name in ("org.freedesktop.DBus.Error.UnknownObject", "org.bluez.Error.DoesNotExist"):
        return DeviceNotFoundError(
            f"{address}: BlueZ does not know the device; scan for it first and retry"
        )
    if any(t in details for t in _GONE_TEXTS) or name == "org.bluez.Error.NotConnected":
        return DisconnectedError(f"{address}: link lost during {doing}; bring it closer and retry")
    if name in _NO_BLUEZ and "org.bluez" in details:
        # The bus is up but bluetoothd is not on it (stopped, crashed, restarting).
        return LinkError(
            f"{address}: cannot reach BlueZ during {doing}: bluetoothd is not running on the "
            "system bus; start it (`systemctl start bluetooth`) or check DBUS_SYSTEM_BUS_ADDRESS"
        )
    if name == "org.bluez.Error.InProgress":
        return LinkError(f"{address}: {doing}: BlueZ is busy with this device; retry shortly")
    return ProtocolError(f"{address}: {doing} failed ({name}: {details}); retry")


def maybe_link_loss(exc: BaseException) -> bool:
    """Whether `exc` is what an operation in flight gets when the link drops."""
    if isinstance(exc, (EOFError, BrokenPipeError, ConnectionError)):
        return True
    if isinstance(exc, BleakDBusError):
        details = exc.dbus_error_details or ""
        return exc.dbus_error == "org.bluez.Error.Failed" and "ATT error" not in details
    return isinstance(exc, BleakError) and any(t in str(exc) for t in _GONE_TEXTS)


def pairing_failure(exc: BaseException) -> str | None:
    """Why bonding failed, if `exc` (or what it wraps) is a pairing failure."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, BleakDBusError) and current.dbus_error in _PAIRING_ERRORS:
            return _PAIRING_ERRORS[current.dbus_error]
        current = current.__cause__ or current.__context__
    return None
