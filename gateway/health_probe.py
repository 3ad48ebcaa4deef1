"""Ask a running gateway's `/v1/health` over loopback: is it up, and is it ready?

Used by `edge-gateway status` and `edge-gateway config check`. A gateway that does not
answer is a normal answer here (`running=False`), never an exception.
"""

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime

import httpx

# A local process answers in milliseconds; a longer wait would only delay `status`.
PROBE_TIMEOUT_S = 1.5

# A wildcard bind is reached through loopback.
_WILDCARDS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104


@dataclass(frozen=True, slots=True)
class HealthProbe:
    """What a gateway's `/v1/health` said (or that nothing answered).

    Attributes:
        url: The URL asked.
        running: Something answered HTTP there.
        is_gateway: The answer was the gateway's health document.
        ready: The gateway reported itself ready (None if not running or not a gateway).
        status: The document's `status` (``ok`` or ``degraded``), if any.
        checks: Readiness checks by name (store, collector, uploader …).
        started_at: When the gateway process started, if it said.
        error: One line on why nothing usable answered, else None.
    """

    url: str
    running: bool
    is_gateway: bool = False
    ready: bool | None = None
    status: str | None = None
    checks: dict[str, bool] = field(default_factory=dict)
    started_at: datetime | None = None
    error: str | None = None


def loopback_host(host: str) -> str:
    """The address to reach a server bound to `host` from this machine."""
    host = host.strip("[]")
    return _WILDCARDS.get(host, host)


def health_url(host: str, port: int) -> str:
    """`http://host:port/v1/health` for a server bound to `host`, reached locally."""
    target = loopback_host(host)
    try:
        if ipaddress.ip_address(target).version == 6:
            target = f"[{target}]"
    except ValueError:
        pass  # a host name
    return f"http://{target}:{port}/v1/health"


def probe_health(host: str, port: int, *, timeout_s: float = PROBE_TIMEOUT_S) -> HealthProbe:
    """GET the gateway's `/v1/health`; any failure becomes a `HealthProbe`, never an error."""
    url = health_url(host, port)
    try:
        # trust_env=False: a proxy from the environment must not answer for a local port.
        with httpx.Client(timeout=timeout_s, trust_env=False) as client:
            response = client.get(url)
    except httpx.ConnectError:
        return HealthProbe(url=url, running=False, error="nothing answers")
    except httpx.TimeoutException:
        return HealthProbe(url=url, running=True, error=f"no answer within {timeout_s:g} s")
    except httpx.HTTPError as exc:
        # Something accepted the connection but did not answer HTTP as a gateway would.
        return HealthProbe(url=url, running=True, error=f"no HTTP answer ({exc or type(exc)})")
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or "ready" not in body or "checks" not in body:
        return HealthProbe(
            url=url,
            running=True,
            error=f"HTTP {response.status_code} from something that is not an edge gateway",
        )
    started = body.get("started_at")
    try:
        started_at = datetime.fromisoformat(started) if isinstance(started, str) else None
    except ValueError:
        started_at = None
    checks = body.get("checks")
    return HealthProbe(
        url=url,
        running=True,
        is_gateway=True,
        ready=bool(body.get("ready")),
        status=str(body.get("status", "")) or None,
        checks={str(k): bool(v) for k, v in checks.items()} if isinstance(checks, dict) else {},
        started_at=started_at,
    )
