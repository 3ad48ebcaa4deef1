"""SIG UUIDs of every service, characteristic and descriptor the drivers use.

Constants are the full lower-case 128-bit strings, the form BlueZ and Bleak report.
"""


def sig_uuid(short: int) -> str:
    """The full 128-bit form of a 16-bit SIG UUID.

    Args:
        short: The assigned number, e.g. ``0x2A18``.

    Returns:
        ``0000xxxx-0000-1000-8000-00805f9b34fb`` in lower case.

    Raises:
        ValueError: `short` is not a 16-bit number.
    """
    if not 0 <= short <= 0xFFFF:
        msg = f"SIG UUID 0x{short:X} is not 16-bit; pass the assigned number, e.g. 0x2A18"
        raise ValueError(msg)
    return f"0000{short:04x}-0000-1000-8000-00805f9b34fb"


# Services
GLUCOSE_SERVICE = sig_uuid(0x1808)
BLOOD_PRESSURE_SERVICE = sig_uuid(0x1810)
WEIGHT_SCALE_SERVICE = sig_uuid(0x181D)
BODY_COMPOSITION_SERVICE = sig_uuid(0x181B)
USER_DATA_SERVICE = sig_uuid(0x181C)
DEVICE_INFORMATION_SERVICE = sig_uuid(0x180A)
BATTERY_SERVICE = sig_uuid(0x180F)
CURRENT_TIME_SERVICE = sig_uuid(0x1805)

# Glucose
GLUCOSE_MEASUREMENT = sig_uuid(0x2A18)
GLUCOSE_MEASUREMENT_CONTEXT = sig_uuid(0x2A34)
GLUCOSE_FEATURE = sig_uuid(0x2A51)
RECORD_ACCESS_CONTROL_POINT = sig_uuid(0x2A52)

# Blood pressure
BLOOD_PRESSURE_MEASUREMENT = sig_uuid(0x2A35)
INTERMEDIATE_CUFF_PRESSURE = sig_uuid(0x2A36)
BLOOD_PRESSURE_FEATURE = sig_uuid(0x2A49)

# Weight scale and body composition
WEIGHT_MEASUREMENT = sig_uuid(0x2A9D)
WEIGHT_SCALE_FEATURE = sig_uuid(0x2A9E)
BODY_COMPOSITION_MEASUREMENT = sig_uuid(0x2A9C)
BODY_COMPOSITION_FEATURE = sig_uuid(0x2A9B)

# User data
USER_CONTROL_POINT = sig_uuid(0x2A9F)
USER_INDEX = sig_uuid(0x2A9A)
DATABASE_CHANGE_INCREMENT = sig_uuid(0x2A99)

# Device information
MANUFACTURER_NAME = sig_uuid(0x2A29)
MODEL_NUMBER = sig_uuid(0x2A24)
SERIAL_NUMBER = sig_uuid(0x2A25)
FIRMWARE_REVISION = sig_uuid(0x2A26)
HARDWARE_REVISION = sig_uuid(0x2A27)
SOFTWARE_REVISION = sig_uuid(0x2A28)
SYSTEM_ID = sig_uuid(0x2A23)

# Battery and time
BATTERY_LEVEL = sig_uuid(0x2A19)
CURRENT_TIME = sig_uuid(0x2A2B)
DATE_TIME = sig_uuid(0x2A08)

# Descriptors
CLIENT_CHARACTERISTIC_CONFIGURATION = sig_uuid(0x2902)
CCCD = CLIENT_CHARACTERISTIC_CONFIGURATION
