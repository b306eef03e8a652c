"""The semantic cache's learned verifier: does a cached prompt ask exactly what the new one
asks? Runs in the embedding service (gateway/hotpath/embedder.py), after the vector search and
after the hand-written hard rules (gateway/hotpath/semantic_guard.py: numbers, negation, entities,
units, direction...) have let a candidate through.

Why a learned step: a cosine threshold cannot tell "How can I thaw chicken quickly?" (a
paraphrase of "defrost") from "What is the population of France?" (not "capital"): both
swap one word for a related one, at the same similarity. The model's contextual token
embeddings can: each word of one prompt is aligned with its most similar word of the
other, and a word that finds no counterpart is evidence of a different question. Twelve
alignment features feed a two-layer perceptron (PyTorch, trained by `manage.py
cache_verifier_train` on the labelled pairs in tests/data/; its weights, a few hundred
numbers, live in gateway/hotpath/data/semantic_verifier.json and are evaluated with numpy).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

WEIGHTS = Path(__file__).resolve().parent / "data" / "semantic_verifier.json"
FEATURES = 12
SPECIAL_TOKENS = frozenset({"[CLS]", "[SEP]", "[PAD]"})


@dataclass(frozen=True, slots=True)
class Tokens:
    """A prompt's content-token embeddings (normalised rows), from one forward pass."""

    vectors: Any  # (n, 384) float32


def tokens_from(output: dict[str, Any], tokenizer: Any) -> Tokens:
    """Content tokens (no [CLS]/[SEP], no punctuation) of one sentence-transformers output."""
    mask = output["attention_mask"].bool()
    ids = output["input_ids"][mask].tolist()
    embeddings = output["token_embeddings"][mask].float().numpy()
    names = tokenizer.convert_ids_to_tokens(ids)
    keep = [i for i, name in enumerate(names) if name not in SPECIAL_TOKENS and any(c.isalnum() for c in name)]
    vectors = embeddings[keep] if keep else embeddings[:1]
    vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)
    return Tokens(vectors.astype(np.float32))


def pair_features(similarity: float, a: Tokens, b: Tokens) -> Any:
    """How well each prompt's words are covered by the other's."""
    sims = a.vectors @ b.vectors.T
    a_best, b_best = sims.max(axis=1), sims.max(axis=0)
    return np.array([
        similarity, a_best.min(), b_best.min(), a_best.mean(), b_best.mean(),
        np.percentile(a_best, 20), np.percentile(b_best, 20),
        (a_best < 0.6).mean(), (b_best < 0.6).mean(), (a_best < 0.75).mean(), (b_best < 0.75).mean(),
        min(a_best.min(), b_best.min()),
    ], dtype=np.float32)


class Verifier:
    """The trained perceptron, evaluated with numpy."""

    def __init__(self, path: Path = WEIGHTS) -> None:
        data = json.loads(path.read_text())
        self.mean = np.array(data["mean"], dtype=np.float32)
        self.scale = np.array(data["scale"], dtype=np.float32)
        self.w1 = np.array(data["w1"], dtype=np.float32)
        self.b1 = np.array(data["b1"], dtype=np.float32)
        self.w2 = np.array(data["w2"], dtype=np.float32)
        self.b2 = float(data["b2"])
        self.threshold = float(data["threshold"])

    def probability(self, features: Any) -> float:
        hidden = np.tanh(((features - self.mean) / self.scale) @ self.w1.T + self.b1)
        return float(1 / (1 + np.exp(-(hidden @ self.w2 + self.b2))))
