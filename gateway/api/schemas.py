"""Request and response bodies of the local API, and the store → API conversions.

Reading values are in Junction's units, taken from `sync.junction.mapping` (the one place
units are converted); the device's raw values and flags come alongside in `raw`.
"""

import math
import re
from datetime import datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, model_validator

from drivers.readings import (
    BloodPressureReading,
    BodyReading,
    GlucoseReading,
    KetoneReading,
    ReadingKind,
)
from gateway.store.changes import ReadingState
from gateway.store.readings import StoredReading
from sync.junction import mapping
from sync.outbox import SyncStatus

_ADDRESS = re.compile(r"^[0-9A-F]{2}(:[0-9A-F]{2}){5}$")
MAX_USER_ID = 128


def _address(value: str) -> str:
    upper = value.upper()
    if not _ADDRESS.fullmatch(upper):
        msg = f"{value!r} is not a Bluetooth address; use the form C0:FF:EE:00:00:01"
        raise ValueError(msg)
    return upper


Address = Annotated[str, AfterValidator(_address)]
UserId = Annotated[str, Field(min_length=1, max_length=MAX_USER_ID, pattern=r"^[A-Za-z0-9._:@-]+$")]


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class _In(BaseModel):
    # Strict: "123" is not a passkey and 1.0 is not a slot; JSON strings still parse as dates.
    model_config = ConfigDict(extra="forbid", strict=True)


class Problem(_Out):
    """An error body: what went wrong and what to do."""

    detail: str


AUTH_RESPONSES: dict[int | str, dict[str, object]] = {
    401: {"model": Problem, "description": "Missing, malformed, unknown or revoked token."},
    403: {
        "model": Problem,
        "description": "The token's scope is not enough (admin needed), or a browser change "
        "from another site, or a tokenless loopback change without JSON or X-Requested-With.",
    },
}


# ---------------------------------------------------------------- readings


class Quantity(_Out):
    """A value in Junction's unit."""

    value: float
    unit: str


class Reading(_Out):
    """A stored reading: values in Junction's units, raw device values in `raw`."""

    id: str
    kind: ReadingKind
    user_id: str | None
    device: str
    provider: str
    start_date: datetime = Field(description="Measurement instant, UTC.")
    end_date: datetime = Field(description="Equal to start_date (a point reading).")
    time_zone: str = Field(description="IANA zone the device clock was read in.")
    timezone_offset: int = Field(description="Seconds east of UTC at start_date.")
    received_at: datetime
    updated_at: datetime
    withdrawn_at: datetime | None = Field(
        default=None,
        description="Set when `edge-gateway reparse` found the stored frames no longer give "
        "this reading (state `delivered`: Junction has it; deal with it there).",
    )
    state: ReadingState
    type: str = Field(description="Junction source type: fingerprick, cuff or scale.")
    sequence: int | None
    user_index: int | None
    clock_skew_s: float | None
    flags: list[str]
    values: dict[str, Quantity] = Field(
        description="glucose (mmol/L); systolic, diastolic (mmHg), pulse (bpm); "
        "body_mass (kg), body_fat_percentage (%); ketone (mmol/L, kept locally only)."
    )
    raw: dict[str, str] = Field(description="The device's own values, units and fields.")


class PageLinks(_Out):
    """Links to other pages, as Fitbit Plus cursor paging gives them (full URLs)."""

    next: str | None = Field(description="Full URL of the next page; null on the last page.")


class PageMeta(_Out):
    """About the whole result, not this page (Fitbit Plus `meta`)."""

    count: int | None = Field(
        description="Readings matching the filters over all pages, counted on the first page "
        "(no cursor) and for `limit=0` (which returns only this); null on later pages, "
        "because counting costs a scan of every match."
    )


class ReadingPage(_Out):
    """One page of readings; pass `next_cursor` as `cursor` for the next (null: last page).

    `links.next` is the same next page as a full URL (also in the `Link` header) and
    `meta.count` the number of matching readings (also in `X-Total-Count`; first page only).
    """

    data: list[Reading]
    next_cursor: str | None
    links: PageLinks
    meta: PageMeta


class LatestReadings(_Out):
    """The newest reading of each kind (absent kinds have none)."""

    data: dict[ReadingKind, Reading]


class WindowSummary(_Out):
    """Validic's `summary` object (Validic v1 "Summary Object") for a stored/updated window."""

    status: int = Field(description="The HTTP status code (200).")
    message: str = Field(description="The HTTP status message (OK).")
    results: int | None = Field(
        description="Readings in the window over all pages (first page only; null later)."
    )
    start_date: datetime | None = Field(description="Window start (UTC, inclusive).")
    end_date: datetime | None = Field(description="Window end (UTC, exclusive).")
    offset: int = Field(description="Always 0: pages follow `next`, not offsets.")
    limit: int = Field(description="Page size.")
    previous: str | None = Field(description="Always null (forward paging only).")
    next: str | None = Field(description="Full URL of the next page; null on the last page.")
    params: dict[str, str | None] = Field(description="The query parameters as given.")


