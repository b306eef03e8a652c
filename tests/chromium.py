"""`make test`'s browser check: the browser tests drive Debian's `chromium` (on PATH) through
Playwright. When it is missing, root installs it with apt-get; anyone else is told the one
command to run, before the suite starts rather than by browser tests failing at its end.

Standard library only: `make test` runs it as a file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

PACKAGE = "chromium"
INSTALL = f"sudo apt-get install -y {PACKAGE}"
LOG = (
    Path(os.environ.get("AIPROXY_DATA_DIR") or Path(__file__).resolve().parent.parent / ".aiproxy")
    / "logs"
    / "chromium-install.log"
)


def chromium_ensure(*, log: Path = LOG) -> str | None:
    """None when chromium is (now) on PATH, else what to tell the user."""
    if shutil.which("chromium"):
        return None
    apt_get = shutil.which("apt-get")
    if apt_get is None:
        return (
            "make test needs Chromium for its browser tests, as `chromium` on PATH, and this machine has no "
            f"apt-get: install it with your package manager (on Debian or Ubuntu: `{INSTALL}`)."
        )
    if os.geteuid() != 0:
        return f"make test needs Chromium for its browser tests. Install it with:\n\n    {INSTALL}\n"
    print(f"installing chromium (apt-get install -y {PACKAGE}, log in {log})... ", end="", flush=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with log.open("w") as out:
        ok = all(
            subprocess.run(command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env).returncode
            == 0
            for command in ([apt_get, "update"], [apt_get, "install", "-y", PACKAGE])
        )
    if ok and shutil.which("chromium"):
        print("done", flush=True)
        return None
    print("failed", flush=True)
    tail = "".join(f"  {line}\n" for line in log.read_text(errors="replace").splitlines()[-15:])
    return f"{tail}installing chromium failed (full log: {log}). Install it with:\n\n    apt-get install -y {PACKAGE}\n"


def main() -> int:
    problem = chromium_ensure()
    if problem:
        print(problem, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
