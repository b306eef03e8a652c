"""The upstream HTTP client (gateway/hotpath/upstream.py) against a scripted HTTP server: each test
decides the exact bytes the server answers, so framing, keep-alive, failures, timeouts,
flow control and TLS are all exercised on real sockets."""

from __future__ import annotations

import asyncio
import datetime
import gzip
import socket
import ssl
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.hotpath import upstream

Answer = Callable[[asyncio.StreamWriter, dict[str, Any]], Awaitable[None]]


class Scripted:
    """An HTTP/1.1 server on 127.0.0.1 that answers each request with `answer(writer, request)`
    and records what it received."""

    def __init__(self, answer: Answer, ssl_context: ssl.SSLContext | None = None) -> None:
        self.answer = answer
        self.ssl_context = ssl_context
        self.requests: list[dict[str, Any]] = []
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> Scripted:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.ssl_context)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"{'https' if self.ssl_context else 'http'}://127.0.0.1:{port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                line, *fields = head.decode("latin-1").split("\r\n")[:-2]
                headers = {k.strip().lower(): v.strip() for k, v in (f.split(":", 1) for f in fields)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                request = {"line": line, "headers": headers, "body": body, "connection": self.connections}
                self.requests.append(request)
                await self.answer(writer, request)
                if writer.is_closing():
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def _ok(body: bytes = b'{"ok": true}', extra: bytes = b"") -> Answer:
    async def answer(writer: asyncio.StreamWriter, request: dict[str, Any]) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s\r\n%s"
                     % (len(body), extra, body))
        await writer.drain()
    return answer


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


def test_a_request_goes_out_whole_and_the_connection_is_kept_for_the_next():
    async def go() -> None:
        async with Scripted(_ok(extra=b"x-one: a\r\nX-One: b\r\n")) as server, upstream.Pool() as pool:
            for n in range(3):
                response = await pool.post(server.url + "/v1/chat?x=1", data=b'{"n": %d}' % n,
                                           headers={"Authorization": "Bearer sk-test", "content-type": "application/json"})
                assert response.status == 200
                assert response.headers["content-type"] == "application/json"
                assert response.headers["x-one"] == "a, b"  # repeated fields are joined, names lower-cased
                assert await response.json() == {"ok": True}
                response.release()
            assert server.connections == 1
            first = server.requests[0]
            assert first["line"] == "POST /v1/chat?x=1 HTTP/1.1"
            assert first["headers"]["host"] == server.url.removeprefix("http://")
            assert first["headers"]["authorization"] == "Bearer sk-test"
            assert [r["body"] for r in server.requests] == [b'{"n": 0}', b'{"n": 1}', b'{"n": 2}']
    run(go())


def test_an_interim_answer_is_skipped_for_the_real_one():
    async def early_hints(writer: asyncio.StreamWriter, request: dict[str, Any]) -> None:
        writer.write(b"HTTP/1.1 103 Early Hints\r\nlink: </a>; rel=preload\r\n\r\n")
        await writer.drain()
        await _ok()(writer, request)

    async def go() -> None:
        async with Scripted(early_hints) as server, upstream.Pool() as pool:
            for _ in range(2):
                response = await pool.post(server.url + "/", data=b"{}")
                assert response.status == 200 and "link" not in response.headers
                assert await response.json() == {"ok": True}
            assert server.connections == 1
    run(go())


def test_a_chunked_answer_split_anywhere_streams_in_order():
    pieces = [b"data: one\n\n", b"data: two\n\n", b"data: three\n\n"]
    wire = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"

    async def answer(writer: asyncio.StreamWriter, request: dict[str, Any]) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-type: text/event-stream\r\n\r\n")
        for at in range(0, len(wire), 7):  # cut through sizes, data and line ends alike
            writer.write(wire[at:at + 7])
            await writer.drain()
            await asyncio.sleep(0.001)

    async def go() -> None:
        async with Scripted(answer) as server, upstream.Pool() as pool:
            for _ in range(2):
                response = await pool.post(server.url + "/stream", data=b"{}")
                got = [chunk async for chunk in response.content.iter_any()]
                response.release()
                assert b"".join(got) == b"".join(pieces)
                assert len(got) > 1  # handed on as it came, not at the end
            assert server.connections == 1
    run(go())


