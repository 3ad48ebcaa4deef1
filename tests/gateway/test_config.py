"""Config: TOML, env overrides per DESIGN.md §3, and errors that name key, value and remedy."""

from pathlib import Path

import pytest

from gateway.config import ConfigError, load_settings

TOML = """
data_dir = "/tmp/gw"
timezone = "Europe/Berlin"

[junction]
base_url = "http://127.0.0.1:9000"
api_key = "sk_team_secret"
region = "eu"

[api]
port = 8181

[[bindings]]
device = "c0:ff:ee:00:00:01"
user_id = "user-1"

[[bindings]]
device = "C0:FF:EE:00:00:02"
user_id = "user-2"
device_user = 2
provider = "omron_ble"
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(TOML)
    return path


def test_file_values_load(config_file: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("GATEWAY_CONFIG", raising=False)
    settings = load_settings(config_file)
    assert settings.data_dir == Path("/tmp/gw")
    assert settings.zone.key == "Europe/Berlin"
    assert settings.junction.region == "eu"
    assert settings.junction.api_key is not None
    assert settings.junction.api_key.get_secret_value() == "sk_team_secret"
    assert "sk_team_secret" not in repr(settings)
    assert settings.api.trust_loopback is True
    assert settings.bindings[0].device == "C0:FF:EE:00:00:01"
    assert settings.bindings[0].device_user is None
    assert settings.bindings[1].provider == "omron_ble"


def test_env_overrides_every_key(config_file: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("GATEWAY_CONFIG", str(config_file))
    monkeypatch.setenv("GATEWAY_API__PORT", "9999")
    monkeypatch.setenv("GATEWAY_JUNCTION__BASE_URL", "http://127.0.0.1:7000")
    monkeypatch.setenv("GATEWAY_TIMEZONE", "America/New_York")
    monkeypatch.setenv("GATEWAY_DATA_DIR", "/srv/gw")
    settings = load_settings()
    assert settings.api.port == 9999
    assert settings.api.host == "127.0.0.1"  # untouched keys of the section survive
    assert settings.junction.base_url == "http://127.0.0.1:7000"
    assert settings.junction.region == "eu"
    assert settings.timezone == "America/New_York"
    assert settings.data_dir == Path("/srv/gw")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('timezone = "Mars/Olympus"', "timezone = 'Mars/Olympus'"),
        ("[api]\nport = 70000", "api.port = 70000"),
        ("[api]\nprot = 1", "api.prot"),
        ('[junction]\nregion = "moon"', "junction.region = 'moon'"),
        ("[ble\n", "not valid TOML"),
    ],
)
def test_errors_name_the_key_and_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, expected: str
):
    monkeypatch.delenv("GATEWAY_CONFIG", raising=False)
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert expected in str(caught.value)
    assert str(path) in str(caught.value)


def test_secret_is_never_echoed_in_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("GATEWAY_CONFIG", raising=False)
    path = tmp_path / "bad.toml"
    path.write_text('[junction]\napi_key = ["sk_live_oops"]\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert "sk_live_oops" not in str(caught.value)
