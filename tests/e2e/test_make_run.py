"""`make run`'s launcher end to end: embedded servers, migrations, demo data, daphne,
Celery worker and beat, fake provider; twice, to show it is idempotent; and `make stop`,
which stops every process `make run` started, whether the launcher is still there or not."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import pytest

from aiproxy_site.launcher import port_free
from tests.servers import ROOT

from .conftest import _free_port
from .sdk import UPSTREAMS
from .stack import demo_env_read, launcher_env, scratch_dir, stack_start, stack_stop

STAGE_LINE = re.compile(r"^[a-z][^\n]*\.\.\. done( \(\d+ s\))?$")


@pytest.fixture
def data_dir() -> Iterator[Path]:
    with scratch_dir() as path:
        yield path / "data"


def test_make_run_serves_demo_key_records_usage_and_is_idempotent(data_dir):  # type: ignore[no-untyped-def]
    port, fake_port = _free_port(), _free_port()
    proc, output = stack_start(data_dir, port, fake_port)
    try:
        # the terminal shows one line per stage; pip's and the migrations' output is in the log
        stages = [line.rstrip("\n") for line in output[: output.index("\n")]]
        assert stages and all(STAGE_LINE.match(line) for line in stages), "".join(output)
        assert any(line.startswith("migrating... done") for line in stages)
        log = (data_dir / "logs" / "make-run.log").read_text()
        assert "Applying keys.0001_initial... OK" in log
        demo = demo_env_read(data_dir / "demo.env")
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
            message = claude.messages.create(
                model=model, max_tokens=100, messages=[{"role": "user", "content": "hello demo"}]
            )
            assert "hello demo" in message.content[0].text
    finally:
        stack_stop(proc, data_dir)
    proc, _ = stack_start(data_dir, port, fake_port)
    try:
        demo = demo_env_read(data_dir / "demo.env")
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
        stack_stop(proc, data_dir)


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def _make_stop(data_dir: Path) -> str:
    """`make stop` itself; AIPROXY_DATA_DIR keeps it to this test's data (not the suite's own servers)."""
    result = subprocess.run(
        ["make", "stop"],
        cwd=ROOT,
        env={**os.environ, "AIPROXY_DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def _assert_all_stopped(pids: set[int], data_dir: Path, *ports: int, said: str) -> None:
    assert pids, "make run started no process?"
    deadline = time.monotonic() + 10  # reparented zombies are reaped by init in its own time
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.1)
    left = {pid: Path(f"/proc/{pid}/cmdline").read_bytes() for pid in pids if _alive(pid)}
    assert not left, f"still running after make stop: {left}\n{said}"
    for port in ports:
        assert port_free("127.0.0.1", port), f"port {port} is still taken"
    assert not (data_dir / "pg" / "postmaster.pid").exists(), f"the embedded PostgreSQL still runs\n{said}"
    redis_pid = data_dir / "redis" / "redis.pid"
    assert not redis_pid.exists() or not _alive(int(redis_pid.read_text())), f"the embedded Redis still runs\n{said}"


def test_make_stop_stops_every_process_make_run_started_and_a_second_run_is_refused(data_dir):  # type: ignore[no-untyped-def]
    port, fake_port = _free_port(), _free_port()
    proc, _ = stack_start(data_dir, port, fake_port)
    try:
        # a second `make run` of the same data directory says so, and starts nothing
        other_port, other_fake = _free_port(), _free_port()
        second = subprocess.run(
            [sys.executable, "-m", "aiproxy_site.launcher"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            env=launcher_env(data_dir, other_port, other_fake),
        )
        assert second.returncode != 0
        assert "already running" in second.stderr and "make stop" in second.stderr
        assert "AIProxy ready" not in second.stdout
        # links in emails follow the actual host and port: every child sees SITE_URL
        pids = _descendants(proc.pid)
        for pid in pids:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            assert f"SITE_URL=http://127.0.0.1:{port}".encode() in environ

        # `make stop` from another terminal while `make run` runs
        out = _make_stop(data_dir)
        proc.wait(30)
        _assert_all_stopped(pids | {proc.pid}, data_dir, port, fake_port, said=out)

        # the ports are free again: the next `make run` starts; this time its launcher dies (kill -9)
        proc, _ = stack_start(data_dir, port, fake_port)
        pids = _descendants(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert any(_alive(pid) for pid in pids)
        out = _make_stop(data_dir)
        assert "web" in out and "worker" in out
        _assert_all_stopped(pids, data_dir, port, fake_port, said=out)
    finally:
        stack_stop(proc, data_dir)
