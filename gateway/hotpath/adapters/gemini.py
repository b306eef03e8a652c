"""Google Gemini API upstreams (generativelanguage.googleapis.com): generateContent,
streamGenerateContent?alt=sse and batchEmbedContents, translated from and to OpenAI shapes.

Gemini gives function calls no ids, so the adapter makes `call_<hex>` ids. Gemini 3
models also attach an opaque thought signature to function calls and reject a later
request whose history lacks it; OpenAI clients only echo the tool call id back, so the
signature travels inside the id (`call_<hex>__ts__<base64url>`) and is restored from it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson

from .. import upstream
from ..directory import Deployment
from ..errors import GatewayError, invalid_request
from .interface import (
    Usage,
    body_read,
    call_id,
    chunk_make,
    completion_id,
    completion_make,
    credential_rejected,
    image_data_url_parse,
    now,
    sse_events,
    sse_parse,
    unsupported,
    upstream_invalid,
    upstream_post,
    usage_chunk_make,
)

WIRE = "gemini"
DEFAULT_API_VERSION = "v1beta"
# user: no equivalent; store/metadata: OpenAI-side storage hints
IGNORED_PARAMS: tuple[str, ...] = ("user", "store", "metadata")
HANDLED = frozenset({
    "model", "messages", "stream", "stream_options", "temperature", "top_p", "n", "stop", "max_tokens",
    "max_completion_tokens", "presence_penalty", "frequency_penalty", "seed", "response_format", "tools",
    "tool_choice", "parallel_tool_calls", "logprobs", "top_logprobs", "logit_bias", "modalities", *IGNORED_PARAMS,
})
EMBEDDING_KEYS = frozenset({"model", "input", "dimensions", "encoding_format", "user"})
EMBED_BATCH = 100  # batchEmbedContents takes at most 100 requests
SIGNATURE_MARK = "__ts__"
# Gemini 3 accepts this documented placeholder where a real signature was lost
SIGNATURE_PLACEHOLDER = "skip_thought_signature_validator"
FILTERED = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
            "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION"}
DETAIL_RESOLUTION = {"low": "MEDIA_RESOLUTION_LOW", "high": "MEDIA_RESOLUTION_HIGH"}
AUDIO_TYPES = {"wav": "audio/wav", "mp3": "audio/mp3"}
ERROR_TYPES = {400: "invalid_request_error", 404: "invalid_request_error", 413: "invalid_request_error",
               429: "rate_limit_error"}


# --- request translation -------------------------------------------------------------

def _url(deployment: Deployment, method: str) -> str:
    model = deployment.upstream_name.removeprefix("models/")
    return f"{deployment.base_url}/{deployment.api_version or DEFAULT_API_VERSION}/models/{model}:{method}"


def _headers(deployment: Deployment) -> dict[str, str]:
    headers = {"content-type": "application/json"}
    if deployment.credential:
        headers["x-goog-api-key"] = deployment.credential
    return headers


def tool_call_id(signature: str | None) -> str:
    """A fresh OpenAI tool call id, carrying the call's thought signature if it has one."""
    if not signature:
        return call_id()
    return call_id() + SIGNATURE_MARK + signature.replace("+", "-").replace("/", "_").rstrip("=")


def signature_of(tool_call_id: str) -> str | None:
    _, mark, encoded = tool_call_id.partition(SIGNATURE_MARK)
    if not mark or not encoded:
        return None
    standard = encoded.replace("-", "+").replace("_", "/")
    return standard + "=" * (-len(standard) % 4)


def _text_only(deployment: Deployment, content: Any, where: str) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    if not isinstance(content, list):
        raise invalid_request(f"'{where}' must be a string or a list of content parts.", param=where)
    texts = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            texts.append(str(part.get("text") or ""))
        elif kind != "refusal":
            raise unsupported(deployment, f"{where}[{j}]", f"Only text parts are accepted here, not '{kind}'.")
    return "\n".join(texts)


