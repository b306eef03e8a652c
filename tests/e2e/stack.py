"""A `make run` stack for e2e tests: the launcher itself, on free ports, with its own data directory."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.servers import ROOT


@contextlib.contextmanager
def scratch_dir() -> Iterator[Path]:
    """A directory outside pytest's temporary root, which every pytest session on the machine
    makes 0700 when it starts: run as root, the embedded PostgreSQL is another user and must
    keep reaching its data."""
    path = Path(tempfile.mkdtemp(prefix="aiproxy-e2e-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def launcher_env(data_dir: Path, port: int, fake_port: int) -> dict[str, str]:
    """The environment of a user's shell: no test database, no venv activated."""
    drop = {"DATABASE_URL", "REDIS_URL", "SITE_URL", "VIRTUAL_ENV"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(AIPROXY_DATA_DIR=str(data_dir), PORT=str(port), FAKE_PROVIDER_PORT=str(fake_port))
    return env


def demo_env_read(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        values[name] = value
    return values


def stack_start(data_dir: Path, port: int, fake_port: int) -> tuple[subprocess.Popen[str], list[str]]:
    """Run the launcher as `make run` does (minus pip) until it prints "AIProxy ready"; returns
    the process and the lines it printed."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "aiproxy_site.launcher"],
        cwd=ROOT,
        env=launcher_env(data_dir, port, fake_port),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output = []
    deadline = time.monotonic() + 180
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        output.append(line)
        if line.strip() == "AIProxy ready":
            return proc, output
    stack_stop(proc, data_dir)
    raise AssertionError("launcher never printed 'AIProxy ready':\n" + "".join(output[-40:]))


def stack_stop(proc: subprocess.Popen[str], data_dir: Path) -> None:
    """Ctrl-C's way (TERM to the launcher), then `make stop`'s for whatever is left, embedded servers included."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    subprocess.run(
        [sys.executable, "-m", "aiproxy_site.launcher", "stop"],
        cwd=ROOT,
        env={**os.environ, "AIPROXY_DATA_DIR": str(data_dir)},
        check=False,
        capture_output=True,
    )


def stack_kill9(proc: subprocess.Popen[str], data_dir: Path) -> None:
    """SIGKILL to the launcher and to every process group it recorded, at once: a crash of the whole stack."""
    from aiproxy_site.launcher import process_records

    records = process_records(root=data_dir)
    os.kill(proc.pid, signal.SIGKILL)
    for record in records:
        if record.name != "launcher" and record.leader_alive:
            os.killpg(record.pid, signal.SIGKILL)
    proc.wait()
