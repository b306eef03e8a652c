"""The fake's Gemini wire format: generateContent, streamGenerateContent (SSE with
alt=sse, else one streamed JSON array), embedContent, batchEmbedContents, countTokens
and the models list, under /v1beta and /v1, as Google's Gemini API reference describes.

Like the real API it parses requests as protobuf JSON: camelCase or snake_case field
names, unknown names rejected, empty text parts count as unset, bytes must be base64.
Models named gemini-3* insist on thought signatures being sent back with function calls,
as the real ones do."""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from typing import Any

import orjson

from .core import (
    MAX_EMBEDDING_DIMENSIONS,
    Answer,
    Prompt,
    Receive,
    Send,
    Tool,
    answer_plan,
    count_words,
    embedding_for,
    fault_before_answer,
    model_shown,
    non_stream_wait,
    paced,
    read_json,
    request_directives,
    send_json,
    size_problem,
    timing_for,
)

# the model is everything up to the last colon: directives in it have colons of their own
PATH = re.compile(r"^/(v1beta|v1)/models/([^/]+):([A-Za-z]+)$")
STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
          409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 499: "CANCELLED", 500: "INTERNAL", 503: "UNAVAILABLE",
          504: "DEADLINE_EXCEEDED"}
MESSAGES = {
    400: "Request contains an invalid argument.",
    401: "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other "
         "valid authentication credential.",
    403: "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or "
         "other form of API consumer identity to call this API.",
    404: "models/fake is not found for API version v1beta, or is not supported for generateContent.",
    429: "You exceeded your current quota, please check your plan and billing details.",
    500: "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
}
FINISH = {"stop": "STOP", "stop_sequence": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP"}
# what a function call's thought signature looks like (opaque base64 bytes)
THOUGHT_SIGNATURE = base64.b64encode(b"fake-thought-signature:" + b"\x00" * 9).decode()
CRLF2 = b"\r\n\r\n"
# what the real API accepts back: its own signatures and the two documented placeholders
ACCEPTED_SIGNATURES = (THOUGHT_SIGNATURE, "skip_thought_signature_validator", "context_engineering_is_the_way_to_go")


def _names(*camel: str) -> dict[str, str]:
    """Field names as protobuf JSON accepts them: lowerCamelCase or the proto's snake_case."""
    table = {}
    for name in camel:
        table[name] = name
        table[re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name)] = name
    return table


REQUEST = _names("model", "contents", "tools", "toolConfig", "safetySettings", "systemInstruction",
                 "generationConfig", "cachedContent")
CONTENT = _names("role", "parts")
PART_DATA = ("text", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode",
             "codeExecutionResult")
PART = _names(*PART_DATA, "thought", "thoughtSignature", "videoMetadata", "partMetadata", "mediaResolution")
BLOB = _names("mimeType", "data")
FILE_DATA = _names("mimeType", "fileUri")
FUNCTION_CALL = _names("id", "name", "args")
FUNCTION_RESPONSE = _names("id", "name", "response", "parts", "willContinue", "scheduling")
TOOL = _names("functionDeclarations", "googleSearch", "googleSearchRetrieval", "codeExecution", "urlContext",
              "fileSearch", "computerUse", "googleMaps")
DECLARATION = _names("name", "description", "parameters", "parametersJsonSchema", "response",
                     "responseJsonSchema", "behavior")
TOOL_CONFIG = _names("functionCallingConfig", "retrievalConfig")
CALLING_CONFIG = _names("mode", "allowedFunctionNames")
MODES = ("MODE_UNSPECIFIED", "AUTO", "ANY", "NONE", "VALIDATED")
GENERATION = _names("stopSequences", "responseMimeType", "responseSchema", "responseJsonSchema", "responseModalities",
                    "candidateCount", "maxOutputTokens", "temperature", "topP", "topK", "seed", "presencePenalty",
                    "frequencyPenalty", "responseLogprobs", "logprobs", "enableEnhancedCivicAnswers", "speechConfig",
                    "thinkingConfig", "imageConfig", "mediaResolution")
