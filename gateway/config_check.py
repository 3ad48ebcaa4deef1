"""Checks `edge-gateway config check` runs on loaded settings, beyond what validation does.

Each check returns `Problem`s (the key, the value and what is expected, like
`gateway.config.describe_errors`) and `Note`s (facts worth knowing that are not wrong).
Nothing here changes anything: the data directory is not created, the port is bound for a
moment only.
"""

import contextlib
import errno
import os
import re
import socket
import sqlite3
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from drivers.readings import ReadingKind
from gateway.config import ApiSettings, JunctionSettings, Settings, blame, is_secret
from gateway.health_probe import probe_health
from gateway.store import DATABASE_FILENAME
from sync.junction.providers import MANUAL, PROVIDER_RESOURCES, accepts
from sync.junction.regions import Environment, Region, auth_base_url

ADDRESS_PATTERN = re.compile(r"^[0-9A-F]{2}(:[0-9A-F]{2}){5}$")
_LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}
_JUNCTION_DOMAINS = ("junction.com", "tryvital.io")


@dataclass(frozen=True, slots=True)
class Problem:
    """Something in the config that will not work.

    Attributes:
        key: Dotted config key (``bindings[2].device``).
        value: The value given.
        expected: What is expected instead, ending with a remedy.
    """

    key: str
    value: object
    expected: str

    def line(self, source: str) -> str:
        """One line: source, key, value, expectation (as `describe_errors` writes them).

        The source is the `GATEWAY_*` variable when one set the value; a secret's value is
        never shown.
        """
        loc = _loc(self.key)
        shown = "" if is_secret(loc) else f" = {self.value!r}"
        return f"{blame(source, loc)}: {self.key}{shown}: {self.expected}"


def _loc(key: str) -> tuple[str | int, ...]:
    return tuple(
        int(part) if part.isdigit() else part for part in re.split(r"[.\[\]]+", key) if part
    )


@dataclass(frozen=True, slots=True)
class Note:
    """A fact about the config that is fine but worth showing (e.g. the port is in use).

    Attributes:
        key: Dotted config key.
        text: One line.
    """

    key: str
    text: str


@dataclass(frozen=True, slots=True)
class Warn:
    """Something that may be a mistake but can work (e.g. a key for another region).

    Attributes:
        key: Dotted config key.
        text: One line, ending with a remedy.
    """

    key: str
    text: str


Finding = Problem | Note | Warn


def validation_problems(settings: Settings) -> list[Problem]:
    """The problems every command refuses to start with (`run` as much as `config check`).

    The API port is left out: whether it is free is a fact of the moment, which `run`
    learns by binding it (and `config check` reports from `check_api`).
    """
    found = [
        *check_data_dir(settings.data_dir),
        *check_timezone(settings.timezone),
        *check_bindings(settings),
        *check_junction(settings.junction),
    ]
    return [f for f in found if isinstance(f, Problem)]


def check_settings(settings: Settings) -> list[Finding]:
    """Every check, in config order."""
    return [
        *check_data_dir(settings.data_dir),
        *check_timezone(settings.timezone),
        *check_bindings(settings),
        *check_api(settings.api),
        *check_junction(settings.junction),
        *check_key_prefix(settings.junction),
        *check_providers(settings),
    ]


def check_data_dir(path: Path) -> Iterator[Finding]:
    """The data directory exists and is writable, or could be created by this user."""
    key = "data_dir"
    if path.exists():
        if not path.is_dir():
            yield Problem(key, str(path), "a directory, not a file; point data_dir elsewhere")
        elif not os.access(path, os.W_OK | os.X_OK):
            yield Problem(
                key,
                str(path),
                f"a directory writable by this user (uid {os.geteuid()}); chown it to the "
                "user the gateway runs as",
            )
        else:
            database = path / DATABASE_FILENAME
            if database.exists() and not os.access(database, os.R_OK | os.W_OK):
                yield Problem(
                    key,
                    str(path),
                    f"{database.name} readable and writable by this user; chown it to the "
                    "user the gateway runs as (and `chattr -i` it if it is immutable)",
                )
        return
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        yield Problem(key, str(path), f"a creatable directory, but {parent} is a file")
    elif not os.access(parent, os.W_OK | os.X_OK):
        yield Problem(
            key,
            str(path),
            f"a creatable directory, but {parent} is not writable by this user (uid "
            f"{os.geteuid()}); create {path} and chown it to the gateway user (systemd's "
            "StateDirectory= does that)",
        )
    else:
        yield Note(key, f"{path} does not exist yet; the gateway creates it (mode 0700)")


