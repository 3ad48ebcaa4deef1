"""Manual-provider links survive a restart (issue 16 item 5), through the real client."""

from pathlib import Path

from pydantic import SecretStr

from gateway.store import DATABASE_FILENAME, open_database
from gateway.store.links import SqliteLinkStore
from sync.junction.client import JunctionClient
from sync.junction.stub import JunctionStub, create_app
from sync.junction.stub_server import StubServer

KEY = "sk_us_links"


async def test_links_survive_reopening_and_can_be_forgotten(tmp_path: Path):
    path = tmp_path / DATABASE_FILENAME
    db = open_database(path)
    store = SqliteLinkStore(db)
    await store.set_link("alice", "omron_ble", linked=True)
    await store.set_link("alice", "omron_ble", linked=True)  # idempotent
    await store.set_link("bob", "manual", linked=True)
    await store.set_link("bob", "manual", linked=False)
    db.close()
    again = open_database(path)
    assert await SqliteLinkStore(again).links() == {("alice", "omron_ble")}
    again.close()


async def test_a_restarted_client_does_not_link_again(tmp_path: Path):
    db = open_database(tmp_path / DATABASE_FILENAME)
    stub = JunctionStub(api_key=KEY)
    async with StubServer(create_app(stub=stub, users=["alice"])) as server:
        for _ in range(2):  # two processes, one database
            client = JunctionClient(
                base_url=server.base_url,
                auth_url=server.auth_url,
                api_key=SecretStr(KEY),
                link_store=SqliteLinkStore(db),
            )
            await client.ensure_connected("alice", "accuchek_ble")
            await client.aclose()
    assert [r.resource for r in stub.requests] == ["link"]
    db.close()
