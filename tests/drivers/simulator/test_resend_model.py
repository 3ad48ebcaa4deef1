"""What a second central gets from a cuff or scale after a first one read it, died mid-stream,
or died after the stream: per device family (`resend`), with the real Bleak in separate
processes (issue: cuffs that keep their records went mute after one read).
"""

import asyncio
import os
import signal
import sys
from dataclasses import dataclass

import pytest

from drivers.gatt import uuids
from drivers.simulator.scenario import Scenario, parse_scenario
from drivers.simulator.server import Simulator

ADDRESS = "C0:FF:EE:00:00:21"
RECORDS = 4
PACE_MS = 250  # long enough that a kill lands between two indications
# A central that dies leaves the link up; the device hangs up once idle (and only then
# advertises again), so B can find it. Shortened from the default 10 s to keep the test quick.
IDLE_HANGUP_MS = 800


def _scenario(kind: str, resend: str, erase: bool) -> Scenario:
    if kind == "blood_pressure":
        rows = ",\n".join(
            f'{{ time = "2026-11-20T07:{i:02d}:00", systolic = {120 + i}, diastolic = 80 }}'
            for i in range(RECORDS)
        )
    else:
        rows = ",\n".join(
            f'{{ time = "2026-11-20T07:{i:02d}:00", weight_kg = {70 + i} }}' for i in range(RECORDS)
        )
    return parse_scenario(
        f"""
[[devices]]
kind = "{kind}"
address = "{ADDRESS}"
name = "dev"
resend = "{resend}"
erase_after_send = {str(erase).lower()}
faults = {{ notify_interval_ms = {PACE_MS}, idle_disconnect_ms = {IDLE_HANGUP_MS} }}
records = [
{rows}
]
"""
    )


@dataclass
class Read:
    frames: list[str]
    ended: bool


async def _read(uuid: str, *, kill_after: int | None = None) -> Read:
    """One central process; SIGKILLed right after its `kill_after`-th frame if given."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.drivers.simulator.bleak_reader",
        ADDRESS,
        uuid,
        stdout=asyncio.subprocess.PIPE,
        env=os.environ.copy(),
    )
    assert proc.stdout is not None
    frames: list[str] = []
    ended = False
    async with asyncio.timeout(30):
        while line := (await proc.stdout.readline()).decode().strip():
            if line == "end":
                ended = True
                break
            if line == "ready":
                continue
            frames.append(line)
            if kill_after is not None and len(frames) >= kill_after:
                proc.send_signal(signal.SIGKILL)
                break
        await proc.wait()
    return Read(frames, ended)


def _uuid(kind: str) -> str:
    if kind == "blood_pressure":
        return uuids.BLOOD_PRESSURE_MEASUREMENT
    return uuids.WEIGHT_MEASUREMENT


CASES = [
    (kind, resend, erase)
    for kind in ("blood_pressure", "scale")
    for resend in ("unsent", "all")
    for erase in (False, True)
]


@pytest.mark.parametrize(("kind", "resend", "erase"), CASES)
@pytest.mark.parametrize("first", ["reads", "killed_mid_stream", "killed_after_stream"])
async def test_second_central_gets_what_the_family_sends(
    kind: str, resend: str, erase: bool, first: str, simulator: Simulator
) -> None:
    uuid = _uuid(kind)
    kill_after = {"reads": None, "killed_mid_stream": 2, "killed_after_stream": RECORDS}[first]
    a = await _read(uuid, kill_after=kill_after)
    assert len(a.frames) == (RECORDS if kill_after is None else kill_after)
    b = await _read(uuid)

    # "all" without erasing: every stored record, every connection; otherwise only what A
    # never got (erased, or marked sent once delivered).
    expected = RECORDS if resend == "all" and not erase else RECORDS - len(a.frames)
    assert len(b.frames) == expected
    assert b.ended
    # Nothing A got is missing from what the two saw together.
    assert len(set(a.frames) | set(b.frames)) == RECORDS


@pytest.fixture
def scenario(request: pytest.FixtureRequest) -> Scenario:
    kind, resend, erase = (
        request.node.callspec.params["kind"],
        request.node.callspec.params["resend"],
        request.node.callspec.params["erase"],
    )
    return _scenario(kind, resend, erase)


def _meter() -> Scenario:
    rows = ",\n".join(
        f'{{ seq = {i}, time = "2026-11-20T07:{i:02d}:00", mg_dl = {90 + i} }}'
        for i in range(1, 41)
    )
    return parse_scenario(
        f"""
[[devices]]
kind = "glucose"
address = "{ADDRESS}"
name = "meter+00012345"
faults = {{ notify_interval_ms = 100, idle_disconnect_ms = 0 }}
records = [
{rows}
]
"""
    )


@pytest.mark.parametrize("scenario", [_meter()])
async def test_a_racp_procedure_dies_with_its_client(simulator: Simulator) -> None:
    """A central killed mid-report leaves the link up; the meter does not stay "busy".

    BlueZ ends the dead client's notify sessions (and turns the CCCD off), so the meter could
    not indicate the procedure's end: it abandons it, and the next client on that link is not
    told "procedure already in progress".
    """
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "tests.drivers.simulator.bleak_reader", ADDRESS),
        *(uuids.GLUCOSE_MEASUREMENT, "--racp"),
        stdout=asyncio.subprocess.PIPE,
        env=os.environ.copy(),
    )
    assert proc.stdout is not None
    device = simulator.device(ADDRESS)
    profile = device.profile
    async with asyncio.timeout(20):
        frames = 0
        while frames < 3:
            line = (await proc.stdout.readline()).decode().strip()
            frames += line not in ("ready", "")
        assert profile._running  # type: ignore[attr-defined]  # the report is under way
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    # At once, not after the ~3.5 s the rest of the report would have taken.
    async with asyncio.timeout(1.0):
        while profile._running:  # type: ignore[attr-defined]
            await asyncio.sleep(0.02)
    assert device.connected  # the dead client's link is still up, as in BlueZ
    assert len(profile.records) == 40  # type: ignore[attr-defined]  # a report deletes nothing
