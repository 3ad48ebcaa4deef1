"""D-Bus errors exactly as BlueZ sends them (`src/error.c`, `src/gatt-client.c`).

Bleak branches on these names and texts, so they are protocol, not prose.
"""

from dbus_fast import DBusError

_PREFIX = "org.bluez.Error."

# ATT error codes the simulator raises by name (Core spec Vol 3 Part F 3.4.1.1, CSS Part B 1.2).
ATT_READ_NOT_PERMITTED = 0x02
ATT_WRITE_NOT_PERMITTED = 0x03
ATT_INSUFFICIENT_AUTHENTICATION = 0x05
ATT_REQUEST_NOT_SUPPORTED = 0x06
ATT_INVALID_OFFSET = 0x07
ATT_INSUFFICIENT_AUTHORIZATION = 0x08
ATT_INVALID_ATTRIBUTE_VALUE_LENGTH = 0x0D
ATT_INSUFFICIENT_ENCRYPTION = 0x0F
ATT_CCCD_IMPROPERLY_CONFIGURED = 0xFD
ATT_PROCEDURE_ALREADY_IN_PROGRESS = 0xFE


def bluez_error(name: str, text: str) -> DBusError:
    """An ``org.bluez.Error.<name>`` reply."""
    return DBusError(_PREFIX + name, text)


def att_error(code: int) -> DBusError:
    """The D-Bus error BlueZ's gatt-client returns for an ATT error code."""
    if code == ATT_READ_NOT_PERMITTED:
        return bluez_error("NotPermitted", "Read not permitted")
    if code == ATT_WRITE_NOT_PERMITTED:
        return bluez_error("NotPermitted", "Write not permitted")
    if code in (ATT_INSUFFICIENT_AUTHENTICATION, ATT_INSUFFICIENT_ENCRYPTION, 0x0C):
        return bluez_error("NotPermitted", "Not paired")
    if code == ATT_INVALID_OFFSET:
        return bluez_error("InvalidArguments", "Invalid offset")
    if code == ATT_INVALID_ATTRIBUTE_VALUE_LENGTH:
        return bluez_error("InvalidArguments", "Invalid Length")
    if code == ATT_INSUFFICIENT_AUTHORIZATION:
        return bluez_error("NotAuthorized", "Operation Not Authorized")
    if code == ATT_REQUEST_NOT_SUPPORTED:
        return bluez_error("NotSupported", "Operation is not supported")
    if code == 0:
        return bluez_error("Failed", "Operation failed")
    return bluez_error("Failed", f"Operation failed with ATT error: 0x{code:02x}")


def not_connected() -> DBusError:
    """A GATT request on a device that is not connected."""
    return bluez_error("Failed", "Not connected")


def in_progress() -> DBusError:
    """A request while the same kind of request is still running."""
    return bluez_error("InProgress", "In Progress")


def does_not_exist() -> DBusError:
    """RemoveDevice of an unknown device."""
    return bluez_error("DoesNotExist", "Does Not Exist")
