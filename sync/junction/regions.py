"""Junction hosts per region and environment (mobile-sdk-sync.md §1.1)."""

from enum import StrEnum


class Region(StrEnum):
    """Where the team's data lives; fixed when the team is created."""

    US = "us"
    EU = "eu"


class Environment(StrEnum):
    """Junction environment."""

    PRODUCTION = "production"
    SANDBOX = "sandbox"
    DEV = "dev"


def _host(kind: str, region: Region, environment: Environment) -> str:
    middle = "" if environment is Environment.PRODUCTION else f"{environment.value}."
    return f"https://{kind}.{middle}{region.value}.junction.com"


def api_base_url(region: Region, environment: Environment) -> str:
    """The data API base URL, e.g. ``https://api.sandbox.eu.junction.com``."""
    return _host("api", Region(region), Environment(environment))


def auth_base_url(region: Region, environment: Environment) -> str:
    """The token endpoint base URL, e.g. ``https://auth.us.junction.com``."""
    return _host("auth", Region(region), Environment(environment))
