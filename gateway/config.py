"""Gateway settings: a TOML file plus `GATEWAY_<SECTION>__<KEY>` environment overrides.

Built once by the CLI (`load_settings`) and passed down; nothing reads settings at import.
Precedence, highest first: keyword arguments, environment, the TOML file, defaults.
"""

import difflib
import json
import os
import re
import tomllib
import types
import typing
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from gateway.kiosk.pin import check_hash_format
from sync.priority import DEFAULT_RESOURCE_ORDER

CONFIG_ENV = "GATEWAY_CONFIG"
ENV_PREFIX = "GATEWAY_"
ENV_DELIMITER = "__"
# A key whose value is never echoed (config check, error lines): credentials by their name,
# whatever section they are in, known to the gateway or not (a typo like `apikey` included).
SECRET_KEY_PATTERN = re.compile(r"key|token|secret|passw|credential|auth|pin_hash", re.IGNORECASE)
# Sections whose every value is treated as a secret (a team key may sit under any misspelt
# name there), but for the keys that only say where data goes.
SECRET_SECTIONS = frozenset({"junction"})
PUBLIC_KEYS = frozenset(
    {
        "region",
        "environment",
        "base_url",
        "auth_url",
        "resource_priority",
        "backfill_days",
        "scale_provider",
        "scale_resource",
    }
)
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
    # Token endpoint origin; default https://auth.{env.}{region}.junction.com, never base_url
    auth_url: str | None = None
    api_key: SecretStr | None = None
    region: Literal["us", "eu"] = "us"
    environment: Literal["production", "sandbox"] = "sandbox"
    # Upload order, first first; one default with sync.priority (why: see there)
    resource_priority: list[str] = [kind.value for kind in DEFAULT_RESOURCE_ORDER]
    # None: every reading "daily" (the Devices SDK). N: a device's first read goes up as a
    # historical backfill over [receive time - N days, receive time] (Junction: max 365)
    backfill_days: int | None = Field(default=None, ge=1, le=365)
    # Slug every scale uploads as; None: the brand's if Junction lists scales for it
    # (omron_ble), else "manual" (sync.junction.providers)
    scale_provider: str | None = Field(default=None, pattern=r"^[a-z0-9_]{1,64}$")
    # Where scale readings go: the body summary POST /v2/summary/body/{user} (the Health
    # SDKs' path; unproven for BLE providers, see README)
    scale_resource: Literal["body"] = "body"


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


