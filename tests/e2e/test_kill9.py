"""Kill -9 every process of a running stack (gateway, Celery worker and beat, fake
provider) in the middle of a load, start it again: every answered request is recorded
once (answers are recorded before they are sent; the worker's unacknowledged
batches are re-read and stored idempotently by event id)."""

from __future__ import annotations

import threading
import time

import openai
import psycopg

from tests.e2e.stack import demo_env_read, stack_kill9, stack_start, stack_stop
from tests.servers import free_port


def test_kill_9_mid_load_loses_no_usage_and_counts_none_twice(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("USAGE_RECLAIM_IDLE_MS", "1000")
    data_dir = tmp_path / "data"
    port, fake_port = free_port(), free_port()
    proc, _ = stack_start(data_dir, port, fake_port)
    demo = demo_env_read(data_dir / "demo.env")
    answered: list[str] = []
    stop = threading.Event()

    def load() -> None:  # bounded: at most 400 requests per client, each taking the upstream 20 ms or more
        client = openai.OpenAI(base_url=demo["AIPROXY_BASE_URL"], api_key=demo["AIPROXY_API_KEY"], max_retries=0,
                               timeout=5)
        for _ in range(400):
            if stop.is_set():
                return
            try:
                reply = client.chat.completions.create(
                    model="fake-openai", messages=[{"role": "user", "content": "count me [[fake:latency_ms=20]]"}])
                answered.append(reply.id)
            except openai.APIError:
                time.sleep(0.25)  # the stack is down or restarting

    clients = [threading.Thread(target=load) for _ in range(4)]
    try:
        for thread in clients:
            thread.start()
        time.sleep(1.5)
        before_kill = len(answered)
        stack_kill9(proc, data_dir)  # every process the launcher started, at once
        proc, _ = stack_start(data_dir, port, fake_port)
        after_restart = len(answered)
        deadline = time.monotonic() + 20
        while len(answered) < after_restart + 20 and time.monotonic() < deadline:
            time.sleep(0.1)
        stop.set()
        for thread in clients:
            thread.join()
        assert before_kill > 10 and len(answered) >= after_restart + 20, "load ran before the kill and after the restart"
        url = f"postgresql://postgres:@/aiproxy?host={data_dir / 'pg'}"
        deadline = time.monotonic() + 30
        rows = 0
        while time.monotonic() < deadline:
            with psycopg.connect(url) as conn:
                rows = conn.execute("SELECT count(*) FROM ws_demo.analytics_usageevent WHERE status_code = 200").fetchone()[0]
            if rows >= len(answered):
                break
            time.sleep(0.5)
        time.sleep(2.0)  # anything still to be counted twice would show up now
        with psycopg.connect(url) as conn:
            rows = conn.execute("SELECT count(*) FROM ws_demo.analytics_usageevent WHERE status_code = 200").fetchone()[0]
            distinct = conn.execute("SELECT count(DISTINCT event_id) FROM ws_demo.analytics_usageevent").fetchone()[0]
            total = conn.execute("SELECT count(*) FROM ws_demo.analytics_usageevent").fetchone()[0]
        # every answered request is recorded; a request the kill cut off after it was recorded
        # (the upstream did the work) may be too: at most one per client in flight
        assert len(answered) <= rows <= len(answered) + len(clients), f"{len(answered)} answered, {rows} recorded"
        assert distinct == total
    finally:
        stop.set()
        stack_stop(proc, data_dir)
