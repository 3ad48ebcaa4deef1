"""Why `edge-gateway run` cannot work: `GatewayFailureError` and the start-up checks.

Each failure is one line naming the part, the cause and the remedy, with the exit status
systemd sees (`Restart=on-failure` restarts only a failed unit): 2 for a store or API
address the gateway cannot use (as a bad config), 1 for a part that died.
"""

import contextlib
import errno
import socket

from drivers.errors import DriverError
from gateway.store import Database, StoreError


class GatewayFailureError(Exception):
    """A part of the gateway cannot work; the message is one line: part, cause, remedy.

    Attributes:
        exit_code: 2 for a store the gateway cannot use (as at start-up), else 1.
    """

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def failure_of(part: str, exc: BaseException | None) -> GatewayFailureError:
    """The `GatewayFailureError` for `part` ("collector", "uploader", "api") ending with `exc`."""
    if exc is None:
        return GatewayFailureError(f"{part} stopped on its own; restart the gateway (see the log)")
    if isinstance(exc, StoreError):
        return GatewayFailureError(f"{part} stopped: {exc}", exit_code=2)
    if isinstance(exc, DriverError | OSError):
        return GatewayFailureError(f"{part} stopped: {exc}")
    detail = str(exc).splitlines()[0] if str(exc) else ""
    return GatewayFailureError(
        f"{part} stopped: unexpected {type(exc).__name__}"
        + (f" ({detail})" if detail else "")
        + "; run with -v for the traceback and report it"
    )


def check_writable(db: Database) -> None:
    """Take the write lock and touch the header, then roll back (nothing changes).

    Raises:
        StoreError: The database is locked by another process (after the busy timeout),
            read-only or immutable (`chattr +i`), so no reading could be saved.
    """

    class _UndoError(Exception):
        pass

    with contextlib.suppress(_UndoError), db.write_connection() as conn:
        version: int = conn.exec_driver_sql("PRAGMA user_version").scalar_one()
        conn.exec_driver_sql(f"PRAGMA user_version = {int(version)}")
        raise _UndoError


def bind_api(host: str, port: int) -> socket.socket:
    """Listen on (host, port) now, so a taken port stops start-up before "running".

    Raises:
        GatewayFailureError: The port is taken, the address is not this machine's, or the port
            needs privileges.
    """
    where = f"{host}:{port}"
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        msg = f"api: cannot resolve [api] host {host!r} ({exc.strerror}); use a local address"
        raise GatewayFailureError(msg, exit_code=2) from exc
    sock = socket.socket(family, kind, proto)
    try:
        # As uvicorn does: a port in TIME_WAIT from a stopped gateway counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            msg = (
                f"api: port {port} is taken ({where} is in use by another program); stop it "
                "or set [api] port to a free port"
            )
        elif exc.errno == errno.EADDRNOTAVAIL:
            msg = f"api: {host} is not an address of this machine; set [api] host (0.0.0.0: all)"
        elif exc.errno == errno.EACCES:
            msg = f"api: port {port} needs privileges; use 1024 or more, or CAP_NET_BIND_SERVICE"
        else:
            msg = f"api: cannot listen on {where} ({exc.strerror}); set [api] host and port"
        raise GatewayFailureError(msg, exit_code=2) from exc
    return sock
