"""A sink in its own process (`python -m tests.gateway.mqtt.sink_process DB PORT`), to be killed.

Prints ``connected`` once the broker accepted it, then runs until killed.
"""

import asyncio
import sys
from pathlib import Path

from gateway.config import MqttSettings
from gateway.mqtt.sink import MqttSink
from gateway.store import open_database


async def main(db_path: Path, port: int) -> None:
    db = open_database(db_path)
    sink = MqttSink(db, MqttSettings(enabled=True, host="127.0.0.1", port=port, keepalive_s=5))
    task = asyncio.create_task(sink.run())
    while not sink.stats.connected:
        await asyncio.sleep(0.02)
    print("connected", flush=True)  # noqa: T201 - the parent test reads this line
    await task


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2])))