def _media_part(deployment: Deployment, part: dict[str, Any], where: str, resolutions: set[str]) -> dict[str, Any]:
    kind = part.get("type")
    if kind == "image_url":
        image = part.get("image_url") or {}
        url = image.get("url") if isinstance(image, dict) else image
        parsed = image_data_url_parse(str(url or ""))
        if parsed is None:
            raise unsupported(deployment, f"{where}.image_url", "Gemini only reads images it was sent inline or "
                              "uploaded to its Files API; send the image as a base64 data: URL.")
        detail = image.get("detail") if isinstance(image, dict) else None
        if detail in DETAIL_RESOLUTION:
            resolutions.add(DETAIL_RESOLUTION[detail])
        elif detail not in (None, "auto"):
            raise unsupported(deployment, f"{where}.image_url.detail", "Use 'low', 'high' or 'auto'.")
        return {"inlineData": {"mimeType": parsed[0], "data": parsed[1]}}
    if kind == "input_audio":
        audio = part.get("input_audio") or {}
        if audio.get("format") not in AUDIO_TYPES or not audio.get("data"):
            raise unsupported(deployment, f"{where}.input_audio", "Send base64 'data' with format 'wav' or 'mp3'.")
        return {"inlineData": {"mimeType": AUDIO_TYPES[audio["format"]], "data": audio["data"]}}
    if kind == "file":
        file = part.get("file") or {}
        parsed = image_data_url_parse(str(file.get("file_data") or ""))
        if parsed is None:
            raise unsupported(deployment, f"{where}.file", "Send the file inline as a base64 data: URL in "
                              "'file_data'; file ids cannot be read by Gemini.")
        return {"inlineData": {"mimeType": parsed[0], "data": parsed[1]}}
    raise unsupported(deployment, where, f"Content parts of type '{kind}' cannot be sent to Gemini.")


def _user_parts(deployment: Deployment, content: Any, where: str, resolutions: set[str]) -> list[dict[str, Any]]:
    if content is None or isinstance(content, str):
        return [{"text": content or " "}]
    if not isinstance(content, list):
        raise invalid_request(f"'{where}' must be a string or a list of content parts.", param=where)
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        if not isinstance(part, dict):
            raise invalid_request(f"'{where}[{j}]' must be an object.", param=f"{where}[{j}]")
        if part.get("type") == "text":
            if part.get("text"):
                parts.append({"text": str(part["text"])})
        else:
            parts.append(_media_part(deployment, part, f"{where}[{j}]", resolutions))
    return parts or [{"text": " "}]


def _arguments(raw: Any, where: str) -> dict[str, Any]:
    try:
        value = orjson.loads(raw) if isinstance(raw, str) and raw.strip() else raw or {}
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise invalid_request(f"'{where}' must be a JSON object to be sent to Gemini.", param=where)
    return value


def _tool_result(content: str) -> Any:
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        return content


MESSAGE_KEYS = {
    "system": {"role", "content"}, "developer": {"role", "content"}, "user": {"role", "content"},
    "assistant": {"role", "content", "tool_calls", "refusal"}, "tool": {"role", "content", "tool_call_id"},
}


