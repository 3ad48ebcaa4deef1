"""The scenario file (TOML, DESIGN.md §3): which simulated devices exist and what they hold.

Times in records are the device's own wall clock (no zone). Unknown keys are errors, so a typo
never silently drops a fault or a record.
"""

import tomllib
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from drivers.errors import DriverError


class ScenarioError(DriverError):
    """A scenario file that cannot be used."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GlucoseRecord(_Strict):
    """One stored glucose record (or, with `ketone_mmol_l`, a CareSens ketone result)."""

    seq: Annotated[int, Field(ge=0, le=0xFFFF)]
    time: datetime
    mg_dl: float | None = None
    mmol_l: float | None = None
    # A blood ketone result sent the i-SENS CareSens way: ketone x 10 as mg/dL, meal code 6.
    ketone_mmol_l: Annotated[float, Field(gt=0, le=204.7)] | None = None
    offset_min: int = 0
    type: int = 1  # capillary whole blood
    location: int = 1  # finger
    meal: int | None = None  # context record: 1 preprandial, 2 postprandial, 3 fasting …
    control: bool = False  # control-solution test
    status: int = 0  # sensor status annunciation bits
    after_reads: Annotated[int, Field(ge=0)] = 0  # measured after the meter was read N times

    @model_validator(mode="after")
    def _one_unit(self) -> "GlucoseRecord":
        given = [v for v in (self.mg_dl, self.mmol_l, self.ketone_mmol_l) if v is not None]
        if len(given) != 1:
            msg = "give exactly one of mg_dl, mmol_l or ketone_mmol_l"
            raise ValueError(msg)
        if self.ketone_mmol_l is not None and self.meal is not None:
            msg = "a ketone record carries meal code 6 itself; leave meal out"
            raise ValueError(msg)
        return self


class BloodPressureRecord(_Strict):
    """One stored blood-pressure record."""

    time: datetime | None = None
    systolic: float
    diastolic: float
    mean: float | None = None
    pulse: float | None = None
    unit: Literal["mmHg", "kPa"] = "mmHg"
    user: int | None = None
    status: int | None = None


class ScaleRecord(_Strict):
    """One stored scale record."""

    time: datetime | None = None
    weight_kg: float | None = None
    weight_lb: float | None = None
    fat_percent: float | None = None
    user: int | None = None
    unsuccessful: bool = False  # the scale reports "measurement unsuccessful"
    # The body composition comes without user id or time stamp, right after the weight that
    # carries both (a Beurer BF720, KristianP26/ble-scale-sync #168).
    body_bare: bool = False

    @model_validator(mode="after")
    def _one_weight(self) -> "ScaleRecord":
        if not self.unsuccessful and (self.weight_kg is None) == (self.weight_lb is None):
            msg = "give exactly one of weight_kg or weight_lb (or unsuccessful = true)"
            raise ValueError(msg)
        return self


class AttErrorSpec(_Strict):
    """Answer an operation on a characteristic with an ATT error code."""

    uuid: str
    op: Literal["read", "write", "notify"]
    code: Annotated[int, Field(ge=0, le=0xFF)]
    times: Annotated[int, Field(ge=0)] = 1


class FaultSpec(_Strict):
    """Misbehaviour to simulate."""

    drop_link_after: Annotated[int, Field(ge=0)] | None = None
    drop_link_every: Annotated[int, Field(ge=1)] | None = None
    connect_failures: Annotated[int, Field(ge=0)] = 0
    connect_latency_ms: Annotated[float, Field(ge=0)] = 0
    notify_interval_ms: Annotated[float, Field(ge=0)] = 0
    out_of_range: bool = False
    idle_disconnect_ms: Annotated[float, Field(ge=0)] = 10_000  # 0: never hang up an idle link
    att_errors: list[AttErrorSpec] = []


class UserSlot(_Strict):
    """A scale's user slot and its UDS consent code."""

    index: Annotated[int, Field(ge=0, le=0xFE)]
    consent: Annotated[int, Field(ge=0, le=9999)]


_Hex16 = Annotated[str, Field(pattern=r"^[0-9A-Fa-f]{4}$")]
_HexBytes = Annotated[str, Field(pattern=r"^([0-9A-Fa-f]{2}|\s)*$")]


def hex_bytes(text: str) -> bytes:
    """Bytes from a scenario hex string (spaces allowed)."""
    return bytes.fromhex("".join(text.split()))


