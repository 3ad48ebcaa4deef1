"""`edge-gateway config check` as a process: the effective config, secrets masked, problems."""

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from gateway.config import load_settings
from gateway.config_check import Note, Problem, check_junction, check_timezone
from gateway.store import DATABASE_FILENAME, open_database
from gateway.store.devices import upsert_device
from tests.gateway.running import free_port, running_gateway

SECRET = "sk_us_very_secret_4711"  # noqa: S105 - a test key that must never be shown


def cli(config: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from gateway.cli import main; main()",
            "config",
            "check",
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        env={**clean, **env},
        check=False,
    )


def write(tmp_path: Path, body: str = "", *, port: int | None = None) -> Path:
    config = tmp_path / "gateway.toml"
    port = free_port() if port is None else port
    head = f'data_dir = "{tmp_path / "data"}"\ntimezone = "Europe/Berlin"\n'
    config.write_text(f"{head}{body}\n[api]\nport = {port}\n")
    return config


def problems(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("problem: ")]


def test_a_good_config_prints_the_effective_values_with_secrets_masked(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        f'[junction]\napi_key = "{SECRET}"\nregion = "eu"\n'
        '[[bindings]]\ndevice = "c0:ff:ee:00:00:01"\nuser_id = "alice"\n'
        '[[bindings]]\ndevice = "C0:FF:EE:00:00:02"\nuser_id = "bob"\ndevice_user = 2\n'
        '[[bindings]]\ndevice = "C0:FF:EE:00:00:02"\nuser_id = "carol"\ndevice_user = 1\n',
    )
    result = cli(config, GATEWAY_BLE__ADAPTER="hci7")
    assert result.returncode == 0, result.stderr
    assert problems(result) == []
    out = result.stdout
    assert SECRET not in out + result.stderr
    assert 'api_key = "***"' in out
    assert 'region = "eu"' in out
    assert 'adapter = "hci7"' in out  # the environment wins over the file
    assert 'timezone = "Europe/Berlin"' in out
    assert out.count("[[bindings]]") == 3
    assert 'device = "C0:FF:EE:00:00:01"' in out
    assert "# base_url = (unset)" in out
    assert out.rstrip().endswith("# config check: ok")
    assert "data_dir" in result.stderr  # a note: created at start


def test_invalid_values_are_one_line_each_naming_key_value_and_expectation(
    tmp_path: Path,
) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'data_dir = "{tmp_path}"\ntimezone = "Mars/Olympus"\n'
        f'[junction]\napi_key = "{SECRET}"\nregion = "asia"\n[api]\nport = 70000\n'
    )
    result = cli(config)
    assert result.returncode == 2
    lines = problems(result)
    assert len(lines) == 3, result.stderr
    assert any("timezone = 'Mars/Olympus'" in line and "IANA" in line for line in lines)
    assert any("junction.region = 'asia'" in line and "'us' or 'eu'" in line for line in lines)
    assert any("api.port = 70000" in line for line in lines)
    assert all(line.startswith(f"problem: {config}: ") for line in lines)
    assert SECRET not in result.stdout + result.stderr


def test_bad_addresses_and_twice_bound_slots(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        '[[bindings]]\ndevice = "C0:FF:EE:00:00:01"\nuser_id = "alice"\n'
        '[[bindings]]\ndevice = "c0:ff:ee:00:00:01"\nuser_id = "bob"\n'
        '[[bindings]]\ndevice = "C0-FF-EE-00-00-02"\nuser_id = "bob"\n'
        '[[bindings]]\ndevice = "C0:FF:EE:00:00:03"\nuser_id = "bob"\ndevice_user = 1\n'
        '[[bindings]]\ndevice = "C0:FF:EE:00:00:03"\nuser_id = "carol"\ndevice_user = 1\n',
    )
    result = cli(config)
    assert result.returncode == 2
    lines = problems(result)
    assert len(lines) == 3, result.stderr
    assert "bindings[1].device = 'C0:FF:EE:00:00:01'" in lines[0]
    assert "already bound by bindings[0]" in lines[0]
    assert "bindings[2].device = 'C0-FF-EE-00-00-02'" in lines[1]
    assert "'AA:BB:CC:DD:EE:FF'" in lines[1]
    assert "bindings[4].device" in lines[2]
    assert "user 1 of it is already bound by bindings[3]" in lines[2]
    assert "3 problems in the configuration" in result.stderr


def test_a_data_dir_that_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    config = tmp_path / "gateway.toml"
    config.write_text(f'data_dir = "{blocker / "data"}"\n[api]\nport = {free_port()}\n')
    result = cli(config)
    assert result.returncode == 2
    (line,) = problems(result)
    assert f"data_dir = '{blocker / 'data'}'" in line
    assert f"{blocker} is a file" in line
    assert not (blocker / "data").exists()

    config.write_text(f'data_dir = "{blocker}"\n[api]\nport = {free_port()}\n')
    (line,) = problems(cli(config))
    assert "a directory, not a file" in line


