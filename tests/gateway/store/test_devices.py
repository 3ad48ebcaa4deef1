from datetime import UTC, datetime

from gateway.store import devices
from gateway.store.devices import BondState

ADDRESS = "C0:FF:EE:00:00:01"


def test_device_lifecycle(db):
    seen = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    device = devices.upsert_device(
        db, ADDRESS.lower(), name="meter+00012345", brand="Roche", kind="glucose", last_seen_at=seen
    )
    assert (device.address, device.brand, device.last_seen_at) == (ADDRESS, "Roche", seen)
    devices.set_bond_state(db, ADDRESS, BondState.BONDED)
    devices.set_consent_code(db, ADDRESS, 1, 1234)
    devices.set_consent_code(db, ADDRESS, 2, 9)
    devices.set_consent_code(db, ADDRESS, 2, None)
    devices.set_cursor(db, ADDRESS, last_sequence=17, cursor={"k": [1, 2]})
    devices.upsert_device(db, ADDRESS, battery_percent=80, clock_skew_s=3.5)
    device = devices.get_device(db, ADDRESS)
    assert device is not None
    assert device.bond_state is BondState.BONDED
    assert device.consent_codes == {1: 1234}
    assert (device.last_sequence, device.cursor) == (17, {"k": [1, 2]})
    assert (device.battery_percent, device.clock_skew_s, device.name) == (80, 3.5, "meter+00012345")
    assert [d.address for d in devices.list_devices(db)] == [ADDRESS]
    assert devices.forget_device(db, ADDRESS)
    assert not devices.forget_device(db, ADDRESS)
    assert devices.get_device(db, ADDRESS) is None
