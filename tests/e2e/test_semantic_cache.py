"""The semantic cache through the running gateway: a paraphrase is answered from the cache
(the real embedding service, pgvector in the workspace's schema, the guard), a near miss is
not, streams are stored and replayed, the native Anthropic path caches too, and one
workspace never sees another's entries."""

from __future__ import annotations

import time

import openai
import pytest
from django_tenants.utils import schema_context

from cache.models import SemanticEntry
from keys.models import ApiKey
from keys.services import api_key_create, api_key_policy_update
from tenants.services import workspace_policy_update
from tests.e2e.sdk import anthropic_client, events_of, fake_stats, openai_client

ORIGINAL = "What is the capital of France?"
PARAPHRASE = "Could you tell me what the capital of France is?"
NEAR_MISS = "What is the capital of Germany?"
PARAPHRASES = ["Which city is the capital of France?", "what's france's capital city?",
               "Please tell me the capital of France.", "Tell me the capital of France, please."]


def _ask(client, prompt: str, **kwargs):  # type: ignore[no-untyped-def]
    return client.chat.completions.with_raw_response.create(
        model=kwargs.pop("model", "fake-openai"), temperature=0, messages=[{"role": "user", "content": prompt}], **kwargs)


def _stored(workspace, count: int = 1, timeout: float = 15) -> list[SemanticEntry]:  # type: ignore[no-untyped-def]
    """Entries are written after the answer is sent: wait for them."""
    deadline = time.monotonic() + timeout
    while True:
        with schema_context(workspace.schema_name):
            entries = list(SemanticEntry.objects.order_by("pk"))
        if len(entries) >= count or time.monotonic() > deadline:
            return entries
        time.sleep(0.1)


@pytest.fixture
def semantic_key(make_workspace, fake_models):  # type: ignore[no-untyped-def]
    workspace = make_workspace()
    workspace_policy_update(workspace=workspace, cache_semantic=True)
    key, secret = api_key_create(workspace=workspace, name="semantic")
    return workspace, key, secret


def test_a_paraphrase_is_answered_from_the_semantic_cache(gateway_url, fake_provider_url, semantic_key):  # type: ignore[no-untyped-def]
    workspace, _, secret = semantic_key
    client = openai_client(gateway_url, secret)
    first = _ask(client, ORIGINAL)
    assert first.headers["x-aiproxy-cache"] == "miss"
    [entry] = _stored(workspace)
    assert entry.prompt == ORIGINAL and entry.model == "fake-openai" and float(entry.cost) > 0
    before = fake_stats(fake_provider_url)["requests"]
    second = _ask(client, PARAPHRASE)
    assert second.headers["x-aiproxy-cache"] == "hit-semantic"
    assert 0.5 < float(second.headers["x-aiproxy-cache-similarity"]) < 1
    assert fake_stats(fake_provider_url)["requests"] == before, "a hit never reaches the upstream"
    # the fake provider's answers echo the prompt: this one was given to the original question
    assert second.parse().choices[0].message.content == first.parse().choices[0].message.content
    hit = next(e for e in events_of(workspace) if e.cache_status == "hit-semantic")
    assert float(hit.cost) == 0 and float(hit.cost_saved) > 0 and 0.5 < hit.cache_similarity < 1


def test_a_near_miss_goes_to_the_upstream(gateway_url, fake_provider_url, semantic_key):  # type: ignore[no-untyped-def]
    workspace, _, secret = semantic_key
    client = openai_client(gateway_url, secret)
    first = _ask(client, ORIGINAL)
    _stored(workspace)
    before = fake_stats(fake_provider_url)["requests"]
    other = _ask(client, NEAR_MISS)
    assert other.headers["x-aiproxy-cache"] == "miss"
    assert fake_stats(fake_provider_url)["requests"] == before + 1
    assert other.parse().choices[0].message.content != first.parse().choices[0].message.content


def test_a_semantic_hit_streams_in_the_anthropic_format(gateway_url, semantic_key):  # type: ignore[no-untyped-def]
    workspace, _, secret = semantic_key
    claude = anthropic_client(gateway_url, secret)
    first = claude.messages.create(model="fake-gemini", max_tokens=200, extra_body={"temperature": 0},
                                   messages=[{"role": "user", "content": ORIGINAL}])
    _stored(workspace)
    raw = claude.messages.with_raw_response.create(model="fake-gemini", max_tokens=200, extra_body={"temperature": 0},
                                                   stream=True, messages=[{"role": "user", "content": PARAPHRASE}])
    assert raw.headers["x-aiproxy-cache"] == "hit-semantic"
    raw.parse().close()
    with claude.messages.stream(model="fake-gemini", max_tokens=200, extra_body={"temperature": 0},
                                messages=[{"role": "user", "content": PARAPHRASE}]) as stream:
        replayed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert replayed == first.content[0].text and final.stop_reason == "end_turn"


