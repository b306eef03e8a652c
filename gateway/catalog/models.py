from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from ..hotpath.bounds import BOUND_NAMES, DEFAULT_BOUNDS
from ..hotpath.credentials import credential_decrypt, credential_encrypt
from ..hotpath.directory import STRATEGIES
from .policy import RateLimits

STRATEGY_LABELS = {
    "weighted": "Weighted random",
    "least_busy": "Least busy",
    "lowest_latency": "Lowest latency",
    "lowest_cost": "Lowest cost",
    "priority": "Priority order",
}


def seconds_positive(value: float | None) -> None:
    if value is not None and value <= 0:
        raise ValidationError("Must be more than 0 seconds.")


class Provider(RateLimits):
    class Kind(models.TextChoices):
        OPENAI = "openai", "OpenAI"
        AZURE_OPENAI = "azure-openai", "Azure OpenAI"
        ANTHROPIC = "anthropic", "Anthropic"
        GEMINI = "gemini", "Google Gemini"
        COHERE = "cohere", "Cohere"
        OPENAI_COMPATIBLE = "openai-compatible", "OpenAI-compatible (vLLM, Ollama, llama.cpp, LM Studio)"
        FAKE = "fake", "Built-in fake provider"

    name = models.SlugField(max_length=64, unique=True)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    base_url = models.URLField(
        max_length=500,
        help_text="The base URL the provider's own SDK takes: OpenAI https://api.openai.com/v1; Azure "
        "https://&lt;resource&gt;.openai.azure.com; Anthropic https://api.anthropic.com; Gemini "
        "https://generativelanguage.googleapis.com; Cohere https://api.cohere.com; OpenAI-compatible servers "
        "their /v1 URL (vLLM http://host:8000/v1, Ollama http://host:11434/v1).",
    )
    credential_encrypted = models.TextField(blank=True, editable=False)
    api_version = models.CharField(max_length=32, blank=True, help_text="Azure OpenAI: api-version (default 2024-10-21). Gemini: API version (default v1beta). "
        "Others: leave empty.")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name

    def set_credential(self, value: str) -> None:
        self.credential_encrypted = credential_encrypt(value) if value else ""

    def get_credential(self) -> str:
        return credential_decrypt(self.credential_encrypted) if self.credential_encrypted else ""

    @property
    def has_credential(self) -> bool:
        return bool(self.credential_encrypted)


