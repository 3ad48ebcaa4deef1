from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.store import DATABASE_FILENAME, Database, open_database


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = open_database(tmp_path / DATABASE_FILENAME)
    yield database
    database.close()
