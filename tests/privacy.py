"""Checks that output shows no measured value (DEVELOPERS.md, Privacy).

A bare substring check is flaky: ``"23.45"`` is inside ``"…T10:12:23.456+00:00"`` whenever the
clock says so. These checks drop ISO-8601 timestamps first and match a value only where it starts a
number, so ``"123.4"`` is found in ``"sys 123.4"`` and ``"123.40"`` but not in ``"1123.4"``.
"""

import re
from collections.abc import Iterable

_TIMESTAMP = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?"
)


def measured_values_in(text: str, values: Iterable[str]) -> list[str]:
    """Return the values (as printed, e.g. ``"123.4"``) that appear as numbers in ``text``."""
    bare = _TIMESTAMP.sub("<time>", text)
    return [v for v in values if re.search(rf"(?<![\d.]){re.escape(v)}", bare)]
