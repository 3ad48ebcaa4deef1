import random

import pytest

from sync.backoff import MAX_DELAY_S, OFFLINE_MAX_DELAY_S, backoff_for
from sync.errors import OfflineError, ServerBusyError, UploadTimeoutError


class FixedRandom(random.Random):
    """Returns the top of every range, to see the cap."""

    def uniform(self, a, b):
        return b


def _busy(retry_after=None):
    return ServerBusyError("x", status_code=503, body="", retry_after=retry_after)


@pytest.mark.parametrize(("attempt", "ceiling"), [(1, 1.0), (2, 2.0), (5, 16.0), (9, 256.0)])
def test_exponential_ceiling(attempt, ceiling):
    assert backoff_for(_busy(), attempt, FixedRandom()) == ceiling


def test_capped_at_a_few_minutes_even_for_huge_attempts():
    assert backoff_for(_busy(), 10_000, FixedRandom()) == MAX_DELAY_S


def test_full_jitter_spreads_over_the_whole_range():
    rng = random.Random(1)
    delays = [backoff_for(UploadTimeoutError("x"), 6, rng) for _ in range(500)]
    assert min(delays) < 2.0
    assert max(delays) > 30.0
    assert all(0.0 <= d <= 32.0 for d in delays)


def test_retry_after_is_a_floor_and_still_capped():
    assert backoff_for(_busy(retry_after=7.0), 1, random.Random(0)) >= 7.0
    assert backoff_for(_busy(retry_after=3600.0), 1, random.Random(0)) == MAX_DELAY_S


def test_offline_probes_more_often():
    assert backoff_for(OfflineError("x"), 50, FixedRandom()) == OFFLINE_MAX_DELAY_S