class KioskSettings(_Section):
    """[kiosk]: the clinic kiosk page's staff mode, sessions and check-in codes."""

    # scrypt hash of the staff PIN, written by `edge-gateway kiosk set-pin`. Unset: staff
    # mode cannot be unlocked (sessions still start through the API).
    staff_pin_hash: SecretStr | None = None
    # Shown on the patient view instead of the person's first name (e.g. "Patient"). Unset:
    # the first word of the user's name.
    label: str | None = Field(default=None, min_length=1, max_length=40)
    session_s: int = Field(default=900, ge=60, le=12 * 3600)  # a session started from the page
    idle_s: int = Field(default=300, ge=2, le=12 * 3600)  # no reading for this long ends it
    staff_unlock_s: int = Field(default=120, ge=10, le=3600)  # staff mode locks itself after
    pin_attempts: int = Field(default=5, ge=1, le=20)  # wrong PINs in a row before a lockout
    lockout_s: int = Field(default=300, ge=10, le=24 * 3600)  # how long staff mode stays shut
    checkin_ttl_s: int = Field(default=600, ge=30, le=24 * 3600)  # a check-in code's lifetime

    @field_validator("staff_pin_hash")
    @classmethod
    def _pin_hash(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_hash_format(value.get_secret_value())  # PinFormatError is a ValueError
        return value


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

    @model_validator(mode="after")
    def _tls_files(self) -> "MqttSettings":
        if not self.enabled:
            return self
        if self.tls_key_file is not None and self.tls_cert_file is None:
            msg = "tls_key_file is set without tls_cert_file; set both (mutual TLS) or neither"
            raise ValueError(msg)
        for key in ("tls_ca_file", "tls_cert_file", "tls_key_file"):
            path = getattr(self, key)
            if path is not None and not path.is_file():
                msg = f"{key} {str(path)!r} is not a readable file; fix the path or remove the key"
                raise ValueError(msg)
        return self

    @field_validator("base_topic", "discovery_prefix")
    @classmethod
    def _topic_prefix(cls, value: str) -> str:
        if not value or any(c in value for c in "#+\0") or value.startswith("/"):
            msg = f"{value!r} is not a usable MQTT topic prefix; use letters, digits, - and /"
            raise ValueError(msg)
        return value.rstrip("/")


class StoreSettings(_Section):
    """[store]: what the database keeps besides readings."""

    record_frames: bool = True  # keep every GATT frame with the readings it gave (reparse)
    # Prune recorded frames after this many days even while their readings remain; unset:
    # frames go with their readings (see `keep_delivered_days`).
    frame_retention_days: float | None = Field(default=None, gt=0)


class Binding(_Section):
    """[[bindings]]: whose readings a device's (user slot's) readings are."""

    device: str
    user_id: str
    device_user: int | None = None  # absent: every user slot of the device
    # Overrides the slug the driver picks; a slug goes into Junction's URL path, so only the
    # characters Junction's slugs use (sync.junction.providers) are taken.
    provider: str | None = Field(default=None, pattern=r"^[a-z0-9_]{1,64}$")
    # The person's display name (kiosk page, MQTT topics and Home Assistant device names);
    # stored as the user's name. Absent: the name set through the API, if any.
    label: str | None = None

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
    kiosk: KioskSettings = KioskSettings()
    store: StoreSettings = StoreSettings()
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
        except UnicodeDecodeError as exc:
            msg = (
                f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
                f"{exc.start}); save the file as UTF-8"
            )
            raise ConfigError(msg) from exc
        except OSError as exc:
            msg = f"{path}: cannot read the config file ({exc.strerror}); check the path"
            raise ConfigError(msg) from exc
        except tomllib.TOMLDecodeError as exc:
            msg = f"{path}: not valid TOML ({exc}); fix the syntax"
            raise ConfigError(msg) from exc
    # TOML has types: the file's values are checked strictly (no "8080" for 8080, no "yes"
    # for true) before the environment, whose values are all strings, is parsed leniently.
    lines = list(_strict_file_errors(source, data))
    try:
        settings = Settings(**_merge(data, overrides))
    except ValidationError as exc:
        seen = set(lines)
        lines.extend(line for line in _lines(source, exc.errors()) if line not in seen)
    if lines:
        raise ConfigError("\n".join(lines))
    return settings


def _strict_file_errors(source: str, data: dict[str, Any]) -> Iterator[str]:
    if not data:
        return
    try:
        # JSON mode: strict about numbers, booleans and strings, yet a path may be a string.
        _FileModel.model_validate_json(json.dumps(data, default=str), strict=True)
    except ValidationError as exc:
        # Only what the lenient pass would let through (wrong types, unknown keys); the
        # rest is reported once, by the full validation.
        kinds = {"int_type", "float_type", "bool_type", "string_type", "extra_forbidden"}
        yield from _lines(source, [e for e in exc.errors() if e["type"] in kinds], strict=True)


def describe_errors(source: str, exc: ValidationError) -> str:
    """One line per problem: the key, the value given, and what is expected."""
    return "\n".join(_lines(source, exc.errors()))


def is_secret(loc: Sequence[str | int]) -> bool:
    """Whether a value at `loc` (``("junction", "api_key")``) must never be shown."""
    names = [p for p in loc if isinstance(p, str)]
    if not names:
        return False
    if len(names) == 2 and names[0] in SECRET_SECTIONS and names[1] in PUBLIC_KEYS:
        return False  # e.g. junction.auth_url: a host, not a credential (userinfo is masked)
    if any(SECRET_KEY_PATTERN.search(n) for n in names):
        return True
    return names[0] in SECRET_SECTIONS and not (len(names) == 2 and names[1] in PUBLIC_KEYS)


def dotted(loc: Sequence[str | int]) -> str:
    """`("bindings", 2, "device")` as `bindings[2].device`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def env_variable(loc: Sequence[str | int]) -> str | None:
    """The `GATEWAY_*` variable that set the value at `loc`, if one did."""
    present = {name.upper() for name in os.environ}
    names = [str(p).upper() for p in loc if isinstance(p, str)]
    for end in range(len(names), 0, -1):
        variable = ENV_PREFIX + ENV_DELIMITER.join(names[:end])
        if variable in present:
            return variable
    return None


def blame(source: str, loc: Sequence[str | int]) -> str:
    """Where the value at `loc` came from: its environment variable, else `source`."""
    variable = env_variable(loc)
    return f"${variable}" if variable else source


_TYPE_HINTS = {
    "int_type": "an integer (TOML: a number without quotes)",
    "float_type": "a number (TOML: without quotes)",
    "bool_type": "true or false (TOML: without quotes)",
    "string_type": 'a string (TOML: in double quotes, "like this")',
}


def _lines(source: str, errors: Sequence[Any], *, strict: bool = False) -> Iterator[str]:
    for err in errors:
        loc = tuple(p for p in err["loc"] if isinstance(p, str | int))
        key = dotted(loc)
        value = err.get("input")
        shown = "" if isinstance(value, dict) or is_secret(loc) else f" = {value!r}"
        where = source if strict else blame(source, loc)
        if err["type"] == "extra_forbidden":
            yield f"{where}: {_unknown_key(loc)}"
            continue
        expected = _TYPE_HINTS.get(err["type"]) if strict else None
        message = f"expected {expected}, got {type(value).__name__}" if expected else err["msg"]
        yield f"{where}: {key}{shown}: {message}"


def _unknown_key(loc: tuple[str | int, ...]) -> str:
    name = str(loc[-1])
    known = sorted(_model_at(loc[:-1]).model_fields)
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        return f"unknown key {dotted(loc)!r}; did you mean {dotted((*loc[:-1], close[0]))!r}?"
    section = f" in [{dotted(loc[:-1])}]" if len(loc) > 1 else ""
    return f"unknown key {dotted(loc)!r}; expected one of{section}: {', '.join(known)}"


def _model_at(loc: Sequence[str | int]) -> type[BaseModel]:
    model: type[BaseModel] = Settings
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        inner = _submodel(field.annotation) if field is not None else None
        if inner is None:
            break
        model = inner
    return model


def _submodel(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        for arg in typing.get_args(annotation):
            found = _submodel(arg)
            if found is not None:
                return found
    return None


# The settings' fields as a plain model: `BaseSettings.__init__` (env sources) would lose the
# `strict` flag, so the file's own values are validated through this twin.
_FileModel = create_model(  # type: ignore[call-overload]
    "_FileModel",
    __config__=ConfigDict(extra="forbid"),
    **{name: (field.annotation, field) for name, field in Settings.model_fields.items()},
)