class Model(RateLimits):
    """A model group: the public name clients send as `model`, served by one or more
    deployments (Deployment), with the routing settings that choose among them and say
    where a request goes when they all fail. Its own rpm/tpm limits cover the whole group."""

    public_name = models.CharField(max_length=128, unique=True, help_text="The name clients send as `model`.")
    context_window = models.IntegerField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    workspaces = models.ManyToManyField(
        "tenants.Workspace", blank=True, help_text="Leave empty to offer the model to every workspace."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # routing (gateway/hotpath/balance.py, route.py)
    strategy = models.CharField(
        "load balancing", max_length=16, choices=[(name, STRATEGY_LABELS[name]) for name in STRATEGIES], default="weighted",
        help_text="How a request picks one of the group's healthy deployments.",
    )
    max_attempts = models.PositiveSmallIntegerField(
        "most attempts", default=3, validators=[MinValueValidator(1), MaxValueValidator(10)],
        help_text="Per request, over this group's deployments and its fallbacks.",
    )
    retry_deadline_seconds = models.FloatField(
        "retry deadline (seconds)", default=60, validators=[seconds_positive],
        help_text="No new attempt starts this long after the request arrived.",
    )
    context_window_fallback = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="A group with a larger window, tried when a prompt is longer than this group's window.",
    )
    content_policy_fallback = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="The group tried when an upstream refuses a request on content policy.",
    )
    # request bounds (gateway/hotpath/bounds.py): a request asking for more is a 400 naming the parameter
    max_n = models.PositiveIntegerField(
        "most choices", default=DEFAULT_BOUNDS.max_n, validators=[MinValueValidator(1)],
        help_text="Per request: OpenAI n (and best_of), Gemini candidateCount.",
    )
    max_output_tokens = models.PositiveIntegerField(
        "most output tokens", default=DEFAULT_BOUNDS.max_output_tokens, validators=[MinValueValidator(1)],
        help_text="Per request: OpenAI max_tokens and max_completion_tokens, Anthropic max_tokens and "
        "thinking.budget_tokens, Gemini maxOutputTokens, Cohere max_tokens.",
    )
    max_stop_sequences = models.PositiveIntegerField(
        "most stop sequences", default=DEFAULT_BOUNDS.max_stop_sequences,
        help_text="Per request: OpenAI stop, Anthropic and Cohere stop_sequences, Gemini stopSequences.",
    )
    max_top_logprobs = models.PositiveIntegerField(
        "largest top_logprobs", default=DEFAULT_BOUNDS.max_top_logprobs, help_text="Per request: OpenAI top_logprobs.",
    )
    max_logit_bias = models.PositiveIntegerField(
        "most logit_bias entries", default=DEFAULT_BOUNDS.max_logit_bias,
        help_text="Per request: the number of tokens in OpenAI logit_bias.",
    )
    max_embedding_dimensions = models.PositiveIntegerField(
        "most embedding dimensions", default=DEFAULT_BOUNDS.max_embedding_dimensions,
        validators=[MinValueValidator(1)],
        help_text="Per request: OpenAI dimensions, Gemini outputDimensionality, Cohere output_dimension.",
    )
    max_embedding_inputs = models.PositiveIntegerField(
        "most embedding inputs", default=DEFAULT_BOUNDS.max_embedding_inputs, validators=[MinValueValidator(1)],
        help_text="Per request: OpenAI input items, Gemini batchEmbedContents requests, Cohere texts or inputs.",
    )

    class Meta:
        ordering = ["public_name"]
        verbose_name = "model group"

    def __str__(self) -> str:
        return self.public_name

    def clean(self) -> None:
        errors: dict[str, str] = {}
        for field in ("context_window_fallback", "content_policy_fallback"):
            target = getattr(self, field)
            if target is None:
                continue
            if self.pk is not None and target.pk == self.pk:
                errors[field] = "A group cannot fall back to itself."
            elif self.pk is not None and group_reaches(target.pk, self.pk, fallback_edges(field)):
                errors[field] = f"{target} already falls back to this group that way: that would be a loop."
        window_target = self.context_window_fallback
        if ("context_window_fallback" not in errors and window_target is not None and self.context_window
                and window_target.context_window and window_target.context_window <= self.context_window):
            errors["context_window_fallback"] = (
                f"{window_target} has a {window_target.context_window:,}-token window, not larger than this "
                f"group's {self.context_window:,}."
            )
        if errors:
            raise ValidationError(errors)

    def request_bounds(self) -> dict[str, int]:
        """The bounds as the catalog snapshot carries them (gateway.hotpath.bounds.RequestBounds)."""
        return {name: getattr(self, name) for name in BOUND_NAMES}


def fallback_edges(kind: str, replaced: int | None = None, targets: list[int] | None = None) -> dict[int, list[int]]:
    """Every group's fallbacks of one kind ("fallbacks" for the ordered chain, or the name of
    a fallback field), as {group id: [group ids]}; the group `replaced`, if given, with `targets`
    instead of its stored ones (a form being validated)."""
    edges: dict[int, list[int]] = {}
    if kind == "fallbacks":
        for model_id, fallback_id in ModelFallback.objects.values_list("model_id", "fallback_id"):
            edges.setdefault(model_id, []).append(fallback_id)
    else:
        for model_id, fallback_id in Model.objects.filter(**{f"{kind}__isnull": False}).values_list("pk", kind):
            edges[model_id] = [fallback_id]
    if replaced is not None:
        edges[replaced] = list(targets or [])
    return edges


def group_reaches(start: int, target: int, edges: dict[int, list[int]]) -> bool:
    """Whether following `edges` from the group `start` arrives at the group `target`."""
    seen: set[int] = set()
    pending = [start]
    while pending:
        current = pending.pop()
        if current == target:
            return True
        if current not in seen:
            seen.add(current)
            pending.extend(edges.get(current, []))
    return False


