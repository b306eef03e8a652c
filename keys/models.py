from __future__ import annotations

from django.db import models

from gateway.policy import SpendPolicy


class ApiKey(SpendPolicy):
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=20, help_text="The first characters of the key, shown to tell keys apart.")
    key_hash = models.CharField(max_length=64, unique=True)
    created_by_id = models.BigIntegerField(null=True, blank=True)  # public-schema user id
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @property
    def masked(self) -> str:
        return f"{self.prefix}…"
