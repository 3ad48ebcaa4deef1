"""Brands of SIG-profile devices: who made it, which Junction slug, how to pair it.

A brand is recognised by advertised name, by a vendor service UUID in the advertisement, or
(after connecting) by the Device Information manufacturer string; the last is the most
reliable, names the least. A device of no known brand is ``GENERIC``, sent under Junction's
``manual`` slug (vital-python's `ManualProviders`); a binding's ``provider`` overrides it.
"""

from collections.abc import Callable
from dataclasses import dataclass

from drivers.readings import ReadingKind

_GLUCOSE = (ReadingKind.GLUCOSE,)
_BP_AND_BODY = (ReadingKind.BLOOD_PRESSURE, ReadingKind.BODY)


@dataclass(frozen=True, slots=True)
class Brand:
    """A device maker as the gateway recognises it.

    Attributes:
        name: Display name.
        provider: Junction provider slug.
        kinds: What its devices measure; the first is assumed when only the name matched.
        name_prefixes: Case-insensitive prefixes of advertised names.
        name_contains: Case-insensitive substrings of advertised names.
        manufacturers: Case-insensitive substrings of Device Information 0x2A29.
        service_uuids: Vendor service UUIDs its devices advertise next to the SIG service.
        pairing_hint: How to put its devices in pairing mode.
        claims_by_name: Whether the name alone (no SIG service advertised) is proof enough;
            False for short, common name prefixes.
        company_ids: Bluetooth SIG company identifiers of its manufacturer-specific data.
        newest_first: Its meters number records newest-first (sequence 0 is the latest), so
            sequence numbers are no record identity (see `drivers.devices.sig_glucose`).
    """

    name: str
    provider: str
    kinds: tuple[ReadingKind, ...]
    name_prefixes: tuple[str, ...] = ()
    name_contains: tuple[str, ...] = ()
    manufacturers: tuple[str, ...] = ()
    service_uuids: tuple[str, ...] = ()
    pairing_hint: str = "put the device in pairing mode (see its manual) and retry"
    claims_by_name: bool = True
    company_ids: tuple[int, ...] = ()
    newest_first: bool = False

    def matches_name(self, name: str | None) -> bool:
        """Whether an advertised name is one of this brand's."""
        if not name:
            return False
        lowered = name.lower()
        return any(lowered.startswith(p.lower()) for p in self.name_prefixes) or any(
            s.lower() in lowered for s in self.name_contains
        )

    def matches_manufacturer(self, manufacturer: str | None) -> bool:
        """Whether a Device Information manufacturer string is this brand's."""
        if not manufacturer:
            return False
        lowered = manufacturer.lower()
        return any(m.lower() in lowered for m in self.manufacturers)

    def matches_services(self, service_uuids: tuple[str, ...]) -> bool:
        """Whether the advertisement carries one of this brand's vendor services."""
        return any(u in service_uuids for u in self.service_uuids)

    def matches_company(self, company_ids: tuple[int, ...]) -> bool:
        """Whether the advertisement's manufacturer data is under this brand's company id."""
        return any(c in company_ids for c in self.company_ids)