def test_an_answer_without_length_ends_with_the_connection_which_is_not_reused():
    async def answer(writer: asyncio.StreamWriter, request: dict[str, Any]) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\npart one, ")
        await writer.drain()
        writer.write(b"part two")
        writer.close()

    async def go() -> None:
        async with Scripted(answer) as server, upstream.Pool() as pool:
            for _ in range(2):
                response = await pool.post(server.url + "/", data=b"")
                assert await response.read() == b"part one, part two"
            assert server.connections == 2
    run(go())


def test_a_gzip_answer_is_inflated_and_an_unknown_encoding_refused():
    body = b'{"text": "' + b"otters " * 500 + b'"}'
    packed = gzip.compress(body)

    async def go() -> None:
        async with Scripted(_ok(packed, b"content-encoding: gzip\r\n")) as server, upstream.Pool() as pool:
            response = await pool.post(server.url + "/", data=b"{}")
            assert await response.read() == body
            assert "gzip" in server.requests[0]["headers"]["accept-encoding"]
        async with Scripted(_ok(b"xx", b"content-encoding: br\r\n")) as server, upstream.Pool() as pool:
            with pytest.raises(upstream.PayloadError):
                await pool.post(server.url + "/", data=b"{}")
    run(go())


def test_a_cut_or_refused_connection_is_a_client_error_that_names_no_path_or_query():
    async def cut_mid_body(writer: asyncio.StreamWriter, request: dict[str, Any]) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly some")
        await writer.drain()
        writer.close()

    async def cut_before_answer(writer: asyncio.StreamWriter, request: dict[str, Any]) -> None:
        writer.close()

    async def go() -> None:
        async with Scripted(cut_mid_body) as server, upstream.Pool() as pool:
            response = await pool.post(server.url + "/", data=b"{}")
            with pytest.raises(upstream.PayloadError):
                await response.read()
        async with Scripted(cut_before_answer) as server, upstream.Pool() as pool:
            with pytest.raises(upstream.ServerDisconnected):
                await pool.post(server.url + "/", data=b"{}")
        async with Scripted(_ok()) as server:
            url = server.url
        async with upstream.Pool() as pool:
            with pytest.raises(upstream.ClientError) as caught:
                await pool.post(url + "/v1beta/models/x:generateContent?key=AIza-secret", data=b"{}")
            assert url.removeprefix("http://") in str(caught.value)
            assert "secret" not in str(caught.value) and "v1beta" not in str(caught.value)
    run(go())


def test_a_silent_upstream_times_out_before_and_during_the_body():
    async def silent(writer: asyncio.StreamWriter, request: dict[str, Any]) -> None:
        await asyncio.sleep(5)

    async def stalls_mid_body(writer: asyncio.StreamWriter, request: dict[str, Any]) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nsome")
        await writer.drain()
        await asyncio.sleep(5)

    async def go() -> None:
        async with Scripted(silent) as server, upstream.Pool(read_timeout=0.2) as pool:
            with pytest.raises(TimeoutError):
                await pool.post(server.url + "/", data=b"{}")
        async with Scripted(stalls_mid_body) as server, upstream.Pool(read_timeout=0.2) as pool:
            response = await pool.post(server.url + "/", data=b"{}")
            with pytest.raises(TimeoutError):
                async for _ in response.content.iter_any():
                    pass
    run(go())


def test_a_stream_left_unread_is_hung_up_so_the_upstream_stops():
    hung_up = asyncio.Event()

    async def endless(writer: asyncio.StreamWriter, request: dict[str, Any]) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        try:
            for _ in range(500):  # 5 s at most
                writer.write(b"6\r\ntoken \r\n")
                await writer.drain()
                await asyncio.sleep(0.01)
        except ConnectionError:
            hung_up.set()
        writer.close()

    async def go() -> None:
        async with Scripted(endless) as server, upstream.Pool() as pool:
            response = await pool.post(server.url + "/", data=b"")
            async for _ in response.content.iter_any():
                break
            response.release()  # the client went away: the provider must stop generating
            await asyncio.wait_for(hung_up.wait(), 2)
    run(go())


