"""The kiosk's in-memory state the API keeps for its lifetime (`app.state.kiosk`)."""

import threading
from dataclasses import dataclass, field
from pathlib import Path

from gateway.config import Settings
from gateway.kiosk.checkin import CheckinBook, load_key
from gateway.kiosk.staff import StaffGate


@dataclass
class KioskState:
    """The staff gate, the used check-in codes, and where the check-in key lives."""

    staff: StaffGate
    checkins: CheckinBook
    data_dir: Path
    _key: bytes | None = field(default=None, repr=False)
    _key_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> "KioskState":
        """The state `[kiosk]` and `data_dir` describe."""
        return cls(StaffGate.from_settings(settings.kiosk), CheckinBook(), settings.data_dir)

    def checkin_key(self) -> bytes:
        """The check-in signing key (read or made on first use; blocking).

        Raises:
            OSError: It cannot be read or written.
        """
        with self._key_lock:
            if self._key is None:
                self._key = load_key(self.data_dir)
            return self._key
