"""The Dockerfile: same install script as README, same entry point as systemd, sane image."""

import fnmatch
import re
import shutil
import subprocess

import pytest

from tests.packaging.readers import REPO, Instruction, read_dockerfile, read_unit, values

DOCKERFILE = REPO / "Dockerfile"
INSTRUCTIONS = read_dockerfile(DOCKERFILE)


def all_of(name: str) -> list[Instruction]:
    return [i for i in INSTRUCTIONS if i.name == name]


def last(name: str) -> Instruction:
    found = all_of(name)
    assert found, f"Dockerfile has no {name}"
    return found[-1]


def readme_first_command() -> str:
    text = (REPO / "README.md").read_text()
    block = re.search(r"```(?:sh|bash|console)?\n(.*?)```", text, re.DOTALL)
    assert block, "README has no code block"
    return block.group(1).splitlines()[0].split("#")[0].strip()


def test_it_installs_with_the_script_readme_uses() -> None:
    first = readme_first_command()
    script = REPO / first.split()[0]
    assert script.is_file(), f"README's first command {first!r} is not a script in the repo"
    assert "scripts/install" in script.read_text()
    assert any(re.search(r"(^|\s|&&)scripts/install(\s|$)", i.args) for i in all_of("RUN"))


def test_entry_point_and_default_command_match_the_systemd_unit() -> None:
    assert last("ENTRYPOINT").exec_form() == ["edge-gateway"]
    assert last("CMD").exec_form() == ["run"]
    exec_start = values(
        read_unit(REPO / "systemd" / "edge-gateway.service")["Service"], "ExecStart"
    )
    assert exec_start[0].endswith("/edge-gateway")
    assert exec_start[1:] == ["run"]


def test_the_data_dir_is_a_volume() -> None:
    volumes = [v for i in all_of("VOLUME") for v in (i.exec_form() or i.args.split())]
    env = " ".join(i.args for i in all_of("ENV"))
    match = re.search(r"GATEWAY_DATA_DIR=(\S+)", env)
    assert match, "Dockerfile sets no GATEWAY_DATA_DIR"
    assert match.group(1) in volumes


def test_the_healthcheck_asks_v1_health() -> None:
    check = last("HEALTHCHECK")
    assert "/v1/health" in check.args
    assert " CMD " in f" {check.args} "


def test_it_documents_mounting_the_host_d_bus() -> None:
    assert "-v /run/dbus:/run/dbus:ro" in DOCKERFILE.read_text()


def test_everything_it_copies_exists_and_is_not_docker_ignored() -> None:
    ignored = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copies = all_of("COPY") + all_of("ADD")
    assert copies
    for instruction in copies:
        words = [w for w in instruction.args.split() if not w.startswith("--")]
        for source in words[:-1]:
            assert (REPO / source).exists(), f"COPY {source}: not in the repository"
            hits = [p for p in ignored if fnmatch.fnmatch(source.rstrip("/"), p.rstrip("/"))]
            assert not hits, f"COPY {source}: excluded by .dockerignore {hits}"


def _docker_engine() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        probe = subprocess.run(["docker", "info"], capture_output=True, timeout=20, check=False)
    except subprocess.TimeoutExpired:
        return False
    return probe.returncode == 0


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_docker_build() -> None:
    if not _docker_engine():
        pytest.skip("no docker engine reachable (`docker info` fails)")
    result = subprocess.run(
        ["docker", "build", "-t", "edge-gateway:test", str(REPO)],
        capture_output=True,
        text=True,
        timeout=1700,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
