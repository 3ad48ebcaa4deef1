"""A private mosquitto on loopback, for `edge-gateway demo --mqtt`, the tests and the bench.

Runs Debian's `mosquitto` with a generated config in its own directory: a listener on
127.0.0.1 only, no persistence, and optionally TLS (server certificate and CA given) and
password authentication (`mosquitto_passwd` writes the hashed password file).
"""

import getpass
import shutil
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

_SEARCH = "/usr/sbin:/usr/bin:/sbin:/bin"


class BrokerError(RuntimeError):
    """The local broker could not be started; the message says what to install or check."""


def _tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=_SEARCH)
    if found is None:
        msg = f"{name}: not installed; install Debian's mosquitto (scripts/install dev does)"
        raise BrokerError(msg)
    return found


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True, slots=True)
class BrokerTls:
    """Server-side TLS files (PEM)."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    require_client_cert: bool = False


class LocalBroker:
    """A mosquitto process on 127.0.0.1 (context manager: started on enter, stopped on exit)."""

    def __init__(
        self,
        directory: Path,
        *,
        port: int | None = None,
        tls: BrokerTls | None = None,
        users: Mapping[str, str] | None = None,
        persistence: bool = False,
    ) -> None:
        """Prepare (not start) a broker whose files live in `directory`.

        Args:
            directory: Where the config, password file and log go (created if missing).
            port: The port (default: a free one).
            tls: Serve TLS with these files instead of plain TCP.
            users: User name → password; when given, anonymous clients are refused.
            persistence: Keep retained messages and sessions across a restart (in `directory`).
        """
        self.directory = directory
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.tls = tls
        self.users = dict(users or {})
        self.persistence = persistence
        self._process: subprocess.Popen[bytes] | None = None
        self._config = self._write_config()

    def _write_config(self) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        lines = [
            f"listener {self.port} {self.host}",
            "persistence true" if self.persistence else "persistence false",
            f"persistence_location {self.directory}/",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            # Started as root, mosquitto would switch to its own user and lose our files.
            f"user {getpass.getuser()}",
        ]
        if self.users:
            passwd = self.directory / "passwd"
            passwd.write_text("", encoding="utf-8")
            passwd.chmod(0o600)
            for name, password in self.users.items():
                subprocess.run(  # noqa: S603 - fixed tool, our own arguments
                    [_tool("mosquitto_passwd"), "-b", str(passwd), name, password],
                    check=True,
                    capture_output=True,
                )
            lines += ["allow_anonymous false", f"password_file {passwd}"]
        else:
            lines.append("allow_anonymous true")
        if self.tls is not None:
            lines += [
                f"cafile {self.tls.ca_file}",
                f"certfile {self.tls.cert_file}",
                f"keyfile {self.tls.key_file}",
                f"require_certificate {'true' if self.tls.require_client_cert else 'false'}",
            ]
        config = self.directory / "mosquitto.conf"
        config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return config

    @property
    def running(self) -> bool:
        """The process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self, timeout_s: float = 10.0) -> None:
        """Start mosquitto and wait until it accepts TCP connections.

        Raises:
            BrokerError: mosquitto is missing, exited, or never listened.
        """
        log = (self.directory / "mosquitto.log").open("ab")
        self._process = subprocess.Popen(  # noqa: S603 - fixed tool, our own config
            [_tool("mosquitto"), "-c", str(self._config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                text = (self.directory / "mosquitto.log").read_text(errors="replace")
                msg = f"mosquitto on port {self.port} exited: {text.strip()[-400:]}"
                raise BrokerError(msg)
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        msg = f"mosquitto did not listen on {self.host}:{self.port} within {timeout_s:.0f} s"
        raise BrokerError(msg)

    def stop(self) -> None:
        """Stop mosquitto (SIGTERM, then SIGKILL after 5 s)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> "LocalBroker":
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
