"""A plain Bleak central in its own process: scan, connect, subscribe, print what arrives.

Run as ``python -m tests.drivers.simulator.bleak_reader ADDRESS UUID [--racp]``; with
``--racp`` it also asks a meter for every stored record over the Record Access Control Point.
Prints ``ready`` once subscribed, then one hex line per notification (flushed), and ``end``
when the device hangs up or stays quiet for `IDLE_S`; then disconnects. Tests kill it with
SIGKILL to play a central that dies without disconnecting.
"""

import asyncio
import sys

from bleak import BleakClient, BleakScanner

from drivers.gatt import uuids
from drivers.gatt.racp import report_all


def say(line: str) -> None:
    """One line on stdout, flushed at once (the test reads a pipe)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


IDLE_S = 1.5


async def main(address: str, uuid: str, *, racp: bool = False) -> None:
    device = await BleakScanner.find_device_by_address(address, timeout=10)
    if device is None:
        say("not-found")
        raise SystemExit(3)
    hung_up = asyncio.Event()
    got = asyncio.Event()
    client = BleakClient(device, timeout=10, disconnected_callback=lambda _c: hung_up.set())
    await client.connect()

    def on_value(_char: object, data: bytearray) -> None:
        say(bytes(data).hex())
        got.set()

    await client.start_notify(uuid, on_value)
    if racp:
        await client.start_notify(uuids.RECORD_ACCESS_CONTROL_POINT, lambda _c, _d: None)
        await client.write_gatt_char(uuids.RECORD_ACCESS_CONTROL_POINT, report_all(), True)
    say("ready")
    while not hung_up.is_set():
        got.clear()
        waits = {asyncio.ensure_future(got.wait()), asyncio.ensure_future(hung_up.wait())}
        done, pending = await asyncio.wait(waits, timeout=IDLE_S, return_when="FIRST_COMPLETED")
        for task in pending:
            task.cancel()
        if not done:
            break
    say("end")
    await client.disconnect()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], racp="--racp" in sys.argv[3:]))
