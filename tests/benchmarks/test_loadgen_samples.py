"""benchmarks/loadgen.py --samples: every request's latency comes back with the summary,
for make bench to merge the slices of a test."""

from __future__ import annotations

import json
from typing import Any

from benchmarks import loadgen

BODY = json.dumps({"model": "fake-openai", "messages": [{"role": "user", "content": "hello {n}"}]})


def test_samples_come_back_one_per_request(fake_provider_url: str, capsys: Any) -> None:
    url = f"{fake_provider_url}/v1/chat/completions"
    assert loadgen.main(["--url", url, "--body", BODY, "-c", "2", "--requests", "12", "--json", "--samples"]) == 0
    result = json.loads(capsys.readouterr().out)
    latencies = result["samples_ms"]["latency_ms"]
    assert len(latencies) == result["requests"] == 12
    assert round(max(latencies), 2) == result["latency_ms"]["max"]
    assert result["samples_ms"]["ttfb_ms"] == []

    stream = json.dumps({"model": "fake-openai", "stream": True, "messages": [{"role": "user", "content": "hi {n}"}]})
    assert loadgen.main(["--url", url, "--body", stream, "-c", "2", "--requests", "4", "--json", "--samples",
                         "--stream"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result["samples_ms"]["ttfb_ms"]) == 4
    assert all(t <= total for t, total in zip(sorted(result["samples_ms"]["ttfb_ms"]),
                                              sorted(result["samples_ms"]["latency_ms"]), strict=True))

    assert loadgen.main(["--url", url, "--body", BODY, "-c", "1", "--requests", "2", "--json"]) == 0
    assert "samples_ms" not in json.loads(capsys.readouterr().out)  # only when asked
