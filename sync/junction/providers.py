"""Junction provider slugs and the resources each accepts; which slug a scale uploads as.

The table is the docs' SDK-based provider table (junction-docs/
``wearables__providers__introduction.txt``, "SDK Based Providers": ``accuchek_ble`` "Glucose
Strips", ``beurer_ble`` "Beurer Blood Pressure monitors", ``contour_ble`` "Glucometers",
``freestyle_libre_ble`` "Abbott CGM Glucose monitor readings via SDK", ``omron_ble`` "Blood
Pressure monitors and scales"), plus ``onetouch_ble`` (glucose; vital-python's
`ManualProviders`, junction-digest.md §2.3) and ``manual`` (vital-python's generic manual
slug, junction-digest.md §2.3 "Only in [PY]: … manual"), which takes any resource.

Scales: the Devices SDK has no scale support (mobile-sdk-sync.md §2.4 "No weight-scale
support"). The gateway posts scale readings to the Health SDKs' body path
``POST /v2/summary/body/{user_id}`` (mobile-sdk-sync.md §2.3), which no BLE provider is proven
to accept (§6 "Copy" 4: "This path is **unproven**"). `scale_upload_slug` decides the slug:
the configured ``junction.scale_provider``, else the brand's slug if the table lists body for
it (``omron_ble``), else ``manual``.
"""

from collections.abc import Mapping

from drivers.readings import ReadingKind

MANUAL = "manual"
"""The generic manual slug; devices of no Junction brand (A&D, generic SIG) upload as it."""

SCALE_RESOURCE = "body"
"""The only resource a scale uploads to: the body summary (``/v2/summary/body/{user_id}``)."""

_GLUCOSE = frozenset({ReadingKind.GLUCOSE})
_BP = frozenset({ReadingKind.BLOOD_PRESSURE})

PROVIDER_RESOURCES: Mapping[str, frozenset[ReadingKind]] = {
    "accuchek_ble": _GLUCOSE,  # "Glucose Strips/MySugr App"
    "contour_ble": _GLUCOSE,  # "Glucometers"
    "freestyle_libre_ble": _GLUCOSE,  # "Abbott CGM Glucose monitor readings via SDK"
    "onetouch_ble": _GLUCOSE,  # vital-python ManualProviders; iOS Verio reader
    "beurer_ble": _BP,  # "Beurer Blood Pressure monitors"
    "omron_ble": frozenset({ReadingKind.BLOOD_PRESSURE, ReadingKind.BODY}),  # "… and scales"
    MANUAL: frozenset(ReadingKind),
}
"""Provider slug → the resources Junction's docs say it supplies."""


def accepts(slug: str, resource: ReadingKind) -> bool:
    """Whether the docs' provider table lists `resource` for `slug` (unknown slugs: no)."""
    return resource in PROVIDER_RESOURCES.get(slug, frozenset())


def scale_upload_slug(brand_slug: str, scale_provider: str | None = None) -> str:
    """The slug a scale's readings upload as.

    Args:
        brand_slug: The slug of the scale's brand (or a binding's override).
        scale_provider: ``junction.scale_provider`` if configured.

    Returns:
        `scale_provider` if given; else `brand_slug` if the table lists body for it; else
        ``manual``.
    """
    if scale_provider:
        return scale_provider
    return brand_slug if accepts(brand_slug, ReadingKind.BODY) else MANUAL


def upload_slug(resource: ReadingKind, slug: str, scale_provider: str | None = None) -> str:
    """The slug readings of `resource` go up as (only scales are re-mapped)."""
    if resource is ReadingKind.BODY:
        return scale_upload_slug(slug, scale_provider)
    return slug


def device_upload_slug(
    kind: str | None, slug: str | None, scale_provider: str | None = None
) -> str | None:
    """What `status` shows for a device: the slug its readings go up as, or None if unknown.

    Args:
        kind: The device's `ReadingKind` value (``glucose``, ``blood_pressure``, ``body``).
        slug: Its brand's slug, or the binding's override.
        scale_provider: ``junction.scale_provider``.
    """
    if slug is None:
        return None
    if kind is None or kind not in {k.value for k in ReadingKind}:
        return slug
    return upload_slug(ReadingKind(kind), slug, scale_provider)
