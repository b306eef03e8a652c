from __future__ import annotations

from django.db import models


class UsageEvent(models.Model):
    """One proxied request. `event_id` is minted by the gateway, so persisting the
    same stream entry twice stores it once."""

    event_id = models.CharField(max_length=32, unique=True)
    created_at = models.DateTimeField(db_index=True)
    key_id = models.BigIntegerField(null=True, db_index=True)
    key_name = models.CharField(max_length=100, blank=True)
    endpoint = models.CharField(max_length=64)
    model = models.CharField(max_length=128, db_index=True)
    provider = models.CharField(max_length=128, blank=True)
    input_tokens = models.IntegerField(default=0)
    output_tokens = models.IntegerField(default=0)
    cost = models.DecimalField(max_digits=14, decimal_places=8, default=0)
    latency_ms = models.IntegerField(default=0)
    status_code = models.IntegerField()
    cache_status = models.CharField(max_length=16, default="miss")
    cache_similarity = models.FloatField(null=True, blank=True)
    cost_saved = models.DecimalField(max_digits=14, decimal_places=8, default=0,
                                     help_text="On a cache hit: what the answer would have cost upstream.")
    stream = models.BooleanField(default=False)
    usage_estimated = models.BooleanField(default=False)
    client_disconnected = models.BooleanField(default=False)
    error_type = models.CharField(max_length=64, blank=True)
    deployment = models.CharField(max_length=200, blank=True, help_text="The model group and deployment that answered.")
    attempts = models.IntegerField(default=0, help_text="Upstream attempts the request took (0: none, e.g. a cache hit).")
    attempt_log = models.CharField(max_length=1000, blank=True,
                                   help_text="Each attempt: its number, deployment and outcome.")

    class Meta:
        ordering = ["-created_at"]


class UsageDeadLetter(models.Model):
    """No table: the admin's entry for usage events the worker set aside (the Redis stream
    analytics.tasks.DEAD_STREAM), with the error that stopped each."""

    class Meta:
        managed = False
        default_permissions = ("view",)
        verbose_name = "usage dead letter"
