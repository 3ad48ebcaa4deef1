"""The Host header values the API answers to; any other gets 400 (DNS rebinding defence).

A page on `attacker.example` whose name the attacker re-points at 127.0.0.1 reaches the API
with `Host: attacker.example`; refusing unknown names stops it (the attack needs a name, so
the names are what matter). Allowed: the loopback names, the address the API is bound to
(the machine's own addresses for a wildcard bind), `<hostname>.local` when the API is
advertised over mDNS, and `[api] allowed_hosts`.
"""

import ipaddress
import socket

from gateway.config import ApiSettings
from gateway.mdns import advertised_addresses

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")


def _host_form(name: str) -> str:
    """How `name` appears in a Host header: IPv6 literals in brackets, lower case."""
    name = name.strip().lower()
    try:
        if ipaddress.ip_address(name.split("%", 1)[0]).version == 6:
            return f"[{name}]"
    except ValueError:
        pass
    return name


def allowed_hosts(api: ApiSettings) -> list[str]:
    """Host patterns for Starlette's `TrustedHostMiddleware` (`*.example` allowed)."""
    names = list(LOOPBACK_HOSTS)
    names += advertised_addresses(api.host)
    if api.mdns:
        names.append(f"{socket.gethostname()}.local")  # the zeroconf record's server name
    names += api.allowed_hosts
    return sorted({_host_form(n) for n in names if n})
