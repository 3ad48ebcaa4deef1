"""Captures: a device's recorded conversations as a file anyone can replay.

`edge-gateway capture export` writes one (TOML); `edge-gateway simulate --replay` serves the
device from it (`drivers.simulator.profiles.replay`), so a field report becomes reproducible
with the real Bleak against the simulator, and a field case for the corpus.

Format (``format = "edge-gateway-capture/1"``)::

    format = "edge-gateway-capture/1"
    [device]   address, name, kind, driver, brand, provider
    [advert]   name, service_uuids (16-bit hex or full), manufacturer_data, service_data (hex)
    [gatt]     services = { "<service>" = { "<characteristic>" = ["read", "indicate", …] } }
    [[transfers]]  started_at, driver_version, zone, historical,
                   frames = [{ seq, dir ("r" read, "w" write, "c" command, "n" notification,
                              "s" subscribe, "d" device hang-up), char, hex, t (s since start) }]

`anonymise` replaces what identifies the device or its owner (address, serial number, System
ID, names: digit runs of 4 or more become zeros) and keeps every measured value.
"""

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from drivers.errors import DriverError
from drivers.gatt import uuids
from drivers.recording import Direction, Frame, full_uuid, short_uuid

FORMAT = "edge-gateway-capture/1"
PSEUDONYM_ADDRESS = "C0:FF:EE:CA:97:01"
# Characteristics whose value identifies a device or its owner (Device Information serial
# and System ID; GAP Device Name; User Data Service names and e-mail).
_IDENTIFYING = frozenset(
    {
        uuids.SERIAL_NUMBER,
        uuids.sig_uuid(0x2A23),  # System ID
        uuids.sig_uuid(0x2A00),  # Device Name
        uuids.sig_uuid(0x2A8A),  # First Name
        uuids.sig_uuid(0x2A90),  # Last Name
        uuids.sig_uuid(0x2A87),  # Email Address
    }
)
_DIGITS = re.compile(r"\d{4,}")