def contents_build(deployment: Deployment, messages: list[Any]) -> tuple[list[dict[str, Any]], list[str], set[str]]:
    """Gemini contents, system instruction texts and media resolutions asked for by image `detail`."""
    contents: list[dict[str, Any]] = []
    system: list[str] = []
    resolutions: set[str] = set()
    call_names: dict[str, str] = {}
    third_gen = deployment.upstream_name.removeprefix("models/").startswith("gemini-3")

    def add(role: str, parts: list[dict[str, Any]]) -> None:
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)  # the API wants one turn per role change
        else:
            contents.append({"role": role, "parts": parts})

    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise invalid_request(f"'messages[{i}]' must be an object.", param=f"messages[{i}]")
        role = message.get("role")
        allowed = MESSAGE_KEYS.get(str(role))
        if allowed is None:
            raise unsupported(deployment, f"messages[{i}].role", f"Role '{role}' cannot be sent to Gemini.")
        for key, value in message.items():
            if key not in allowed and value is not None:
                raise unsupported(deployment, f"messages[{i}].{key}", "Gemini has no equivalent.")
        where = f"messages[{i}].content"
        if role in ("system", "developer"):
            system.append(_text_only(deployment, message.get("content"), where))
        elif role == "user":
            add("user", _user_parts(deployment, message.get("content"), where, resolutions))
        elif role == "assistant":
            text = _text_only(deployment, message.get("content"), where)
            parts: list[dict[str, Any]] = [{"text": text}] if text else []
            for j, call in enumerate(message.get("tool_calls") or []):
                if not isinstance(call, dict):
                    raise invalid_request(f"'messages[{i}].tool_calls[{j}]' must be an object.",
                                          param=f"messages[{i}].tool_calls[{j}]")
                function = call.get("function") or {}
                name = function.get("name")
                if call.get("type", "function") != "function" or not name:
                    raise unsupported(deployment, f"messages[{i}].tool_calls[{j}]", "Only function calls with a name "
                                      "can be sent to Gemini.")
                call_names[str(call.get("id"))] = name
                part: dict[str, Any] = {"functionCall": {
                    "name": name, "args": _arguments(function.get("arguments"), f"messages[{i}].tool_calls[{j}].function.arguments")}}
                signature = signature_of(str(call.get("id") or ""))
                if signature:
                    part["thoughtSignature"] = signature
                elif third_gen and j == 0:
                    part["thoughtSignature"] = SIGNATURE_PLACEHOLDER
                parts.append(part)
            if parts:
                add("model", parts)
        else:
            name = call_names.get(str(message.get("tool_call_id")))
            if name is None:
                raise invalid_request(f"'messages[{i}].tool_call_id' does not match a tool call of an earlier "
                                      "assistant message.", param=f"messages[{i}].tool_call_id")
            result = _tool_result(_text_only(deployment, message.get("content"), where))
            add("user", [{"functionResponse": {"name": name, "response": {"output": result}}}])
    if not contents:
        raise invalid_request("'messages' must contain at least one user or assistant message.", param="messages")
    return contents, system, resolutions


def _tools_build(deployment: Deployment, tools: Any) -> tuple[list[dict[str, Any]], bool]:
    """functionDeclarations, and whether any tool asked for strict (schema-validated) calls."""
    if not isinstance(tools, list):
        raise invalid_request("'tools' must be a list.", param="tools")
    declarations = []
    strict = False
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or tool.get("type") != "function":
            kind = tool.get("type") if isinstance(tool, dict) else None
            raise unsupported(deployment, f"tools[{i}].type", f"Gemini only takes function tools, not '{kind}'.")
        function = tool.get("function") or {}
        declaration: dict[str, Any] = {"name": function.get("name")}
        if function.get("description"):
            declaration["description"] = function["description"]
        if function.get("parameters"):
            declaration["parametersJsonSchema"] = function["parameters"]
        strict = strict or bool(function.get("strict"))
        declarations.append(declaration)
    return declarations, strict


def _tool_config(deployment: Deployment, choice: Any, declarations: list[dict[str, Any]], strict: bool) -> dict[str, Any]:
    auto = "VALIDATED" if strict else "AUTO"  # VALIDATED: calls must match their schema, like OpenAI's strict
    if choice in (None, "auto"):
        return {"mode": auto}
    if choice == "none":
        return {"mode": "NONE"}
    if choice == "required":
        return {"mode": "ANY"}
    if isinstance(choice, dict) and choice.get("type") == "function":
        name = (choice.get("function") or {}).get("name")
        if name not in {d["name"] for d in declarations}:
            raise invalid_request(f"tool_choice names '{name}', which is not in 'tools'.", param="tool_choice")
        return {"mode": "ANY", "allowedFunctionNames": [name]}
    if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        allowed = choice.get("allowed_tools") or {}
        names = [(t.get("function") or {}).get("name") for t in allowed.get("tools") or [] if isinstance(t, dict)]
        if allowed.get("mode") == "required":
            return {"mode": "ANY", "allowedFunctionNames": names}
        if allowed.get("mode") == "auto":
            declarations[:] = [d for d in declarations if d["name"] in names]  # only those are offered
            return {"mode": auto}
    raise unsupported(deployment, "tool_choice", "Use 'auto', 'none', 'required' or a named function.")


