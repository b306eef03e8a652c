"""`make run`: migrate, set up the demo, start every process, print how to use it.

Starts the embedded PostgreSQL and Redis (unless DATABASE_URL / REDIS_URL are set),
then the fake upstream provider, the ASGI server (daphne), a Celery worker and Celery
beat as child processes, and stops them all on Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST = os.environ.get("HOST", "127.0.0.1")
PORT = int(os.environ.get("PORT", "8000"))
FAKE_PORT = int(os.environ.get("FAKE_PROVIDER_PORT", "8100"))


def _wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f}s")


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aiproxy_site.settings")
    os.environ.setdefault("FAKE_PROVIDER_URL", f"http://127.0.0.1:{FAKE_PORT}")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    # children talk to the same servers
    os.environ["DATABASE_URL"] = settings.DATABASE_URL
    os.environ["REDIS_URL"] = settings.REDIS_URL
    call_command("migrate_schemas", "--shared", verbosity=0)
    call_command("migrate_schemas", "--tenant", verbosity=0)
    call_command("demo_setup", base_url=f"http://{HOST}:{PORT}", verbosity=0)
    from aiproxy_site.embedded import data_dir

    py = sys.executable
    commands = {
        "fake-provider": [py, "-m", "uvicorn", "gateway.fake_provider:app", "--host", "127.0.0.1", "--port", str(FAKE_PORT),
                          "--log-level", "warning"],
        "embedder": [py, "-m", "gateway.embedder"],
        "web": [py, "-m", "daphne", "-b", HOST, "-p", str(PORT), "aiproxy_site.asgi:application"],
        "worker": [py, "-m", "celery", "-A", "aiproxy_site", "worker", "--loglevel", "WARNING", "--concurrency", "2"],
        "beat": [py, "-m", "celery", "-A", "aiproxy_site", "beat", "--loglevel", "WARNING",
                 "--schedule", str(data_dir() / "celerybeat-schedule")],
    }
    children = {name: subprocess.Popen(cmd, cwd=ROOT) for name, cmd in commands.items()}

    def stop(*_: object) -> None:
        for child in children.values():
            if child.poll() is None:
                child.terminate()
        for child in children.values():
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
        sys.exit(0)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    _wait_http(f"http://127.0.0.1:{FAKE_PORT}/health")
    _wait_http(f"http://{HOST}:{PORT}/accounts/login/")
    env_file = data_dir() / "demo.env"
    demo = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
    from gateway.demo import FAKE_MODELS
    from tenants.management.commands.demo_setup import DEMO_EMAIL, DEMO_PASSWORD

    models = ", ".join(m.public_name for m in FAKE_MODELS)

    print(
        f"\n  Web UI:        http://{HOST}:{PORT}/\n"
        f"  Admin:         http://{HOST}:{PORT}/admin/\n"
        f"  API docs:      http://{HOST}:{PORT}/api/docs/\n"
        f"  Demo login:    {DEMO_EMAIL} / {DEMO_PASSWORD}\n"
        f"  Proxy:         {demo['AIPROXY_BASE_URL']}  (OpenAI SDK: this URL; Anthropic SDK: without /v1)\n"
        f"  Models:        {models}\n"
        f"  Demo API key:  {demo['AIPROXY_API_KEY']}\n"
        f"  Written to:    {env_file}\n",
        flush=True,
    )
    print("AIProxy ready", flush=True)
    while True:
        for name, child in children.items():
            if child.poll() is not None:
                print(f"{name} exited with {child.returncode}; stopping", file=sys.stderr, flush=True)
                stop()
        time.sleep(1)


if __name__ == "__main__":
    sys.exit(main())