def test_a_connection_asked_closed_is_not_reused_and_idle_ones_expire():
    async def then_close(writer: asyncio.StreamWriter, request: dict[str, Any]) -> None:
        await _ok(extra=b"connection: close\r\n")(writer, request)
        await asyncio.sleep(0.3)  # closes late: a client that reused it would wait in vain
        writer.close()

    async def go() -> None:
        async with Scripted(then_close) as server, upstream.Pool(read_timeout=2) as pool:
            for _ in range(2):
                response = await pool.post(server.url + "/", data=b"")
                assert await response.json() == {"ok": True}
            assert server.connections == 2
        async with Scripted(_ok()) as server, upstream.Pool(keepalive_s=0.1) as pool:
            response = await pool.post(server.url + "/", data=b"")
            await response.read()
            response = await pool.post(server.url + "/", data=b"")
            await response.read()
            assert server.connections == 1  # kept
            await asyncio.sleep(0.2)
            response = await pool.post(server.url + "/", data=b"")
            await response.read()
            assert server.connections == 2  # idle past keepalive_s: a fresh one
    run(go())


def test_a_connection_the_upstream_closed_while_idle_is_not_used_again():
    async def answer_then_close(writer: asyncio.StreamWriter, request: dict[str, Any]) -> None:
        await _ok()(writer, request)
        await asyncio.sleep(0.05)
        writer.close()  # the server's own keep-alive timeout, while the connection sits in the pool

    async def go() -> None:
        async with Scripted(answer_then_close) as server, upstream.Pool() as pool:
            for _ in range(3):
                response = await pool.post(server.url + "/", data=b"")
                assert await response.json() == {"ok": True}
                await asyncio.sleep(0.15)
            assert server.connections == 3
    run(go())


def test_a_slow_reader_pauses_the_upstream_and_loses_nothing():
    block = bytes(range(256)) * 256  # 64 KiB
    blocks = 40

    async def answer(writer: asyncio.StreamWriter, request: dict[str, Any]) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % (len(block) * blocks))
        for _ in range(blocks):
            writer.write(block)
            await writer.drain()

    async def go() -> None:
        async with Scripted(answer) as server, upstream.Pool() as pool:
            response = await pool.post(server.url + "/", data=b"")
            conn = response._conn
            assert conn is not None
            paused_seen = False
            got = bytearray()
            await asyncio.sleep(0.2)  # the server writes ahead; the client stops reading at HIGH_WATER
            paused_seen = conn.paused
            assert response._buffered <= upstream.HIGH_WATER + 256 * 1024
            async for chunk in response.content.iter_any():
                got += chunk
                await asyncio.sleep(0)
            assert paused_seen
            assert bytes(got) == block * blocks
    run(go())


def test_header_values_cannot_smuggle_lines_and_a_bad_character_names_no_secret():
    async def go() -> None:
        async with Scripted(_ok()) as server, upstream.Pool() as pool:
            with pytest.raises(upstream.InvalidRequest):
                await pool.post(server.url + "/", data=b"", headers={"anthropic-beta": "x\r\nx-evil: 1"})
            with pytest.raises(upstream.InvalidRequest) as caught:  # a credential pasted with a stray character
                await pool.post(server.url + "/?key=AIza-secret", data=b"", headers={"x-api-key": "sk-secret\u200b"})
            assert "secret" not in repr(caught.value) and "secret" not in str(caught.value)
            assert caught.value.__cause__ is None and caught.value.__suppress_context__
            assert server.requests == []
            for url in ("ftp://127.0.0.1/x", "http://127.0.0.1:port/x", "http:///x"):
                with pytest.raises(upstream.InvalidRequest):
                    await pool.post(url, data=b"")
    run(go())


