"""[mqtt] config: DESIGN's keys, env overrides, secrets never echoed, bad prefixes refused."""

import re
from pathlib import Path

import pytest

from gateway.config import Binding, ConfigError, Settings, load_settings
from gateway.config_bindings import apply_config_bindings
from gateway.mqtt.sink import tls_context
from gateway.store import DATABASE_FILENAME, open_database, users

TOML = """
[mqtt]
enabled = true
host = "hub.local"
port = 8883
username = "gateway"
password = "hunter2-mqtt"
tls_ca_file = "{ca}"
base_topic = "home/edge"
discovery_prefix = "ha"
glucose_unit = "mg/dL"
"""


def test_every_design_key_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("GATEWAY_CONFIG", raising=False)
    path = tmp_path / "gateway.toml"
    ca = tmp_path / "hub-ca.pem"
    ca.write_text("a CA certificate")
    path.write_text(TOML.replace("{ca}", str(ca)))
    mqtt = load_settings(path).mqtt
    assert (mqtt.enabled, mqtt.host, mqtt.port, mqtt.username) == (
        True,
        "hub.local",
        8883,
        "gateway",
    )
    assert mqtt.password is not None
    assert mqtt.password.get_secret_value() == "hunter2-mqtt"
    assert "hunter2" not in repr(mqtt)
    assert mqtt.tls_ca_file == ca
    assert (mqtt.base_topic, mqtt.discovery_prefix, mqtt.glucose_unit) == (
        "home/edge",
        "ha",
        "mg/dL",
    )


def test_defaults_are_off_and_home_assistants_prefix(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("GATEWAY_CONFIG", raising=False)
    mqtt = load_settings().mqtt
    assert not mqtt.enabled
    assert (mqtt.base_topic, mqtt.discovery_prefix) == ("edge-gateway", "homeassistant")
    assert mqtt.person_topic == "label"
    assert tls_context(mqtt) is None


def test_env_overrides_and_the_password_is_never_echoed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("GATEWAY_CONFIG", raising=False)
    monkeypatch.setenv("GATEWAY_MQTT__PORT", "1884")
    assert load_settings().mqtt.port == 1884
    monkeypatch.delenv("GATEWAY_MQTT__PORT")
    path = tmp_path / "bad.toml"
    path.write_text('[mqtt]\npassword = ["hunter2-mqtt"]\nport = 70000\n')
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert "mqtt.port = 70000" in str(err.value)
    assert "mqtt.password" in str(err.value)
    assert "hunter2" not in str(err.value)


@pytest.mark.parametrize("prefix", ["", "home/#", "a/+/b", "/abs"])
def test_wildcards_in_a_topic_prefix_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefix: str
):
    monkeypatch.delenv("GATEWAY_CONFIG", raising=False)
    path = tmp_path / "gateway.toml"
    path.write_text(f'[mqtt]\nbase_topic = "{prefix}"\n')
    with pytest.raises(ConfigError, match=r"mqtt\.base_topic"):
        load_settings(path)


def test_an_enabled_sink_refuses_tls_files_that_are_not_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("GATEWAY_CONFIG", raising=False)
    path = tmp_path / "gateway.toml"
    path.write_text('[mqtt]\nenabled = true\ntls_ca_file = "/nonexistent/ca.pem"\n')
    with pytest.raises(
        ConfigError, match=re.escape("tls_ca_file '/nonexistent/ca.pem' is not a readable")
    ):
        load_settings(path)
    key = tmp_path / "client.key"
    key.write_text("not used")
    path.write_text(f'[mqtt]\nenabled = true\ntls_key_file = "{key}"\n')
    with pytest.raises(ConfigError, match="without tls_cert_file"):
        load_settings(path)
    # Disabled, the section may name files of another machine (a shared config).
    path.write_text('[mqtt]\nenabled = false\ntls_ca_file = "/nonexistent/ca.pem"\n')
    assert load_settings(path).mqtt.tls_ca_file == Path("/nonexistent/ca.pem")


def test_a_bindings_label_names_the_person(tmp_path: Path):
    settings = Settings(
        data_dir=tmp_path,
        bindings=[Binding(device="c0:ff:ee:00:00:02", user_id="u-9", label="Anna")],
    )
    db = open_database(tmp_path / DATABASE_FILENAME)
    try:
        apply_config_bindings(db, settings)
        assert [(u.user_id, u.name) for u in users.list_users(db)] == [("u-9", "Anna")]
    finally:
        db.close()
