"""gateway.hotpath.ids: the hot path's ids are unique, uuid4-hex shaped, and a forked child draws
its own prefix."""

from __future__ import annotations

import os
import re

from gateway.hotpath.ids import unique_id


def test_ids_are_unique_and_shaped_like_uuid_hex() -> None:
    ids = [unique_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)


def test_a_forked_child_draws_its_own_prefix() -> None:
    parent = unique_id()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its id and leave at once
        os.write(write, unique_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.waitpid(pid, 0)
    assert child[:16] != parent[:16] and len(child) == 32
