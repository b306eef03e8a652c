"""The demo catalog: one model group per upstream kind, all served by the built-in fake
provider, so `make run` answers offline through every adapter (and the e2e tests use
exactly what the demo offers), and a group that fails over from a failing deployment."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from .models import Deployment, Model, Provider
from .services import model_group_create


@dataclass(frozen=True)
class FakeModel:
    public_name: str
    provider_name: str
    kind: str
    path: str  # appended to the fake provider's URL: what the provider's SDK takes as base URL
    upstream_name: str
    input_price: str
    output_price: str
    api_version: str = ""


FAKE_MODELS = [
    FakeModel("fake-openai", "fake", "fake", "/v1", "gpt-4o-mini-fake", "0.15", "0.60"),
    FakeModel("fake-azure", "fake-azure", "azure-openai", "", "gpt-4o-mini-deployment", "0.15", "0.60",
              "2024-10-21"),
    FakeModel("fake-anthropic", "fake-anthropic", "anthropic", "", "claude-haiku-4-5-fake", "1.00", "5.00"),
    FakeModel("fake-gemini", "fake-gemini", "gemini", "", "gemini-2.5-flash-fake", "0.30", "2.50", "v1beta"),
    FakeModel("fake-cohere", "fake-cohere", "cohere", "", "command-a-fake", "2.50", "10.00"),
    FakeModel("fake-local", "fake-local", "openai-compatible", "/v1", "llama-3.1-8b-instruct", "0", "0"),
    FakeModel("fake-embed", "fake", "fake", "/v1", "text-embedding-3-small-fake", "0.02", "0"),
]
CONTEXT_WINDOW = 128_000


@dataclass(frozen=True)
class FakeDeployment:
    name: str
    upstream_name: str
    priority: int


# a group whose first choice always fails: shows failover to its second deployment (on the
# fake provider of the first FAKE_MODELS entry; a fake directive in the model name makes it fail)
FAILOVER_GROUP = "demo-failover"
FAILOVER_DEPLOYMENTS = [
    FakeDeployment("down", "gpt-4o-mini-fake[[fake:status=503]]", 0),
    FakeDeployment("up", "gpt-4o-mini-fake", 1),
]


def fake_catalog_ensure(*, fake_url: str, credential: str = "fake-upstream-key") -> list[str]:
    """Create (or leave as they are) the fake providers and the demo groups: one per
    FAKE_MODELS entry, served by one deployment, and the failover demo; returns the
    groups' public names."""
    providers: dict[str, Provider] = {}
    for spec in FAKE_MODELS:
        provider = providers.get(spec.provider_name)
        if provider is None:
            provider = Provider.objects.filter(name=spec.provider_name).first()
            if provider is None:
                provider = Provider(name=spec.provider_name, kind=spec.kind, base_url=fake_url.rstrip("/") + spec.path,
                                    api_version=spec.api_version)
                provider.set_credential(credential)  # the fake checks that one is sent, as the real APIs do
                provider.save()
            providers[spec.provider_name] = provider
        if not Model.objects.filter(public_name=spec.public_name).exists():
            model_group_create(public_name=spec.public_name, provider=provider, upstream_name=spec.upstream_name,
                               input_price_per_mtok=spec.input_price, output_price_per_mtok=spec.output_price,
                               context_window=CONTEXT_WINDOW)
    _failover_group_ensure(providers[FAKE_MODELS[0].provider_name])
    return [spec.public_name for spec in FAKE_MODELS] + [FAILOVER_GROUP]


def _failover_group_ensure(provider: Provider) -> None:
    if Model.objects.filter(public_name=FAILOVER_GROUP).exists():
        return  # as staff left it
    with transaction.atomic():
        group = Model.objects.create(public_name=FAILOVER_GROUP, strategy="priority", context_window=CONTEXT_WINDOW)
        for spec in FAILOVER_DEPLOYMENTS:
            Deployment.objects.create(group=group, provider=provider, name=spec.name, upstream_name=spec.upstream_name,
                                      priority=spec.priority, input_price_per_mtok="0.15", output_price_per_mtok="0.60")
