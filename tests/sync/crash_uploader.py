"""Run an uploader over a SQLite outbox until it is idle (the kill -9 test's child process).

Usage: python -m tests.sync.crash_uploader DATA_DIR BASE_URL API_KEY
"""

import asyncio
import random
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import SecretStr

from gateway.store import DATABASE_FILENAME, open_database
from gateway.store.outbox import SqliteOutbox
from sync.junction.client import JunctionClient
from sync.uploader import Uploader


async def main(data_dir: Path, base_url: str, api_key: str) -> None:
    outbox = SqliteOutbox(open_database(data_dir / DATABASE_FILENAME), zone=ZoneInfo("UTC"))
    client = JunctionClient(base_url=base_url, api_key=SecretStr(api_key), read_timeout_s=10)
    uploader = Uploader(
        outbox, client, time_zone="Europe/Berlin", batch_size=10, max_in_flight=3,
        rng=random.Random(1), idle_poll_s=0.05,
    )  # fmt: skip
    await uploader.run(until_idle=True)
    await client.aclose()
    sys.stdout.write(f"delivered {uploader.stats.delivered}\n")


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2], sys.argv[3]))
