"""The warm proxy path does no SQL query: keys and the catalog come from the hot directory."""

from __future__ import annotations

import asyncio

import httpx
from django.db.backends import utils as db_utils

from gateway.hotpath.asgi import application as gateway_app
from gateway.hotpath.asgi import gateway_shutdown
from keys.services import api_key_create


def test_warm_requests_make_no_sql_queries(monkeypatch, make_workspace, fake_models):  # type: ignore[no-untyped-def]
    workspace = make_workspace()
    _, secret = api_key_create(workspace=workspace, name="hot")
    queries: list[str] = []
    original = db_utils.CursorWrapper._execute

    def counting(self, sql, params, *ignored_wrapper_args):  # type: ignore[no-untyped-def]
        queries.append(sql)
        return original(self, sql, params, *ignored_wrapper_args)

    async def run() -> list[int]:
        transport = httpx.ASGITransport(app=gateway_app)  # type: ignore[arg-type]
        headers = {"Authorization": f"Bearer {secret}"}
        body = {"model": "fake-openai", "messages": [{"role": "user", "content": "hot path"}]}
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            await client.post("/v1/chat/completions", json=body, headers=headers)  # warm-up
            monkeypatch.setattr(db_utils.CursorWrapper, "_execute", counting)
            statuses = []
            for _ in range(5):
                statuses.append((await client.post("/v1/chat/completions", json=body, headers=headers)).status_code)
                statuses.append((await client.get("/v1/models", headers=headers)).status_code)
        await gateway_shutdown()
        return statuses

    statuses = asyncio.run(run())
    assert statuses == [200] * 10
    assert queries == []
