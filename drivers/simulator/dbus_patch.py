"""Work around dbus-fast's writer dropping the whole bus connection on EAGAIN.

dbus-fast 5.2's `_MessageWriter.write_callback` treats `BlockingIOError` from a full socket as
fatal and finalises the bus (python-dbus-next #153). A simulator that emits hundreds of
notifications in a burst fills its socket, and `org.bluez` vanishes mid-transfer. The fix
keeps the partly written buffer and waits for the socket to become writable again.

Applied only by the simulator; re-check on every dbus-fast upgrade (pinned <5.3).
"""

import array
import socket
from typing import Any

from dbus_fast.aio import message_bus as _aio_bus

_PATCHED_ATTR = "_edge_gateway_eagain_patch"


def _write_callback(self: Any, remove_writer: bool = True) -> None:
    sock = self.sock
    try:
        while True:
            if self.buf is None:
                if not self.messages:
                    if remove_writer:
                        self.loop.remove_writer(self.fd)
                    return
                buf, unix_fds, fut = self.messages.popleft()
                self.unix_fds = unix_fds
                self.buf = memoryview(buf)
                self.offset = 0
                self.fut = fut
            try:
                if self.unix_fds and self.negotiate_unix_fd:
                    ancdata = [
                        (socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", self.unix_fds))
                    ]
                    self.offset += sock.sendmsg([self.buf[self.offset :]], ancdata)
                    self.unix_fds = None
                else:
                    self.offset += sock.send(self.buf[self.offset :])
            except BlockingIOError:
                # The socket is full: wait until it is writable and carry on where we were.
                self.loop.add_writer(self.fd, self.write_callback)
                return
            if self.offset < len(self.buf):
                self.loop.add_writer(self.fd, self.write_callback)
                return
            self.buf = None
            _aio_bus._future_set_result(self.fut, None)
    except Exception as exc:  # noqa: BLE001 - mirrors dbus-fast: any other error ends the bus
        if self.bus._user_disconnect:
            _aio_bus._future_set_result(self.fut, None)
        else:
            _aio_bus._future_set_exception(self.fut, exc)
        self.bus._finalize(exc)


def apply() -> None:
    """Patch dbus-fast's asyncio writer once per process (idempotent)."""
    writer = _aio_bus._MessageWriter
    if getattr(writer, _PATCHED_ATTR, False):
        return
    writer.write_callback = _write_callback  # type: ignore[method-assign]
    setattr(writer, _PATCHED_ATTR, True)
