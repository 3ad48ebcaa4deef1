"""Store fixtures shared by the store tests and the outbox contract suite."""

from pathlib import Path
from zoneinfo import ZoneInfo

from gateway.store import DATABASE_FILENAME, open_database
from gateway.store.outbox import SqliteOutbox
from sync.outbox import Outbox


async def sqlite_outbox(directory: Path) -> Outbox:
    """A `SqliteOutbox` over `directory`'s database; calling it again reopens the same file."""
    return SqliteOutbox(open_database(directory / DATABASE_FILENAME), zone=ZoneInfo("UTC"))
