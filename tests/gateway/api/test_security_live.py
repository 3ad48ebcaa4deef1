"""The issue's attacks against a real `edge-gateway serve-api` process (real uvicorn, real
sockets), started with `FORWARDED_ALLOW_IPS=*` in its environment.

- 100 MiB bodies, declared (Content-Length) and streamed (chunked), with no token, a bad
  token and a good one: each is refused with 413/401 and the server's peak RSS (VmHWM, read
  from /proc) stays within a few MB.
- A forged Host gets 400.
- `X-Forwarded-For: 127.0.0.1` from a LAN peer is not loopback.
- The proxy headers of a configured `[api] trusted_proxies` entry are believed.
"""

import contextlib
import select
import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.gateway.api.conftest import make_services
from tests.gateway.api.live import serve, serve_api

MIB = 1024 * 1024
ATTACK_BYTES = 100 * MIB
RSS_GROWTH_LIMIT = 8 * MIB  # the unprotected gateway grew by ~500 MB per body


def lan_address() -> str | None:
    """A non-loopback IPv4 address of this machine, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 9))  # no packet is sent: this only picks a route
        except OSError:
            return None
        address = sock.getsockname()[0]
    return None if address.startswith("127.") else address


def peak_rss(pid: int) -> int:
    """VmHWM of `pid` in bytes (proc(5))."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    msg = f"no VmHWM for {pid}"
    raise AssertionError(msg)


def big_post(port: int, headers: dict[str, str], *, chunked: bool) -> tuple[int | None, int]:
    """POST a 100 MiB JSON body to /v1/users, as fast as the server takes it.

    Returns the response status (None if the server closed without one) and the bytes sent.
    """
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {ATTACK_BYTES}"
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = (
        f"POST /v1/users HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\n{framing}\r\n{head}\r\n"
    )
    piece = b"[" + b"1," * (32 * 1024 - 1)  # 64 KiB of valid-looking JSON
    data = f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request.encode())
        deadline = time.monotonic() + 30
        while sent < ATTACK_BYTES and time.monotonic() < deadline:
            readable, writable, _ = select.select([sock], [sock], [], 1)
            if readable:
                break  # the server answered (or hung up) before taking the body
            if writable:
                try:
                    sent += sock.send(data)
                except OSError:  # reset: it stopped reading
                    break
        reply = b""
        with contextlib.suppress(OSError):
            while b"\r\n" not in reply:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                reply += chunk
    status = int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/1.1 ") else None
    return status, sent


def test_100_mib_bodies_are_refused_and_rss_stays_flat(tmp_path) -> None:
    with serve_api(tmp_path) as (process, url, token):
        port = int(url.rsplit(":", 1)[1])
        good = {"Authorization": f"Bearer {token}"}
        bad = {"Authorization": "Bearer egw_nope"}
        # Warm up every path once (lazy imports, first allocations), then take the baseline.
        assert big_post(port, good, chunked=True)[0] == 413
        assert big_post(port, bad, chunked=True)[0] == 401
        baseline = peak_rss(process.pid)
        results = {
            "declared, no token": big_post(port, {}, chunked=False),
            "declared, bad token": big_post(port, bad, chunked=False),
            "declared, good token": big_post(port, good, chunked=False),
            "streamed, no token": big_post(port, {}, chunked=True),
            "streamed, bad token": big_post(port, bad, chunked=True),
            "streamed, bad token again": big_post(port, bad, chunked=True),
            "streamed, good token": big_post(port, good, chunked=True),
        }
        growth = peak_rss(process.pid) - baseline
        health = httpx.get(f"{url}/v1/health", timeout=5)
    expected = {
        "declared, no token": 413,
        "declared, bad token": 413,
        "declared, good token": 413,
        "streamed, no token": 413,  # loopback without a token is admin
        "streamed, bad token": 401,
        "streamed, bad token again": 401,
        "streamed, good token": 413,
    }
    assert {name: status for name, (status, _) in results.items()} == expected
    assert all(sent < 8 * MIB for _, sent in results.values()), results
    assert growth < RSS_GROWTH_LIMIT, f"peak RSS {baseline / MIB:.1f} MiB grew {growth / MIB:.1f}"
    assert health.status_code == 200


def test_forged_host_is_refused_by_the_real_server(tmp_path) -> None:
    with serve_api(tmp_path) as (_, url, _token):
        forged = httpx.get(
            f"{url}/v1/readings", headers={"Host": "attacker.example:18080"}, timeout=5
        )
        created = httpx.post(
            f"{url}/v1/kiosk/sessions",
            json={"user_id": "made-up"},
            headers={"Host": "attacker.example:18080"},
            timeout=5,
        )
        mine = httpx.get(f"{url}/v1/readings", timeout=5)
    assert forged.status_code == created.status_code == 400
    assert mine.status_code == 200


def test_forwarded_for_from_a_lan_peer_is_not_loopback(tmp_path) -> None:
    address = lan_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    with serve_api(tmp_path, host=address) as (_, url, _token):
        spoofed = {"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": "http"}
        read = httpx.get(f"{url}/v1/readings", headers=spoofed, timeout=5)
        paused = httpx.post(
            f"{url}/v1/sync/users/bob/pause",
            headers={**spoofed, "X-Requested-With": "x"},
            timeout=5,
        )
    assert read.status_code == paused.status_code == 401


async def test_configured_proxy_is_believed(tmp_path, monkeypatch) -> None:
    # A proxy on the box forwards a LAN client: it is that client, not loopback.
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")
    services = make_services(tmp_path, trusted_proxies=["127.0.0.1"])
    async with serve(services) as url, httpx.AsyncClient(base_url=url) as client:
        forwarded = await client.get("/v1/readings", headers={"X-Forwarded-For": "192.0.2.10"})
        direct = await client.get("/v1/readings")
    assert forwarded.status_code == 401
    assert direct.status_code == 200
    services.db.close()


async def test_without_trusted_proxies_the_environment_changes_nothing(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")
    services = make_services(tmp_path)
    async with serve(services) as url, httpx.AsyncClient(base_url=url) as client:
        forwarded = await client.get("/v1/readings", headers={"X-Forwarded-For": "192.0.2.10"})
    assert forwarded.status_code == 200  # still the loopback peer it really is
    services.db.close()