def test_a_large_body_read_whole_is_not_held_up_by_flow_control():
    big = bytes(range(256)) * 4096  # 1 MiB, four times HIGH_WATER

    async def go() -> None:
        async with Scripted(_ok(big)) as server, upstream.Pool(read_timeout=3) as pool:
            response = await pool.post(server.url + "/", data=b"")
            assert await response.read() == big
    run(go())


def test_a_caller_cancelled_as_its_answer_completes_leaves_the_pooled_connection_alone(monkeypatch: Any):
    """The answer arrived whole (the connection is back in the pool) in the same turn of the
    loop as the caller was cancelled: the connection now belongs to the next request."""
    caller: list[asyncio.Task[Any]] = []
    complete = upstream._Connection.on_message_complete

    def on_message_complete(self: upstream._Connection) -> None:
        complete(self)
        if caller and not caller[0].done():
            caller[0].cancel()

    monkeypatch.setattr(upstream._Connection, "on_message_complete", on_message_complete)

    async def go() -> None:
        async with Scripted(_ok()) as server, upstream.Pool() as pool:
            caller.append(asyncio.create_task(pool.post(server.url + "/", data=b"")))
            with pytest.raises(asyncio.CancelledError):
                await caller[0]
            response = await pool.post(server.url + "/", data=b"")
            assert await response.json() == {"ok": True}
            assert server.connections == 1  # the pooled connection was not closed under the next request
    run(go())


def test_a_reset_or_a_cut_chunked_stream_is_an_error_not_an_ending():
    async def reset_mid_body(writer: asyncio.StreamWriter, request: dict[str, Any]) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\npartial")
        await writer.drain()
        await asyncio.sleep(0.05)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with a reset
        writer.transport.abort()

    async def cut_chunked(writer: asyncio.StreamWriter, request: dict[str, Any]) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n7\r\npartial\r\n")
        await writer.drain()
        writer.close()

    async def go() -> None:
        for answer in (reset_mid_body, cut_chunked):
            async with Scripted(answer) as server, upstream.Pool() as pool:
                response = await pool.post(server.url + "/", data=b"")
                with pytest.raises(upstream.PayloadError):
                    await response.read()
    run(go())


def test_a_gzip_body_cut_short_is_an_error():
    packed = gzip.compress(b"otters " * 500)[:-12]

    async def go() -> None:
        async with Scripted(_ok(packed, b"content-encoding: gzip\r\n")) as server, upstream.Pool() as pool:
            response = await pool.post(server.url + "/", data=b"{}")
            with pytest.raises(upstream.PayloadError):
                await response.read()
    run(go())


def test_bytes_past_the_end_of_an_answer_retire_the_connection():
    async def too_long(writer: asyncio.StreamWriter, request: dict[str, Any]) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokHT")
        await writer.drain()

    async def go() -> None:
        async with Scripted(too_long) as server, upstream.Pool() as pool:
            for _ in range(2):
                response = await pool.post(server.url + "/", data=b"")
                assert await response.read() == b"ok"
                await asyncio.sleep(0.01)
            assert server.connections == 2  # the out-of-step connection was not reused
    run(go())


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    import ipaddress
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_tls_checks_the_certificate(tmp_path: Path):
    cert, key = _self_signed(tmp_path)
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(cert, key)
    trusting = ssl.create_default_context(cafile=str(cert))

    async def go() -> None:
        async with Scripted(_ok(), ssl_context=server_side) as server:
            async with upstream.Pool(ssl_context=trusting) as pool:
                for _ in range(2):
                    response = await pool.post(server.url + "/v1/messages", data=b"{}")
                    assert await response.json() == {"ok": True}
                assert server.connections == 1
            async with upstream.Pool() as pool:  # the system's CAs: a self-signed certificate is refused
                with pytest.raises(upstream.ClientError, match="TLS"):
                    await pool.post(server.url + "/", data=b"{}")
    run(go())