def test_a_port_held_by_another_program_is_a_problem(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        def refuse() -> None:
            conn, _ = listener.accept()
            conn.close()

        thread = threading.Thread(target=refuse, daemon=True)
        thread.start()
        result = cli(write(tmp_path, port=port))
        thread.join(10)
    assert result.returncode == 2
    (line,) = problems(result)
    assert f"api.port = {port}" in line
    assert "another program listens" in line


def test_a_port_held_by_a_running_gateway_is_fine(tmp_path: Path) -> None:
    with running_gateway(write(tmp_path)) as port:
        result = cli(write(tmp_path, port=port))
    assert result.returncode == 0, result.stderr
    assert f"note: api.port: {port} is in use by a running gateway (ready)" in result.stderr


def test_base_url_must_agree_with_region_and_environment(tmp_path: Path) -> None:
    config = write(tmp_path, '[junction]\nbase_url = "https://api.eu.junction.com"\n')
    result = cli(config)
    assert result.returncode == 2
    lines = problems(result)
    assert len(lines) == 2, result.stderr
    assert "junction.region = 'us': 'eu', the region of base_url" in lines[0]
    assert "junction.environment = 'sandbox': 'production'" in lines[1]

    config = write(
        tmp_path,
        '[junction]\nbase_url = "https://api.sandbox.eu.junction.com"\nregion = "eu"\n',
    )
    assert cli(config).returncode == 0


def test_base_url_shape_and_clear_text(tmp_path: Path) -> None:
    settings = load_settings(None, data_dir=tmp_path)
    junction = settings.junction
    found = list(check_junction(junction.model_copy(update={"base_url": "api.junction.com"})))
    assert [f.key for f in found if isinstance(f, Problem)] == ["junction.base_url"]
    found = list(check_junction(junction.model_copy(update={"base_url": "http://10.0.0.5:9000"})))
    (problem,) = [f for f in found if isinstance(f, Problem)]
    assert "https" in problem.expected
    stub = junction.model_copy(update={"base_url": "http://127.0.0.1:9"})
    (problem,) = [f for f in check_junction(stub) if isinstance(f, Problem)]
    assert problem.key == "junction.auth_url", "the exchange would leave the stub for Junction"
    stub = stub.model_copy(update={"auth_url": "http://127.0.0.1:10"})
    assert all(isinstance(f, Note) for f in check_junction(stub))
    found = list(
        check_junction(junction.model_copy(update={"resource_priority": ["glucose", "ecg"]}))
    )
    (problem,) = [f for f in found if isinstance(f, Problem)]
    assert problem.key == "junction.resource_priority[1]"


@pytest.mark.parametrize("name", ["posix/Europe/Berlin", "right/UTC"])
def test_zone_files_that_are_not_iana_names(name: str) -> None:
    (problem,) = check_timezone(name)
    assert isinstance(problem, Problem)
    assert problem.key == "timezone"
    assert "Europe/Berlin" in problem.expected


def test_an_unreadable_config_file(tmp_path: Path) -> None:
    result = cli(tmp_path / "missing.toml")
    assert result.returncode == 2
    assert "cannot read the config file" in result.stderr


def test_the_printed_configuration_is_toml_that_loads_back(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        '[junction]\nbase_url = "http://127.0.0.1:8090"\nauth_url = "http://127.0.0.1:8091"\n'
        '[[bindings]]\ndevice = "C0:FF:EE:00:00:01"\nuser_id = "alice"\nprovider = "manual"\n',
    )
    result = cli(config, GATEWAY_KEEP_DELIVERED_DAYS="30")
    assert result.returncode == 0, result.stderr
    printed = tmp_path / "printed.toml"
    printed.write_text(result.stdout)
    again = load_settings(printed)
    original = load_settings(config, keep_delivered_days=30.0)
    assert again.model_dump() == original.model_dump()


def test_unknown_keys_and_wrong_toml_types_name_what_is_expected(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'data_dir = "{tmp_path}"\ntimezon = "UTC"\n'
        f'[api]\nport = "8080"\ntrust_loopback = "yes"\n[junction]\napikey = "{SECRET}"\n'
    )
    result = cli(config)
    assert result.returncode == 2
    lines = problems(result)
    assert len(lines) == 4, result.stderr
    assert f"problem: {config}: unknown key 'timezon'; did you mean 'timezone'?" in lines
    assert (
        f"problem: {config}: unknown key 'junction.apikey'; did you mean 'junction.api_key'?"
        in lines
    )
    assert any("api.port = '8080': expected an integer" in line for line in lines)
    assert any("api.trust_loopback = 'yes': expected true or false" in line for line in lines)
    assert SECRET not in result.stdout + result.stderr


def test_an_environment_override_is_blamed_on_the_variable(tmp_path: Path) -> None:
    result = cli(write(tmp_path), GATEWAY_API__PORT="x")
    assert result.returncode == 2
    (line,) = problems(result)
    assert line.startswith("problem: $GATEWAY_API__PORT: api.port = 'x'")


def test_secret_looking_keys_are_masked_wherever_they_are(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        f'[junction]\nbase_url = "https://proxy-user:{SECRET}@proxy.example/junction"\n',
    )
    result = cli(config, GATEWAY_JUNCTION__API_KEY=SECRET)
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert 'base_url = "https://***@proxy.example/junction"' in result.stdout


def test_warnings_for_a_key_of_another_environment_and_a_provider_of_another_kind(
    tmp_path: Path,
) -> None:
    config = write(
        tmp_path,
        '[junction]\napi_key = "pk_eu_0123"\nregion = "us"\nenvironment = "sandbox"\n'
        '[[bindings]]\ndevice = "C0:FF:EE:00:00:01"\nuser_id = "alice"\nprovider = "omron_bel"\n',
    )
    result = cli(config)
    assert result.returncode == 0, result.stderr  # warnings, not problems
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 3, result.stderr
    assert "is a production key (pk_*) but environment = 'sandbox'" in warnings[0]
    assert "region 'eu' but region = 'us'" in warnings[1]
    assert "'omron_bel' is not a provider slug Junction lists" in warnings[2]
    assert "pk_eu_0123" not in result.stdout + result.stderr


def test_auth_host_and_scale_slug_checks(tmp_path: Path) -> None:
    """Issue 16 items 2 and 3: the token host follows region/environment; scale slugs."""
    junction = load_settings(None, data_dir=tmp_path).junction
    wrong = junction.model_copy(update={"auth_url": "https://auth.eu.junction.com", "region": "us"})
    (problem,) = [f for f in check_junction(wrong) if isinstance(f, Problem)]
    assert problem.key == "junction.auth_url"
    assert "https://auth.sandbox.us.junction.com" in problem.expected
    notes = {f.key: f for f in check_junction(junction) if isinstance(f, Note)}
    assert "https://auth.sandbox.us.junction.com" in notes["junction.auth_url"].text
    assert "'manual'" in notes["junction.scale_provider"].text
    bp_only = junction.model_copy(update={"scale_provider": "beurer_ble"})
    (problem,) = [f for f in check_junction(bp_only) if isinstance(f, Problem)]
    assert problem.key == "junction.scale_provider"
    assert "omron_ble" in problem.expected


@pytest.mark.parametrize(("slug", "warned"), [("omron_ble", False), ("dexcom", True)])
def test_a_binding_provider_must_be_one_the_uploader_can_post_as(
    tmp_path: Path, slug: str, warned: bool
) -> None:
    """The uploader links the slug as a manual provider: cloud slugs (dexcom) are refused."""
    config = write(
        tmp_path,
        f'[[bindings]]\ndevice = "C0:FF:EE:00:00:01"\nuser_id = "alice"\nprovider = "{slug}"\n',
    )
    result = cli(config)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "is not a provider slug" in line]
    assert bool(warnings) is warned, result.stderr
    if warned:
        assert "accuchek_ble" in warnings[0]  # the listed slugs, the remedy


