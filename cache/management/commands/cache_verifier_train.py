"""`manage.py cache_verifier_train --pairs A.jsonl --pairs B.jsonl`: train the semantic
cache's verifier (gateway/hotpath/verifier.py) on labelled prompt pairs and write its weights.

Pairs the hard rules already reject, or below the cosine floor, are left out: the verifier
only ever sees the others. The probability threshold is chosen by 5-fold cross-validation
as the lowest one whose held-out false-hit rate stays under --max-false-hits; the figures
go into the weights file. Deterministic (fixed seeds): the same pairs give the same file.
"""

from __future__ import annotations

import json
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

import numpy as np
from django.core.management.base import BaseCommand

from cache.management.commands.cache_eval import _pairs
from gateway.hotpath.embedder import EmbeddingModel
from gateway.hotpath.semantic import CANDIDATE_FLOOR
from gateway.hotpath.semantic_guard import hard_reject
from gateway.hotpath.verifier import FEATURES, WEIGHTS, pair_features

HIDDEN = 16
THRESHOLDS = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97)


def _train(x: Any, y: Any, mean: Any, scale: Any, seed: int = 0) -> Any:
    import torch

    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(FEATURES, HIDDEN), torch.nn.Tanh(), torch.nn.Linear(HIDDEN, 1))
    optimiser = torch.optim.Adam(net.parameters(), lr=0.01, weight_decay=1e-3)
    inputs = torch.tensor((x - mean) / scale, dtype=torch.float32)
    labels = torch.tensor(y, dtype=torch.float32)
    # a false hit (a wrong answer served) costs twice a miss (an upstream call)
    weight = torch.tensor(0.5)
    for _ in range(1500):
        optimiser.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(inputs).squeeze(1), labels, pos_weight=weight)
        loss.backward()
        optimiser.step()
    return net


def _predict(net: Any, x: Any, mean: Any, scale: Any) -> Any:
    import torch

    with torch.no_grad():
        return torch.sigmoid(net(torch.tensor((x - mean) / scale, dtype=torch.float32)).squeeze(1)).numpy()


class Command(BaseCommand):
    help = "Train the semantic cache's verifier on labelled prompt pairs."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--pairs", action="append", required=True, type=Path, help="JSONL file (repeatable)")
        parser.add_argument("--out", type=Path, default=WEIGHTS)
        parser.add_argument("--max-false-hits", type=float, default=0.015, help="cross-validated false-hit rate ceiling")

    def handle(self, *args: Any, **options: Any) -> None:
        pairs = [pair for path in options["pairs"] for pair in _pairs(path)]
        model = EmbeddingModel()
        texts = list(dict.fromkeys([p["cached"] for p in pairs] + [p["query"] for p in pairs]))
        encoded = dict(zip(texts, model.embed_full(texts), strict=True))
        rows, labels = [], []
        for pair in pairs:
            a, b = encoded[pair["cached"]], encoded[pair["query"]]
            if a is None or b is None or hard_reject(pair["cached"], pair["query"]) is not None:
                continue
            similarity = float(np.frombuffer(a[0], "<f4") @ np.frombuffer(b[0], "<f4"))
            if similarity < CANDIDATE_FLOOR:
                continue
            rows.append(pair_features(similarity, a[1], b[1]))
            labels.append(float(pair["should_hit"]))
        x, y = np.vstack(rows), np.array(labels)
        mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
        # 5-fold cross-validation: out-of-fold probabilities for every pair
        order = np.random.default_rng(0).permutation(len(y))
        folds = np.array_split(order, 5)
        held_out = np.zeros(len(y))
        for k, test in enumerate(folds):
            train = np.concatenate([f for j, f in enumerate(folds) if j != k])
            held_out[test] = _predict(_train(x[train], y[train], mean, scale), x[test], mean, scale)
        negatives_total = sum(1 for p in pairs if not p["should_hit"])
        positives_total = sum(1 for p in pairs if p["should_hit"])
        chosen: dict[str, Any] | None = None
        for threshold in THRESHOLDS:
            hits = held_out >= threshold
            false_hit_rate = float((hits & (y == 0)).sum()) / negatives_total
            recall = float((hits & (y == 1)).sum()) / positives_total
            if options["verbosity"] > 1:
                self.stderr.write(f"threshold {threshold}: cv recall {recall:.4f}, false-hit rate {false_hit_rate:.4f}")
            if false_hit_rate <= options["max_false_hits"] and chosen is None:
                chosen = {"threshold": threshold, "cv_recall": round(recall, 4), "cv_false_hit_rate": round(false_hit_rate, 4)}
        if chosen is None:
            chosen = {"threshold": THRESHOLDS[-1], "cv_recall": None, "cv_false_hit_rate": None}
        net = _train(x, y, mean, scale)
        first, second = net[0], net[2]
        weights = {
            "about": "semantic cache verifier (gateway/hotpath/verifier.py); trained by manage.py cache_verifier_train",
            "trained_on": [str(p) for p in options["pairs"]], "pairs": len(pairs), "training_rows": len(y),
            **chosen,
            "mean": mean.round(6).tolist(), "scale": scale.round(6).tolist(),
            "w1": first.weight.detach().numpy().round(6).tolist(), "b1": first.bias.detach().numpy().round(6).tolist(),
            "w2": second.weight.detach().numpy()[0].round(6).tolist(), "b2": round(float(second.bias.detach()[0]), 6),
        }
        options["out"].parent.mkdir(parents=True, exist_ok=True)
        options["out"].write_text(json.dumps(weights, indent=1) + "\n")
        self.stdout.write(json.dumps({k: v for k, v in weights.items() if k in (
            "pairs", "training_rows", "threshold", "cv_recall", "cv_false_hit_rate")}))
