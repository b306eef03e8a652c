"""`python manage.py credentials_reencrypt`: the second step of rotating AIPROXY_ENCRYPTION_KEY.

With the new key first in AIPROXY_ENCRYPTION_KEY and the old ones after it, every stored
provider credential is encrypted again with the new key and the gateway's catalog is
republished, after which the old keys can be removed. Safe to run again: credentials the
current key already encrypts are left as they are. Prints counts and provider names, never
a credential.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from gateway.catalog.models import Provider
from gateway.catalog.publish import catalog_publish
from gateway.hotpath.credentials import credential_is_current, credential_reencrypt


class Command(BaseCommand):
    help = "Encrypt every stored provider credential with the current (first) AIPROXY_ENCRYPTION_KEY key."

    def handle(self, *args: Any, **options: Any) -> None:
        reencrypted, current, unreadable = 0, 0, []
        with transaction.atomic():
            for provider in Provider.objects.select_for_update().exclude(credential_encrypted="").order_by("pk"):
                if credential_is_current(provider.credential_encrypted):
                    current += 1
                    continue
                try:
                    token = credential_reencrypt(provider.credential_encrypted)
                except ValueError:
                    unreadable.append(provider.name)
                    continue
                Provider.objects.filter(pk=provider.pk).update(credential_encrypted=token)
                reencrypted += 1
        if reencrypted:
            catalog_publish()  # the gateways read credentials from the published catalog
        self.stdout.write(
            f"{reencrypted} provider credential(s) re-encrypted with the current key, "
            f"{current} already current, {len(unreadable)} unreadable."
        )
        if unreadable:
            raise CommandError(
                f"No AIPROXY_ENCRYPTION_KEY key decrypts the credential of: {', '.join(unreadable)}. "
                "Add the key they were encrypted with (after the current one) and run this again, "
                "or enter these credentials again in admin."
            )
