"""FastAPI dependencies as `Annotated` aliases: routes declare what they need by type.

They are `async def` because none of them blocks: FastAPI runs a plain `def` dependency in
the threadpool, one hop per dependency per request (issue 18: ~0.3 ms each under load).
"""

from typing import Annotated

from fastapi import Depends, Request

from gateway.api.auth import authenticated, require_admin
from gateway.config import Settings
from gateway.events import EventBus
from gateway.services import Services
from gateway.store import Database
from gateway.store.tokens import Scope


async def get_services(request: Request) -> Services:
    """The app's services (set by `create_app`)."""
    services: Services = request.app.state.services
    return services


async def get_db(services: Annotated[Services, Depends(get_services)]) -> Database:
    """The store."""
    return services.db


async def get_settings(services: Annotated[Services, Depends(get_services)]) -> Settings:
    """The settings."""
    return services.settings


async def get_events(services: Annotated[Services, Depends(get_services)]) -> EventBus:
    """The event bus."""
    return services.events


async def admin_scope(scope: Annotated[Scope, Depends(authenticated)]) -> Scope:
    """Authenticated with admin scope (403 otherwise)."""
    return require_admin(scope)


ServicesDep = Annotated[Services, Depends(get_services)]
DbDep = Annotated[Database, Depends(get_db)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
EventsDep = Annotated[EventBus, Depends(get_events)]
ReadScope = Annotated[Scope, Depends(authenticated)]
AdminScope = Annotated[Scope, Depends(admin_scope)]