class _DeviceBase(_Strict):
    address: Annotated[str, Field(pattern=r"^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$")]
    name: str | None = None
    manufacturer: str = "Generic"
    model: str = "SIM-1"
    serial: str | None = None
    firmware: str = "1.0.0"
    passkey: Annotated[int, Field(ge=0, le=999999)] | None = None
    pairing: Literal["passkey", "pin", "confirm", "just_works"] | None = None
    rssi: Annotated[int, Field(ge=-127, le=20)] = -60
    battery: Annotated[int, Field(ge=0, le=100)] = 87
    clock_skew_s: float = 0.0  # device clock minus true time
    clock_writable: bool = False
    faults: FaultSpec = FaultSpec()
    # Advertisement payloads as real devices send them, hex: company id -> manufacturer data,
    # 16-bit service UUID -> service data (a Beurer BF720: { "0611" = "" }, { "181d" = "01" }).
    advert_manufacturer_data: dict[_Hex16, _HexBytes] = {}
    advert_service_data: dict[_Hex16, _HexBytes] = {}


class GlucoseDevice(_DeviceBase):
    """A glucose meter (Glucose Service with RACP).

    ``numbering = "newest_first"`` numbers the records a TaiDoc meter's way: sequence 0 is the
    latest, so every number shifts when a record appears (`GlucoseRecord.after_reads`); the
    ``seq`` of each record in the file is then only its key.
    """

    kind: Literal["glucose"]
    records: list[GlucoseRecord] = []
    numbering: Literal["oldest_first", "newest_first"] = "oldest_first"


# Brands whose cuffs and scales send every stored record on every connection (no "sent" mark):
# Medisana BU550, Beurer BM57 and their Sanitas/SilverCrest twins (derdilla/
# blood-pressure-monitor-fl #352). Everyone else plays Omron: only records not yet delivered.
RESEND_ALL_BRANDS = ("beurer", "medisana", "sanitas", "silvercrest")

Resend = Literal["all", "unsent"]


class _StreamingDevice(_DeviceBase):
    """What cuffs and scales share: records pushed as indications once the client subscribes.

    `resend` says which stored records a new subscription gets: ``"unsent"`` (Omron-style: a
    "sent" mark per record, set when its indication is delivered to a client) or ``"all"``
    (Beurer/Medisana-style: every stored record, every time). Unset, it follows
    `manufacturer` (`RESEND_ALL_BRANDS`). `erase_after_send` drops a record once delivered.
    """

    erase_after_send: bool = True
    resend: Resend | None = None
    disconnect_after_send: bool = True
    advertise_when_empty: bool = True  # false: silent once everything was handed over

    @property
    def resend_mode(self) -> Resend:
        """The `resend` in force: as set, else by the brand in `manufacturer`."""
        if self.resend is not None:
            return self.resend
        brand = self.manufacturer.lower()
        return "all" if brand.startswith(RESEND_ALL_BRANDS) else "unsent"


class BloodPressureDevice(_StreamingDevice):
    """A blood-pressure cuff: stored records stream as indications once subscribed."""

    kind: Literal["blood_pressure"]
    records: list[BloodPressureRecord] = []


class ScaleDevice(_StreamingDevice):
    """A scale (Weight Scale, Body Composition, User Data services)."""

    kind: Literal["scale"]
    records: list[ScaleRecord] = []
    users: list[UserSlot] = []


DeviceSpec = Annotated[
    GlucoseDevice | BloodPressureDevice | ScaleDevice, Field(discriminator="kind")
]


class Scenario(_Strict):
    """A whole scenario file."""

    timezone: str = "UTC"  # the zone the device clocks show
    devices: list[DeviceSpec]

    @model_validator(mode="after")
    def _unique_addresses(self) -> "Scenario":
        seen: set[str] = set()
        for device in self.devices:
            if device.address.upper() in seen:
                msg = f"address {device.address} is used by two devices"
                raise ValueError(msg)
            seen.add(device.address.upper())
        return self


def parse_scenario(text: str, source: str = "<scenario>") -> Scenario:
    """Parse and validate scenario TOML text.

    Raises:
        ScenarioError: Naming the source, the key and what is expected.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = f"{source}: not valid TOML ({exc}); fix the syntax and try again"
        raise ScenarioError(msg) from exc
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        msg = f"{source}: {problems}; see the scenario format in README"
        raise ScenarioError(msg) from exc


def load_scenario(path: Path) -> Scenario:
    """Read and validate a scenario file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        msg = f"{path}: cannot read the scenario file ({exc.strerror}); check the path"
        raise ScenarioError(msg) from exc
    return parse_scenario(text, str(path))


def builtin_scenario() -> Scenario:
    """The demo scenario shipped with the package: a meter, a cuff and a scale."""
    text = resources.files("drivers.simulator").joinpath("demo_scenario.toml").read_text()
    return parse_scenario(text, "built-in demo scenario")
