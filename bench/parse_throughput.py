"""Records per second for each drivers.gatt parser over the verified §5 test vectors.

Run: .venv/bin/python bench/parse_throughput.py [iterations]
A plain perf_counter loop, best of three rounds; figures go in README, never into tests.
"""

import platform
import sys
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


def main() -> None:
    iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    print(f"Python {platform.python_version()} on {platform.machine()}, {iterations} iterations")
    print(f"{'parser':<36} {'records/s':>12} {'µs/record':>10}")
    for name, parse, hex_ in CASES:
        per_second = rate(parse, bytes.fromhex(hex_.replace(" ", "")), iterations)
        print(f"{name:<36} {per_second:>12,.0f} {1e6 / per_second:>10.2f}")
    m = parse_glucose_measurement(bytes.fromhex(CASES[1][2]))
    per_second = rate(lambda _: encode_glucose_measurement(m), b"", iterations // 4)
    print(
        f"{'encode glucose measurement (sim)':<36} {per_second:>12,.0f} {1e6 / per_second:>10.2f}"
    )


if __name__ == "__main__":
    main()
