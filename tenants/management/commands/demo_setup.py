"""Idempotent set-up for `make run`: public tenant, demo user, demo workspace, the fake
providers with one model per upstream kind (gateway.catalog.demo), and a demo API key written to .aiproxy/demo.env."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from aiproxy_site.embedded import data_dir
from gateway.catalog.demo import fake_catalog_ensure
from gateway.catalog.publish import catalog_publish
from keys.services import api_key_create
from keys.tokens import token_hash
from tenants.models import KeyIndex, Workspace
from tenants.services import public_domain_ensure, workspace_create

DEMO_EMAIL = "demo@aiproxy.local"
DEMO_PASSWORD = "demo-password-1"


class Command(BaseCommand):
    help = "Create the demo workspace, user, fake provider, models and API key (idempotent)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--base-url", default="http://127.0.0.1:8000", help="Where the gateway is served.")
        parser.add_argument("--env-file", default=str(data_dir() / "demo.env"))

    def handle(self, *args: Any, base_url: str, env_file: str, **options: Any) -> None:
        public_domain_ensure()
        User = get_user_model()
        user = User.objects.filter(email=DEMO_EMAIL).first()
        if user is None:
            user = User.objects.create_user(username="demo", email=DEMO_EMAIL, password=DEMO_PASSWORD, is_staff=True,
                                            is_superuser=True)
            from allauth.account.models import EmailAddress

            EmailAddress.objects.create(user=user, email=DEMO_EMAIL, verified=True, primary=True)
        workspace = Workspace.objects.filter(slug="demo").first() or workspace_create(name="Demo", owner=user, slug="demo")

        fake_catalog_ensure(fake_url=settings.FAKE_PROVIDER_URL)
        catalog_publish()

        path = Path(env_file)
        secret = _existing_key(path)
        if secret is None or not KeyIndex.objects.filter(key_hash=token_hash(secret), revoked=False).exists():
            _, secret = api_key_create(workspace=workspace, name="demo key", created_by_id=user.pk)
        path.parent.mkdir(parents=True, exist_ok=True)
        # `export` lines: `source .aiproxy/demo.env` hands them to the programs the shell runs
        path.write_text(f"export AIPROXY_BASE_URL={base_url.rstrip('/')}/v1\nexport AIPROXY_API_KEY={secret}\n")
        path.chmod(0o600)
        self.stdout.write(f"demo workspace '{workspace.slug}' ready; key {hashlib.sha256(secret.encode()).hexdigest()[:8]}")


def _existing_key(path: Path) -> str | None:
    if not path.exists():
        return None
    for line in path.read_text().splitlines():
        if line.removeprefix("export ").startswith("AIPROXY_API_KEY="):
            return line.split("=", 1)[1].strip() or None
    return None