def test_streamed_answers_are_stored_and_native_anthropic_answers_are_cached(gateway_url, fake_provider_url, semantic_key):  # type: ignore[no-untyped-def]
    workspace, _, secret = semantic_key
    client = openai_client(gateway_url, secret)
    streamed = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
        model="fake-openai", temperature=0, stream=True, messages=[{"role": "user", "content": "Name three rivers in Peru."}])
        if c.choices)
    _stored(workspace)
    again = _ask(client, "Name three rivers in Peru.")
    assert again.headers["x-aiproxy-cache"] == "hit-exact"
    assert again.parse().choices[0].message.content == streamed
    # Anthropic client -> Anthropic upstream: the native path, bytes passed through, cached too
    claude = anthropic_client(gateway_url, secret)
    with claude.messages.stream(model="fake-anthropic", max_tokens=200, extra_body={"temperature": 0},
                                messages=[{"role": "user", "content": "Describe the Andes briefly."}]) as stream:
        text = "".join(stream.text_stream)
    _stored(workspace, 2)
    before = fake_stats(fake_provider_url)["requests"]
    raw = claude.messages.with_raw_response.create(model="fake-anthropic", max_tokens=200, extra_body={"temperature": 0},
                                                   messages=[{"role": "user", "content": "Describe the Andes briefly."}])
    assert raw.headers["x-aiproxy-cache"] == "hit-exact"
    assert raw.parse().content[0].text == text
    assert fake_stats(fake_provider_url)["requests"] == before


def test_semantic_entries_are_isolated_between_workspaces(gateway_url, fake_provider_url, semantic_key, make_workspace):  # type: ignore[no-untyped-def]
    workspace, _, secret = semantic_key
    other = make_workspace()
    workspace_policy_update(workspace=other, cache_semantic=True)
    other_key, other_secret = api_key_create(workspace=other, name="other")
    _ask(openai_client(gateway_url, secret), ORIGINAL)
    _stored(workspace)
    before = fake_stats(fake_provider_url)["requests"]
    assert _ask(openai_client(gateway_url, other_secret), PARAPHRASE).headers["x-aiproxy-cache"] == "miss"
    assert fake_stats(fake_provider_url)["requests"] == before + 1
    assert {entry.key_id for entry in _stored(other)} == {other_key.pk}
    with schema_context(workspace.schema_name):
        assert SemanticEntry.objects.count() == 1, "the other workspace's answer stayed in its own schema"


def test_exact_only_header_and_key_settings_turn_semantic_matching_off(gateway_url, semantic_key):  # type: ignore[no-untyped-def]
    workspace, key, secret = semantic_key
    client = openai_client(gateway_url, secret)
    _ask(client, ORIGINAL)
    _stored(workspace)
    # each step asks a different paraphrase: a miss stores its own exact entry
    assert _ask(client, PARAPHRASES[0], extra_headers={"x-aiproxy-cache": "exact-only"}).headers["x-aiproxy-cache"] == "miss"
    with schema_context(workspace.schema_name):
        key = ApiKey.objects.get(pk=key.pk)
    api_key_policy_update(workspace=workspace, key=key, cache_semantic_threshold=0.99)
    time.sleep(1.2)  # hot key records refresh within a second
    assert _ask(client, PARAPHRASES[1]).headers["x-aiproxy-cache"] == "miss", "below the key's own threshold"
    api_key_policy_update(workspace=workspace, key=key, cache_semantic_threshold=None, cache_semantic=False)
    time.sleep(1.2)
    assert _ask(client, PARAPHRASES[2]).headers["x-aiproxy-cache"] == "miss"
    api_key_policy_update(workspace=workspace, key=key, cache_semantic=None)  # back to the workspace's: on
    time.sleep(1.2)
    assert _ask(client, PARAPHRASES[3]).headers["x-aiproxy-cache"] == "hit-semantic"


def test_cut_streams_and_long_prompts_are_not_stored(gateway_url, semantic_key):  # type: ignore[no-untyped-def]
    workspace, _, secret = semantic_key
    client = openai_client(gateway_url, secret)
    with pytest.raises(openai.APIError):
        list(client.chat.completions.create(model="fake-openai", temperature=0, stream=True,
                                            messages=[{"role": "user", "content": "[[fake:cut]] [[fake:words=40]]"}]))
    # a last turn longer than the model's window is exact-cached only
    long_prompt = "Summarise this report. " + " ".join(f"Paragraph {i} says the sales grew." for i in range(80))
    _ask(client, long_prompt)
    _ask(client, ORIGINAL)
    entries = _stored(workspace)
    time.sleep(1)
    with schema_context(workspace.schema_name):
        prompts = list(SemanticEntry.objects.values_list("prompt", flat=True))
    assert prompts == [ORIGINAL], "neither the cut stream nor the over-long prompt was stored"
    assert entries
    assert _ask(client, long_prompt).headers["x-aiproxy-cache"] == "hit-exact"
