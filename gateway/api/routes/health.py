"""`/v1/health`: liveness (the process answers) and readiness (store and runtime parts)."""

import logging

from fastapi import APIRouter, Response, status

from gateway.api.deps import ServicesDep
from gateway.api.schemas import Health, Live
from gateway.store import StoreError, users

router = APIRouter(prefix="/v1", tags=["health"])
_LOGGER = logging.getLogger(__name__)


@router.get("/health", responses={503: {"model": Health, "description": "Not ready."}})
def health(services: ServicesDep, response: Response) -> Health:
    """Liveness and readiness; 503 while a check fails. Needs no token (for supervisors)."""
    checks: dict[str, bool] = {}
    try:
        users.list_users(services.db)
        checks["store"] = True
    except StoreError as exc:
        _LOGGER.warning("health: store not ready: %s", exc)
        checks["store"] = False
    for name, check in services.readiness.items():
        try:
            checks[name] = bool(check())
        except Exception:
            _LOGGER.exception("health check %s raised", name)
            checks[name] = False
    ready = all(checks.values())
    if not ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return Health(
        status="ok" if ready else "degraded",
        live=True,
        ready=ready,
        checks=checks,
        started_at=services.started_at,
        last_event_id=services.events.last_id,
    )


@router.get("/health/live")
def live() -> Live:
    """Liveness only (the process answers); for supervisors that restart on failure."""
    return Live(live=True)
