"""The Host header values the API answers to; any other gets 400 (DNS rebinding defence).

A page on `attacker.example` whose name the attacker re-points at 127.0.0.1 reaches the API
with `Host: attacker.example`; refusing unknown names stops it (the attack needs a name the
attacker controls). Allowed: the loopback names and addresses, the address the API is bound
to (every address of the machine's interfaces, read at start-up, for a wildcard bind),
`<hostname>.local` when the API is advertised over mDNS, and `[api] allowed_hosts`.
"""

import ipaddress
import socket

import ifaddr

from gateway.config import ApiSettings

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
_WILDCARDS = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 - comparing, not binding


def _host_form(name: str) -> str:
    """How `name` appears in a Host header: IPv6 literals in brackets, lower case."""
    name = name.strip().lower().split("%", 1)[0]  # no zone ids in Host headers
    try:
        if ipaddress.ip_address(name).version == 6:
            return f"[{name}]"
    except ValueError:
        pass
    return name


def interface_addresses() -> list[str]:
    """Every IP address of the machine's interfaces (IPv6 without zone ids)."""
    return [
        ip.ip if isinstance(ip.ip, str) else ip.ip[0]
        for adapter in ifaddr.get_adapters()
        for ip in adapter.ips
    ]


def allowed_hosts(api: ApiSettings) -> list[str]:
    """Host patterns for Starlette's `TrustedHostMiddleware` (`*.example` allowed)."""
    names = list(LOOPBACK_HOSTS)
    names += interface_addresses() if api.host in _WILDCARDS else [api.host]
    if api.mdns:
        names.append(f"{socket.gethostname()}.local")  # the zeroconf record's server name
    names += api.allowed_hosts
    return sorted({_host_form(n) for n in names if n})