def test_a_binding_provider_is_checked_against_the_stored_kind_of_its_device(
    tmp_path: Path,
) -> None:
    """A cuff the gateway has read (kind blood_pressure) bound with a glucose-only slug."""
    db = open_database(tmp_path / "data" / DATABASE_FILENAME)
    upsert_device(db, "C0:FF:EE:00:00:05", kind="blood_pressure")
    db.close()
    config = write(
        tmp_path,
        '[[bindings]]\ndevice = "C0:FF:EE:00:00:05"\nuser_id = "alice"\n'
        'provider = "accuchek_ble"\n',
    )
    result = cli(config)
    assert result.returncode == 0, result.stderr
    [warning] = [line for line in result.stderr.splitlines() if "is not a provider slug" in line]
    assert "for blood_pressure data" in warning
    assert "omron_ble" in warning
    assert "accuchek_ble" not in warning.split("use one of", 1)[1]


def test_a_binding_provider_that_is_not_a_slug_is_refused(tmp_path: Path) -> None:
    """It would go into Junction's URL path: `manual/../x` is no slug."""
    config = write(
        tmp_path,
        '[[bindings]]\ndevice = "C0:FF:EE:00:00:05"\nuser_id = "alice"\nprovider = "manual/../x"\n',
    )
    result = cli(config)
    assert result.returncode == 2
    assert any("bindings[0].provider" in line for line in problems(result)), result.stderr
