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


# Sign-In Token issuers look like ``id-signer-{env}-{region}@vital-id-{env}-{region}.iam.
# gserviceaccount.com`` with env ``prd``/``stg``/``dev`` (also ``production``/``sandbox``);
# the SDK picks its hosts from them (mobile-sdk-sync.md §1.2 item 2).
_ISSUER_ENV = {
    "prd": Environment.PRODUCTION,
    "production": Environment.PRODUCTION,
    "stg": Environment.SANDBOX,
    "sandbox": Environment.SANDBOX,
    "dev": Environment.DEV,
}
_ENV_ISSUER = {Environment.PRODUCTION: "prd", Environment.SANDBOX: "stg", Environment.DEV: "dev"}


def issuer(region: Region, environment: Environment) -> str:
    """The ``iss`` of Sign-In Tokens for a region/environment, as the SDK parses it."""
    tag = f"{_ENV_ISSUER[Environment(environment)]}-{Region(region).value}"
    return f"id-signer-{tag}@vital-id-{tag}.iam.gserviceaccount.com"


def parse_issuer(iss: str) -> tuple[Region, Environment] | None:
    """(region, environment) named by a Sign-In Token ``iss``, or None if it names neither."""
    local = iss.partition("@")[0]
    if not local.startswith("id-signer-"):
        return None
    env, _, region = local.removeprefix("id-signer-").rpartition("-")
    if env not in _ISSUER_ENV or region not in {r.value for r in Region}:
        return None
    return Region(region), _ISSUER_ENV[env]