class ReadingWindow(_Out):
    """Readings stored or changed in a window, in change order, with Validic's summary."""

    summary: WindowSummary
    data: list[Reading]
    next_cursor: str | None


_SOURCE_TYPE = {
    ReadingKind.GLUCOSE: "fingerprick",
    ReadingKind.BLOOD_PRESSURE: "cuff",
    ReadingKind.BODY: "scale",
    ReadingKind.KETONE: "fingerprick",
}


def source_type(kind: ReadingKind) -> str:
    """Junction's source type of a reading kind (junction-digest.md §2.2)."""
    return _SOURCE_TYPE[kind]


def _values(stored: StoredReading) -> dict[str, Quantity]:
    """Junction-unit values via `sync.junction.mapping`'s converters (as its samples use them).

    Values that are no finite number (NaN, +-INF from a device) are left out: the reading
    carries `value_unusable` and its raw fields in `raw`.
    """
    return {k: q for k, q in _all_values(stored).items() if math.isfinite(q.value)}


def _all_values(stored: StoredReading) -> dict[str, Quantity]:
    reading = stored.reading
    if isinstance(reading, KetoneReading):
        return {"ketone": Quantity(value=round(reading.concentration_mmol_l, 2), unit="mmol/L")}
    if isinstance(reading, GlucoseReading):
        mmol = mapping.glucose_mmol_per_l(reading.concentration, reading.unit)
        return {"glucose": Quantity(value=mmol, unit="mmol/L")}
    if isinstance(reading, BloodPressureReading):
        values = {
            "systolic": Quantity(
                value=mapping.pressure_mmhg(reading.systolic, reading.unit), unit="mmHg"
            ),
            "diastolic": Quantity(
                value=mapping.pressure_mmhg(reading.diastolic, reading.unit), unit="mmHg"
            ),
        }
        if reading.pulse_bpm is not None:
            values["pulse"] = Quantity(value=round(reading.pulse_bpm, 1), unit="bpm")
        return values
    if isinstance(reading, BodyReading):
        body: dict[str, Quantity] = {}
        if reading.weight is not None:
            kg = mapping.mass_kg(reading.weight, reading.unit)
            body["body_mass"] = Quantity(value=kg, unit="kg")
        if reading.fat_percent is not None:
            fat = round(reading.fat_percent, mapping.PERCENT_DECIMALS)
            body["body_fat_percentage"] = Quantity(value=fat, unit="%")
        return body
    return {}


def reading_out(stored: StoredReading) -> Reading:
    """A stored reading as the API shows it."""
    reading = stored.reading
    zone = ZoneInfo(stored.time_zone)
    offset = stored.start_date.astimezone(zone).utcoffset() or timedelta()
    return Reading(
        id=reading.id,
        kind=reading.kind,
        user_id=stored.user_id,
        device=reading.device,
        provider=stored.provider,
        start_date=stored.start_date,
        end_date=stored.start_date,
        time_zone=stored.time_zone,
        timezone_offset=int(offset.total_seconds()),
        received_at=reading.received_at,
        updated_at=stored.updated_at,
        withdrawn_at=stored.withdrawn_at,
        state=stored.state,
        type=source_type(reading.kind),
        sequence=reading.sequence,
        user_index=reading.user_index,
        clock_skew_s=reading.clock_skew_s,
        flags=sorted(reading.flags),
        values=_values(stored),
        raw=mapping.metadata(reading),
    )


# ---------------------------------------------------------------- devices


class BindingOut(_Out):
    """A binding."""

    device: str
    device_user: int | None
    user_id: str
    provider: str | None


class Device(_Out):
    """A device: what the store knows, what the radio sees now, what to do next."""

    address: str
    name: str | None
    brand: str | None
    model: str | None
    kind: str | None
    provider: str | None
    in_range: bool
    connected: bool
    rssi: int | None
    bonded: bool
    bond_state: str
    needs_passkey: bool
    next_step: str = Field(description="pair, press_button, measure, step_on, wait or done.")
    last_seen_at: datetime | None
    last_reading_at: datetime | None
    readings: int
    pending_uploads: int
    unassigned_readings: int
    battery_percent: int | None
    clock_skew_s: float | None
    bindings: list[BindingOut]


class DeviceList(_Out):
    """Every known or visible device."""

    data: list[Device]


class PairRequest(_In):
    """Pair with a device, answering its passkey request."""

    passkey: int | None = Field(default=None, ge=0, le=999_999, description="Six digits.")


class PairingOut(_Out):
    """How pairing ended."""

    address: str
    paired: bool
    bond_state: str
    message: str


class BindRequest(_In):
    """Bind a device (or one of its user slots) to a user."""

    user_id: UserId
    device_user: int | None = Field(default=None, ge=0, le=255)
    provider: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")
    assign_unassigned: bool = Field(
        default=True, description="Give the device's unassigned readings to the user too."
    )
    consent_code: int | None = Field(
        default=None,
        ge=0,
        le=9999,
        description="The scale's UDS consent code for `device_user` (shown on the scale); "
        "without it the scale keeps that person's measurements to itself.",
    )

    @model_validator(mode="after")
    def _consent_needs_slot(self) -> "BindRequest":
        if self.consent_code is not None and self.device_user is None:
            msg = "consent_code belongs to a user slot: give device_user too"
            raise ValueError(msg)
        return self


