"""The gateway accepts a key on its own workspace's host only; look-alike hosts under
BASE_DOMAIN never pass a key."""

from __future__ import annotations

import asyncio

import pytest

from gateway.hotpath.auth import key_authenticate
from gateway.hotpath.directory import KeyRecord
from gateway.hotpath.errors import GatewayError
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


def _auth_forwarded(host: str, forwarded: str, *, trusted_proxy: bool) -> KeyRecord:
    headers = {
        b"authorization": f"Bearer {SECRET}".encode(),
        b"host": host.encode(),
        b"x-forwarded-host": forwarded.encode(),
    }
    return asyncio.run(key_authenticate(_Directory(), headers, trusted_proxy=trusted_proxy))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("host", "forwarded"),
    [
        ("127.0.0.1:8000", "acme.localhost"),
        ("other.localhost", "acme.localhost:443"),
        ("gateway:8100", "ACME.localhost, other.localhost"),
        ("127.0.0.1:8000", "localhost"),
        ("acme.localhost", ""),
    ],
)
def test_behind_a_trusted_proxy_the_forwarded_host_decides_the_workspace(host: str, forwarded: str) -> None:
    assert _auth_forwarded(host, forwarded, trusted_proxy=True).slug == "acme"


@pytest.mark.parametrize(
    ("host", "forwarded"),
    [
        ("127.0.0.1:8000", "other.localhost"),
        ("acme.localhost", "other.localhost"),
        ("acme.localhost", "x.acme.localhost, acme.localhost"),
        ("acme.localhost", "acme.localhost."),
    ],
)
def test_behind_a_trusted_proxy_a_forwarded_host_of_another_workspace_refuses_the_key(
    host: str, forwarded: str
) -> None:
    with pytest.raises(GatewayError) as refused:
        _auth_forwarded(host, forwarded, trusted_proxy=True)
    assert refused.value.status == 401 and "does not belong to this workspace" in str(refused.value.message)


def test_without_a_trusted_proxy_a_forged_forwarded_host_is_ignored() -> None:
    assert _auth_forwarded("acme.localhost", "other.localhost", trusted_proxy=False).slug == "acme"
    assert _auth_forwarded("127.0.0.1:8000", "other.localhost", trusted_proxy=False).slug == "acme"
    with pytest.raises(GatewayError) as refused:
        _auth_forwarded("other.localhost", "acme.localhost", trusted_proxy=False)
    assert refused.value.status == 401


def test_the_gateway_reads_the_trusted_proxy_setting_once_per_state(settings) -> None:  # type: ignore[no-untyped-def]
    from gateway.hotpath.state import GatewayState

    settings.TRUSTED_PROXY = True
    assert GatewayState().trusted_proxy is True
    settings.TRUSTED_PROXY = False
    assert GatewayState().trusted_proxy is False
