"""[mqtt] config: DESIGN's keys, env overrides, secrets never echoed, bad prefixes refused."""

from pathlib import Path

import pytest

from gateway.config import ConfigError, load_settings
from gateway.mqtt.sink import tls_context

TOML = """
[mqtt]
enabled = true
host = "hub.local"
port = 8883
username = "gateway"
password = "hunter2-mqtt"
tls_ca_file = "/etc/ssl/hub-ca.pem"
base_topic = "home/edge"
discovery_prefix = "ha"
glucose_unit = "mg/dL"
"""


def test_every_design_key_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("GATEWAY_CONFIG", raising=False)
    path = tmp_path / "gateway.toml"
    path.write_text(TOML)
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
    assert mqtt.tls_ca_file == Path("/etc/ssl/hub-ca.pem")
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