def _generation_config(deployment: Deployment, payload: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for key, name in (("temperature", "temperature"), ("top_p", "topP"), ("seed", "seed"),
                      ("presence_penalty", "presencePenalty"), ("frequency_penalty", "frequencyPenalty")):
        if payload.get(key) is not None:
            config[name] = payload[key]
    max_tokens = payload.get("max_completion_tokens") or payload.get("max_tokens")
    if max_tokens is not None:
        config["maxOutputTokens"] = max_tokens
    stop = payload.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    if (payload.get("n") or 1) != 1:
        config["candidateCount"] = payload["n"]
    fmt = payload.get("response_format") or {}
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "json_object":
        config["responseMimeType"] = "application/json"
    elif kind == "json_schema":
        config["responseMimeType"] = "application/json"
        config["responseJsonSchema"] = (fmt.get("json_schema") or {}).get("schema") or {"type": "object"}
    elif kind not in (None, "text"):
        raise unsupported(deployment, "response_format", f"Type '{kind}' has no Gemini equivalent.")
    return config


def _unmappable_check(deployment: Deployment, payload: dict[str, Any]) -> None:
    for key, value in payload.items():
        if key not in HANDLED and value is not None:
            raise unsupported(deployment, key, "Gemini has no equivalent.")
    if payload.get("logprobs") or payload.get("top_logprobs"):
        param = "logprobs" if payload.get("logprobs") else "top_logprobs"
        raise unsupported(deployment, param, "Token log probabilities are not translated from Gemini.")
    if payload.get("logit_bias"):
        raise unsupported(deployment, "logit_bias", "Gemini has no logit bias.")
    if payload.get("modalities") not in (None, ["text"]):
        raise unsupported(deployment, "modalities", "Only text output is translated from Gemini.")


def request_build(deployment: Deployment, payload: dict[str, Any]) -> dict[str, Any]:
    """The generateContent body for an OpenAI chat request (raises before any network call)."""
    _unmappable_check(deployment, payload)
    contents, system, resolutions = contents_build(deployment, payload.get("messages") or [])
    body: dict[str, Any] = {"contents": contents}
    instruction = "\n\n".join(text for text in system if text)
    if instruction:
        body["systemInstruction"] = {"parts": [{"text": instruction}]}
    if payload.get("tools"):
        declarations, strict = _tools_build(deployment, payload["tools"])
        calling = _tool_config(deployment, payload.get("tool_choice"), declarations, strict)
        body["tools"] = [{"functionDeclarations": declarations}]
        body["toolConfig"] = {"functionCallingConfig": calling}
    elif payload.get("tool_choice") not in (None, "auto", "none"):
        raise invalid_request("'tool_choice' needs 'tools'.", param="tool_choice")
    config = _generation_config(deployment, payload)
    if len(resolutions) > 1:
        raise unsupported(deployment, "messages", "Gemini takes one media resolution per request; use the same "
                          "image_url.detail for every image.")
    if resolutions:
        config["mediaResolution"] = resolutions.pop()
    if config:
        body["generationConfig"] = config
    return body


# --- errors ---------------------------------------------------------------------------

def _retry_after(response: upstream.Response, error: dict[str, Any]) -> dict[str, str]:
    if "retry-after" in response.headers:
        return {"retry-after": response.headers["retry-after"]}
    for detail in error.get("details") or []:
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                return {"retry-after": str(max(1, round(float(delay[:-1]))))}
            except ValueError:
                pass
    return {}


def error_from(response: upstream.Response, deployment: Deployment, raw: bytes) -> GatewayError:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, list) and data:
        data = data[0]  # streamGenerateContent without alt=sse wraps errors in an array
    error = data.get("error") if isinstance(data, dict) else None
    error = error if isinstance(error, dict) else {}
    headers = _retry_after(response, error)
    reasons = {d.get("reason") for d in error.get("details") or [] if isinstance(d, dict)}
    if response.status in (401, 403) or "API_KEY_INVALID" in reasons:
        # Gemini answers a wrong API key with 400 API_KEY_INVALID: still the gateway's credential
        return credential_rejected(deployment, 401 if response.status != 403 else 403, headers)
    message = error.get("message")
    if not isinstance(message, str) or not message.strip():
        message = f"The upstream provider '{deployment.provider_name}' answered {response.status}."
    status = error.get("status")
    return GatewayError(
        response.status, message.strip(), type=ERROR_TYPES.get(response.status, "api_error"),
        code=status.lower() if isinstance(status, str) else "upstream_error", headers=headers,
    )


