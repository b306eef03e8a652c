"""`manage.py cache_eval`: labelled pairs through the real semantic cache path (the real
model, the workspace's pgvector table, the guard), one JSON line out, nothing left behind."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command
from django_tenants.utils import schema_context

from cache.models import SemanticEntry

PAIRS = [
    {"cached": "How do I reverse a list in Python?", "query": "how can I reverse a python list", "should_hit": True},
    {"cached": "What is the boiling point of water at sea level?",
     "query": "At sea level, what is the boiling point of water?", "should_hit": True},
    {"cached": "Translate 'good morning' into Spanish.", "query": "Translate 'good morning' into German.",
     "should_hit": False},
    {"cached": "Convert 10 km to miles.", "query": "Convert 10 miles to km.", "should_hit": False},
    {"cached": "Is coffee bad for your health?", "query": "Is coffee not bad for your health?", "should_hit": False},
]


def _run(path, *extra: str) -> dict:  # type: ignore[no-untyped-def]
    out = io.StringIO()
    call_command("cache_eval", "--pairs", str(path), *extra, stdout=out)
    lines = out.getvalue().strip().splitlines()
    assert len(lines) == 1, "one JSON line"
    return json.loads(lines[0])  # type: ignore[no-any-return]


def test_cache_eval_prints_recall_and_false_hit_rate_and_leaves_no_entries(tmp_path, make_workspace):  # type: ignore[no-untyped-def]
    workspace = make_workspace()
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(json.dumps(p) for p in PAIRS) + "\n")
    result = _run(path, "--workspace", workspace.slug)
    assert set(result) == {"recall", "false_hit_rate", "n"} and result["n"] == 5
    assert result == {"recall": 1.0, "false_hit_rate": 0.0, "n": 5}
    # plain cosine at a low threshold serves the near misses: the guard is what stops them
    baseline = _run(path, "--workspace", workspace.slug, "--plain-cosine", "--threshold", "0.6")
    assert baseline["recall"] == 1.0 and baseline["false_hit_rate"] > 0
    with schema_context(workspace.schema_name):
        assert not SemanticEntry.objects.exists()


def test_cache_eval_names_the_bad_line(tmp_path, make_workspace):  # type: ignore[no-untyped-def]
    make_workspace()
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps(PAIRS[0]) + "\n" + json.dumps({"cached": "x", "query": "y"}) + "\n")
    with pytest.raises(CommandError, match=r"pairs.jsonl:2: expected"):
        _run(path)


def test_verifier_training_is_deterministic_and_writes_its_threshold(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from pathlib import Path

    pairs = Path(__file__).resolve().parent.parent / "data" / "cache_pairs_dev.jsonl"
    subset = tmp_path / "pairs.jsonl"
    subset.write_text("\n".join(pairs.read_text().splitlines()[:160]) + "\n")
    outputs = []
    for name in ("a.json", "b.json"):
        call_command("cache_verifier_train", "--pairs", str(subset), "--out", str(tmp_path / name), stdout=io.StringIO())
        outputs.append(json.loads((tmp_path / name).read_text()))
    assert outputs[0] == outputs[1], "the same pairs give the same weights"
    weights = outputs[0]
    assert weights["pairs"] == 160 and 0.5 <= weights["threshold"] < 1
    assert len(weights["w1"]) == 16 and len(weights["w1"][0]) == len(weights["mean"]) == 12
