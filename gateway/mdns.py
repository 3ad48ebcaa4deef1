"""mDNS/DNS-SD advertisement of the local API as ``_edge-gateway._tcp`` (zeroconf).

Apps on the network browse for the type and read the TXT record: ``path=/v1``,
``version``, ``auth=bearer``, ``events=/v1/events``.
"""

import ipaddress
import logging
import socket
from dataclasses import dataclass

from zeroconf import InterfaceChoice, IPVersion, ServiceInfo
from zeroconf.asyncio import AsyncZeroconf

_LOGGER = logging.getLogger(__name__)

SERVICE_TYPE = "_edge-gateway._tcp.local."
API_VERSION = "1"
_WILDCARDS = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 - comparing, not binding


def service_info(*, port: int, addresses: list[str], instance: str | None = None) -> ServiceInfo:
    """The DNS-SD record for an API on `port` reachable at `addresses`.

    Raises:
        ValueError: An address is not an IP address.
    """
    name = instance or f"Edge Gateway {socket.gethostname()}"
    packed = [ipaddress.ip_address(a).packed for a in addresses]
    return ServiceInfo(
        SERVICE_TYPE,
        f"{name}.{SERVICE_TYPE}",
        port=port,
        addresses=packed,
        properties={
            "path": "/v1",
            "version": API_VERSION,
            "auth": "bearer",
            "events": "/v1/events",
        },
        server=f"{socket.gethostname()}.local.",
    )


def advertised_addresses(host: str) -> list[str]:
    """Where the API listens, as others can reach it (the host's addresses for 0.0.0.0/::)."""
    if host not in _WILDCARDS:
        return [host]
    found: set[str] = set()
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None):
            found.add(str(info[4][0]))
    except OSError:
        pass
    return sorted(a for a in found if not ipaddress.ip_address(a.split("%")[0]).is_loopback)


def interfaces_for(host: str) -> list[str] | InterfaceChoice:
    """Answer mDNS only where the API listens: every interface for a wildcard host."""
    return InterfaceChoice.All if host in _WILDCARDS else [host]


@dataclass
class Advertiser:
    """Registers the service on start, unregisters on stop."""

    info: ServiceInfo
    interfaces: list[str] | InterfaceChoice = InterfaceChoice.All
    _zc: AsyncZeroconf | None = None

    async def start(self) -> None:
        """Announce the service (a name clash gets a new instance name)."""
        self._zc = AsyncZeroconf(interfaces=self.interfaces, ip_version=IPVersion.All)
        await self._zc.async_register_service(self.info, allow_name_change=True)
        _LOGGER.info("advertising %s on port %d", self.info.name, self.info.port)

    async def stop(self) -> None:
        """Withdraw the service and close the responder."""
        if self._zc is None:
            return
        zc, self._zc = self._zc, None
        await zc.async_unregister_service(self.info)
        await zc.async_close()
