"""The embedded servers' data (tenants' rows, Redis's cached prompts) is private to its owner:
directories 0700, files 0600, including what the servers write later and what an older
install left readable."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import psycopg
import redis

from aiproxy_site import embedded


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _open_to_others(root: Path) -> list[str]:
    found = []
    for parent, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            path = Path(parent, name)
            try:
                st = path.lstat()
            except FileNotFoundError:  # PostgreSQL's and Redis's temporary files come and go
                continue
            if (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)) and st.st_mode & 0o077:
                found.append(f"{path.relative_to(root)} {stat.S_IMODE(st.st_mode):o}")
    return found


def test_embedded_postgres_and_redis_data_is_private_after_writes_and_an_old_install_is_fixed(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    root = tmp_path / "data"
    monkeypatch.setenv("AIPROXY_DATA_DIR", str(root))
    # an install made by an earlier version: everything readable by everyone
    (root / "redis").mkdir(parents=True)
    (root / "spool").mkdir()
    for path in (root / "demo.env", root / "redis" / "dump.rdb", root / "spool" / "events.jsonl"):
        path.write_bytes(b"")
    for path in (root, root / "redis", root / "spool"):
        path.chmod(0o755)
    for path in (root / "demo.env", root / "redis" / "dump.rdb", root / "spool" / "events.jsonl"):
        path.chmod(0o644)
    old_umask = os.umask(0o022)  # a usual login umask: what the servers must not inherit
    try:
        client = redis.Redis.from_url(embedded.redis_url())
        with psycopg.connect(embedded.postgres_url(), autocommit=True) as conn:
            conn.execute("CREATE TABLE prompts (body text)")
            conn.execute("INSERT INTO prompts VALUES ('a tenant prompt')")
            conn.execute("CHECKPOINT")
        client.set("cache:prompt", "a tenant prompt")
        client.save()  # writes the RDB file
        client.bgrewriteaof()  # and rewrites the append-only file
        while any(client.info("persistence")[flag] for flag in ("aof_rewrite_in_progress", "aof_rewrite_scheduled")):
            time.sleep(0.05)
        client.set("cache:after-rewrite", "another prompt")

        assert _mode(root) == 0o700
        assert _mode(root / "pg") == 0o700
        assert _mode(root / "redis") == 0o700
        redis_files = {p.name for p in (root / "redis").iterdir()}
        assert {"dump.rdb"} <= redis_files and any(name.startswith("appendonly") for name in redis_files)
        for path in (root / "redis").rglob("*"):
            if path.is_file() and (path.name.endswith((".rdb", ".aof")) or "appendonly" in path.name):
                assert _mode(path) == 0o600, path
        assert _open_to_others(root) == []
    finally:
        os.umask(old_umask)
        embedded.stop_all()
