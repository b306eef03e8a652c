"""SECRET_KEY and AIPROXY_ENCRYPTION_KEY: required outside the embedded development stack,
generated once per install (0600, under the data directory) inside it."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from aiproxy_site import embedded
from tests.servers import ROOT

EXTERNAL_DB = "postgresql://aiproxy:pw@db.example.invalid:5432/aiproxy"  # never connected to
PRINT_SECRETS = (
    "from django.conf import settings; import json; "
    "print(json.dumps([settings.SECRET_KEY, settings.ENCRYPTION_KEYS, settings.EMBEDDED_STACK]))"
)


def _env(data_dir: Path, **values: str) -> dict[str, str]:
    from django.conf import settings

    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "AIPROXY_ENCRYPTION_KEY", "AIPROXY_DEV_SECRETS", "DATABASE_URL"}
    }
    env.update(
        AIPROXY_DATA_DIR=str(data_dir), REDIS_URL=settings.REDIS_URL, DJANGO_SETTINGS_MODULE="aiproxy_site.settings"
    )
    env.update(values)
    return env


def _settings_of(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); " + PRINT_SECRETS],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "missing", [("SECRET_KEY",), ("AIPROXY_ENCRYPTION_KEY",), ("SECRET_KEY", "AIPROXY_ENCRYPTION_KEY")]
)
def test_outside_the_embedded_stack_manage_py_refuses_to_start_without_each_secret(tmp_path, missing):  # type: ignore[no-untyped-def]
    given = {
        name: "a-long-enough-operator-secret-0123456789"
        for name in ("SECRET_KEY", "AIPROXY_ENCRYPTION_KEY")
        if name not in missing
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(tmp_path, DATABASE_URL=EXTERNAL_DB, **given),
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr  # one line, no traceback
    for name in ("SECRET_KEY", "AIPROXY_ENCRYPTION_KEY"):
        assert (name in lines[0]) == (name in missing)
    assert "secrets.token_urlsafe" in lines[0]  # how to generate one
    assert not (tmp_path / "secrets.json").exists()


def test_the_production_server_refuses_to_start_without_secrets(tmp_path):  # type: ignore[no-untyped-def]
    from benchmarks.harness import procfile_command
    from tests.servers import free_port

    env = _env(tmp_path, DATABASE_URL=EXTERNAL_DB)
    done = subprocess.run(
        procfile_command("web", free_port(), env), cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "SECRET_KEY and AIPROXY_ENCRYPTION_KEY must be set" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_operators_secrets_are_used_and_the_encryption_key_takes_a_list(tmp_path):  # type: ignore[no-untyped-def]
    done = _settings_of(
        _env(
            tmp_path,
            DATABASE_URL=EXTERNAL_DB,
            SECRET_KEY="operator-secret",
            AIPROXY_ENCRYPTION_KEY=" new-key , old-key,",
        )
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == ["operator-secret", ["new-key", "old-key"], False]
    assert not (tmp_path / "secrets.json").exists()


def test_the_embedded_stack_generates_its_secrets_once_private_and_reuses_them(tmp_path):  # type: ignore[no-untyped-def]
    env = _env(tmp_path, DATABASE_URL=EXTERNAL_DB, AIPROXY_DEV_SECRETS="1")
    # several processes starting at once (web, worker, beat) all end up with the same secrets
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", "import django; django.setup(); " + PRINT_SECRETS],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [proc.communicate(timeout=60) for proc in procs]
    assert all(proc.returncode == 0 for proc in procs), outputs
    seen = {out.splitlines()[-1] for out, _ in outputs}
    assert len(seen) == 1
    secret_key, encryption_keys, embedded_stack = json.loads(seen.pop())
    stored = json.loads((tmp_path / "secrets.json").read_text())
    assert secret_key == stored["SECRET_KEY"] and len(secret_key) >= 50
    assert encryption_keys[0] == stored["AIPROXY_ENCRYPTION_KEY"] and embedded_stack is True
    assert stat.S_IMODE((tmp_path / "secrets.json").stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secrets.json"]  # no temporary file left behind

    again = _settings_of(env)
    assert json.loads(again.stdout.splitlines()[-1])[0] == secret_key  # reused, not regenerated
    other = _settings_of(_env(tmp_path / "other", DATABASE_URL=EXTERNAL_DB, AIPROXY_DEV_SECRETS="1"))
    assert json.loads(other.stdout.splitlines()[-1])[0] != secret_key  # one per install


def test_an_environment_secret_wins_over_the_generated_one(tmp_path):  # type: ignore[no-untyped-def]
    done = _settings_of(_env(tmp_path, DATABASE_URL=EXTERNAL_DB, AIPROXY_DEV_SECRETS="1", SECRET_KEY="mine"))
    secret_key, encryption_keys, _ = json.loads(done.stdout.splitlines()[-1])
    assert secret_key == "mine"
    assert encryption_keys[0] == json.loads((tmp_path / "secrets.json").read_text())["AIPROXY_ENCRYPTION_KEY"]


def test_the_embedded_database_is_recognised_by_its_socket_only(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AIPROXY_DATA_DIR", str(tmp_path))
    (tmp_path / "pg").mkdir()
    assert embedded.embedded_database_in_use("")
    assert embedded.embedded_database_in_use(f"postgresql://postgres:@/aiproxy?host={tmp_path}/pg")
    assert embedded.embedded_database_in_use(
        f"postgresql://postgres@{str(tmp_path / 'pg').replace('/', '%2F')}/aiproxy"
    )
    assert not embedded.embedded_database_in_use(EXTERNAL_DB)
    assert not embedded.embedded_database_in_use("postgresql://postgres:@/aiproxy?host=/var/run/postgresql")
    assert not embedded.embedded_database_in_use(f"postgresql://postgres:@/aiproxy?host={tmp_path}")


def test_the_suites_own_servers_count_as_the_embedded_stack() -> None:
    from django.conf import settings

    if os.environ.get("DATABASE_URL") and not embedded.embedded_database_in_use(os.environ["DATABASE_URL"]):
        pytest.skip("the suite runs against an external PostgreSQL")
    # what the e2e fixtures and `make run` pass to their servers: the embedded server's socket
    assert embedded.embedded_database_in_use(settings.DATABASE_URL)