class CaptureError(DriverError):
    """A capture file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True, slots=True)
class CapturedTransfer:
    """One recorded connection.

    Attributes:
        started_at: When it started (aware UTC).
        driver_version: The parse rules that derived its readings then.
        zone: The zone the device clock was read in.
        historical: Whether it was the device's first read.
        frames: The conversation.
    """

    started_at: datetime
    driver_version: str
    zone: str
    historical: bool
    frames: tuple[Frame, ...]


@dataclass(frozen=True, slots=True)
class Capture:
    """A device and its recorded conversations.

    Attributes:
        address: The device address (a pseudonym once anonymised).
        name: The advertised name.
        kind: ``glucose``, ``blood_pressure`` or ``scale``/``body``.
        driver: The driver that read it.
        brand: The brand it was claimed as.
        provider: The Junction provider slug.
        advert: Advertisement fields (JSON-able: hex values, short UUIDs).
        services: GATT database: service → characteristic → BlueZ flags (full UUIDs).
        transfers: Oldest first.
    """

    address: str
    name: str | None
    kind: str
    driver: str
    brand: str
    provider: str
    advert: Mapping[str, Any] = field(default_factory=dict)
    services: Mapping[str, Mapping[str, Sequence[str]]] = field(default_factory=dict)
    transfers: tuple[CapturedTransfer, ...] = ()


def _plain_name(name: str | None) -> str | None:
    return None if name is None else _DIGITS.sub(lambda m: "0" * len(m.group()), name)


def anonymise(capture: Capture) -> Capture:
    """The capture with identifiers replaced and measured values kept (see module doc)."""
    advert = dict(capture.advert)
    advert["name"] = _plain_name(advert.get("name"))
    transfers = tuple(
        replace(
            t,
            frames=tuple(
                replace(f, data=bytes(len(f.data))) if f.characteristic in _IDENTIFYING else f
                for f in t.frames
            ),
        )
        for t in capture.transfers
    )
    return replace(
        capture,
        address=PSEUDONYM_ADDRESS,
        name=_plain_name(capture.name),
        advert=advert,
        transfers=transfers,
    )


def dumps(capture: Capture, *, note: str = "") -> str:
    """The capture as TOML text (one frame per line, values in hex as on air)."""
    lines = [f"# {note}" if note else "# edge-gateway capture", f'format = "{FORMAT}"', ""]
    lines += [
        "[device]",
        f"address = {_q(capture.address)}",
        *([f"name = {_q(capture.name)}"] if capture.name is not None else []),
        f"kind = {_q(capture.kind)}",
        f"driver = {_q(capture.driver)}",
        f"brand = {_q(capture.brand)}",
        f"provider = {_q(capture.provider)}",
        "",
        "[advert]",
    ]
    advert = capture.advert
    if advert.get("name") is not None:
        lines.append(f"name = {_q(str(advert['name']))}")
    lines.append(f"service_uuids = [{', '.join(_q(u) for u in advert.get('service_uuids', []))}]")
    for key in ("manufacturer_data", "service_data"):
        table = advert.get(key) or {}
        lines.append(f"{key} = {{ {', '.join(f'{_q(k)} = {_q(v)}' for k, v in table.items())} }}")
    lines += ["", "[gatt.services]"]
    for service, chars in capture.services.items():
        body = ", ".join(
            f"{_q(short_uuid(c))} = [{', '.join(_q(p) for p in props)}]"
            for c, props in chars.items()
        )
        lines.append(f"{_q(short_uuid(service))} = {{ {body} }}")
    for t in capture.transfers:
        lines += [
            "",
            "[[transfers]]",
            f"started_at = {_q(t.started_at.astimezone(UTC).isoformat())}",
            f"driver_version = {_q(t.driver_version)}",
            f"zone = {_q(t.zone)}",
            f"historical = {'true' if t.historical else 'false'}",
            "frames = [",
        ]
        lines += [
            f"  {{ seq = {f.seq}, dir = {_q(f.direction.value)}, "
            f"char = {_q(short_uuid(f.characteristic) if f.characteristic else '')}, "
            f"hex = {_q(f.data.hex())}, t = {f.mono_s:.6f} }},"
            for f in t.frames
        ]
        lines.append("]")
    return "\n".join(lines) + "\n"


def _q(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def loads(text: str, *, source: str = "capture") -> Capture:
    """Parse `dumps` output.

    Raises:
        CaptureError: Not TOML, not a capture of this format, or a malformed frame.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = f"{source}: not TOML ({exc}); export one with `edge-gateway capture export`"
        raise CaptureError(msg) from exc
    if data.get("format") != FORMAT:
        msg = f"{source}: not an {FORMAT} file (format = {data.get('format')!r})"
        raise CaptureError(msg)
    try:
        device = data["device"]
        services = {
            full_uuid(str(s)): {
                full_uuid(str(c)): [str(p) for p in props] for c, props in chars.items()
            }
            for s, chars in data.get("gatt", {}).get("services", {}).items()
        }
        transfers = []
        for raw in data.get("transfers", []):
            started = datetime.fromisoformat(raw["started_at"]).astimezone(UTC)
            frames = tuple(
                Frame(
                    seq=int(f["seq"]),
                    direction=Direction(f["dir"]),
                    characteristic=full_uuid(str(f["char"])) if f["char"] else "",
                    data=bytes.fromhex(f["hex"]),
                    at=started + timedelta(seconds=float(f["t"])),
                    mono_s=float(f["t"]),
                )
                for f in raw.get("frames", [])
            )
            transfers.append(
                CapturedTransfer(
                    started_at=started,
                    driver_version=str(raw.get("driver_version", "")),
                    zone=str(raw.get("zone", "UTC")),
                    historical=bool(raw.get("historical", False)),
                    frames=frames,
                )
            )
        return Capture(
            address=str(device["address"]).upper(),
            name=device.get("name"),
            kind=str(device.get("kind", "")),
            driver=str(device.get("driver", "")),
            brand=str(device.get("brand", "")),
            provider=str(device.get("provider", "")),
            advert=dict(data.get("advert", {})),
            services=services,
            transfers=tuple(transfers),
        )
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        msg = f"{source}: malformed capture ({type(exc).__name__}: {exc}); re-export it"
        raise CaptureError(msg) from exc