ACCU_CHEK = Brand(
    name="Accu-Chek",
    provider="accuchek_ble",
    kinds=_GLUCOSE,
    name_prefixes=("meter+",),
    manufacturers=("roche",),
    pairing_hint=(
        "on the meter open Settings > Wireless > Pairing > Pair device, then pass the PIN the "
        "meter shows with --pin"
    ),
)
CONTOUR = Brand(
    name="Contour",
    provider="contour_ble",
    kinds=_GLUCOSE,
    name_contains=("contour",),
    manufacturers=("ascensia", "bayer"),
    service_uuids=("00000000-0002-11e2-9e96-0800200c9a66",),
    pairing_hint=(
        "turn on pairing in the meter's Bluetooth settings, then pass the PIN the meter shows "
        "with --pin; Contour meters may need re-pairing after a battery change"
    ),
)
OMRON = Brand(
    name="Omron",
    provider="omron_ble",
    kinds=_BP_AND_BODY,
    name_prefixes=("blesmart_",),
    name_contains=("omron",),
    manufacturers=("omron",),
    pairing_hint=(
        "hold the Bluetooth button 3-5 s until -P- blinks; Omron devices pair with one host at "
        "a time, so remove the pairing from the Omron app first"
    ),
)
BEURER = Brand(
    name="Beurer",
    provider="beurer_ble",
    kinds=_BP_AND_BODY,
    name_prefixes=("bm", "bc", "bf"),
    name_contains=("beurer", "sanitas"),
    manufacturers=("beurer", "sanitas"),
    pairing_hint="start pairing from the device's Bluetooth menu (see its manual) and retry",
    claims_by_name=False,  # "BM…", "BC…", "BF…" are far too common on their own
    # Beurer GmbH; BF720/BF788/BF950 adverts carry it (KristianP26/ble-scale-sync #168, #255).
    company_ids=(0x0611,),
)
CARESENS = Brand(
    name="CareSens",
    # Junction has no i-SENS slug; readings go out as generic manual entries.
    provider="manual",
    kinds=_GLUCOSE,
    name_contains=("caresens",),
    manufacturers=("i-sens", "isens"),
    # i-SENS v1.5 custom service (tidepool-org/uploader's ble-glucose); 0xFFF0 of v1.4 is far
    # too common to mean i-SENS.
    service_uuids=("c4dea010-5a9d-11e9-8647-d663bd873d93",),
    pairing_hint=(
        "turn Bluetooth on in the meter's settings until it shows a PIN, then pass it with --pin"
    ),
)
TAIDOC = Brand(
    name="TaiDoc",
    # Junction has no TaiDoc slug; readings go out as generic manual entries.
    provider="manual",
    kinds=_GLUCOSE,
    name_prefixes=("taidoc", "td-4", "td4"),
    manufacturers=("taidoc",),
    newest_first=True,  # DM30b fw 1.2.4 and OEM rebrands (xDrip BluetoothGlucoseMeter)
    claims_by_name=False,  # "TD-4…" model numbers alone are weak; GLS must be advertised
)
A_AND_D = Brand(
    name="A&D",
    # Junction has no A&D slug; readings go out as generic manual entries.
    provider="manual",
    kinds=_BP_AND_BODY,
    name_prefixes=("a&d", "ua-651", "uc-352", "ua-1200"),
    manufacturers=("a&d", "a and d"),
    pairing_hint=(
        "put the device in pairing mode (see its manual); A&D devices hang up once right after "
        "bonding, so read again after pairing"
    ),
    claims_by_name=False,
)
GENERIC = Brand(
    name="Generic",
    provider="manual",
    kinds=(ReadingKind.GLUCOSE, ReadingKind.BLOOD_PRESSURE, ReadingKind.BODY),
)

BRANDS: tuple[Brand, ...] = (ACCU_CHEK, CONTOUR, CARESENS, TAIDOC, OMRON, BEURER, A_AND_D)
"""Every known brand, most specific first; `GENERIC` is not listed."""


def brand_for(
    kind: ReadingKind,
    *,
    name: str | None = None,
    service_uuids: tuple[str, ...] = (),
    manufacturer: str | None = None,
    company_ids: tuple[int, ...] = (),
) -> Brand:
    """The brand of a device measuring `kind`.

    Device Information wins over the advertisement; within the advertisement a vendor service
    UUID wins over the company id of the manufacturer data, which wins over the name. Brands
    that do not make `kind` devices are skipped.

    Args:
        kind: What the device measures (from its SIG service).
        name: Advertised name.
        service_uuids: Advertised service UUIDs.
        manufacturer: Device Information manufacturer string, once connected.
        company_ids: Company ids of the advertisement's manufacturer-specific data.

    Returns:
        The brand, or `GENERIC`.
    """
    candidates = [b for b in BRANDS if kind in b.kinds]
    tests: tuple[Callable[[Brand], bool], ...] = (
        lambda b: b.matches_manufacturer(manufacturer),
        lambda b: b.matches_services(service_uuids),
        lambda b: b.matches_company(company_ids),
        lambda b: b.matches_name(name),
    )
    for test in tests:
        for brand in candidates:
            if test(brand):
                return brand
    return GENERIC


def brand_by_name(name: str | None, service_uuids: tuple[str, ...] = ()) -> Brand | None:
    """A brand recognised from the advertisement alone (no SIG service advertised).

    Returns:
        The brand, or None.
    """
    for brand in BRANDS:
        if not brand.claims_by_name:
            continue
        if brand.matches_services(service_uuids) or brand.matches_name(name):
            return brand
    return None


def brand_named(name: str) -> Brand | None:
    """The known brand with this display name (as a `DeviceMatch` carries it), or None."""
    return next((b for b in BRANDS if b.name == name), None)
