"""A private `dbus-daemon` for the simulated BlueZ, so nothing touches the host's system bus."""

import os
import select
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

from drivers.errors import DriverError

# Hermetic bus policy: anyone may own any name (the simulator takes org.bluez) and talk to anyone.
_BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir={rundir}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
  <limit name="max_incoming_bytes">1000000000</limit>
  <limit name="max_outgoing_bytes">1000000000</limit>
  <limit name="max_message_size">100000000</limit>
</busconfig>
"""

# The daemon prints its address within milliseconds; anything slower means it is broken.
_START_TIMEOUT_S = 10.0


class BusStartError(DriverError):
    """The private dbus-daemon could not be started."""


class PrivateBus:
    """A `dbus-daemon` on a private unix socket, stopped when the context exits.

    Attributes:
        address: The bus address, e.g. ``unix:path=/tmp/…/dbus-XXXX,guid=…``; give it to Bleak
            as ``DBUS_SYSTEM_BUS_ADDRESS``.
    """

    def __init__(self) -> None:
        self.address = ""
        self._rundir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        """Start the daemon and return its address."""
        daemon = shutil.which("dbus-daemon")
        if daemon is None:
            msg = "dbus-daemon is not installed; run scripts/install (apt-get install dbus-daemon)"
            raise BusStartError(msg)
        self._rundir = Path(tempfile.mkdtemp(prefix="edge-gateway-bus-"))
        config = self._rundir / "bus.conf"
        config.write_text(_BUS_CONFIG.format(rundir=self._rundir))
        self._process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            [daemon, f"--config-file={config}", "--print-address=1", "--nofork", "--nopidfile"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "DBUS_VERBOSE": "0"},
        )
        assert self._process.stdout is not None  # noqa: S101 - Popen with stdout=PIPE
        line = self._read_address_line(self._process.stdout.fileno())
        if not line:
            self.stop()
            msg = "dbus-daemon exited before printing its address; run it by hand to see why"
            raise BusStartError(msg)
        self.address = line
        return line

    def _read_address_line(self, fd: int) -> str:

        data = b""
        ready, _, _ = select.select([fd], [], [], _START_TIMEOUT_S)
        while ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            data += chunk
            if b"\n" in data:
                break
            ready, _, _ = select.select([fd], [], [], _START_TIMEOUT_S)
        return data.split(b"\n", 1)[0].decode().strip()

    def stop(self) -> None:
        """Stop the daemon and remove its socket directory."""
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            if self._process.stdout is not None:
                self._process.stdout.close()
            self._process = None
        if self._rundir is not None:
            shutil.rmtree(self._rundir, ignore_errors=True)
            self._rundir = None

    def __enter__(self) -> "PrivateBus":
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
