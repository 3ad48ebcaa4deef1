"""Advertisement layouts that tell a vendor's device from a SIG device using the same UUIDs.

Xiaomi Mi scales broadcast their weights as service data under the SIG Weight Scale (0x181D)
and Body Composition (0x181B) UUIDs, but they speak no SIG profile once connected. Real SIG
scales may carry service data there too: a Beurer BF720 advertises ``01`` under 0x181D next to
the 0x181D UUID and Beurer's company id 0x0611 (KristianP26/ble-scale-sync #168; the BF950 of
#255 was mistaken for a Mi scale the same way). So a Mi scale is recognised by its own layout,
never by the mere presence of service data:

- Mi Scale (XMTZC01HM): 10 bytes under 0x181D (control, weight uint16, year uint16, month,
  day, hour, minute, second; Bluetooth-Devices/xiaomi-ble);
- Mi Body Composition Scale 2 (XMTZC02HM/05HM, "MIBFS"): 13 bytes under 0x181B (two control
  bytes, year, month, day, hour, minute, second, impedance uint16, weight uint16);
- or an advertised name of the Mi family.

Manufacturer data under Beurer's company id rules a device out of the Mi family whatever its
service data says.
"""

from drivers.devices.base import Advertisement
from drivers.gatt import uuids

BEURER_COMPANY_ID = 0x0611
MI_SCALE_V1_SERVICE_DATA_SIZE = 10
MI_SCALE_V2_SERVICE_DATA_SIZE = 13
MI_SCALE_NAME_PREFIXES = ("mibcs", "mibfs", "mi scale", "mi_scale", "xmtzc")


def is_xiaomi_scale(advertisement: Advertisement) -> bool:
    """Whether an advertisement is a Xiaomi Mi scale's (proprietary, not a SIG scale).

    Args:
        advertisement: What the scanner heard.

    Returns:
        True for a Mi-family name or a Mi service-data layout without Beurer's company id.
    """
    name = (advertisement.name or "").lower()
    if any(name.startswith(prefix) for prefix in MI_SCALE_NAME_PREFIXES):
        return True
    if BEURER_COMPANY_ID in advertisement.manufacturer_data:
        return False
    weight = advertisement.service_data.get(uuids.WEIGHT_SCALE_SERVICE)
    body = advertisement.service_data.get(uuids.BODY_COMPOSITION_SERVICE)
    return (weight is not None and len(weight) == MI_SCALE_V1_SERVICE_DATA_SIZE) or (
        body is not None and len(body) == MI_SCALE_V2_SERVICE_DATA_SIZE
    )
