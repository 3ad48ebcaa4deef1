"""Reading and outbox-item factories shared by the sync tests and the outbox contract."""

import itertools
from datetime import UTC, datetime, timedelta

from drivers.readings import (
    BloodPressureReading,
    BodyReading,
    DeviceTime,
    GlucoseReading,
    GlucoseUnit,
    MassUnit,
    PressureUnit,
    Reading,
    ReadingFlag,
    ReadingKind,
    stable_reading_id,
)
from sync.outbox import OutboxItem, Stage

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
_SEQ = itertools.count(1)


def wall(hour: int, minutes: int = 0) -> datetime:
    """A naive device wall-clock time on 2026-11-20."""
    return datetime(2026, 11, 20, hour, 0) + timedelta(minutes=minutes)  # noqa: DTZ001


def glucose(
    seq: int | None = None,
    *,
    device: str = "C0:FF:EE:00:00:01",
    concentration: float = 0.00104,
    unit: GlucoseUnit = GlucoseUnit.KG_PER_L,
    device_time: DeviceTime | None = None,
    flags: frozenset[ReadingFlag] = frozenset(),
    **extra: object,
) -> GlucoseReading:
    seq = next(_SEQ) if seq is None else seq
    time = device_time or DeviceTime.from_datetime(wall(7, seq))
    return GlucoseReading(
        id=stable_reading_id(device, ReadingKind.GLUCOSE, sequence=seq, device_time=time),
        device=device,
        provider="accuchek_ble",
        received_at=T0,
        device_time=time,
        sequence=seq,
        concentration=concentration,
        unit=unit,
        flags=flags,
        **extra,  # type: ignore[arg-type]
    )


def blood_pressure(
    seq: int | None = None,
    *,
    device: str = "C0:FF:EE:00:00:02",
    systolic: float = 120.0,
    diastolic: float = 80.0,
    unit: PressureUnit = PressureUnit.MMHG,
    pulse: float | None = 64.0,
    flags: frozenset[ReadingFlag] = frozenset(),
    user_index: int | None = 1,
) -> BloodPressureReading:
    seq = next(_SEQ) if seq is None else seq
    time = DeviceTime.from_datetime(wall(8, seq))
    return BloodPressureReading(
        id=stable_reading_id(
            device,
            ReadingKind.BLOOD_PRESSURE,
            sequence=None,
            device_time=time,
            user_index=user_index,
        ),
        device=device,
        provider="omron_ble",
        received_at=T0,
        device_time=time,
        user_index=user_index,
        systolic=systolic,
        diastolic=diastolic,
        mean_arterial=None,
        unit=unit,
        pulse_bpm=pulse,
        flags=flags,
    )


def body(
    seq: int | None = None,
    *,
    device: str = "C0:FF:EE:00:00:03",
    weight: float | None = 70.5,
    unit: MassUnit = MassUnit.KG,
    fat_percent: float | None = 21.5,
    flags: frozenset[ReadingFlag] = frozenset(),
) -> BodyReading:
    seq = next(_SEQ) if seq is None else seq
    time = DeviceTime.from_datetime(wall(6, seq))
    return BodyReading(
        id=stable_reading_id(device, ReadingKind.BODY, sequence=None, device_time=time),
        device=device,
        provider="omron_ble",
        received_at=T0,
        device_time=time,
        weight=weight,
        unit=unit,
        fat_percent=fat_percent,
        flags=flags,
    )


def item(
    reading: Reading | None = None,
    *,
    user_id: str = "user-a",
    stage: Stage = Stage.DAILY,
    enqueued_at: datetime | None = None,
    window: tuple[datetime, datetime] | None = None,
    provider: str | None = None,
) -> OutboxItem:
    reading = reading or glucose()
    if stage is Stage.HISTORICAL and window is None:
        window = (T0 - timedelta(days=30), T0)
    return OutboxItem(
        reading=reading,
        user_id=user_id,
        provider=provider or reading.provider,
        stage=stage,
        enqueued_at=enqueued_at or T0,
        window_start=window[0] if window else None,
        window_end=window[1] if window else None,
    )


def sign_in_token(uid: str = "u", *, iss: str | None = None, user_token: str | None = None):
    """A Sign-In Token shaped like Junction's: base64 JSON around a JWT with uid and iss."""
    import base64
    import json

    from pydantic import SecretStr

    from sync.junction.regions import Environment, Region, issuer

    def part(value: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    claims = {"uid": uid, "iss": iss or issuer(Region.US, Environment.SANDBOX)}
    jwt = user_token or f"{part({'alg': 'RS256'})}.{part(claims)}.c2ln"
    raw = json.dumps({"public_key": "pk", "user_token": jwt}).encode()
    return SecretStr(base64.b64encode(raw).decode())
