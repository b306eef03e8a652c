"""Unique ids for the hot path without a system call each: 32 hex characters, a random
prefix per process (drawn again in a forked child) and a counter. Same shape as
uuid4().hex, unique across processes and hosts with the probability of a random 64-bit
prefix, and ordered within a process."""

from __future__ import annotations

import itertools
import os

_state: tuple[int, str, itertools.count[int]] | None = None


def unique_id() -> str:
    global _state
    pid = os.getpid()
    if _state is None or _state[0] != pid:
        _state = (pid, os.urandom(8).hex(), itertools.count(1))
    return f"{_state[1]}{next(_state[2]):016x}"
