"""Which driver claims which advertisement: every driver's "claims X" / "does not claim Y"."""

import pytest

from drivers.devices.base import Advertisement
from drivers.devices.brands import brand_for
from drivers.devices.registry import DriverRegistry, default_registry
from drivers.devices.sig_glucose import SigGlucoseDriver
from drivers.gatt import uuids
from drivers.readings import ReadingKind

GLS, BLS = uuids.GLUCOSE_SERVICE, uuids.BLOOD_PRESSURE_SERVICE
WSS, BCS = uuids.WEIGHT_SCALE_SERVICE, uuids.BODY_COMPOSITION_SERVICE
CONTOUR_SERVICE = "00000000-0002-11e2-9e96-0800200c9a66"


def advert(name: str | None = None, *services: str, **extra) -> Advertisement:
    return Advertisement(address="AA:BB:CC:DD:EE:FF", name=name, service_uuids=services, **extra)


CLAIMS = [
    # (advertisement, driver, brand, provider)
    (advert("meter+00012345", GLS), "sig_glucose", "Accu-Chek", "accuchek_ble"),
    (advert("meter+06543210"), "sig_glucose", "Accu-Chek", "accuchek_ble"),  # name alone
    (advert("Contour7830H6123", GLS), "sig_glucose", "Contour", "contour_ble"),
    (advert(None, GLS, CONTOUR_SERVICE), "sig_glucose", "Contour", "contour_ble"),
    (advert("Ocontour"), "sig_glucose", "Contour", "contour_ble"),
    (advert("CareSens N", GLS), "sig_glucose", "CareSens", "manual"),
    (advert("BLEsmart_00000116", BLS), "sig_blood_pressure", "Omron", "omron_ble"),
    (advert("BLESmart_0000011F"), "sig_blood_pressure", "Omron", "omron_ble"),
    (advert("OMRON M7", BLS), "sig_blood_pressure", "Omron", "omron_ble"),
    (advert("BM54", BLS), "sig_blood_pressure", "Beurer", "beurer_ble"),
    (advert("BC57", BLS), "sig_blood_pressure", "Beurer", "beurer_ble"),
    (advert("A&D_UA-651", BLS), "sig_blood_pressure", "A&D", "manual"),
    (advert(None, BLS), "sig_blood_pressure", "Generic", "manual"),
    (advert("BF720", WSS, BCS), "sig_scale", "Beurer", "beurer_ble"),
    (advert("UC-352BLE", WSS), "sig_scale", "A&D", "manual"),
    (advert("SBF70", WSS), "sig_scale", "Generic", "manual"),
]

NOT_CLAIMED = [
    advert(None),
    advert("iPhone"),
    advert("BM54"),  # Beurer-looking name, but no BP service: too common a prefix to trust
    advert("BF720"),  # likewise for scales
    advert("Polar H10", uuids.sig_uuid(0x180D)),  # heart rate strap
    advert("OneTouch", "af9df7a1-e595-11e3-96b4-0002a5d5c51b"),  # proprietary Verio
    advert("MIBCS", BCS, service_data={BCS: bytes(13)}),  # Xiaomi, proprietary payload
    advert("MI SCALE2", WSS),
    advert("Scale", WSS, service_data={WSS: bytes(10)}),  # weight in adverts = not SIG GATT
]


@pytest.mark.parametrize(("ad", "driver", "brand", "provider"), CLAIMS, ids=str)
def test_claims(ad, driver, brand, provider):
    claim = default_registry().match(ad)
    assert claim is not None
    assert (claim.driver.name, claim.match.brand, claim.match.provider) == (driver, brand, provider)
    assert claim.match.driver == driver
    assert claim.match.kind is claim.driver.kind


@pytest.mark.parametrize("ad", NOT_CLAIMED, ids=str)
def test_does_not_claim(ad):
    assert default_registry().match(ad) is None


def test_glucose_driver_does_not_claim_a_cuff_or_scale():
    driver = SigGlucoseDriver()
    assert driver.match(advert("BLEsmart_00000116", BLS)) is None
    assert driver.match(advert("BF720", WSS, BCS)) is None


def test_device_information_refines_the_brand():
    driver = SigGlucoseDriver()
    match = driver.match(advert(None, GLS))
    assert match is not None
    assert match.provider == "manual"
    from drivers.devices.base import DeviceInfo

    refined = driver.refine(
        match, DeviceInfo(manufacturer="Roche Diabetes Care", model="Guide"), None
    )
    assert (refined.brand, refined.provider, refined.model) == (
        "Accu-Chek",
        "accuchek_ble",
        "Guide",
    )


def test_unknown_manufacturer_keeps_the_brand_from_the_name():
    from drivers.devices.base import DeviceInfo

    driver = SigGlucoseDriver()
    match = driver.match(advert("meter+00012345", GLS))
    assert match is not None
    refined = driver.refine(match, DeviceInfo(manufacturer="ACME"), "meter+00012345")
    assert refined.provider == "accuchek_ble"


def test_pairing_hints_name_the_remedy():
    assert "-P-" in brand_for(ReadingKind.BLOOD_PRESSURE, name="BLEsmart_1").pairing_hint
    assert "--pin" in brand_for(ReadingKind.GLUCOSE, name="meter+1").pairing_hint


def test_registry_lookup_and_duplicates():
    registry = default_registry()
    assert registry.get("sig_scale").kind is ReadingKind.BODY
    with pytest.raises(LookupError, match="'nope' is not registered"):
        registry.get("nope")
    with pytest.raises(ValueError, match="used twice"):
        DriverRegistry([SigGlucoseDriver(), SigGlucoseDriver()])


OWN_KIND = {
    "sig_glucose": [advert("meter+1", GLS), advert(None, GLS)],
    "sig_blood_pressure": [advert("BM54", BLS), advert(None, BLS)],
    "sig_scale": [advert("BF720", WSS, BCS), advert(None, WSS)],
}


@pytest.mark.parametrize("name", sorted(OWN_KIND))
def test_each_driver_claims_its_own_kind_and_nothing_else(name):
    driver = default_registry().get(name)
    for ad in OWN_KIND[name]:
        assert driver.match(ad) is not None, ad
    for other, ads in OWN_KIND.items():
        if other != name:
            for ad in ads:
                assert driver.match(ad) is None, (name, ad)
    for ad in NOT_CLAIMED:
        assert driver.match(ad) is None, (name, ad)