EMBED = _names("model", "content", "taskType", "title", "outputDimensionality")
FUNCTION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$")


class Invalid(Exception):
    """A request the real API answers with 400 INVALID_ARGUMENT."""


def _snake_path(where: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), where)


def _fields(obj: Any, names: dict[str, str], where: str) -> dict[str, Any]:
    """The object with canonical (camelCase) keys; unknown names are a 400 like the real parser's."""
    if not isinstance(obj, dict):
        raise Invalid(f"Invalid JSON payload received. Expected an object at '{_snake_path(where)}'.")
    out = {}
    for key, value in obj.items():
        canonical = names.get(key)
        if canonical is None:
            at = f" at '{_snake_path(where)}'" if where else ""
            raise Invalid(f'Invalid JSON payload received. Unknown name "{key}"{at}: Cannot find field.')
        out[canonical] = value
    return out


def _required(where: str, message: str) -> Invalid:
    return Invalid(f"* GenerateContentRequest.{_snake_path(where)}: {message}\n")


def _base64_check(value: Any, where: str) -> None:
    if not isinstance(value, str):
        raise Invalid(f"Invalid value at '{_snake_path(where)}' (TYPE_BYTES), {orjson.dumps(value).decode()}")
    try:
        base64.b64decode(value.replace("-", "+").replace("_", "/") + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Invalid(f"Invalid value at '{_snake_path(where)}' (TYPE_BYTES), Base64 decoding failed for "
                      f"\"{value[:40]}\"") from exc


def part_parse(raw: Any, where: str) -> dict[str, Any]:
    part = _fields(raw, PART, where)
    present = [k for k in PART_DATA if k in part and part[k] not in (None, "")]
    if not present:
        raise _required(f"{where}.data", "required oneof field 'data' must have one initialized field")
    if len(present) > 1:
        raise Invalid(f"Invalid value at '{_snake_path(where)}' (oneof), oneof field 'data' is already set. "
                      f"Cannot set '{present[1]}'")
    if "thoughtSignature" in part:
        _base64_check(part["thoughtSignature"], f"{where}.thoughtSignature")
    kind = present[0]
    if kind == "text" and not isinstance(part["text"], str):
        raise Invalid(f"Invalid value at '{_snake_path(where)}.text' (TYPE_STRING), {orjson.dumps(part['text']).decode()}")
    if kind == "inlineData":
        blob = _fields(part["inlineData"], BLOB, f"{where}.inlineData")
        if not blob.get("mimeType"):
            raise _required(f"{where}.inlineData.mimeType", "mime_type is not specified")
        if not blob.get("data"):
            raise _required(f"{where}.inlineData.data", "data is not specified")
        _base64_check(blob["data"], f"{where}.inlineData.data")
        part["inlineData"] = blob
    elif kind == "fileData":
        data = _fields(part["fileData"], FILE_DATA, f"{where}.fileData")
        if not data.get("fileUri"):
            raise _required(f"{where}.fileData.fileUri", "file_uri is not specified")
        part["fileData"] = data
    elif kind == "functionCall":
        call = _fields(part["functionCall"], FUNCTION_CALL, f"{where}.functionCall")
        if not call.get("name"):
            raise _required(f"{where}.functionCall.name", "Name cannot be empty.")
        if not isinstance(call.get("args", {}), dict):
            raise Invalid(f"Invalid value at '{_snake_path(where)}.function_call.args' "
                          f"(type.googleapis.com/google.protobuf.Struct), {orjson.dumps(call['args']).decode()}")
        part["functionCall"] = call
    elif kind == "functionResponse":
        result = _fields(part["functionResponse"], FUNCTION_RESPONSE, f"{where}.functionResponse")
        if not result.get("name"):
            raise _required(f"{where}.functionResponse.name", "Name cannot be empty.")
        if not isinstance(result.get("response"), dict):
            raise Invalid(f"Invalid value at '{_snake_path(where)}.function_response.response' "
                          f"(type.googleapis.com/google.protobuf.Struct), {orjson.dumps(result.get('response')).decode()}")
        part["functionResponse"] = result
    return part


def content_parse(raw: Any, where: str, *, system: bool = False) -> dict[str, Any]:
    content = _fields(raw, CONTENT, where)
    role = content.get("role") or ("" if system else "user")
    if not system and role not in ("user", "model"):
        raise Invalid("Please use a valid role: user, model.")
    parts = content.get("parts")
    if not isinstance(parts, list) or not parts:
        raise _required(f"{where}.parts", "contents.parts must not be empty.")
    return {"role": role, "parts": [part_parse(p, f"{where}.parts[{i}]") for i, p in enumerate(parts)]}


def _text(content: dict[str, Any]) -> str:
    return " ".join(p["text"] for p in content["parts"] if isinstance(p.get("text"), str) and not p.get("thought"))


def _response_text(response: dict[str, Any]) -> str:
    value = response.get("output", response.get("result", response))
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def tools_parse(raw: Any) -> list[Tool]:
    if not isinstance(raw, list):
        raise Invalid("Invalid JSON payload received. Expected a list at 'tools'.")
    tools = []
    for i, entry in enumerate(raw):
        tool = _fields(entry, TOOL, f"tools[{i}]")
        for j, decl in enumerate(tool.get("functionDeclarations") or []):
            where = f"tools[{i}].functionDeclarations[{j}]"
            decl = _fields(decl, DECLARATION, where)
            name = decl.get("name")
            if not isinstance(name, str) or not FUNCTION_NAME.match(name):
                raise _required(f"{where}.name", "Invalid function name. Must start with a letter or an underscore. "
                                "Must be a-z, A-Z, 0-9, or contain underscores, dots, colons and dashes, with a "
                                "maximum length of 128.")
            if "parameters" in decl and "parametersJsonSchema" in decl:
                raise _required(f"{where}.parametersJsonSchema",
                                "parameters and parameters_json_schema are mutually exclusive.")
            tools.append(Tool(name, decl.get("parametersJsonSchema") or decl.get("parameters") or {}))
    return tools


def tool_choice_parse(raw: Any, tools: list[Tool]) -> tuple[str | None, list[Tool]]:
    """core's tool_choice for a toolConfig, and the tools the model may call."""
    config = _fields(raw or {}, TOOL_CONFIG, "toolConfig")
    calling = _fields(config.get("functionCallingConfig") or {}, CALLING_CONFIG, "toolConfig.functionCallingConfig")
    mode = calling.get("mode") or "AUTO"
    if mode not in MODES:
        raise Invalid("Invalid value at 'tool_config.function_calling_config.mode' "
                      f"(type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionCallingConfig.Mode), \"{mode}\"")
    allowed = calling.get("allowedFunctionNames") or []
    if allowed and mode != "ANY":
        raise _required("toolConfig.functionCallingConfig.allowedFunctionNames",
                        "allowed_function_names can only be set when mode is ANY.")
    if mode == "NONE":
        return "none", tools
    if mode != "ANY":
        return None, tools
    if allowed:
        unknown = [n for n in allowed if n not in {t.name for t in tools}]
        if unknown:
            raise _required("toolConfig.functionCallingConfig.allowedFunctionNames",
                            f"function '{unknown[0]}' is not declared in tools.")
        tools = [t for t in tools if t.name in allowed]
        if len(allowed) == 1:
            return allowed[0], tools
    return "any", tools


def _signature_check(model: str, contents: list[dict[str, Any]]) -> None:
    """Gemini 3: the first function call of each model turn in the current turn needs its signature,
    and a signature must be one the API issued (or a documented placeholder)."""
    if not model.startswith("gemini-3"):
        return
    start = max((i for i, c in enumerate(contents) if c["role"] == "user" and _text(c)), default=0)
    for index in range(start, len(contents)):
        if contents[index]["role"] != "model":
            continue
        calls = [p for p in contents[index]["parts"] if "functionCall" in p]
        if any(p.get("thoughtSignature") not in (None, *ACCEPTED_SIGNATURES) for p in calls):
            raise Invalid("Corrupted thought signature.")
        if calls and not calls[0].get("thoughtSignature"):
            raise Invalid("Function call is missing a thought_signature in functionCall parts. This is required for "
                          "tools to work correctly, and missing thought_signature may lead to degraded model "
                          f"performance. Additional data, function call `{calls[0]['functionCall']['name']}` , "
                          f"position {index + 1}. Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures "
                          "for more details.")


def prompt_parse(payload: Any, model: str) -> tuple[Prompt, int]:
    """The neutral prompt and the number of candidates asked for."""
    request = _fields(payload, REQUEST, "")
    raw_contents = request.get("contents")
    if not isinstance(raw_contents, list) or not raw_contents:
        raise Invalid("* GenerateContentRequest.contents: contents is not specified\n")
    contents = [content_parse(c, f"contents[{i}]") for i, c in enumerate(raw_contents)]
    _signature_check(model, contents)
    system = None
    if request.get("systemInstruction") is not None:
        system = content_parse(request["systemInstruction"], "systemInstruction", system=True)
    tools = tools_parse(request["tools"]) if request.get("tools") is not None else []
    choice, tools = tool_choice_parse(request.get("toolConfig"), tools)
    config = _fields(request.get("generationConfig") or {}, GENERATION, "generationConfig")
    schema = config.get("responseJsonSchema") or config.get("responseSchema")
    if config.get("responseJsonSchema") is not None and config.get("responseSchema") is not None:
        raise _required("generationConfig.responseJsonSchema", "response_json_schema and response_schema are mutually "
                        "exclusive.")
    mime = config.get("responseMimeType") or "text/plain"
    if schema is not None and mime not in ("application/json", "text/x.enum"):
        raise _required("generationConfig.responseMimeType", f"response_mime_type must be application/json or "
                        f"text/x.enum when a response schema is set, got '{mime}'.")
    stop = config.get("stopSequences") or []
    if not isinstance(stop, list) or len(stop) > 5:
        raise _required("generationConfig.stopSequences", "at most 5 stop sequences are allowed.")
    candidates = int(config.get("candidateCount") or 1)
    if not 1 <= candidates <= 8:
        raise _required("generationConfig.candidateCount", "candidate_count must be between 1 and 8.")

    last_user = next((c for c in reversed(contents) if c["role"] == "user" and _text(c)), contents[-1])
    tail_results = [_response_text(p["functionResponse"]["response"])
                    for p in contents[-1]["parts"] if "functionResponse" in p] if contents[-1]["role"] == "user" else []
    images = sum(1 for p in last_user["parts"]
                 if str((p.get("inlineData") or p.get("fileData") or {}).get("mimeType", "")).startswith("image/"))

    def words(content: dict[str, Any]) -> int:
        extra = " ".join(_response_text(p["functionResponse"]["response"]) for p in content["parts"]
                         if "functionResponse" in p)
        return count_words(_text(content)) + count_words(extra) + 3

    prompt = Prompt(
        last_user_text=_text(last_user),
        prompt_tokens=sum(words(c) for c in contents) + (words(system) if system else 0),
        tools=tools,
        tool_choice=choice,
        json_schema=(schema or {"type": "object"}) if mime == "application/json" else None,
        max_tokens=config.get("maxOutputTokens"),
        stop=[s for s in stop if isinstance(s, str)],
        images=images,
        tool_results=tail_results,
    )
    return prompt, candidates


# --- answers ------------------------------------------------------------------------

async def error_send(send: Send, status: int, message: str | None = None) -> None:
    text = message or MESSAGES.get(status, f"Fake upstream error {status}.")
    error: dict[str, Any] = {"code": status, "message": text, "status": STATUS.get(status, "UNKNOWN")}
    headers: list[tuple[bytes, bytes]] = []
    if status in (429, 503):
        headers.append((b"retry-after", b"1"))
    if status == 429:
        error["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"}]
    await send_json(send, status, {"error": error}, headers)


