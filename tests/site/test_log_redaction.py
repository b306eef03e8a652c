"""No API key reaches a log line: not the ASGI servers' access logs (daphne for `make run`,
uvicorn for the Procfile), whatever the client puts in the query string or the headers, and
not our own log lines."""

from __future__ import annotations

import io
import logging
import os
import secrets
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from aiproxy_site.log_redaction import secret_redact
from keys.services import api_key_create
from tests.servers import ROOT, free_port, process_stop, wait_http


def _server_command(server: str, port: int, env: dict[str, str]) -> list[str]:
    if server == "daphne":  # as `make run` starts it (aiproxy_site/launcher.py)
        return [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "aiproxy_site.asgi:application"]
    from benchmarks.harness import procfile_command

    # the Procfile's server, with its access log on (an operator may well turn it on)
    return [word for word in procfile_command("web", port, env) if word != "--no-access-log"] + ["--log-level", "debug"]


def _send_keys_everywhere(url: str, api_key: str) -> list[str]:
    """Requests carrying keys the ways clients send them; returns every secret sent."""
    query_keys = [secrets.token_urlsafe(24) for _ in range(4)]
    header_keys = [secrets.token_urlsafe(24) for _ in range(3)]
    with httpx.Client(base_url=url, timeout=20) as client:
        # Gemini clients: ?key=, and x-goog-api-key
        client.post(f"/v1beta/models/fake-gemini:generateContent?key={api_key}", json={"contents": []})
        client.post(f"/v1beta/models/fake-gemini:generateContent?alt=sse&key={query_keys[0]}", json={"contents": []})
        client.get("/v1beta/models", headers={"x-goog-api-key": header_keys[0]})
        # other spellings, on the proxy and on Django's pages
        answer = client.get(
            f"/v1/models?api_key={query_keys[1]}&KEY={query_keys[2]}", headers={"Authorization": f"Bearer {api_key}"}
        )
        assert answer.status_code == 200  # the key in the header is the one that counts
        client.get(f"/accounts/login/?access_token={query_keys[3]}")
        client.post("/v1/messages", headers={"x-api-key": header_keys[1]}, json={})
        client.get("/api/keys/", headers={"Authorization": f"Bearer {header_keys[2]}"})
    return [api_key, *query_keys, *header_keys]


@pytest.mark.parametrize("server", ["daphne", "uvicorn"])
def test_keys_in_query_strings_and_headers_reach_no_server_output(server, make_workspace, tmp_path: Path):  # type: ignore[no-untyped-def]
    from django.conf import settings

    _, api_key = api_key_create(workspace=make_workspace(), name="log-redaction")
    port = free_port()
    env = dict(os.environ, DATABASE_URL=settings.DATABASE_URL, REDIS_URL=settings.REDIS_URL)
    output = tmp_path / "server.log"
    with output.open("w") as sink:
        proc = subprocess.Popen(_server_command(server, port, env), cwd=ROOT, env=env, stdout=sink, stderr=sink)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_http(url + "/accounts/login/", proc)
            sent = _send_keys_everywhere(url, api_key)
        finally:
            process_stop(proc)
    logged = output.read_text()
    assert "generateContent?key=[redacted]" in logged  # the access log is on, and redacted
    assert "/v1/models?api_key=[redacted]&KEY=[redacted]" in logged
    leaked = [secret for secret in sent if secret in logged]
    assert leaked == [], logged


def test_our_own_log_lines_and_tracebacks_carry_no_key() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("aiproxy.test-redaction")
    logger.addHandler(handler)
    secret = "sk-aip-" + secrets.token_urlsafe(32)
    google = "AIzaSy" + secrets.token_urlsafe(24)
    try:
        logger.warning("upstream call to %s failed", f"https://generativelanguage.googleapis.com/v1beta/x?key={google}")
        logger.warning("headers %r", [(b"authorization", f"Bearer {secret}".encode()), (b"x-api-key", b"s3cr3t-value")])
        logger.warning("client sent %(header)s", {"header": f"x-goog-api-key: {secret}"})
        try:
            raise ValueError(f"bad key {secret}")
        except ValueError:
            logger.exception("request failed")
    finally:
        logger.removeHandler(handler)
    logged = stream.getvalue()
    assert secret not in logged and google not in logged and "s3cr3t-value" not in logged
    assert "request failed" in logged and "ValueError: bad key sk-aip-[redacted]" in logged


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "GET /v1beta/models/m:generateContent?key=abc123 HTTP/1.1",
            "GET /v1beta/models/m:generateContent?key=[redacted] HTTP/1.1",
        ),
        ("/x?alt=sse&api_key=abc&next=/home", "/x?alt=sse&api_key=[redacted]&next=/home"),
        ("/x?x-goog-api-key=abc;access_token=def", "/x?x-goog-api-key=[redacted];access_token=[redacted]"),
        ("Authorization: Bearer abc.def", "Authorization: [redacted]"),
        ("{'x-api-key': 'abc'}", "{'x-api-key': '[redacted]'}"),
        ("/v1/models?limit=10&order=asc", "/v1/models?limit=10&order=asc"),
    ],
)
def test_secret_redact(text: str, expected: str) -> None:
    assert secret_redact(text) == expected