def _stream_error(deployment: Deployment, error: Any) -> GatewayError:
    message = error.get("message") if isinstance(error, dict) else None
    return GatewayError(502, f"The upstream provider '{deployment.provider_name}' failed mid-answer: "
                        f"{message or 'unknown error'}", type="api_error", code="upstream_stream_error")


# --- answers ---------------------------------------------------------------------------

def usage_of(data: Any) -> Usage | None:
    meta = data.get("usageMetadata") if isinstance(data, dict) else None
    if not isinstance(meta, dict) or "promptTokenCount" not in meta:
        return None
    prompt = int(meta.get("promptTokenCount") or 0) + int(meta.get("toolUsePromptTokenCount") or 0)
    return Usage(prompt, int(meta.get("candidatesTokenCount") or 0) + int(meta.get("thoughtsTokenCount") or 0))


def finish_of(reason: Any, has_calls: bool) -> str:
    if reason == "MAX_TOKENS":
        return "length"
    if reason in FILTERED:
        return "content_filter"
    return "tool_calls" if has_calls else "stop"


def _calls_of(parts: list[Any], single: bool) -> list[dict[str, Any]]:
    calls = []
    for part in parts:
        call = part.get("functionCall") if isinstance(part, dict) else None
        if not isinstance(call, dict):
            continue
        calls.append({"id": tool_call_id(part.get("thoughtSignature")), "type": "function", "function": {
            "name": call.get("name") or "", "arguments": orjson.dumps(call.get("args") or {}).decode()}})
        if single:
            break  # parallel_tool_calls=false: the client takes one call per turn
    return calls


def _text_of(parts: list[Any]) -> str:
    return "".join(p["text"] for p in parts
                   if isinstance(p, dict) and isinstance(p.get("text"), str) and not p.get("thought"))


def _parts(candidate: dict[str, Any]) -> list[Any]:
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    return parts if isinstance(parts, list) else []


async def chat_send(
    session: upstream.Pool, deployment: Deployment, payload: dict[str, Any], *, stream: bool
) -> upstream.Response:
    body = request_build(deployment, payload)
    url = _url(deployment, "streamGenerateContent") + "?alt=sse" if stream else _url(deployment, "generateContent")
    return await upstream_post(session, deployment, url, body, _headers(deployment), error_from)


async def chat_read(response: upstream.Response, deployment: Deployment, payload: dict[str, Any]) -> tuple[dict[str, Any], Usage | None]:
    data = await body_read(response, deployment)
    if not isinstance(data, dict):
        raise upstream_invalid(deployment)
    single = payload.get("parallel_tool_calls") is False
    candidates = [c for c in data.get("candidates") or [] if isinstance(c, dict)]
    choices = []
    for position, candidate in enumerate(candidates):
        parts = _parts(candidate)
        calls = _calls_of(parts, single)
        message: dict[str, Any] = {"role": "assistant", "content": _text_of(parts) or None, "refusal": None}
        if calls:
            message["tool_calls"] = calls
        choices.append({"index": candidate.get("index", position), "message": message, "logprobs": None,
                        "finish_reason": finish_of(candidate.get("finishReason"), bool(calls))})
    if not choices:
        if "promptFeedback" not in data:
            raise upstream_invalid(deployment)
        # the prompt itself was blocked: no candidates, only promptFeedback.blockReason
        choices = [{"index": 0, "message": {"role": "assistant", "content": None, "refusal": None},
                    "logprobs": None, "finish_reason": "content_filter"}]
    usage = usage_of(data)
    body = completion_make(payload["model"], choices[0]["message"], choices[0]["finish_reason"], usage)
    body["choices"] = sorted(choices, key=lambda c: c["index"])
    return body, usage


