"""Records per second for each drivers.gatt parser over the verified §5 test vectors.

Run: .venv/bin/python bench/parse_throughput.py [iterations] [--json]
A plain perf_counter loop, best of three rounds; figures go in README, never into tests.
With --json the last line is one JSON object: records/s per case (`<case>_per_s`, the case
name as a slug), `iterations` and `load_1m`.
"""

import argparse
import json
import os
import platform
import re
import time
from collections.abc import Callable

from drivers.gatt import (
    parse_blood_pressure_measurement,
    parse_body_composition_measurement,
    parse_current_time,
    parse_glucose_context,
    parse_glucose_measurement,
    parse_racp,
    parse_weight_measurement,
)
from drivers.gatt.ieee11073 import decode_float, decode_sfloat
from drivers.simulator.encoding import encode_glucose_measurement

CASES: list[tuple[str, Callable[[bytes], object], str]] = [
    (
        "glucose measurement (full, #1)",
        parse_glucose_measurement,
        "1B0100E307021B0B0A1EFBFF1E00120501",
    ),
    ("glucose measurement (120 mg/dL)", parse_glucose_measurement, "022A00E807030F0E1E2D78B012"),
    (
        "glucose context (every field)",
        parse_glucose_context,
        "FF 0580 00 01 3CD0 01 51 0807 32 01 05B0 41F0",
    ),
    ("RACP response (#11)", parse_racp, "06000101"),
    ("RACP number of records (#14)", parse_racp, "05000201"),
    (
        "blood pressure (full, #5)",
        parse_blood_pressure_measurement,
        "1E8A00580078000000041114293B3C00012700",
    ),
    ("blood pressure (kPa, #6)", parse_blood_pressure_measurement, "15BDF00B009FF03C001200"),
    ("weight (full, #24)", parse_weight_measurement, "0F543DE7070C190E1E2D03F500A802"),
    ("body composition (#29)", parse_body_composition_measurement, "000E4600401FB036E803"),
    ("current time", parse_current_time, "EA070B17132D07018001"),
    ("SFLOAT (#16)", decode_sfloat, "65F0"),
    ("FLOAT (#18)", decode_float, "87D612FE"),
]


def rate(parse: Callable[[bytes], object], data: bytes, iterations: int) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(iterations):
            parse(data)
        best = min(best, time.perf_counter() - start)
    return iterations / best


def slug(name: str) -> str:
    """`glucose measurement (full, #1)` -> `glucose_measurement_full_1`."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("iterations", type=int, nargs="?", default=200_000)
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    args = parser.parse_args()
    iterations = args.iterations
    print(f"Python {platform.python_version()} on {platform.machine()}, {iterations} iterations")
    print(f"{'parser':<36} {'records/s':>12} {'µs/record':>10}")
    figures: dict[str, float] = {}
    for name, parse, hex_ in CASES:
        per_second = rate(parse, bytes.fromhex(hex_.replace(" ", "")), iterations)
        print(f"{name:<36} {per_second:>12,.0f} {1e6 / per_second:>10.2f}")
        figures[f"{slug(name)}_per_s"] = round(per_second)
    m = parse_glucose_measurement(bytes.fromhex(CASES[1][2]))
    per_second = rate(lambda _: encode_glucose_measurement(m), b"", max(1, iterations // 4))
    print(
        f"{'encode glucose measurement (sim)':<36} {per_second:>12,.0f} {1e6 / per_second:>10.2f}"
    )
    figures["encode_glucose_measurement_sim_per_s"] = round(per_second)
    if args.json:
        figures |= {"iterations": iterations, "load_1m": round(os.getloadavg()[0], 2)}
        print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
