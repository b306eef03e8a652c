"""Named faults: switchable failures that requests opt into with `[[fake:fault=NAME]]`.

A deployment whose upstream model name carries `[[fake:fault=bench-a]]` obeys whatever
fault is set under "bench-a" right now, so a test or the demo can break one deployment,
and mend it, while the gateway keeps running:

  PUT    /control/faults/NAME   set the fault (JSON body, below); answers {"name", "fault"}
  GET    /control/faults/NAME   the fault set under NAME (404 if none)
  DELETE /control/faults/NAME   clear it: NAME is healthy again; answers {"name", "cleared"}
  GET    /control/faults        every fault set: {"faults": {NAME: fault}}
  DELETE /control/faults        clear them all

The body is an object with any of: "status" (an HTTP error status, 400-599), "rate" (the
share of requests that fail, 0-1, default 1), "hang", "reset", "cut" (true), "latency_ms",
"ttft_ms", "chunk_ms" (milliseconds, at least 0). Each means what the directive of the same
name means (core.py); `rate` gates the failures (status, hang, reset, cut), never the
timing. Anything else is a 400 with {"error": {"message"}}. A name nothing set is healthy.

The state lives in the process: the fake runs as one uvicorn process, so every
connection sees the same faults.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

FAULT_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
CONTROL = "/control/"
PREFIX = "/control/faults"
FLAGS = ("hang", "reset", "cut")
DURATIONS = ("latency_ms", "ttft_ms", "chunk_ms")
MAX_FAULTS = 1_000

# NAME -> the fault as directives (what `[[fake:...]]` would say), ready to merge
FAULTS: dict[str, dict[str, str]] = {}


class FaultInvalid(Exception):
    """A control request the fake refuses with 400; the message says why."""


def fault_directives(name: str) -> dict[str, str]:
    """The directives of the fault set under `name`; none (healthy) if nothing is set."""
    return FAULTS.get(name, {})


def _number(body: dict[str, Any], key: str) -> float:
    value = body[key]
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise FaultInvalid(f"'{key}' must be a number")
    return float(value)


def fault_parse(body: Any) -> dict[str, str]:
    """A PUT body as directives, or FaultInvalid saying what is wrong with it."""
    if not isinstance(body, dict):
        raise FaultInvalid("the body must be a JSON object")
    known = {"status", "rate", *FLAGS, *DURATIONS}
    unknown = sorted(set(body) - known)
    if unknown:
        raise FaultInvalid(f"unknown field '{unknown[0]}'; expected some of: {', '.join(sorted(known))}")
    directives: dict[str, str] = {}
    if "status" in body:
        status = body["status"]
        if not isinstance(status, int) or isinstance(status, bool) or not 400 <= status <= 599:
            raise FaultInvalid("'status' must be an HTTP error status from 400 to 599")
        directives["status"] = str(status)
    if "rate" in body:
        rate = _number(body, "rate")
        if not 0 <= rate <= 1:
            raise FaultInvalid("'rate' must be from 0 to 1")
        directives["rate"] = repr(rate)
    for flag in FLAGS:
        if flag in body:
            if not isinstance(body[flag], bool):
                raise FaultInvalid(f"'{flag}' must be true or false")
            if body[flag]:
                directives[flag] = ""
    for key in DURATIONS:
        if key in body:
            value = _number(body, key)
            if not 0 <= value <= 3_600_000:
                raise FaultInvalid(f"'{key}' must be from 0 to 3600000 milliseconds")
            directives[key] = repr(value)
    return directives


def fault_public(directives: dict[str, str]) -> dict[str, Any]:
    """A stored fault as the control endpoint shows it (the PUT body's shape)."""
    shown: dict[str, Any] = {}
    for key, value in directives.items():
        if key in FLAGS:
            shown[key] = True
        elif key == "status":
            shown[key] = int(value)
        else:
            shown[key] = float(value)
    return shown


def _error(status: int, message: str) -> tuple[int, dict[str, Any]]:
    return status, {"error": {"message": message}}


def fault_control(method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
    """Answer one control request (a path under /control/): (HTTP status, JSON body)."""
    if path != PREFIX and not path.startswith(PREFIX + "/"):
        return _error(404, f"no control at {path}; faults are at {PREFIX}/NAME")
    name = path[len(PREFIX) + 1 :]
    if not name:
        if method == "GET":
            return 200, {"faults": {key: fault_public(value) for key, value in FAULTS.items()}}
        if method == "DELETE":
            FAULTS.clear()
            return 200, {"cleared": True}
        return _error(405, f"{method} is not allowed on {PREFIX}; use GET or DELETE")
    if not FAULT_NAME.match(name):
        return _error(400, "a fault name is 1 to 100 letters, digits, '.', '_' or '-'")
    if method == "GET":
        if name not in FAULTS:
            return _error(404, f"no fault is set under '{name}' (it is healthy)")
        return 200, {"name": name, "fault": fault_public(FAULTS[name])}
    if method == "DELETE":
        return 200, {"name": name, "cleared": FAULTS.pop(name, None) is not None}
    if method != "PUT":
        return _error(405, f"{method} is not allowed on a fault; use PUT, GET or DELETE")
    try:
        fault = fault_parse(orjson.loads(body) if body else None)
    except orjson.JSONDecodeError:
        return _error(400, "the body is not valid JSON")
    except FaultInvalid as exc:
        return _error(400, str(exc))
    if name not in FAULTS and len(FAULTS) >= MAX_FAULTS:
        return _error(400, f"at most {MAX_FAULTS} faults can be set; clear some first")
    FAULTS[name] = fault
    return 200, {"name": name, "fault": fault_public(fault)}
