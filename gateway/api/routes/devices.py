"""`/v1/devices`: state (radio, bond, readings, uploads), pair, forget, bind to a user."""

import logging
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from gateway.api import queries
from gateway.api.deps import AdminScope, ReadScope, ServicesDep
from gateway.api.params import AddressPath
from gateway.api.reading_events import publish_readings
from gateway.api.schemas import (
    AUTH_RESPONSES,
    BindingOut,
    BindRequest,
    BindResult,
    Deleted,
    Device,
    DeviceList,
    PairingOut,
    PairRequest,
    Problem,
)
from gateway.events import DEVICE_FORGOTTEN, PAIRING_FINISHED, PAIRING_STARTED
from gateway.services import NextStep, PairingUnavailableError, RadarDevice, Services
from gateway.store import aio, devices, readings, users
from gateway.store.attribution import Binding
from gateway.store.devices import BondState

router = APIRouter(prefix="/v1/devices", tags=["devices"], responses=AUTH_RESPONSES)
_LOGGER = logging.getLogger(__name__)

_ACTIVATE = {
    "glucose": NextStep.PRESS_BUTTON,
    "blood_pressure": NextStep.MEASURE,
    "body": NextStep.STEP_ON,
}


def next_step(kind: str | None, radar: RadarDevice | None, bonded: bool) -> NextStep:
    """What the person should do with the device now."""
    if radar is not None and radar.needs_passkey and not bonded:
        return NextStep.PAIR
    if radar is not None and radar.connected:
        return NextStep.WAIT
    return _ACTIVATE.get(kind or (radar.kind if radar else None) or "", NextStep.WAIT)


def binding_out(binding: Binding) -> BindingOut:
    """Store binding → API."""
    return BindingOut(
        device=binding.device,
        device_user=binding.device_user,
        user_id=binding.user_id,
        provider=binding.provider,
    )


def _device_list(services: Services) -> list[Device]:
    stored = {d.address: d for d in devices.list_devices(services.db)}
    seen = {r.address.upper(): r for r in services.radar.snapshot()}
    stats = queries.device_stats(services.db)
    bindings: dict[str, list[BindingOut]] = {}
    for binding in users.list_bindings(services.db):
        bindings.setdefault(binding.device, []).append(binding_out(binding))
    out = []
    for address in sorted(stored.keys() | seen.keys()):
        known, radar, stat = stored.get(address), seen.get(address), stats.get(address)
        bond = known.bond_state if known else BondState.NONE
        kind = (known.kind if known else None) or (radar.kind if radar else None)
        out.append(
            Device(
                address=address,
                name=(known.name if known else None) or (radar.name if radar else None),
                brand=known.brand if known else None,
                model=known.model if known else None,
                kind=kind,
                provider=known.provider if known else None,
                in_range=bool(radar and radar.in_range),
                connected=bool(radar and radar.connected),
                rssi=radar.rssi if radar else None,
                bonded=bond is BondState.BONDED,
                bond_state=bond.value,
                needs_passkey=bool(radar and radar.needs_passkey),
                next_step=next_step(kind, radar, bond is BondState.BONDED).value,
                last_seen_at=max(
                    (
                        t
                        for t in (
                            known.last_seen_at if known else None,
                            radar.seen_at if radar else None,
                        )
                        if t
                    ),
                    default=None,
                ),
                last_reading_at=stat.last_reading_at if stat else None,
                readings=stat.readings if stat else 0,
                pending_uploads=stat.pending_uploads if stat else 0,
                unassigned_readings=stat.unassigned if stat else 0,
                battery_percent=known.battery_percent if known else None,
                clock_skew_s=known.clock_skew_s if known else None,
                bindings=bindings.get(address, []),
            )
        )
    return out


def _not_found(address: str) -> HTTPException:
    return HTTPException(
        status.HTTP_404_NOT_FOUND,
        detail=f"no device {address}; list devices with GET /v1/devices",
    )


@router.get("")
def list_devices(services: ServicesDep, _: ReadScope) -> DeviceList:
    """Known devices and devices in range, with what to do next."""
    return DeviceList(data=_device_list(services))


@router.get("/{address}", responses={404: {"model": Problem}})
def get_device(services: ServicesDep, _: ReadScope, address: AddressPath) -> Device:
    """One device."""
    for device in _device_list(services):
        if device.address == address.upper():
            return device
    raise _not_found(address)


@router.post("/{address}/pair", responses={409: {"model": Problem}})
async def pair(
    services: ServicesDep, _: AdminScope, address: AddressPath, body: PairRequest
) -> PairingOut:
    """Pair (bond) with a device, answering its passkey request; the bond state is stored."""
    address = address.upper()
    services.events.publish(PAIRING_STARTED, None, {"address": address})
    try:
        result = await services.pairing.pair(address, body.passkey)
    except PairingUnavailableError as exc:
        finished = {"address": address, "ok": False, "message": str(exc)}
        services.events.publish(PAIRING_FINISHED, None, finished)
        raise
    state = BondState.BONDED if result.paired else BondState.FAILED
    await aio.call(devices.set_bond_state, services.db, address, state)
    services.events.publish(
        PAIRING_FINISHED,
        None,
        {"address": address, "ok": result.paired, "message": result.message},
    )
    _LOGGER.info("pairing %s: %s", address, "bonded" if result.paired else "failed")
    return PairingOut(
        address=address, paired=result.paired, bond_state=state.value, message=result.message
    )


@router.delete("/{address}", responses={404: {"model": Problem}})
async def forget(services: ServicesDep, _: AdminScope, address: AddressPath) -> Deleted:
    """Forget a device: its bond, identity and cursors (readings and bindings stay)."""
    address = address.upper()
    await services.pairing.remove_bond(address)
    known = await aio.call(devices.forget_device, services.db, address)
    if not known:
        raise _not_found(address)
    services.events.publish(DEVICE_FORGOTTEN, None, {"address": address})
    return Deleted(deleted=True)


@router.post("/{address}/bindings", status_code=status.HTTP_201_CREATED)
async def bind(
    services: ServicesDep, _: AdminScope, address: AddressPath, body: BindRequest
) -> BindResult:
    """Bind the device (or its user slot `device_user`) to a user, replacing that slot's."""
    address = address.upper()
    binding = await aio.call(
        users.bind,
        services.db,
        address,
        body.user_id,
        device_user=body.device_user,
        provider=body.provider,
    )
    if body.consent_code is not None and body.device_user is not None:
        await aio.call(
            devices.set_consent_code, services.db, address, body.device_user, body.consent_code
        )
    assigned = 0
    if body.assign_unassigned:
        mark = await aio.call(queries.last_change, services.db)
        assigned = await aio.call(
            readings.assign_device_readings,
            services.db,
            address,
            body.user_id,
            zone=services.settings.zone,
            device_user=body.device_user,
            provider=body.provider,
        )
        if assigned:
            services.sync.wake()
            changed = await aio.call(
                queries.assigned_since, services.db, mark, device=address, user_id=body.user_id
            )
            publish_readings(services.events, changed, change="updated")
    return BindResult(binding=binding_out(binding), assigned_readings=assigned)


@router.delete("/{address}/bindings", responses={404: {"model": Problem}})
async def unbind(
    services: ServicesDep,
    _: AdminScope,
    address: AddressPath,
    device_user: Annotated[
        int | None, Query(ge=0, le=255, description="The slot; omit for the every-slot binding.")
    ] = None,
) -> Deleted:
    """Remove a binding; readings already attributed stay with their user."""
    if not await aio.call(users.unbind, services.db, address, device_user=device_user):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no such binding of {address}")
    return Deleted(deleted=True)
