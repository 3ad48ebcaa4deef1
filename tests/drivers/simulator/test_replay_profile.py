"""The replay profile's device clock: a capture replayed later shows the skew it had then."""

from datetime import UTC, datetime, timedelta

from drivers.capture import Capture, CapturedTransfer
from drivers.gatt import uuids
from drivers.gatt.current_time import CurrentTime, build_current_time, parse_current_time
from drivers.readings import DeviceTime
from drivers.recording import Direction, Frame
from drivers.simulator.profiles.replay import ReplayProfile


def _capture(started: datetime, shown: datetime) -> Capture:
    cts = build_current_time(CurrentTime(time=DeviceTime.from_datetime(shown)))
    frame = Frame(0, Direction.READ, uuids.CURRENT_TIME, cts, started, 0.0)
    return Capture(
        address="C0:FF:EE:00:00:01",
        name="meter",
        kind="glucose",
        driver="sig_glucose",
        brand="Accu-Chek",
        provider="accuchek_ble",
        services={uuids.CURRENT_TIME_SERVICE: {uuids.CURRENT_TIME: ["read"]}},
        transfers=(CapturedTransfer(started, "0.1.0/1", "UTC", False, (frame,)),),
    )


async def test_the_recorded_clock_moves_on_by_the_time_since_the_recording():
    started = datetime.now(UTC) - timedelta(days=3)
    # The device clock ran 10 minutes fast when it was recorded.
    shown = (started + timedelta(minutes=10)).replace(tzinfo=None, microsecond=0)
    profile = ReplayProfile(_capture(started, shown))
    (service,) = profile.services(None)  # type: ignore[arg-type]  # no device needed
    profile._transfer_now = profile.capture.transfers[0]
    profile._frames = profile.capture.transfers[0].frames
    (char,) = service.characteristics
    assert char.on_read is not None
    served = parse_current_time(char.on_read()).time.wall_clock()
    assert served is not None
    skew = (served - datetime.now(UTC).replace(tzinfo=None)).total_seconds()
    assert abs(skew - 600) < 5