async def chat_chunks(response: upstream.Response, deployment: Deployment, payload: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    cid, created, model = completion_id(), now(), payload["model"]
    single = payload.get("parallel_tool_calls") is False
    started: set[int] = set()
    finished: set[int] = set()
    calls_made: dict[int, int] = {}
    usage: Usage | None = None

    def chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        if index not in started:
            started.add(index)
            delta = {"role": "assistant", **delta}
        made = chunk_make(cid, model, created, delta, finish)
        made["choices"][0]["index"] = index
        return made

    try:
        async for event in sse_events(response):
            _, raw = sse_parse(event)
            if not raw.strip():
                continue
            try:
                data = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise upstream_invalid(deployment) from exc
            if not isinstance(data, dict):
                raise upstream_invalid(deployment)
            if "error" in data:
                raise _stream_error(deployment, data["error"])
            usage = usage_of(data) or usage
            candidates = [c for c in data.get("candidates") or [] if isinstance(c, dict)]
            if not candidates and (data.get("promptFeedback") or {}).get("blockReason"):
                finished.add(0)
                yield chunk(0, {"content": None}, "content_filter")
            for position, candidate in enumerate(candidates):
                index = int(candidate.get("index", position))
                parts = _parts(candidate)
                text = _text_of(parts)
                if text:
                    yield chunk(index, {"content": text})
                for call in _calls_of(parts, False):
                    made = calls_made.get(index, 0)
                    if single and made:
                        break
                    calls_made[index] = made + 1
                    arguments = call["function"]["arguments"]
                    call["function"]["arguments"] = ""
                    yield chunk(index, {"tool_calls": [{"index": made, **call}]})
                    yield chunk(index, {"tool_calls": [{"index": made, "function": {"arguments": arguments}}]})
                if candidate.get("finishReason") and index not in finished:
                    finished.add(index)
                    yield chunk(index, {}, finish_of(candidate["finishReason"], bool(calls_made.get(index))))
    finally:
        response.release()
    if not finished:
        raise GatewayError(502, f"The upstream provider '{deployment.provider_name}' ended the stream before the "
                           "answer finished.", type="api_error", code="upstream_stream_error")
    if usage is not None:
        yield usage_chunk_make(cid, model, created, usage)


# --- embeddings ------------------------------------------------------------------------

async def embeddings_create(
    session: upstream.Pool, deployment: Deployment, payload: dict[str, Any]
) -> tuple[dict[str, Any], Usage | None]:
    for key, value in payload.items():
        if key not in EMBEDDING_KEYS and value is not None:
            raise unsupported(deployment, key, "Gemini embeddings have no equivalent.")
    if payload.get("encoding_format") not in (None, "float"):
        raise unsupported(deployment, "encoding_format", "Gemini returns floats only; ask for 'float'.")
    inputs = payload.get("input")
    texts = [inputs] if isinstance(inputs, str) else inputs
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise unsupported(deployment, "input", "Send a string or a list of strings; token arrays cannot be sent "
                          "to Gemini.")
    model = "models/" + deployment.upstream_name.removeprefix("models/")
    extra = {"outputDimensionality": payload["dimensions"]} if payload.get("dimensions") else {}
    requests = [{"model": model, "content": {"parts": [{"text": t}]}, **extra} for t in texts]
    url, headers = _url(deployment, "batchEmbedContents"), _headers(deployment)

    async def batch(chunk: list[dict[str, Any]]) -> Any:
        response = await upstream_post(session, deployment, url, {"requests": chunk}, headers, error_from)
        return await body_read(response, deployment)

    answers = await asyncio.gather(*(batch(requests[i:i + EMBED_BATCH]) for i in range(0, len(requests), EMBED_BATCH)))
    vectors: list[Any] = []
    prompt_tokens = 0
    counted = True
    for answer in answers:
        embeddings = answer.get("embeddings") if isinstance(answer, dict) else None
        if not isinstance(embeddings, list):
            raise upstream_invalid(deployment)
        vectors.extend(e.get("values") if isinstance(e, dict) else None for e in embeddings)
        usage = usage_of(answer)
        counted = counted and usage is not None
        prompt_tokens += usage.input_tokens if usage else 0
    if len(vectors) != len(texts) or not all(isinstance(v, list) for v in vectors):
        raise upstream_invalid(deployment)
    usage = Usage(prompt_tokens, 0) if counted else None  # Gemini reports none today: the gateway estimates
    body: dict[str, Any] = {"object": "list", "model": payload["model"], "data": [
        {"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]}
    if usage is not None:
        body["usage"] = {"prompt_tokens": usage.input_tokens, "total_tokens": usage.input_tokens}
    return body, usage

