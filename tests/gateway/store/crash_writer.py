"""Child process for the crash test: saves transfers like a collector until it is killed.

Each transfer n holds `PER_TRANSFER` readings and moves the meter's cursor to n in the same
transaction; it re-reads transfer n-1 first (a device resending what it already sent). After
each commit it prints `committed n`, so the parent knows what must survive a SIGKILL.
"""

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from drivers.readings import DeviceTime, GlucoseReading, GlucoseUnit, ReadingKind, stable_reading_id
from gateway.store import devices, open_database, users
from gateway.store.readings import CursorUpdate, save_transfer

METER = "C0:FF:EE:00:00:01"
PER_TRANSFER = 5
BASE = datetime(2026, 1, 1)  # noqa: DTZ001 - device wall time


def transfer(n: int) -> list[GlucoseReading]:
    readings = []
    for i in range(PER_TRANSFER):
        seq = n * PER_TRANSFER + i
        time = DeviceTime.from_datetime(BASE + timedelta(minutes=seq))
        readings.append(
            GlucoseReading(
                id=stable_reading_id(METER, ReadingKind.GLUCOSE, sequence=seq, device_time=time),
                device=METER,
                provider="accuchek_ble",
                received_at=datetime.now(UTC),
                device_time=time,
                sequence=seq,
                concentration=0.001 + seq * 1e-6,
                unit=GlucoseUnit.KG_PER_L,
            )
        )
    return readings


def main() -> None:
    db = open_database(Path(sys.argv[1]))
    users.bind(db, METER, "user-a", device_user=None)
    device = devices.get_device(db, METER)
    n = (device.last_sequence or 0) if device else 0
    print("ready", flush=True)  # noqa: T201
    while True:
        n += 1
        save_transfer(
            db,
            transfer(n - 1) + transfer(n) if n > 1 else transfer(n),
            zone=ZoneInfo("UTC"),
            advance=CursorUpdate(METER, last_sequence=n),
        )
        print(f"committed {n}", flush=True)  # noqa: T201


if __name__ == "__main__":
    main()