class BindResult(_Out):
    """A new binding and how many stored readings it assigned."""

    binding: BindingOut
    assigned_readings: int


class Deleted(_Out):
    """Whether something was there to delete."""

    deleted: bool


# ---------------------------------------------------------------- users and sync


class UserCreate(_In):
    """Add a Junction user."""

    user_id: UserId
    name: str | None = Field(default=None, max_length=200)
    # The clinic's own identifier (record number, ...); unique, searchable on the kiosk.
    client_user_id: str | None = Field(default=None, min_length=1, max_length=100)


class SignInTokenIn(_In):
    """A Junction Sign-In Token for the user (replaces any earlier one)."""

    sign_in_token: SecretStr = Field(min_length=8, max_length=4096)


class StreamSync(_Out):
    """Upload state of one (user, resource) stream."""

    user_id: str
    resource: ReadingKind
    status: SyncStatus | None
    at: datetime | None
    stage: str | None
    count: int
    delivered_total: int
    queued: int
    error: str | None


class UserSync(_Out):
    """A user's sync state."""

    holds: list[str]
    paused: bool
    streams: list[StreamSync]
    dead_letters: int


class UserOut(_Out):
    """A user the gateway uploads for."""

    user_id: str
    name: str | None
    client_user_id: str | None = None
    created_at: datetime
    bindings: list[BindingOut]
    sync: UserSync


class UserList(_Out):
    """Every user."""

    data: list[UserOut]


class UserRemoved(_Out):
    """What removing a user undid."""

    user_id: str
    bindings_removed: int
    kiosk_sessions_ended: int
    paused: bool


class SyncStatusOut(_Out):
    """Per user and resource progress."""

    data: list[StreamSync]
    holds: dict[str, list[str]]


class DeadLetterOut(_Out):
    """A reading Junction refused for good."""

    reading_id: str
    user_id: str
    resource: ReadingKind
    status_code: int | None
    reason: str
    body: str
    at: datetime


class DeadLetterList(_Out):
    """Dead letters, newest last."""

    data: list[DeadLetterOut]


class RequeueRequest(_In):
    """Dead letters to put back in the queue."""

    reading_ids: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        min_length=1, max_length=1000
    )


class Accepted(_Out):
    """A control request was taken."""

    ok: bool = True
    detail: str


# ---------------------------------------------------------------- kiosk


class KioskStart(_In):
    """Start a session: readings received meanwhile belong to `user_id`."""

    user_id: UserId
    device: Address | None = None
    # Absent: `[kiosk] session_s` (15 minutes unless configured).
    duration_s: int | None = Field(default=None, ge=10, le=12 * 3600)


class KioskSessionOut(_Out):
    """A kiosk session."""

    id: int
    user_id: str
    name: str | None
    display_name: str | None = Field(
        description="What the patient view shows: `[kiosk] label`, else the name's first word."
    )
    device: str | None
    started_at: datetime
    expires_at: datetime
    ended_at: datetime | None


class KioskCurrent(_Out):
    """Live sessions, newest first (empty: nobody at the kiosk)."""

    data: list[KioskSessionOut]


class StaffUnlock(_In):
    """The staff PIN (`[kiosk] staff_pin_hash`)."""

    pin: SecretStr = Field(min_length=1, max_length=64)


class StaffUnlocked(_Out):
    """Staff mode is open: send `staff_token` as `X-Kiosk-Staff` on staff calls."""

    staff_token: str
    valid_s: int = Field(description="Lapses after this many seconds without a staff call.")


class StaffLocked(_Out):
    """Whether a live staff grant was ended."""

    locked: bool


class Person(_Out):
    """A person staff can start a session for (the staff screen only)."""

    user_id: str
    name: str | None
    client_user_id: str | None


class PeopleFound(_Out):
    """People whose name or clinic identifier matches, by name (at most `limit`)."""

    data: list[Person]


class CheckinCreate(_In):
    """A check-in code that starts `user_id`'s session when the kiosk reads it."""

    user_id: UserId
    device: Address | None = None
    duration_s: int | None = Field(default=None, ge=60, le=12 * 3600)


class CheckinCode(_Out):
    """A check-in code: open `path` on the kiosk (or show `code` as a QR code)."""

    code: str
    path: str
    expires_at: datetime


class CheckinRedeem(_In):
    """A check-in code read by the kiosk."""

    code: str = Field(min_length=1, max_length=512)


# ---------------------------------------------------------------- health


class Health(_Out):
    """Liveness and readiness."""

    status: str = Field(description="ok or degraded.")
    live: bool
    ready: bool
    checks: dict[str, bool]
    started_at: datetime
    last_event_id: int


class Live(_Out):
    """The process answers."""

    live: bool
