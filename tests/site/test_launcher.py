"""`make run` checks its ports before it starts anything and names what holds them; it shows
one line per stage and, when one fails, the log's tail; `make stop` stops every process it
tracked, and only those; SITE_URL follows PORT."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aiproxy_site import launcher
from tests.servers import ROOT, free_port


def _launch(data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    clean.update(AIPROXY_DATA_DIR=str(data_dir), **env)
    return subprocess.run(
        [sys.executable, "-m", "aiproxy_site.launcher"],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("taken", ["PORT", "FAKE_PROVIDER_PORT"])
def test_make_run_names_the_process_holding_its_port_and_starts_nothing(tmp_path: Path, taken: str) -> None:
    ports = {"PORT": str(free_port()), "FAKE_PROVIDER_PORT": str(free_port())}
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", int(ports[taken])))
        holder.listen()
        result = _launch(tmp_path, **ports)
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert "AIProxy ready" not in out
    assert f"port {ports[taken]}" in out and "already in use" in out
    assert f"pid {os.getpid()}" in out  # this test holds it
    assert "python" in out.split(f"pid {os.getpid()}", 1)[1].splitlines()[0]  # and its command line is shown
    assert not (tmp_path / "pg").exists() and not (tmp_path / "redis").exists(), "nothing starts"


def test_the_port_check_does_not_mistake_a_free_port_for_a_taken_one() -> None:
    port = free_port()
    assert launcher.port_free("127.0.0.1", port)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        assert not launcher.port_free("127.0.0.1", port)
        assert launcher.port_owner(port) == (os.getpid(), launcher._proc_command(os.getpid()))


def test_a_failing_stage_shows_the_log_tail_and_the_log_path(tmp_path: Path) -> None:
    nowhere = free_port()
    result = _launch(
        tmp_path,
        PORT=str(free_port()),
        FAKE_PROVIDER_PORT=str(free_port()),
        DATABASE_URL=f"postgresql://nobody@127.0.0.1:{nowhere}/aiproxy",
        REDIS_URL=f"redis://127.0.0.1:{nowhere}/0",
    )
    log = tmp_path / "logs" / "make-run.log"
    assert result.returncode != 0
    assert "AIProxy ready" not in result.stdout
    assert "... failed" in result.stdout
    assert str(log) in result.stdout
    last = [line for line in log.read_text().splitlines() if line.strip()][-1]
    assert last.strip() in result.stdout, "the log's tail is shown"


def _sleeper(pid_file: Path, *, ignore_term: bool) -> list[str]:
    """A process that starts a grandchild in its group; with ignore_term, both ignore SIGTERM."""
    ignore = "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN)\n" if ignore_term else ""
    grandchild = ignore + "import time; time.sleep(600)\n"
    code = (
        f"import subprocess, sys, time\n{ignore}"
        f"grandchild = subprocess.Popen([sys.executable, '-c', {grandchild!r}])\n"
        f"open({str(pid_file)!r}, 'w').write(str(grandchild.pid))\n"
        "time.sleep(600)\n"
    )
    return [sys.executable, "-c", code]


def _alive(pid: int) -> bool:
    stat = launcher._proc_stat(pid)
    return stat is not None


def _wait_for(path: Path) -> int:
    deadline = time.monotonic() + 20
    while not path.exists() or not path.read_text():
        assert time.monotonic() < deadline, "the test process did not start"
        time.sleep(0.05)
    return int(path.read_text())


@pytest.mark.parametrize("ignore_term", [False, True])
def test_stop_ends_each_tracked_process_with_its_group(tmp_path: Path, ignore_term: bool) -> None:
    child, record = launcher.child_start(
        root=tmp_path, name="web", command=_sleeper(tmp_path / "g", ignore_term=ignore_term)
    )
    grandchild = _wait_for(tmp_path / "g")
    assert (tmp_path / "run" / "web.pid").exists()
    try:
        stopped = launcher.tracked_stop(root=tmp_path, grace=1)
        assert [r.name for r in stopped] == ["web"]
        child.wait(5)
        deadline = time.monotonic() + 5
        while _alive(grandchild) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(grandchild)
        assert not (tmp_path / "run" / "web.pid").exists()
    finally:
        for pid in (child.pid, grandchild):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_stop_leaves_alone_a_process_that_reuses_a_recorded_pid(tmp_path: Path) -> None:
    stranger = subprocess.Popen(["sleep", "600"], start_new_session=True)
    try:
        record = launcher.process_record(root=tmp_path, name="worker", pid=stranger.pid)
        # the recorded worker is gone, its pid now belongs to another process (started at another time)
        (tmp_path / "run" / "worker.pid").write_text(f"{stranger.pid} {record.start - 1}\n")
        assert launcher.tracked_stop(root=tmp_path, grace=1) == []
        assert stranger.poll() is None
        assert launcher.preflight(root=tmp_path, ports=launcher.Ports("127.0.0.1", free_port(), free_port())) is None
    finally:
        stranger.kill()
        stranger.wait()


def test_a_killed_launchers_children_block_the_next_run_until_make_stop(tmp_path: Path) -> None:
    child, _ = launcher.child_start(root=tmp_path, name="beat", command=["sleep", "600"])
    try:
        ports = launcher.Ports("127.0.0.1", free_port(), free_port())
        problem = launcher.preflight(root=tmp_path, ports=ports)
        assert problem is not None and f"beat (pid {child.pid})" in problem and "make stop" in problem
        launcher.tracked_stop(root=tmp_path, grace=1)
        child.wait(5)
        assert launcher.preflight(root=tmp_path, ports=ports) is None
    finally:
        child.kill()
        child.wait()


def test_site_url_defaults_from_port() -> None:
    env = {k: v for k, v in os.environ.items() if k != "SITE_URL"}
    env.update(PORT="8765", SECRET_KEY="x" * 50, AIPROXY_ENCRYPTION_KEY="y" * 50)
    code = "import django; django.setup(); from django.conf import settings; print(settings.SITE_URL)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "http://localhost:8765"


def test_launcher_gives_its_children_a_site_url_on_its_host_and_port() -> None:
    assert launcher.Ports("127.0.0.1", 8123, 8124).url == "http://127.0.0.1:8123"
    assert launcher.Ports("0.0.0.0", 8123, 8124).url == "http://localhost:8123"
