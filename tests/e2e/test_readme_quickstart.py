"""The README's quick start works as written: its snippets run verbatim in bash against a
running `make run` stack.

Which snippets: in README.md, the section from the line `## Quick start` to the next line
that starts with `## `; in it, every fenced block opened by a line that is exactly "```sh"
and closed by a line "```". Their lines, in order, form one bash script run with
`set -eo pipefail`, so a failing line fails the test. Three kinds of lines are not run by
the script:
- `make run` and `make test` (a trailing `# comment` allowed): the test starts the stack
  as `make run` does (the launcher, minus pip, on free ports) and does not run the whole
  suite inside itself;
- `git clone ...` and `cd <dir>`: the script already runs in a checkout.
`127.0.0.1:8000` and `localhost:8000` in a snippet become the stack's free port.

Where: a scratch checkout, a directory of symlinks to the repository's top-level entries
with a `.aiproxy/` of its own (the stack's data directory), so `.aiproxy/demo.env`,
`.venv/bin/python` and `make stop` mean what they mean in a fresh clone. The shell starts as
a user's would: the venv not activated (its bin/ is not on PATH), no DATABASE_URL or REDIS_URL.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from tests.servers import ROOT

from .conftest import _free_port
from .stack import launcher_env, scratch_dir, stack_start, stack_stop

SECTION = "## Quick start"
NOT_RUN = re.compile(r"^\s*(make (run|test)|git clone\b.*|cd\s+\S+)\s*(#.*)?$")


def quickstart_snippets(readme: str) -> list[str]:
    """The lines of the quick start's ```sh blocks, in order (see the module docstring)."""
    lines = readme.splitlines()
    start = lines.index(SECTION) + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    snippets: list[str] = []
    block: list[str] | None = None
    for line in lines[start:end]:
        if block is None and line.strip() == "```sh":
            block = []
        elif block is not None and line.strip() == "```":
            snippets.extend(block)
            block = None
        elif block is not None:
            block.append(line)
    return snippets


def test_extraction_keeps_sh_blocks_of_the_quick_start_only() -> None:
    readme = "\n".join(
        [
            "# X",
            "```sh",
            "echo before",
            "```",
            "## Quick start",
            "text",
            "```sh",
            "make run  # go",
            "source a.env",
            "```",
            "```python",
            "print(1)",
            "```",
            "```sh",
            "python - <<'PY'",
            "print(2)",
            "PY",
            "```",
            "## Next",
            "```sh",
            "echo after",
            "```",
        ]
    )
    lines = quickstart_snippets(readme)
    assert lines == ["make run  # go", "source a.env", "python - <<'PY'", "print(2)", "PY"]
    assert [bool(NOT_RUN.match(line)) for line in lines] == [True, False, False, False, False]


def test_readme_quick_start_snippets_run_verbatim_against_make_run() -> None:
    snippets = quickstart_snippets((ROOT / "README.md").read_text())
    script = [line for line in snippets if not NOT_RUN.match(line)]
    assert any(line.strip() and not line.lstrip().startswith("#") for line in script), "nothing to run"

    with scratch_dir() as checkout:
        _run_in_checkout(checkout, script)


def _run_in_checkout(checkout: Path, script: list[str]) -> None:
    for entry in ROOT.iterdir():
        if entry.name not in {".aiproxy", ".git"}:
            (checkout / entry.name).symlink_to(entry)
    data_dir = checkout / ".aiproxy"
    port, fake_port = _free_port(), _free_port()
    proc, _ = stack_start(data_dir, port, fake_port)
    try:
        text = "\n".join(script)
        for default in ("127.0.0.1:8000", "localhost:8000"):
            text = text.replace(default, default.split(":")[0] + f":{port}")
        env = launcher_env(data_dir, port, fake_port)
        venv_bins = {str(ROOT / ".venv" / "bin"), str((ROOT / ".venv" / "bin").resolve())}
        env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if p and p.rstrip("/") not in venv_bins)
        result = subprocess.run(
            ["bash", "-c", "set -eo pipefail\n" + text],
            cwd=checkout,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, (
            f"the quick start failed (exit {result.returncode}):\n--- script\n{text}\n--- stdout\n{result.stdout}"
            f"\n--- stderr\n{result.stderr}"
        )
    finally:
        stack_stop(proc, data_dir)
