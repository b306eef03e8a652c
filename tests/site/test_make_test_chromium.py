"""`make test` on a machine without chromium: root gets it installed with apt-get; anyone else
is told the one command to run, before the suite starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import chromium
from tests.servers import ROOT

FAKE_APT_GET = """#!/bin/sh
echo "$@" >> {calls}
if [ "$1" = install ]; then
  printf '#!/bin/sh\\n' > {bin}/chromium
  /bin/chmod +x {bin}/chromium
fi
"""


def _fake_bin(tmp_path: Path, *, apt_get: bool) -> Path:
    """A PATH with no chromium on it, and with a stand-in for Debian's apt-get."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if apt_get:
        script = bin_dir / "apt-get"
        script.write_text(FAKE_APT_GET.format(calls=tmp_path / "calls", bin=bin_dir))
        script.chmod(0o755)
    return bin_dir


@pytest.mark.skipif(os.geteuid() != 0, reason="installing is for root")
def test_make_test_installs_chromium_as_root(tmp_path: Path) -> None:
    bin_dir = _fake_bin(tmp_path, apt_get=True)
    result = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "chromium.py")],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": str(bin_dir), "AIPROXY_DATA_DIR": str(tmp_path)},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "calls").read_text().splitlines() == ["update", "install -y chromium"]
    assert "installing chromium" in result.stdout and "done" in result.stdout


def test_make_test_without_root_fails_at_once_with_the_command_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = _fake_bin(tmp_path, apt_get=True)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    problem = chromium.chromium_ensure(log=tmp_path / "log")
    assert problem is not None and "sudo apt-get install -y chromium" in problem
    assert not (tmp_path / "calls").exists(), "apt-get is not run without root"


def test_a_failed_install_shows_the_command_and_the_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = _fake_bin(tmp_path, apt_get=False)
    script = bin_dir / "apt-get"
    script.write_text("#!/bin/sh\necho 'E: Unable to locate package chromium'\nexit 100\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    problem = chromium.chromium_ensure(log=tmp_path / "log")
    assert problem is not None
    assert "Unable to locate package chromium" in problem and "apt-get install -y chromium" in problem


def test_make_test_checks_chromium_before_running_the_suite() -> None:
    plan = subprocess.run(["make", "-n", "test"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    lines = plan.splitlines()
    check = next(i for i, line in enumerate(lines) if "tests/chromium.py" in line)
    suite = next(i for i, line in enumerate(lines) if "-m pytest" in line)
    assert check < suite
