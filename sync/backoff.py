"""How long to wait before retrying an upload: exponential backoff with full jitter.

`backoff_for` is pure (the random source is passed in), so tests pin it down exactly.
"""

import random

from sync.errors import OfflineError, RetryableSyncError

BASE_DELAY_S = 1.0  # first retry waits up to 1 s
MAX_DELAY_S = 300.0  # "a few minutes": never wait longer, whatever the server says
OFFLINE_MAX_DELAY_S = 60.0  # probe a lost network at least once a minute


def backoff_for(error: RetryableSyncError, attempt: int, rng: random.Random) -> float:
    """Seconds to wait before retry number `attempt` after `error`.

    Full jitter (a uniform draw from ``[0, min(cap, base * 2**(attempt - 1))]``, as in the
    AWS architecture blog), raised to the server's ``Retry-After`` if it gave one, and capped
    at `MAX_DELAY_S`. Going offline is probed more often (cap `OFFLINE_MAX_DELAY_S`).

    Args:
        error: The failure being retried.
        attempt: 1 for the first retry, 2 for the second, …
        rng: The random source.

    Returns:
        The delay in seconds, in ``[0, MAX_DELAY_S]``.
    """
    cap = OFFLINE_MAX_DELAY_S if isinstance(error, OfflineError) else MAX_DELAY_S
    exponent = min(max(attempt, 1) - 1, 30)  # 2**30 s is far past any cap
    delay = rng.uniform(0.0, min(cap, BASE_DELAY_S * 2.0**exponent))
    if error.retry_after is not None:
        delay = max(delay, error.retry_after)
    return min(delay, MAX_DELAY_S)