def check_timezone(name: str) -> Iterator[Finding]:
    """The zone is an IANA name (not only something zoneinfo can load, like a file path)."""
    if name not in zoneinfo.available_timezones():
        yield Problem(
            "timezone",
            name,
            "an IANA zone name like 'Europe/Berlin' (see `timedatectl list-timezones`)",
        )


def check_bindings(settings: Settings) -> Iterator[Finding]:
    """Addresses look like AA:BB:CC:DD:EE:FF; each (device, device_user) is bound once."""
    seen: dict[tuple[str, int | None], int] = {}
    for index, binding in enumerate(settings.bindings):
        key = f"bindings[{index}]"
        if not ADDRESS_PATTERN.match(binding.device):
            yield Problem(
                f"{key}.device", binding.device, "a Bluetooth address like 'AA:BB:CC:DD:EE:FF'"
            )
        if not binding.user_id.strip():
            yield Problem(f"{key}.user_id", binding.user_id, "a Junction user id (not empty)")
        slot = (binding.device, binding.device_user)
        if slot in seen:
            who = "every user slot" if binding.device_user is None else f"user {slot[1]}"
            yield Problem(
                f"{key}.device",
                binding.device,
                f"one binding per device and device_user, but {who} of it is already bound "
                f"by bindings[{seen[slot]}]; remove one of them",
            )
        else:
            seen[slot] = index


