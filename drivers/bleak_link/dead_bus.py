"""Work around dbus-fast touching the event loop for a bus that has already died.

dbus-fast 5.2 (its main branch is unchanged, 2026-05) finalises a bus when its socket fails
(`aio.MessageBus._finalize`): it stops the event loop watching the socket, closes it, and fails
the calls waiting for a reply. The socket's file *number* is then free for the next file the
process opens, yet a message sent on the dead bus afterwards (Bleak's BlueZ manager keeps its
dead bus until it next reconnects) still uses it:

- the write fails and finalises the bus again, which removes the loop's reader and writer of
  that number: the loop silently stops watching the file that has it now, and whatever waits
  on that file waits forever;
- the writer registers itself as that file's writer, and the call waits for a reply forever.

Seen in `edge-gateway run` when the D-Bus daemon stopped: the scan's StopDiscovery on the dead
manager bus hung, and unwatched the pipe of Bleak's `bluetoothctl --version` probe, so the
transfer that had started the probe never ended.

`apply()` makes a send on a dead bus fail at once (`OSError` EBADF, as dbus-fast raises when the
number is still free) without touching the loop, and a repeated `_finalize` a no-op.
Applied on import of `drivers.bleak_link`; re-check on every dbus-fast upgrade (pinned <5.3).
"""

import asyncio
import errno
from typing import Any

from dbus_fast import Message
from dbus_fast.aio.message_bus import MessageBus

_PATCHED_ATTR = "_edge_gateway_dead_bus_patch"


def apply() -> None:
    """Patch `dbus_fast.aio.MessageBus` as described above; idempotent."""
    if applied():
        return
    send = MessageBus.send
    finalize = MessageBus._finalize

    def send_unless_dead(self: MessageBus, msg: Message) -> "asyncio.Future[None]":
        if self._disconnected:
            # `_call` registered the reply handler first: it would wait forever.
            self._method_return_handlers.pop(msg.serial, None)
            raise OSError(errno.EBADF, "the D-Bus connection is closed")
        return send(self, msg)

    def finalize_once(self: MessageBus, err: Exception | None = None) -> None:
        if not self._disconnected:  # else: done already, and the socket number is not its own
            finalize(self, err)

    setattr(send_unless_dead, _PATCHED_ATTR, True)
    setattr(MessageBus, "send", send_unless_dead)  # noqa: B010 - mypy: assigning a method
    setattr(MessageBus, "_finalize", finalize_once)  # noqa: B010


def applied() -> bool:
    """Whether `apply` has patched dbus-fast in this process."""
    current: Any = MessageBus.send
    return bool(getattr(current, _PATCHED_ATTR, False))
