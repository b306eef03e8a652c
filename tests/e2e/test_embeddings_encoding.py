"""/v1/embeddings honours `encoding_format` as OpenAI does: "base64" is the vector's
little-endian float32 bytes, whatever the upstream kind. The official openai SDKs ask for
base64 by default (the npm package decodes without checking), so a float list there would
silently become a vector of zeros."""

from __future__ import annotations

import base64
import json
import os
import shutil
import struct
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.e2e.sdk import openai_client

EMBEDDING_MODELS = ["fake-openai", "fake-azure", "fake-local", "fake-gemini", "fake-cohere"]
NPM_OPENAI = "openai@6.30.1"  # runs on node 20


def _embed(gateway_url: str, secret: str, body: dict[str, object]) -> httpx.Response:
    return httpx.post(gateway_url + "/v1/embeddings", json=body, headers={"authorization": f"Bearer {secret}"}, timeout=30)


def _float32(encoded: str) -> list[float]:
    raw = base64.b64decode(encoded)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


@pytest.mark.parametrize("model", EMBEDDING_MODELS)
def test_base64_embeddings_are_little_endian_float32_of_the_float_answer(gateway_url, sdk_key, model):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    texts = ["the cat sat", "on the mat"]
    floats = _embed(gateway_url, secret, {"model": model, "input": texts, "encoding_format": "float"})
    packed = _embed(gateway_url, secret, {"model": model, "input": texts, "encoding_format": "base64"})
    assert floats.status_code == packed.status_code == 200, (floats.text, packed.text)
    for as_floats, as_base64 in zip(floats.json()["data"], packed.json()["data"], strict=True):
        assert isinstance(as_floats["embedding"], list) and isinstance(as_base64["embedding"], str)
        decoded = _float32(as_base64["embedding"])
        assert len(decoded) == len(as_floats["embedding"]) and any(decoded)
        assert all(abs(a - b) < 1e-6 for a, b in zip(decoded, as_floats["embedding"], strict=True))


@pytest.mark.parametrize("model", EMBEDDING_MODELS)
def test_python_sdk_default_embeddings_match_the_float_answer(gateway_url, sdk_key, model):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    client = openai_client(gateway_url, secret)
    default = client.embeddings.create(model=model, input="the cat sat")  # the SDK asks for base64 and decodes it
    floats = client.embeddings.create(model=model, input="the cat sat", encoding_format="float")
    assert any(default.data[0].embedding)
    assert all(abs(a - b) < 1e-6 for a, b in zip(default.data[0].embedding, floats.data[0].embedding, strict=True))
    raw = client.embeddings.with_raw_response.create(model=model, input="the cat sat", encoding_format="base64")
    assert isinstance(json.loads(raw.text)["data"][0]["embedding"], str)


@pytest.fixture(scope="module")
def npm_openai(tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    """The official `openai` npm package, installed from the registry into a temp dir."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not installed")
    where = tmp_path_factory.mktemp("npm-openai")
    try:
        result = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent", NPM_OPENAI], cwd=where,
                                capture_output=True, text=True, timeout=180)
    except subprocess.TimeoutExpired:
        pytest.skip(f"npm could not install {NPM_OPENAI} within 180 s (registry unreachable?)")
    if result.returncode != 0:
        pytest.skip(f"npm could not install {NPM_OPENAI} (registry unreachable?): {result.stderr[-300:]}")
    return where  # type: ignore[no-any-return]


NODE_SCRIPT = """
const OpenAI = require("openai");
const client = new OpenAI({ apiKey: process.env.KEY, baseURL: process.env.BASE });
(async () => {
  const out = {};
  for (const model of JSON.parse(process.env.MODELS)) {
    const byDefault = await client.embeddings.create({ model, input: "the cat sat" });
    const floats = await client.embeddings.create({ model, input: "the cat sat", encoding_format: "float" });
    out[model] = [byDefault.data[0].embedding, floats.data[0].embedding];
  }
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
"""


def test_npm_sdk_default_embeddings_are_not_zeros(gateway_url, sdk_key, npm_openai):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    result = subprocess.run(["node", "-e", NODE_SCRIPT], cwd=npm_openai, capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, KEY=secret, BASE=gateway_url + "/v1", MODELS=json.dumps(EMBEDDING_MODELS)))
    assert result.returncode == 0, result.stderr[-2000:]
    for model, (by_default, floats) in json.loads(result.stdout).items():
        assert any(by_default), f"{model}: the npm SDK decoded a vector of zeros"
        assert all(abs(a - b) < 1e-6 for a, b in zip(by_default, floats, strict=True)), model