def _usage(answer: Answer, candidates: int) -> dict[str, Any]:
    output = answer.output_tokens * candidates
    return {"promptTokenCount": answer.input_tokens, "candidatesTokenCount": output,
            "totalTokenCount": answer.input_tokens + output,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": answer.input_tokens}]}


def _call_parts(answer: Answer) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [{"functionCall": {"name": c.name, "args": c.arguments}} for c in answer.tool_calls]
    if parts:
        parts[0]["thoughtSignature"] = THOUGHT_SIGNATURE  # only the first of parallel calls carries it
    return parts


def _response(parts: list[dict[str, Any]], candidates: int, finish: str | None, usage: dict[str, Any] | None,
              model: str, response_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {"candidates": [
        {"content": {"parts": parts, "role": "model"}, **({"finishReason": finish} if finish else {}), "index": i}
        for i in range(candidates)
    ]}
    if usage is not None:
        body["usageMetadata"] = usage
    body["modelVersion"] = model
    body["responseId"] = response_id
    return body


async def generate(receive: Receive, send: Send, model: str, *, stream: bool, sse: bool) -> None:
    try:
        prompt, candidates = prompt_parse(await read_json(receive), model)
    except orjson.JSONDecodeError:
        await error_send(send, 400, "Invalid JSON payload received. Unexpected token.")
        return
    except Invalid as exc:
        await error_send(send, 400, str(exc))
        return
    directives = request_directives(model, prompt.last_user_text)
    status = await fault_before_answer(directives, receive)
    model = model_shown(model)
    if status is not None:
        await error_send(send, status, MESSAGES[404].replace("fake", model, 1) if status == 404 else None)
        return
    answer = answer_plan(prompt, directives)
    timing = timing_for(directives)
    usage = _usage(answer, candidates) if answer.usage else None
    response_id = uuid.uuid4().hex[:22]
    finish = FINISH[answer.finish]
    if not stream:
        await non_stream_wait(timing)
        parts = _call_parts(answer) if answer.tool_calls else [{"text": answer.text}]
        await send_json(send, 200, _response(parts, candidates, finish, usage, model, response_id))
        return
    steps: list[list[dict[str, Any]]] = [[{"text": piece}] for piece in answer.pieces]
    if answer.tool_calls:
        steps.append(_call_parts(answer))
    steps = steps or [[{"text": ""}]]
    partial = {"promptTokenCount": answer.input_tokens, "totalTokenCount": answer.input_tokens} if usage else None
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", b"text/event-stream" if sse else b"application/json"), (b"cache-control", b"no-cache")]})
    index = 0
    async for parts in paced(steps, timing, directives):
        last = index == len(steps) - 1
        event = orjson.dumps(_response(parts, candidates, finish if last else None, usage if last else partial,
                                       model, response_id))
        if sse:
            body = b"data: " + event + CRLF2
        else:
            body = (b"[" if index == 0 else b",\r\n") + event + (b"]" if last else b"")
        await send({"type": "http.response.body", "body": body, "more_body": not last})
        index += 1


async def count_tokens(receive: Receive, send: Send, model: str) -> None:
    try:
        payload = await read_json(receive)
        request = _fields(payload, _names("contents", "generateContentRequest"), "")
        inner = request.get("generateContentRequest") or {"contents": request.get("contents")}
        prompt, _ = prompt_parse(inner, model)
    except orjson.JSONDecodeError:
        await error_send(send, 400, "Invalid JSON payload received. Unexpected token.")
        return
    except Invalid as exc:
        await error_send(send, 400, str(exc))
        return
    tokens = prompt.prompt_tokens
    await send_json(send, 200, {"totalTokens": tokens,
                                "promptTokensDetails": [{"modality": "TEXT", "tokenCount": tokens}]})


def _embed_request(raw: Any, where: str, model: str | None) -> tuple[str, int]:
    request = _fields(raw, EMBED, where)
    if model is not None and request.get("model") != f"models/{model}":
        raise Invalid(f"* BatchEmbedContentsRequest.{where}.model: the model of each request must be the model "
                      f"of the batch (models/{model}).\n")
    if request.get("content") is None:
        raise Invalid(f"* EmbedContentRequest.{where + '.' if where else ''}content: content is not specified\n")
    content = content_parse(request["content"], f"{where + '.' if where else ''}content")
    if problem := size_problem("outputDimensionality", request.get("outputDimensionality"), MAX_EMBEDDING_DIMENSIONS):
        raise Invalid(f"* EmbedContentRequest.{where + '.' if where else ''}output_dimensionality: {problem}\n")
    return _text(content), int(request.get("outputDimensionality") or 16)


async def embed(receive: Receive, send: Send, model: str, *, batch: bool) -> None:
    try:
        payload = await read_json(receive)
        if batch:
            requests = _fields(payload, _names("requests"), "").get("requests")
            if not isinstance(requests, list) or not requests:
                raise Invalid("* BatchEmbedContentsRequest.requests: requests is not specified\n")
            if len(requests) > 100:
                raise Invalid("* BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch\n")
            items = [_embed_request(r, f"requests[{i}]", model) for i, r in enumerate(requests)]
        else:
            items = [_embed_request(payload, "", None)]
    except orjson.JSONDecodeError:
        await error_send(send, 400, "Invalid JSON payload received. Unexpected token.")
        return
    except Invalid as exc:
        await error_send(send, 400, str(exc))
        return
    directives = request_directives(model, " ".join(text for text, _ in items))
    status = await fault_before_answer(directives, receive)
    if status is not None:
        await error_send(send, status)
        return
    vectors = [{"values": embedding_for(text, dimensions)} for text, dimensions in items]
    await send_json(send, 200, {"embeddings": vectors} if batch else {"embedding": vectors[0]})


def _model_info(name: str, version: str) -> dict[str, Any]:
    return {"name": f"models/{name}", "version": version, "displayName": name, "inputTokenLimit": 1048576,
            "outputTokenLimit": 65536, "supportedGenerationMethods": ["generateContent", "countTokens",
                                                                     "embedContent", "batchEmbedContents"]}


async def handle(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    path = scope["path"]
    match = PATH.match(path)
    if scope["method"] == "POST" and match:
        version, model, method = match.groups()
        if method == "generateContent":
            await generate(receive, send, model, stream=False, sse=False)
            return
        if method == "streamGenerateContent":
            query = scope.get("query_string", b"")
            await generate(receive, send, model, stream=True, sse=b"alt=sse" in query)
            return
        if method in ("embedContent", "batchEmbedContents"):
            await embed(receive, send, model, batch=method == "batchEmbedContents")
            return
        if method == "countTokens":
            await count_tokens(receive, send, model)
            return
    if scope["method"] == "GET":
        listing = re.match(r"^/(v1beta|v1)/models/?$", path)
        single = re.match(r"^/(v1beta|v1)/models/([^/:]+)$", path)
        if listing:
            await send_json(send, 200, {"models": [_model_info("gemini-2.5-flash-fake", "2.5"),
                                                   _model_info("gemini-embedding-001-fake", "001")]})
            return
        if single:
            await send_json(send, 200, _model_info(single.group(2), "fake"))
            return
    await error_send(send, 404, f"Method not found: {scope['method']} {path}")
