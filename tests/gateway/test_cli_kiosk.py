"""`edge-gateway kiosk set-pin`: the hash lands in the config file; the PIN is never shown."""

import stat
import tomllib

from typer.testing import CliRunner

from gateway.cli import app
from gateway.config import load_settings
from gateway.kiosk.pin import verify_pin

CONFIG = '# the clinic gateway\ndata_dir = "DATA"\n\n[api]\nport = 8081  # the kiosk port\n'


def _config(tmp_path):
    path = tmp_path / "gateway.toml"
    path.write_text(CONFIG.replace("DATA", str(tmp_path / "data")))
    path.chmod(0o640)
    return path


def test_set_pin_asks_twice_writes_the_hash_and_keeps_the_file(tmp_path) -> None:
    path = _config(tmp_path)
    result = CliRunner().invoke(
        app, ["kiosk", "set-pin", "--config", str(path)], input="482916\n482916\n"
    )
    assert result.exit_code == 0, result.output
    assert "482916" not in result.output
    text = path.read_text()
    assert "# the kiosk port" in text  # comments kept
    stored = tomllib.loads(text)["kiosk"]["staff_pin_hash"]
    assert verify_pin("482916", stored)
    assert not verify_pin("482917", stored)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    settings = load_settings(path)
    assert settings.kiosk.staff_pin_hash is not None
    assert settings.api.port == 8081

    again = CliRunner().invoke(
        app, ["kiosk", "set-pin", "--pin-stdin", "--config", str(path)], input="1357\n"
    )
    assert again.exit_code == 0, again.output
    assert verify_pin("1357", tomllib.loads(path.read_text())["kiosk"]["staff_pin_hash"])


def test_a_bad_pin_or_no_config_changes_nothing(tmp_path, monkeypatch) -> None:
    path = _config(tmp_path)
    before = path.read_text()
    for pin in ("97", "abcd", "9876543210987"):
        result = CliRunner().invoke(
            app, ["kiosk", "set-pin", "--pin-stdin", "--config", str(path)], input=f"{pin}\n"
        )
        assert result.exit_code == 2
        assert "4 to 12 digits" in result.output
        assert pin not in result.output
    assert path.read_text() == before

    monkeypatch.delenv("GATEWAY_CONFIG", raising=False)
    result = CliRunner().invoke(app, ["kiosk", "set-pin", "--pin-stdin"], input="1234\n")
    assert result.exit_code == 2
    assert "--config" in result.output


def test_a_broken_config_file_is_named_and_kept(tmp_path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text("[api\nport = 1\n")
    result = CliRunner().invoke(
        app, ["kiosk", "set-pin", "--pin-stdin", "--config", str(path)], input="1234\n"
    )
    assert result.exit_code == 2
    assert str(path) in result.output
    assert path.read_text() == "[api\nport = 1\n"


def test_a_hand_edited_hash_that_is_not_ours_is_a_config_error(tmp_path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text('[kiosk]\nstaff_pin_hash = "1234"\n')
    result = CliRunner().invoke(app, ["config", "check", "--config", str(path)])
    assert result.exit_code == 2
    assert "kiosk set-pin" in result.output
    assert '"1234"' not in result.output
    assert "'1234'" not in result.output
