"""aiproxy_site.embedded._redis_wait: a Redis that is still alive (loading a large
append-only file) is waited for; one whose process is gone is given up quickly."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from aiproxy_site import embedded


def test_a_live_but_silent_redis_is_waited_for_up_to_the_load_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "redis.pid").write_text(f"{os.getpid()}\n")  # a live process that never answers
    monkeypatch.setattr(embedded, "REDIS_START_S", 0.1)
    monkeypatch.setattr(embedded, "REDIS_LOAD_S", 0.6)
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="did not start"):
        embedded._redis_wait(tmp_path, tmp_path / "redis.sock")
    assert time.monotonic() - started >= 0.6  # kept waiting past REDIS_START_S


def test_a_dead_redis_is_given_up_after_the_start_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "redis.pid").write_text("999999999\n")  # no such process
    monkeypatch.setattr(embedded, "REDIS_START_S", 0.1)
    monkeypatch.setattr(embedded, "REDIS_LOAD_S", 30.0)
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="did not start"):
        embedded._redis_wait(tmp_path, tmp_path / "redis.sock")
    assert time.monotonic() - started < 5


def test_an_answering_redis_returns_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.conf import settings

    url = settings.REDIS_URL
    if not url.startswith("unix://"):
        pytest.skip("the suite's Redis is an external TCP server")
    sock = Path(url.removeprefix("unix://").split("?")[0])
    embedded._redis_wait(sock.parent, sock)  # no exception, no wait
