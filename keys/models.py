from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from gateway.catalog.policy import SpendPolicy


class ApiKey(SpendPolicy):
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=20, help_text="The first characters of the key, shown to tell keys apart.")
    key_hash = models.CharField(max_length=64, unique=True)
    created_by_id = models.BigIntegerField(null=True, blank=True)  # public-schema user id
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # response cache: empty means the workspace's setting
    cache_enabled = models.BooleanField("response cache", null=True, blank=True,
                                        help_text="Empty: as the workspace.")
    cache_semantic = models.BooleanField("semantic cache", null=True, blank=True, help_text="Empty: as the workspace.")
    cache_semantic_threshold = models.FloatField(
        "semantic threshold", null=True, blank=True, validators=[MinValueValidator(0.5), MaxValueValidator(1.0)],
        help_text="Empty: as the workspace.",
    )
    cache_ttl_seconds = models.PositiveIntegerField("cache TTL (seconds)", null=True, blank=True,
                                                    validators=[MinValueValidator(1), MaxValueValidator(30 * 86400)],
                                                    help_text="Empty: as the workspace.")

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
