"""The Procfile's `web:` command (the production ASGI server, chosen by benchmarks/asgi_servers.py)
serves the gateway: a chat answer, a stream and the usage record, through the real SDK."""

from __future__ import annotations

import os
import subprocess
import sys

from benchmarks.harness import procfile_command
from keys.services import api_key_create
from tests.e2e.sdk import events_of, openai_client
from tests.servers import ROOT, free_port, process_stop, wait_http


def test_the_procfile_web_server_answers_and_streams(django_db_setup, fake_provider_url, fake_models,  # type: ignore[no-untyped-def]
                                                    embedder_socket, make_workspace):
    from django.conf import settings

    workspace = make_workspace()
    _, secret = api_key_create(workspace=workspace, name="prod-server")
    port = free_port()
    env = dict(os.environ, DATABASE_URL=settings.DATABASE_URL, REDIS_URL=settings.REDIS_URL,
               FAKE_PROVIDER_URL=fake_provider_url, GATEWAY_EMBEDDER_SOCKET=embedder_socket)
    command = procfile_command("web", port, env)
    assert command[:3] == [sys.executable, "-m", "uvicorn"] and "--lifespan" in command
    proc = subprocess.Popen(command, cwd=ROOT, env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/accounts/login/", proc)
        client = openai_client(url, secret)
        answer = client.chat.completions.create(model="fake-openai", messages=[{"role": "user", "content": "hello"}])
        assert answer.choices[0].message.content and answer.usage is not None
        chunks = list(client.chat.completions.create(model="fake-anthropic", stream=True,
                                                     messages=[{"role": "user", "content": "stream please"}]))
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        events = events_of(workspace)
        assert [(e.model, e.status_code) for e in events] == [("fake-openai", 200), ("fake-anthropic", 200)]
    finally:
        process_stop(proc)
