"""Junction's ingestion bodies as strict pydantic models (mobile-sdk-sync.md §2).

The mapping builds plain JSON-ready dicts (fast, pure); these models are the strict
definition of what Junction accepts. The stub validates every body with them, and the
mapping tests validate the mapping's output with them, so the two cannot drift apart.

A module of their own because `edge-gateway run` never validates an upload body: its
uploader imports `sync.junction.schemas` (token answers), and building these 13 models is
~0.5 MiB of its resident memory (issue 18; tests/gateway/test_cli_lazy.py keeps them out).
"""

import math
import zoneinfo
from typing import Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

SourceType = Literal[
    "unknown",
    "phone",
    "watch",
    "app",
    "ring",
    "chest_strap",
    "multiple_sources",
    "automatic",
    "manual_scan",
    "cuff",
    "fingerprick",
    "scale",
]

ID_MAX_LENGTH = 128


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Sample(_Strict):
    """`LocalQuantitySample`: one value over ``[start_date, end_date]`` (equal for a point)."""

    id: str | None = Field(default=None, min_length=1, max_length=ID_MAX_LENGTH)
    value: float
    unit: str
    start_date: AwareDatetime
    end_date: AwareDatetime
    type: SourceType | None = None
    source_bundle: str | None = None
    product_type: str | None = None
    metadata: dict[str, str] | None = None

    @field_validator("value")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value) or value < 0:
            msg = "value must be a finite, non-negative number"
            raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end_date < self.start_date:
            msg = "end_date is before start_date"
            raise ValueError(msg)
        return self


class GlucoseSample(Sample):
    """A glucose sample (the SDKs send mmol/L or mg/dL)."""

    unit: Literal["mmol/L", "mg/dL"]


class PressureSample(Sample):
    """Systolic or diastolic pressure."""

    unit: Literal["mmHg"]


class PulseSample(Sample):
    """Pulse rate nested in a blood-pressure sample."""

    unit: Literal["bpm"]


class BloodPressureSample(_Strict):
    """`LocalBloodPressureSample`."""

    systolic: PressureSample
    diastolic: PressureSample
    pulse: PulseSample | None = None


class MassSample(Sample):
    """Body mass."""

    unit: Literal["kg"]


class PercentSample(Sample):
    """A percentage (iOS sends ``%``, Android ``percent``)."""

    unit: Literal["%", "percent"]

    @field_validator("value")
    @classmethod
    def _percent(cls, value: float) -> float:
        if value > 100:
            msg = "a percentage cannot exceed 100"
            raise ValueError(msg)
        return value


class BodyData(_Strict):
    """`LocalBody`: the body summary's sample lists."""

    body_mass: list[MassSample] = []
    body_fat_percentage: list[PercentSample] = []
    body_mass_index: list[Sample] = []
    waist_circumference: list[Sample] = []
    lean_body_mass: list[MassSample] = []
    time_zones: list[tuple[str, str]] | None = None


class Envelope(_Strict):
    """The tagged payload every upload is wrapped in."""

    stage: Literal["daily", "historical"]
    provider: str = Field(pattern=r"^[a-z0-9_]{1,64}$")
    time_zone: str
    start_date: AwareDatetime | None = None
    end_date: AwareDatetime | None = None
    is_final_chunk: bool | None = None

    @field_validator("time_zone")
    @classmethod
    def _iana(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            msg = f"time_zone {value!r} is not an IANA zone"
            raise ValueError(msg) from exc
        return value

    @model_validator(mode="after")
    def _stage_fields(self) -> Self:
        window = (self.start_date, self.end_date)
        if self.stage == "historical":
            if None in window:
                msg = "historical stage needs start_date and end_date"
                raise ValueError(msg)
            if self.start_date and self.end_date and self.end_date < self.start_date:
                msg = "end_date is before start_date"
                raise ValueError(msg)
        elif window != (None, None):
            msg = "daily stage takes no start_date/end_date"
            raise ValueError(msg)
        return self


class GlucosePayload(Envelope):
    """`POST /v2/timeseries/{user_id}/glucose`."""

    data: list[GlucoseSample]


class BloodPressurePayload(Envelope):
    """`POST /v2/timeseries/{user_id}/blood_pressure`."""

    data: list[BloodPressureSample]


class BodyPayload(Envelope):
    """`POST /v2/summary/body/{user_id}`."""

    data: BodyData


class ManualProviderRequest(_Strict):
    """`POST /v2/link/provider/manual/{slug}`."""

    user_id: str = Field(min_length=1)
    provider_id: str | None = None
    granted_permissions: list[str] | None = None
