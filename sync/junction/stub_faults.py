"""What the Junction stub does wrong, and how often (`Faults`).

Faults apply to data and link POSTs: scripted (``script``, the next requests' faults in
order, ``none`` for a clean one) or random (probabilities per request, seeded). 429 and
503 carry ``Retry-After``; ``drop`` closes the connection before the body is looked at,
``drop_after_accept`` after it was stored (the client cannot know it was).
"""

import random
from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

FaultName = Literal[
    "rate_limit", "server_error", "unavailable", "slow", "drop", "drop_after_accept",
    "unauthorized", "reject",
]  # fmt: skip


class Faults(BaseModel):
    """What the stub does wrong, and how often (probabilities per data/link request)."""

    model_config = ConfigDict(extra="forbid")

    rate_limit: float = Field(0.0, ge=0, le=1, description="429 with Retry-After")
    retry_after_s: float = Field(1.0, ge=0, description="Retry-After sent with 429 and 503")
    server_error: float = Field(0.0, ge=0, le=1, description="500")
    unavailable: float = Field(0.0, ge=0, le=1, description="503 with Retry-After")
    slow: float = Field(0.0, ge=0, le=1, description="answer after slow_s")
    slow_s: float = Field(2.0, ge=0)
    drop: float = Field(0.0, ge=0, le=1, description="close the connection, body not stored")
    drop_after_accept: float = Field(0.0, ge=0, le=1, description="store, then close")
    reject: float = Field(0.0, ge=0, le=1, description="permanent 400")
    unauthorized_once: bool = Field(False, description="the next request gets a 401")
    script: list[FaultName | Literal["none"]] = Field(
        default=[], description="faults for the next requests, in order ('none': no fault)"
    )
    scope: Literal["all", "data"] = Field("all", description="'data': spare link requests")
    seed: int | None = None

    @classmethod
    def from_flags(cls, flags: Iterable[str]) -> "Faults":
        """Build from ``name=value`` strings (CLI ``--fault rate_limit=0.1``).

        Raises:
            ValueError: A flag is not ``name=value`` or names no fault.
        """
        values: dict[str, Any] = {}
        for flag in flags:
            name, sep, value = flag.partition("=")
            if not sep:
                msg = f"fault flag {flag!r}: expected name=value, e.g. rate_limit=0.1"
                raise ValueError(msg)
            values[name.strip()] = value.split(",") if name.strip() == "script" else value.strip()
        return cls.model_validate(values)

    def next_fault(self, rng: random.Random) -> FaultName | None:
        """The fault for the next request (consumes the script, then draws from `rng`)."""
        f = self
        if f.script:
            scripted = f.script.pop(0)
            return None if scripted == "none" else scripted
        if f.unauthorized_once:
            f.unauthorized_once = False
            return "unauthorized"
        draw = rng.random()
        for name in (
            "rate_limit", "unavailable", "server_error", "drop", "drop_after_accept",
            "reject", "slow",
        ):  # fmt: skip
            draw -= getattr(f, name)
            if draw < 0:
                return name
        return None
