import pytest

from drivers.gatt import uuids
from drivers.gatt.uuids import sig_uuid


def test_sig_uuid():
    assert sig_uuid(0x2A18) == "00002a18-0000-1000-8000-00805f9b34fb"


@pytest.mark.parametrize(
    ("constant", "short"),
    [
        (uuids.GLUCOSE_SERVICE, 0x1808),
        (uuids.GLUCOSE_MEASUREMENT, 0x2A18),
        (uuids.GLUCOSE_MEASUREMENT_CONTEXT, 0x2A34),
        (uuids.GLUCOSE_FEATURE, 0x2A51),
        (uuids.RECORD_ACCESS_CONTROL_POINT, 0x2A52),
        (uuids.BLOOD_PRESSURE_SERVICE, 0x1810),
        (uuids.BLOOD_PRESSURE_MEASUREMENT, 0x2A35),
        (uuids.INTERMEDIATE_CUFF_PRESSURE, 0x2A36),
        (uuids.BLOOD_PRESSURE_FEATURE, 0x2A49),
        (uuids.WEIGHT_SCALE_SERVICE, 0x181D),
        (uuids.WEIGHT_MEASUREMENT, 0x2A9D),
        (uuids.WEIGHT_SCALE_FEATURE, 0x2A9E),
        (uuids.BODY_COMPOSITION_SERVICE, 0x181B),
        (uuids.BODY_COMPOSITION_MEASUREMENT, 0x2A9C),
        (uuids.BODY_COMPOSITION_FEATURE, 0x2A9B),
        (uuids.USER_DATA_SERVICE, 0x181C),
        (uuids.USER_CONTROL_POINT, 0x2A9F),
        (uuids.USER_INDEX, 0x2A9A),
        (uuids.DATABASE_CHANGE_INCREMENT, 0x2A99),
        (uuids.DEVICE_INFORMATION_SERVICE, 0x180A),
        (uuids.MANUFACTURER_NAME, 0x2A29),
        (uuids.MODEL_NUMBER, 0x2A24),
        (uuids.SERIAL_NUMBER, 0x2A25),
        (uuids.FIRMWARE_REVISION, 0x2A26),
        (uuids.BATTERY_SERVICE, 0x180F),
        (uuids.BATTERY_LEVEL, 0x2A19),
        (uuids.CURRENT_TIME_SERVICE, 0x1805),
        (uuids.CURRENT_TIME, 0x2A2B),
        (uuids.DATE_TIME, 0x2A08),
        (uuids.CCCD, 0x2902),
    ],
)
def test_constants(constant, short):
    assert constant == f"0000{short:04x}-0000-1000-8000-00805f9b34fb"


@pytest.mark.parametrize("short", [-1, 0x10000])
def test_sig_uuid_rejects_non_16_bit(short):
    with pytest.raises(ValueError, match="16-bit"):
        sig_uuid(short)
