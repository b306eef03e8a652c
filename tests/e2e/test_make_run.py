"""`make run`'s launcher end to end: embedded servers, migrations, demo data, daphne,
Celery worker and beat, fake provider; twice, to show it is idempotent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import anthropic
import openai

from .conftest import _free_port
from .sdk import UPSTREAMS

ROOT = Path(__file__).resolve().parents[2]


def _start(data_dir: Path, port: int, fake_port: int) -> tuple[subprocess.Popen, dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(AIPROXY_DATA_DIR=str(data_dir), PORT=str(port), FAKE_PROVIDER_PORT=str(fake_port))
    proc = subprocess.Popen([sys.executable, "-m", "aiproxy_site.launcher"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    output = []
    deadline = time.monotonic() + 180
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        output.append(line)
        if line.strip() == "AIProxy ready":
            demo = (data_dir / "demo.env").read_text()
            return proc, dict(x.split("=", 1) for x in demo.splitlines())
    raise AssertionError("launcher never printed 'AIProxy ready':\n" + "".join(output[-40:]))


def _stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_make_run_serves_demo_key_records_usage_and_is_idempotent(tmp_path):  # type: ignore[no-untyped-def]
    data_dir = tmp_path / "data"
    port, fake_port = _free_port(), _free_port()
    proc, demo = _start(data_dir, port, fake_port)
    try:
        assert demo["AIPROXY_BASE_URL"] == f"http://127.0.0.1:{port}/v1"
        client = openai.OpenAI(base_url=demo["AIPROXY_BASE_URL"], api_key=demo["AIPROXY_API_KEY"], max_retries=0)
        reply = client.chat.completions.create(model="fake-openai", messages=[{"role": "user", "content": "ping"}])
        assert "ping" in reply.choices[0].message.content
        first_key = demo["AIPROXY_API_KEY"]
        # the demo catalog answers offline through every adapter, for both SDKs
        claude = anthropic.Anthropic(base_url=f"http://127.0.0.1:{port}", api_key=first_key, max_retries=0)
        for model in UPSTREAMS:
            text = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hello demo"}])
            assert "hello demo" in text.choices[0].message.content
            message = claude.messages.create(model=model, max_tokens=100, messages=[{"role": "user", "content": "hello demo"}])
            assert "hello demo" in message.content[0].text
    finally:
        _stop(proc)
    proc, demo = _start(data_dir, port, fake_port)
    try:
        assert demo["AIPROXY_API_KEY"] == first_key, "a second run reuses the demo key"
        client = openai.OpenAI(base_url=demo["AIPROXY_BASE_URL"], api_key=first_key, max_retries=0)
        client.chat.completions.create(model="fake-openai", messages=[{"role": "user", "content": "again"}])
        # the real Celery beat + worker persist both requests (the first one survived the restart)
        import psycopg

        url = f"postgresql://postgres:@/aiproxy?host={data_dir / 'pg'}"
        deadline = time.monotonic() + 30
        count = 0
        expected = 2 + 2 * len(UPSTREAMS)
        while time.monotonic() < deadline and count < expected:
            with psycopg.connect(url) as conn:
                count = conn.execute("SELECT count(*) FROM ws_demo.analytics_usageevent").fetchone()[0]
            time.sleep(0.5)
        assert count == expected
    finally:
        _stop(proc)
        subprocess.run([sys.executable, "-c", "from aiproxy_site.embedded import stop_all; stop_all()"],
                       cwd=ROOT, env={**os.environ, "AIPROXY_DATA_DIR": str(data_dir)}, check=False)
