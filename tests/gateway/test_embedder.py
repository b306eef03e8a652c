"""The embedding service and its client: the real model from the wheel, batching what
arrives together, refusing what would be truncated, verifying pairs, and a missing
service costing a skipped lookup rather than a failure."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from gateway.hotpath.embedder import EmbedderClient, EmbedderServer, EmbeddingModel, serve


@pytest.fixture(scope="module")
def model() -> EmbeddingModel:
    return EmbeddingModel()


async def _with_service(model: EmbeddingModel, work):  # type: ignore[no-untyped-def]
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "embedder.sock"
        ready = asyncio.Event()
        service = asyncio.create_task(serve(path, ready=ready, model=model))
        await asyncio.wait_for(ready.wait(), 60)
        client = EmbedderClient(path, timeout=30)
        try:
            return await work(client)
        finally:
            await client.close()
            service.cancel()


def test_concurrent_requests_are_embedded_in_batches(model, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    batches: list[int] = []
    original = EmbedderServer.batch_loop

    async def counting(self):  # type: ignore[no-untyped-def]
        real_run = self.judge.run

        def run(embeds, verifies):  # type: ignore[no-untyped-def]
            batches.append(len(embeds) + len(verifies))
            return real_run(embeds, verifies)

        self.judge.run = run
        await original(self)

    monkeypatch.setattr(EmbedderServer, "batch_loop", counting)
    texts = [f"How do I water a cactus in month {i}?" for i in range(24)]

    async def work(client: EmbedderClient):  # type: ignore[no-untyped-def]
        return await asyncio.gather(*(client.embed(t) for t in texts))

    vectors = asyncio.run(_with_service(model, work))
    arrays = [np.frombuffer(v, "<f4") for v in vectors]
    assert all(a.shape == (384,) and abs(float(np.linalg.norm(a)) - 1) < 1e-4 for a in arrays)
    expected = model.encode(texts)
    assert all(float(a @ e) > 0.9999 for a, e in zip(arrays, expected, strict=True)), "same vectors as a direct call"
    assert sum(batches) == len(texts) and len(batches) < len(texts) / 2, f"batched: {batches}"


def test_a_prompt_longer_than_the_window_is_refused_not_truncated(model) -> None:  # type: ignore[no-untyped-def]
    async def work(client: EmbedderClient):  # type: ignore[no-untyped-def]
        return await client.embed("word " * 400), await client.embed("a short question")

    long, short = asyncio.run(_with_service(model, work))
    assert long is None and short is not None


def test_the_verifier_tells_a_synonym_from_a_different_question(model) -> None:  # type: ignore[no-untyped-def]
    def similarity(a: str, b: str) -> float:
        x, y = model.encode([a, b])
        return float(x @ y)

    cached = "How do I defrost chicken quickly?"
    same = "How can I thaw chicken fast?"
    other = "How do I marinate chicken quickly?"

    async def work(client: EmbedderClient):  # type: ignore[no-untyped-def]
        return (await client.verify(cached, same, similarity(cached, same)),
                await client.verify(cached, other, similarity(cached, other)))

    paraphrase, different = asyncio.run(_with_service(model, work))
    assert paraphrase is not None and different is not None
    assert paraphrase > 0.5 > different


def test_a_missing_service_is_a_none_and_is_not_retried_at_once() -> None:
    async def work() -> tuple[bytes | None, float, float | None]:
        client = EmbedderClient(Path(tempfile.gettempdir()) / "no-such-embedder.sock", timeout=5)
        result = await client.embed("anything")
        return result, client.down_until, await client.verify("a", "b", 0.9)

    result, down_until, verdict = asyncio.run(work())
    assert result is None and verdict is None
    assert down_until > time.monotonic(), "the next attempt waits a few seconds"


def test_a_reply_that_arrives_after_its_caller_gave_up_does_not_derail_the_next(model) -> None:  # type: ignore[no-untyped-def]
    async def work(client: EmbedderClient):  # type: ignore[no-untyped-def]
        # connected first: with the tiny timeout the connect itself could time out (a back-off,
        # not what this test is about) when the machine is busy
        assert await client.embed("warm up") is not None
        client.timeout = 0.0001  # gives up before the model answers
        late = await client.verify("How do I defrost chicken?", "How do I thaw chicken?", 0.9)
        client.timeout = 30
        await asyncio.sleep(0.5)  # the late reply comes in meanwhile
        return late, await client.embed("a question after it"), await client.verify("a b", "a b c", 0.9)

    late, vector, verdict = asyncio.run(_with_service(model, work))
    assert late is None
    assert vector is not None and len(vector) == 384 * 4
    assert verdict is not None and 0 <= verdict <= 1
