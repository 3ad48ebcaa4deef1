"""Gateway settings: a TOML file plus `GATEWAY_<SECTION>__<KEY>` environment overrides.

Built once by the CLI (`load_settings`) and passed down; nothing reads settings at import.
Precedence, highest first: keyword arguments, environment, the TOML file, defaults.
"""

import os
import tomllib
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

CONFIG_ENV = "GATEWAY_CONFIG"
DEFAULT_DATA_DIR = Path("/var/lib/edge-gateway")


class ConfigError(Exception):
    """A configuration that cannot be used; the message names the key, value and remedy."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BleSettings(_Section):
    """[ble]: the Bluetooth side."""

    adapter: str = "hci0"
    max_connections: int = Field(default=2, ge=1, le=8)  # concurrent links the adapter allows
    poll_interval_s: float = Field(default=60.0, gt=0)  # how often a present device is re-read
    write_device_clock: bool = False  # set devices' clocks (CTS) where they allow it
    clock_warn_s: float = Field(default=300.0, gt=0)  # log a device whose clock is this far off


class JunctionSettings(_Section):
    """[junction]: where readings go."""

    base_url: str | None = None  # overrides region/environment (e.g. the local stub)
    api_key: SecretStr | None = None
    region: Literal["us", "eu"] = "us"
    environment: Literal["production", "sandbox"] = "sandbox"
    resource_priority: list[str] = ["glucose", "blood_pressure", "body"]


class ApiSettings(_Section):
    """[api]: the local REST API and kiosk page."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    trust_loopback: bool = True  # requests from 127.0.0.1/::1 need no token (kiosk browser)
    mdns: bool = False  # advertise _edge-gateway._tcp on the network
    # Host names (or addresses) LAN apps use to reach the API, besides the loopback ones, the
    # bound address and (with mdns) `<hostname>.local`. Any other Host header gets 400: that is
    # what stops DNS rebinding. A leading "*." allows subdomains.
    allowed_hosts: list[str] = []
    # Addresses of reverse proxies whose X-Forwarded-For/-Proto are believed. Empty: proxy
    # headers are ignored, whatever FORWARDED_ALLOW_IPS says.
    trusted_proxies: list[str] = []
    # Largest request body accepted; bigger ones get 413 before they are read. The default
    # fits the largest valid body (a requeue of 1000 reading ids is ~67 KB).
    max_body_bytes: int = Field(default=128 * 1024, ge=1024, le=16 * 1024 * 1024)
    # Other web origins (scheme://host:port) allowed to call the API from a browser (CORS);
    # they still need a token. Empty: no cross-origin access.
    cors_origins: list[str] = []


class MqttSettings(_Section):
    """[mqtt]: publish readings to the owner's MQTT broker with Home Assistant discovery.

    Readings go only to the broker configured here; nothing is published unless `enabled`.
    """

    enabled: bool = False
    host: str = "localhost"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    tls_ca_file: Path | None = None  # set (or set a client cert) to connect with TLS
    tls_cert_file: Path | None = None  # client certificate (mutual TLS)
    tls_key_file: Path | None = None  # its private key
    base_topic: str = "edge-gateway"
    discovery_prefix: str = "homeassistant"
    client_id: str | None = None  # default: edge-gateway-<base_topic>
    glucose_unit: Literal["mg/dL", "mmol/L"] = "mmol/L"
    # How a bound person appears in topics and device names: the user's name ("label") or
    # the Junction user id (only if the owner asks; ids are pseudonymous but stable).
    person_topic: Literal["label", "user_id"] = "label"
    keepalive_s: int = Field(default=60, ge=5, le=3600)

    @field_validator("base_topic", "discovery_prefix")
    @classmethod
    def _topic_prefix(cls, value: str) -> str:
        if not value or any(c in value for c in "#+\0") or value.startswith("/"):
            msg = f"{value!r} is not a usable MQTT topic prefix; use letters, digits, - and /"
            raise ValueError(msg)
        return value.rstrip("/")


class Binding(_Section):
    """[[bindings]]: whose readings a device's (user slot's) readings are."""

    device: str
    user_id: str
    device_user: int | None = None  # absent: every user slot of the device
    provider: str | None = None  # overrides the slug the driver picks

    @field_validator("device")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()


class Settings(BaseSettings):
    """Everything the gateway is configured with."""

    model_config = SettingsConfigDict(
        env_prefix="GATEWAY_",
        env_nested_delimiter="__",
        extra="forbid",
        # The file path comes from `load_settings`; `Settings()` alone reads env and defaults.
    )

    data_dir: Path = DEFAULT_DATA_DIR
    timezone: str = "UTC"  # IANA zone the device clocks show
    keep_delivered_days: float = Field(default=90.0, gt=0)  # then uploaded readings are pruned
    ble: BleSettings = BleSettings()
    junction: JunctionSettings = JunctionSettings()
    api: ApiSettings = ApiSettings()
    mqtt: MqttSettings = MqttSettings()
    bindings: list[Binding] = []

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            msg = f"unknown IANA time zone {value!r}; use a name like 'Europe/Berlin'"
            raise ValueError(msg) from exc
        return value

    @property
    def zone(self) -> ZoneInfo:
        """The configured zone as a tzinfo."""
        return ZoneInfo(self.timezone)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments (the TOML file's values come in here too) lose to env vars."""
        del settings_cls, dotenv_settings, file_secret_settings  # no .env, no secret dirs
        return (env_settings, init_settings)


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Read the TOML file (or `$GATEWAY_CONFIG`, or none), apply env and `overrides`.

    Raises:
        ConfigError: Naming the file, the key, the value and what is expected.
    """
    if path is None and os.environ.get(CONFIG_ENV):
        path = Path(os.environ[CONFIG_ENV])
    data: dict[str, Any] = {}
    source = "environment"
    if path is not None:
        source = str(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            msg = f"{path}: cannot read the config file ({exc.strerror}); check the path"
            raise ConfigError(msg) from exc
        except tomllib.TOMLDecodeError as exc:
            msg = f"{path}: not valid TOML ({exc}); fix the syntax"
            raise ConfigError(msg) from exc
    try:
        return Settings(**_merge(data, overrides))
    except ValidationError as exc:
        raise ConfigError(describe_errors(source, exc)) from exc


def describe_errors(source: str, exc: ValidationError) -> str:
    """One line per problem: the key, the value given, and what is expected."""
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        value = err.get("input")
        shown = "" if isinstance(value, dict) else f" = {value!r}"
        if "api_key" in key or "password" in key:
            shown = ""  # never echo a secret
        lines.append(f"{source}: {key}{shown}: {err['msg']}")
    return "\n".join(lines)
