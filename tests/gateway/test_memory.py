"""glibc's malloc arenas capped for `run` (issue 18: idle RSS); nothing done on another libc."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gateway import memory
from gateway.commands import run as run_command

# Eight threads that each malloc while all are alive, then the number of arenas glibc made
# (malloc_info(3) writes one <heap nr=…> element per arena).
ARENAS_SCRIPT = textwrap.dedent(
    """
    import ctypes, sys, tempfile, threading
    from gateway import memory

    if sys.argv[1] == "cap":
        assert memory.limit_arenas()
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.fopen.restype = ctypes.c_void_p
    all_in = threading.Barrier(8)

    def work():
        block = libc.malloc(1024)
        all_in.wait()
        libc.free(ctypes.c_void_p(block))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with tempfile.NamedTemporaryFile(suffix=".xml") as out:
        stream = libc.fopen(out.name.encode(), b"w")
        libc.malloc_info(0, ctypes.c_void_p(stream))
        libc.fclose(ctypes.c_void_p(stream))
        print(open(out.name).read().count("<heap nr="))
    """
)


def arenas_after_eight_threads(mode: str) -> int:
    result = subprocess.run(
        [sys.executable, "-c", ARENAS_SCRIPT, mode],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    return int(result.stdout.split()[-1])


@pytest.mark.skipif(memory.glibc_version() is None, reason="glibc's malloc only")
def test_the_cap_keeps_threads_to_the_shared_arenas() -> None:
    assert memory.glibc_version() is not None
    assert arenas_after_eight_threads("default") > memory.ARENAS  # one per thread, uncapped
    assert arenas_after_eight_threads("cap") <= memory.ARENAS


def test_another_libc_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    def musl(name: str) -> str:
        msg = f"unrecognized configuration name {name}"  # musl has no such name
        raise ValueError(msg)

    def no_libc(*_: object) -> None:
        pytest.fail("libc was loaded outside glibc")

    monkeypatch.setattr(memory.os, "confstr", musl)
    monkeypatch.setattr(memory.ctypes, "CDLL", no_libc)
    assert memory.glibc_version() is None
    assert memory.limit_arenas() is False


def test_a_libc_that_is_not_gnu_is_not_taken_for_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory.os, "confstr", lambda _name: "")
    assert memory.glibc_version() is None
    monkeypatch.setattr(memory.os, "confstr", lambda _name: "glibc 2.36")
    assert memory.glibc_version() == "2.36"


def test_run_caps_arenas_before_its_event_loop_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n')
    calls: list[str] = []
    monkeypatch.setattr(run_command.memory, "limit_arenas", lambda: calls.append("cap"))

    def fake_run(coroutine: object) -> None:
        coroutine.close()  # type: ignore[attr-defined]
        calls.append("event loop")

    monkeypatch.setattr(run_command, "run_bounded", fake_run)
    run_command.run(config)
    assert calls == ["cap", "event loop"]