class ModelFallback(models.Model):
    """One step of a group's fallback chain: the groups tried, in position order, once every
    deployment of the group failed."""

    model = models.ForeignKey(Model, on_delete=models.CASCADE, related_name="fallback_links")
    fallback = models.ForeignKey(Model, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["model", "fallback"], name="gateway_modelfallback_once"),
            models.CheckConstraint(condition=~models.Q(model=models.F("fallback")),
                                   name="gateway_modelfallback_not_itself"),
        ]

    def __str__(self) -> str:
        return f"{self.model_id} -> {self.fallback_id}"

    def clean(self) -> None:
        if self.model_id is not None and self.model_id == self.fallback_id:
            raise ValidationError({"fallback": "A group cannot fall back to itself."})


class Deployment(RateLimits):
    """One way to serve a group: a model on one provider, with its share of the traffic
    (weight), its place in priority order, its own limits and timeouts. Its rpm/tpm limits
    are its own: beyond them the gateway skips it for another deployment."""

    group = models.ForeignKey(Model, on_delete=models.CASCADE, related_name="deployments")
    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="deployments")
    upstream_name = models.CharField(max_length=128, help_text="The model name the provider expects.")
    name = models.SlugField(
        max_length=64, blank=True,
        help_text="Unique in the group; the x-aiproxy-deployment response header. Empty: the provider's name.",
    )
    input_price_per_mtok = models.DecimalField("input price per 1M tokens (USD)", max_digits=12, decimal_places=6, default=0)
    output_price_per_mtok = models.DecimalField("output price per 1M tokens (USD)", max_digits=12, decimal_places=6, default=0)
    weight = models.PositiveIntegerField(
        default=1, validators=[MinValueValidator(1)],
        help_text="Weighted random: its share of the requests, relative to the group's other deployments.",
    )
    priority = models.IntegerField(default=0, help_text="Priority order: lower is tried first.")
    max_in_flight = models.PositiveIntegerField(
        "most requests in flight", null=True, blank=True, validators=[MinValueValidator(1)],
        help_text="Across every gateway process. Empty: no limit.",
    )
    connect_timeout = models.FloatField(
        "connect timeout (s)", null=True, blank=True, validators=[seconds_positive], help_text="Empty: the gateway's default."
    )
    first_byte_timeout = models.FloatField(
        "first byte timeout (s)", null=True, blank=True, validators=[seconds_positive],
        help_text="From the request sent to the answer's first byte. Empty: the gateway's default.",
    )
    total_timeout = models.FloatField(
        "total timeout (s)", null=True, blank=True, validators=[seconds_positive], help_text="Empty: the gateway's default."
    )
    enabled = models.BooleanField(default=True)
    health_check = models.BooleanField(
        default=False, help_text="Probe it in the background (Celery beat), not only by the requests it serves.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["group", "priority", "pk"]
        constraints = [models.UniqueConstraint(fields=["group", "name"], name="gateway_deployment_name_in_group")]

    def __str__(self) -> str:
        return f"{self.group} / {self.name}" if self.group_id else self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self.name:
            taken = set(Deployment.objects.filter(group_id=self.group_id).exclude(pk=self.pk).values_list("name", flat=True))
            self.name = deployment_name_default(self.provider.name, taken)
        super().save(*args, **kwargs)

    def timeouts(self) -> dict[str, float | None]:
        """As the catalog snapshot carries them (gateway.hotpath.directory.Timeouts)."""
        return {"connect": self.connect_timeout, "first_byte": self.first_byte_timeout, "total": self.total_timeout}


def deployment_name_default(provider_name: str, taken: set[str]) -> str:
    """The provider's name, made unique among `taken` with -2, -3, ..."""
    name, n = provider_name, 1
    while name in taken:
        n += 1
        name = f"{provider_name}-{n}"
    return name


class GlobalLimits(RateLimits):
    """Limits over every request the gateway serves (one row; edit it in admin)."""

    class Meta:
        verbose_name = verbose_name_plural = "global limits"

    def __str__(self) -> str:
        return "Global limits"

    @classmethod
    def current(cls) -> GlobalLimits:
        return cls.objects.order_by("pk").first() or cls()
