"""The gateway accepts a key on its own workspace's host only; look-alike hosts under
BASE_DOMAIN never pass a key."""

from __future__ import annotations

import asyncio

import pytest

from gateway.auth import key_authenticate
from gateway.directory import KeyRecord
from gateway.errors import GatewayError
from keys.tokens import KEY_PREFIX, token_hash

SECRET = KEY_PREFIX + "host-match-test-secret"


class _Directory:
    async def key_lookup(self, key_hash: str) -> KeyRecord | None:
        if key_hash != token_hash(SECRET):
            return None
        return KeyRecord(
            key_hash=key_hash, workspace_id=1, schema="ws_acme", slug="acme", key_id=1, key_name="k", revoked=False
        )


def _auth(host: str) -> KeyRecord:
    headers = {b"authorization": f"Bearer {SECRET}".encode(), b"host": host.encode()}
    return asyncio.run(key_authenticate(_Directory(), headers))  # type: ignore[arg-type]


@pytest.mark.parametrize("host", ["acme.localhost", "ACME.localhost:8000", "localhost:8000", "127.0.0.1:8000"])
def test_key_passes_on_its_workspace_host_and_the_main_host(host: str) -> None:
    assert _auth(host).slug == "acme"


@pytest.mark.parametrize(
    "host",
    [
        "other.localhost",
        "x.other.localhost",
        "acme.other.localhost",
        "other.localhost.",
        "x.acme.localhost",
        "acme.localhost.",
        "acme.localhost.:8000",
    ],
)
def test_key_is_refused_on_another_or_a_look_alike_workspace_host(host: str) -> None:
    with pytest.raises(GatewayError) as refused:
        _auth(host)
    assert refused.value.status == 401 and "does not belong to this workspace" in str(refused.value.message)
