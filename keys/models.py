from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from gateway.catalog.policy import SpendPolicy

MODEL_NAMES_MAX = 200  # names a key may be limited to
MODEL_NAME_LENGTH_MAX = 128  # gateway.catalog.models.Model.public_name's max_length


def model_names_validate(value: object) -> None:
    """A key's model list: a list of at most MODEL_NAMES_MAX names, each a string of 1 to
    MODEL_NAME_LENGTH_MAX characters. Whether the names are offered to the workspace is the
    services' check (keys.selectors.model_names_unknown), as it needs the workspace."""
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise ValidationError("A list of model names (strings).", code="invalid")
    if len(value) > MODEL_NAMES_MAX:
        raise ValidationError(f"At most {MODEL_NAMES_MAX} model names.", code="max_length")
    if any(not 1 <= len(name) <= MODEL_NAME_LENGTH_MAX for name in value):
        raise ValidationError(f"Each model name has 1 to {MODEL_NAME_LENGTH_MAX} characters.", code="max_length")


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
    # model names (public schema, so names rather than foreign keys), sorted and unique
    allowed_models = models.JSONField(
        "models", default=list, blank=True, validators=[model_names_validate],
        help_text="The model names this key may call; empty: every model the workspace can use. A renamed or "
        "deleted model no longer matches, so a key limited to it must be given the new name.",
    )

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
