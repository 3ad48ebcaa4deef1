"""The collector's device states → the local API's radar (`MemoryRadar`), throttled."""

import time
from dataclasses import dataclass, field

from gateway.collector import DeviceState
from gateway.services import MemoryRadar, RadarDevice

# The radar (and its SSE events) is refreshed at most this often per device while advertising.
RADAR_REFRESH_S = 5.0


@dataclass
class RadarFeed:
    """Collector state → the API's radar, throttled so advertisements don't flood the bus."""

    radar: MemoryRadar
    needs_pairing: set[str] = field(default_factory=set)  # refused us "not paired"
    _last: dict[str, tuple[float, bool, bool]] = field(default_factory=dict)

    def __call__(self, address: str, state: DeviceState) -> None:
        """Collector hook: refresh the radar entry if it changed or is getting stale."""
        now = time.monotonic()
        previous = self._last.get(address)
        key = (state.connected, address in self.needs_pairing)
        if previous and previous[1:] == key and now - previous[0] < RADAR_REFRESH_S:
            return
        self._last[address] = (now, *key)
        self.radar.update(
            RadarDevice(
                address=address,
                name=state.advertisement.name,
                kind=state.claim.match.kind.value,
                rssi=state.advertisement.rssi,
                connected=state.connected,
                needs_passkey=address in self.needs_pairing,
                seen_at=state.seen_at,
            )
        )

    def set_needs_pairing(self, address: str, needed: bool, state: DeviceState | None) -> None:
        """Mark (or clear) that `address` needs pairing, and show it at once."""
        if needed == (address in self.needs_pairing):
            return
        if needed:
            self.needs_pairing.add(address)
        else:
            self.needs_pairing.discard(address)
        self._last.pop(address, None)
        if state is not None:
            self(address, state)
