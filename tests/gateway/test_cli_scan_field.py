"""`edge-gateway scan` names the field families' brand and provider slug from real adverts."""

import json
from collections.abc import Iterator

import pytest

from tests.gateway.e2e import simulated_env
from tests.gateway.test_cli_ble import cli

CARESENS, TAIDOC, BF720, BF788, MI = (f"C0:FF:EE:00:12:0{i}" for i in range(1, 6))
SCENARIO = f"""
[[devices]]
kind = "glucose"
address = "{CARESENS}"
name = "CareSens N Premier"
manufacturer = "i-SENS"

[[devices]]
kind = "glucose"
address = "{TAIDOC}"
name = "TAIDOC TD4277"
manufacturer = "TaiDoc"
numbering = "newest_first"

[[devices]]
kind = "scale"
address = "{BF720}"
name = "BF720"
manufacturer = "Beurer"
advert_manufacturer_data = {{ "0611" = "" }}
advert_service_data = {{ "181d" = "01" }}

[[devices]]
kind = "scale"
address = "{BF788}"
name = "BF788"
manufacturer = "Beurer"
advert_manufacturer_data = {{ "0611" = "" }}

[[devices]]
kind = "scale"
address = "{MI}"
name = "MIBFS"
advert_service_data = {{ "181b" = "0226b20705040f0201ac018642" }}
"""


@pytest.fixture(scope="module")
def field_env(
    tmp_path_factory: pytest.TempPathFactory, private_bus: str
) -> Iterator[dict[str, str]]:
    with simulated_env(tmp_path_factory.mktemp("cli_scan_field"), SCENARIO) as env:
        yield env


def test_scan_names_brand_and_slug_of_caresens_taidoc_and_beurer_scales(field_env):
    result = cli(field_env, "scan", "--timeout", "0.5", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["address"]: row for row in json.loads(result.stdout)}
    claims = {
        address: (rows[address]["driver"], rows[address]["brand"], rows[address]["provider"])
        for address in (CARESENS, TAIDOC, BF720, BF788)
    }
    assert claims == {
        CARESENS: ("sig_glucose", "CareSens", "manual"),
        TAIDOC: ("sig_glucose", "TaiDoc", "manual"),
        BF720: ("sig_scale", "Beurer", "beurer_ble"),  # despite its 0x181D service data
        BF788: ("sig_scale", "Beurer", "beurer_ble"),
    }
    assert rows[MI]["claimed"] is False  # a Mi scale's broadcast is not a SIG scale
