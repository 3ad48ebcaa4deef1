"""The radar publishes `gateway.device.seen` when something changed, not per advertisement."""

import dataclasses

from gateway.events import EventBus
from gateway.services import MemoryRadar, RadarDevice

METER = "C0:FF:EE:00:00:01"


def test_rssi_jitter_is_no_event_but_a_change_is() -> None:
    bus = EventBus()
    radar = MemoryRadar(bus)
    seen = RadarDevice(METER, name="meter", kind="glucose", rssi=-60)
    for rssi in (-60, -61, -58, -63, -60):  # a device sitting on the desk
        radar.update(dataclasses.replace(seen, rssi=rssi))
    events, _ = bus.since(0)
    assert [e.event_type for e in events] == ["gateway.device.seen"]
    assert radar.snapshot()[0].rssi == -60  # the radar itself stays current

    radar.update(dataclasses.replace(seen, connected=True))
    radar.update(dataclasses.replace(seen, needs_passkey=True))
    events, _ = bus.since(0)
    assert len(events) == 3
    assert events[-1].data["needs_passkey"] is True
