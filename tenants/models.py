from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django_tenants.models import DomainMixin, TenantMixin

from gateway.catalog.policy import RateLimits, SpendPolicy
from gateway.hotpath.forward import MAX_ATTEMPTS_CAP


class Workspace(TenantMixin, SpendPolicy):
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=40, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    plan = models.ForeignKey("billing.Plan", null=True, blank=True, on_delete=models.SET_NULL,
                             help_text="Empty: the free plan.")
    limits_fail_open = models.BooleanField(
        default=False, help_text="When Redis is unavailable, serve requests without limits (default: refuse keys with hard budgets)."
    )
    budget_alert_recipients = models.TextField(blank=True, help_text="Extra alert recipients, one email per line.")
    cache_enabled = models.BooleanField(default=True, help_text="Answer repeated requests from the response cache.")
    cache_ttl_seconds = models.PositiveIntegerField(default=3600, help_text="How long a cached answer is served.")
    cache_scope = models.CharField(max_length=10, choices=[("workspace", "Workspace"), ("key", "Per key")],
                                   default="workspace", help_text="Share cached answers across the workspace's keys, or not.")
    cache_nondeterministic = models.BooleanField(
        default=False, help_text="Also cache requests with temperature above 0 (or omitted) or with tools."
    )
    cache_semantic = models.BooleanField(
        default=False, help_text="Also answer prompts that mean the same as a cached one (semantic cache)."
    )
    cache_semantic_threshold = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.5), MaxValueValidator(1.0)],
        help_text="Cosine similarity a cached prompt needs to be considered (0.5-1.0). Empty: the default.",
    )
    cache_max_mb = models.PositiveIntegerField(
        default=100, validators=[MinValueValidator(1), MaxValueValidator(1_000_000)],
        help_text="Size cap of the workspace's cached answers (exact and semantic each); the oldest go first.",
    )
    # routing: bounds on what a model group or a request's x-aiproxy-* headers ask for
    routing_max_attempts = models.PositiveSmallIntegerField(
        default=MAX_ATTEMPTS_CAP, validators=[MinValueValidator(1), MaxValueValidator(MAX_ATTEMPTS_CAP)],
        help_text=f"The most attempts one request may make, whatever its model group or x-aiproxy-max-attempts "
                  f"asks for (1-{MAX_ATTEMPTS_CAP}; {MAX_ATTEMPTS_CAP}: no bound beyond the gateway's).",
    )
    routing_overrides = models.BooleanField(
        default=True, help_text="Requests may send x-aiproxy-fallbacks and x-aiproxy-max-attempts (off: a 400).",
    )

    auto_create_schema = True
    auto_drop_schema = False

    def __str__(self) -> str:
        return self.name

    @property
    def host(self) -> str:
        return f"{self.slug}.{settings.BASE_DOMAIN}"


class Domain(DomainMixin):
    pass


class Membership(RateLimits):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        ADMIN = "admin", "Admin"
        MEMBER = "member", "Member"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(
        null=True, blank=True, help_text="When the user last picked this workspace; they land in it when signing in."
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "workspace"], name="one_membership_per_user")]

    @property
    def is_admin(self) -> bool:
        return self.role in {self.Role.OWNER, self.Role.ADMIN}

    @property
    def is_owner(self) -> bool:
        return self.role == self.Role.OWNER


class Invitation(models.Model):
    """An invitation to join a workspace, sent by email. The link's token is stored only as a
    hash; it works once, until `expires_at`, unless revoked. Resending issues a new token."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=10, choices=Membership.Role.choices, default=Membership.Role.MEMBER)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.email} to {self.workspace}"

    @property
    def is_pending(self) -> bool:
        from django.utils import timezone

        return self.accepted_at is None and self.revoked_at is None and self.expires_at > timezone.now()


class AdminToken(models.Model):
    """A workspace admin token for the management API. Only its hash is stored."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="admin_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=20)
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)


class KeyIndex(models.Model):
    """Public lookup from an API key's hash to its workspace; the key itself lives in
    the workspace's schema (keys.ApiKey)."""

    key_hash = models.CharField(max_length=64, primary_key=True)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="key_index")
    key_id = models.BigIntegerField()
    revoked = models.BooleanField(default=False)