def check_api(api: ApiSettings) -> Iterator[Finding]:
    """The API port is free, or held by a running gateway (this one, presumably)."""
    if api.port == 0:
        yield Note("api.port", "0: the system picks a free port at start")
        return
    try:
        infos = socket.getaddrinfo(
            api.host or None, api.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror:
        yield Problem("api.host", api.host, "an address of this machine or a host name it resolves")
        return
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        # As uvicorn does: a port in TIME_WAIT from a stopped gateway counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            yield from _bind_failure(api, exc)


def _bind_failure(api: ApiSettings, exc: OSError) -> Iterator[Finding]:
    if exc.errno == errno.EADDRINUSE:
        probe = probe_health(api.host, api.port)
        if probe.is_gateway:
            state = "ready" if probe.ready else "not ready"
            yield Note("api.port", f"{api.port} is in use by a running gateway ({state})")
        else:
            yield Problem(
                "api.port",
                api.port,
                f"a free port, but another program listens on {api.host}:{api.port}; stop it "
                "or choose another port",
            )
    elif exc.errno == errno.EADDRNOTAVAIL:
        yield Problem(
            "api.host", api.host, "an address of this machine (or 0.0.0.0 for every interface)"
        )
    elif exc.errno == errno.EACCES:
        yield Problem("api.port", api.port, "a port of 1024 or more, or grant CAP_NET_BIND_SERVICE")
    else:
        yield Problem("api.port", api.port, f"a port this user can listen on ({exc.strerror})")


def check_junction(junction: JunctionSettings) -> Iterator[Finding]:
    """base_url/auth_url are usable and agree with region/environment; priorities are kinds."""
    if junction.base_url is not None:
        yield from _check_base_url(junction)
    elif junction.api_key is None:
        yield Note("junction.api_key", "unset: uploads need per-user sign-in tokens (see the API)")
    yield from _check_auth_url(junction)
    yield from check_scales(junction)
    kinds = {k.value for k in ReadingKind}
    for index, name in enumerate(junction.resource_priority):
        if name not in kinds:
            yield Problem(
                f"junction.resource_priority[{index}]",
                name,
                f"one of {', '.join(sorted(kinds))}",
            )
    if len(set(junction.resource_priority)) != len(junction.resource_priority):
        yield Problem(
            "junction.resource_priority",
            junction.resource_priority,
            "each resource once; remove the repeats",
        )


def _junction_host(url: str) -> tuple[str, str] | None:
    """(region, environment) a junction.com / tryvital.io host names, or None."""
    host = (urlsplit(url).hostname or "").lower()
    if not any(host == d or host.endswith("." + d) for d in _JUNCTION_DOMAINS):
        return None
    labels = host.split(".")
    region = "eu" if "eu" in labels else "us"
    environment = next((e for e in ("sandbox", "dev") if e in labels), "production")
    return region, environment


def _check_auth_url(junction: JunctionSettings) -> Iterator[Finding]:
    """The token endpoint: auth_url if set (checked like base_url), else derived."""
    derived = auth_base_url(Region(junction.region), Environment(junction.environment))
    if junction.auth_url is None:
        local = junction.base_url is not None and _is_local(junction.base_url)
        if local and junction.api_key is None:
            yield Problem(
                "junction.auth_url",
                None,
                f"the local stub's token URL (second line of `edge-gateway junction-stub`); "
                f"unset, sign-in tokens are exchanged at {derived} while data goes to "
                f"{junction.base_url}",
            )
        elif junction.api_key is None:
            yield Note("junction.auth_url", f"unset: sign-in tokens are exchanged at {derived}")
        return
    parts = urlsplit(junction.auth_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        yield Problem(
            "junction.auth_url",
            junction.auth_url,
            f"an http(s) URL like '{derived}'; or drop it (region and environment pick it)",
        )
        return
    named = _junction_host(junction.auth_url)
    if named is not None and named != (junction.region, junction.environment):
        yield Problem(
            "junction.auth_url",
            junction.auth_url,
            f"the token host of region {junction.region!r} and environment "
            f"{junction.environment!r} ({derived}), but it names {named[1]}/{named[0]}; fix "
            "it or drop it",
        )


def check_scales(junction: JunctionSettings) -> Iterator[Finding]:
    """Which slug scales upload as, and that Junction's provider table lists body for it."""
    path = f"POST /v2/summary/{junction.scale_resource}/{{user_id}}"
    if junction.scale_provider is None:
        yield Note(
            "junction.scale_provider",
            f"unset: scales upload to {path} as their brand's slug if Junction lists scales "
            f"for it (omron_ble), else as {MANUAL!r} (Beurer, A&D, generic); `edge-gateway "
            "status` shows each device's slug. The Health SDKs' body path, unproven for BLE "
            "providers: confirm with Junction",
        )
        return
    if not accepts(junction.scale_provider, ReadingKind.BODY):
        listed = sorted(s for s in PROVIDER_RESOURCES if accepts(s, ReadingKind.BODY))
        yield Problem(
            "junction.scale_provider",
            junction.scale_provider,
            f"a slug Junction's provider table lists body for ({', '.join(listed)}); "
            "Junction refuses body data under other slugs",
        )
    else:
        yield Note(
            "junction.scale_provider",
            f"every scale uploads to {path} as {junction.scale_provider!r}",
        )


def _is_local(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host in _LOOPBACK_HOSTS or host.startswith("127.")


def _check_base_url(junction: JunctionSettings) -> Iterator[Finding]:
    url = junction.base_url or ""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        yield Problem(
            "junction.base_url", url, "an http(s) URL like 'https://api.sandbox.us.junction.com'"
        )
        return
    local = host in _LOOPBACK_HOSTS or host.startswith("127.")
    if parts.scheme == "http" and not local:
        yield Problem(
            "junction.base_url",
            url,
            "https (health data must not travel in clear text); plain http is for a local stub",
        )
    if local:
        yield Note("junction.base_url", f"{url}: a local stand-in (junction-stub)")
        return
    if not any(host == d or host.endswith("." + d) for d in _JUNCTION_DOMAINS):
        return  # a proxy or gateway of the operator's: nothing to compare with
    labels = host.split(".")
    region = "eu" if "eu" in labels else "us"
    environment = next((e for e in ("sandbox", "dev") if e in labels), "production")
    if region != junction.region:
        yield Problem(
            "junction.region",
            junction.region,
            f"{region!r}, the region of base_url {url}; set region = {region!r} or drop "
            "base_url (region and environment pick the host)",
        )
    if environment != junction.environment:
        yield Problem(
            "junction.environment",
            junction.environment,
            f"{environment!r}, the environment of base_url {url}; set environment = "
            f"{environment!r} or drop base_url",
        )


def check_key_prefix(junction: JunctionSettings) -> Iterator[Finding]:
    """Warn when the team key's prefix names another environment or region.

    Junction team keys are `pk_us_*`/`pk_eu_*` (production) and `sk_us_*`/`sk_eu_*` (sandbox)
    (junction-digest, "Environment / Base URL / Team API key prefix"). A local stub accepts any.
    """
    if junction.api_key is None or _local_base_url(junction.base_url):
        return
    match = re.match(r"^(pk|sk)_(us|eu)_", junction.api_key.get_secret_value())
    if match is None:
        yield Warn(
            "junction.api_key",
            "does not start like a Junction team key (pk_us_, pk_eu_, sk_us_ or sk_eu_); "
            "copy it again from the Junction dashboard",
        )
        return
    environment = "production" if match.group(1) == "pk" else "sandbox"
    if environment != junction.environment:
        yield Warn(
            "junction.api_key",
            f"is a {environment} key ({match.group(1)}_*) but environment = "
            f"{junction.environment!r}; set environment = {environment!r} or use a "
            f"{junction.environment} key",
        )
    if match.group(2) != junction.region:
        yield Warn(
            "junction.api_key",
            f"is a key for region {match.group(2)!r} but region = {junction.region!r}; set "
            f"region = {match.group(2)!r} or use a key of the {junction.region} region",
        )


def check_providers(settings: Settings) -> Iterator[Finding]:
    """Warn when a binding's `provider` is not a slug Junction lists for its device's kind.

    The kind comes from the gateway's database when the device was read before (opened
    read-only); otherwise the slug is compared with every kind the gateway uploads.
    """
    kinds = _known_kinds(settings.data_dir)
    for index, binding in enumerate(settings.bindings):
        if binding.provider is None:
            continue
        kind = kinds.get(binding.device)
        # The docs' provider table (`sync.junction.providers`): the slug is linked as a
        # manual provider and posted under, so one the table lacks would be refused.
        allowed = {
            slug
            for slug, resources in PROVIDER_RESOURCES.items()
            if kind is None or kind in resources
        }
        if binding.provider in allowed:
            continue
        what = f"{kind.value} data" if kind is not None else "glucose, blood pressure or body data"
        yield Warn(
            f"bindings[{index}].provider",
            f"{binding.provider!r} is not a provider slug Junction lists for {what}; use one "
            f"of {', '.join(sorted(allowed))} (or drop it: the driver picks one)",
        )


def _known_kinds(data_dir: Path) -> dict[str, ReadingKind]:
    database = data_dir / DATABASE_FILENAME
    if not database.is_file():
        return {}
    kinds: dict[str, ReadingKind] = {}
    with (
        contextlib.suppress(sqlite3.Error),
        contextlib.closing(sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True)) as conn,
    ):
        for address, kind in conn.execute("SELECT address, kind FROM device"):
            with contextlib.suppress(ValueError):
                kinds[str(address).upper()] = ReadingKind(kind)
    return kinds


def _local_base_url(url: str | None) -> bool:
    host = (urlsplit(url).hostname or "").lower() if url else ""
    return host in _LOOPBACK_HOSTS or host.startswith("127.")
