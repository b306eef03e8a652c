from __future__ import annotations

from django.core.validators import MinValueValidator
from django.db import models

from ..hotpath.bounds import BOUND_NAMES, DEFAULT_BOUNDS
from ..hotpath.credentials import credential_decrypt, credential_encrypt
from .policy import RateLimits


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
    public_name = models.CharField(max_length=128, unique=True, help_text="The name clients send as `model`.")
    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="models")
    upstream_name = models.CharField(max_length=128, help_text="The model name the provider expects.")
    input_price_per_mtok = models.DecimalField("input price per 1M tokens (USD)", max_digits=12, decimal_places=6, default=0)
    output_price_per_mtok = models.DecimalField("output price per 1M tokens (USD)", max_digits=12, decimal_places=6, default=0)
    context_window = models.IntegerField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    workspaces = models.ManyToManyField(
        "tenants.Workspace", blank=True, help_text="Leave empty to offer the model to every workspace."
    )
    created_at = models.DateTimeField(auto_now_add=True)
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

    def __str__(self) -> str:
        return self.public_name

    def request_bounds(self) -> dict[str, int]:
        """The bounds as the catalog snapshot carries them (gateway.hotpath.bounds.RequestBounds)."""
        return {name: getattr(self, name) for name in BOUND_NAMES}


class GlobalLimits(RateLimits):
    """Limits over every request the gateway serves (one row; edit it in admin)."""

    class Meta:
        verbose_name = verbose_name_plural = "global limits"

    def __str__(self) -> str:
        return "Global limits"

    @classmethod
    def current(cls) -> GlobalLimits:
        return cls.objects.order_by("pk").first() or cls()
