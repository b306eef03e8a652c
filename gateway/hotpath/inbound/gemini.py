"""Google's Gemini API as clients see it (what the google-genai SDK calls), under /v1beta
and /v1: models/{model}:generateContent, :streamGenerateContent (SSE events, each a
GenerateContentResponse), :countTokens, :embedContent, :batchEmbedContents, the models
list and one model; errors as {"error": {code, message, status}}.

Bodies are read as protobuf JSON, like the real API: camelCase or snake_case names, null
as unset, unknown names a 400. Parsing checks the body and rewrites it in one canonical
form (camelCase, Gemini's OpenAPI schemas turned into JSON Schema, base64 normalised);
`to_internal` maps that to the OpenAI-shaped request every upstream adapter takes (a
Gemini upstream too: there is no pass-through path for this API).

Function calls: a functionCall's `id` is the internal tool call id (for a Gemini upstream
it carries the call's thought signature, so sending the model turn back keeps it). History
without ids gets ids made here; a functionResponse answers the call with its `id`, else
the earliest unanswered call of the same name.

What the internal format cannot carry is refused with a 400 naming it: topK, logprobs,
non-text response modalities, speech/image/audio-transcription configs,
thinkingConfig.includeThoughts, cachedContent, serviceTier, continuationToken, server-side
tools (googleSearch, codeExecution, urlContext, ...), retrievalConfig, fileData,
executableCode, codeExecutionResult, videoMetadata, inlineData that is not an image,
multimodal functionResponse parts, responseMimeType other than text/plain and
application/json. Pure hints are dropped and named in the x-aiproxy-ignored-params
response header: safetySettings (each upstream applies its own filters), thinkingConfig
budget/level, labels, store, enableEnhancedCivicAnswers, a function's declared response
schema, part metadata and media resolution on a part. Thought parts sent back in history
are dropped, as Gemini itself does not read earlier thoughts. Embeddings: taskType and
title are dropped and named in the x-aiproxy-ignored-params response header.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from typing import Any

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from ..adapters.gemini import SIGNATURE_MARK
from ..directory import ModelGroup, group_owner
from ..errors import GatewayError, invalid_request
from ..validate import _schema_problem, _type_name, base64_validate, json_body
from . import InboundChat

WIRE = "gemini"
CHAT_ENDPOINT = "generateContent"
STATUS = {
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 402: "FAILED_PRECONDITION", 403: "PERMISSION_DENIED",
    404: "NOT_FOUND", 409: "ABORTED", 413: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED", 499: "CANCELLED",
    500: "INTERNAL", 501: "UNIMPLEMENTED", 502: "UNAVAILABLE", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
}
FINISH = {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP", "function_call": "STOP",
          "content_filter": "SAFETY"}
FUNCTION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$")
MODES = ("MODE_UNSPECIFIED", "AUTO", "ANY", "NONE", "VALIDATED")
SCHEMA_TYPES = ("TYPE_UNSPECIFIED", "STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT", "NULL")
RESOLUTION_DETAIL = {"MEDIA_RESOLUTION_LOW": "low", "MEDIA_RESOLUTION_HIGH": "high"}
SSE_END = b"\r\n\r\n"

# protobuf message fields, by canonical (camelCase) name
REQUEST = frozenset({"model", "contents", "systemInstruction", "tools", "toolConfig", "safetySettings",
                     "generationConfig", "cachedContent", "labels", "serviceTier", "store", "continuationToken"})
COUNT_REQUEST = frozenset({"contents", "generateContentRequest"})
CONTENT = frozenset({"role", "parts"})
PART_DATA = ("text", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode",
             "codeExecutionResult", "toolCall", "toolResponse")
PART = frozenset({*PART_DATA, "thought", "thoughtSignature", "videoMetadata", "partMetadata", "mediaResolution"})
BLOB = frozenset({"mimeType", "data"})
FUNCTION_CALL = frozenset({"id", "name", "args"})
FUNCTION_RESPONSE = frozenset({"id", "name", "response", "parts", "willContinue", "scheduling"})
TOOL = frozenset({"functionDeclarations", "googleSearch", "googleSearchRetrieval", "codeExecution", "urlContext",
                  "fileSearch", "computerUse", "googleMaps"})
DECLARATION = frozenset({"name", "description", "parameters", "parametersJsonSchema", "response",
                         "responseJsonSchema", "behavior"})
TOOL_CONFIG = frozenset({"functionCallingConfig", "retrievalConfig", "includeServerSideToolInvocations"})
CALLING_CONFIG = frozenset({"mode", "allowedFunctionNames"})
GENERATION = frozenset({"stopSequences", "responseMimeType", "responseSchema", "responseJsonSchema",
                        "responseModalities", "candidateCount", "maxOutputTokens", "temperature", "topP", "topK",
                        "seed", "presencePenalty", "frequencyPenalty", "responseLogprobs", "logprobs",
                        "enableEnhancedCivicAnswers", "speechConfig", "thinkingConfig", "imageConfig",
                        "mediaResolution", "audioTranscriptionConfig"})
THINKING = frozenset({"includeThoughts", "thinkingBudget", "thinkingLevel"})
SAFETY_SETTING = frozenset({"category", "threshold", "method"})
SCHEMA = frozenset({"type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems",
                    "properties", "required", "minProperties", "maxProperties", "minLength", "maxLength",
                    "pattern", "example", "anyOf", "propertyOrdering", "default", "items", "minimum", "maximum"})
EMBED_REQUEST = frozenset({"model", "content", "taskType", "title", "outputDimensionality"})
BATCH_EMBED = frozenset({"requests"})

# set fields the internal format has no place for: a 400 naming them
REFUSED_REQUEST = {
    "cachedContent": "cached content lives on Google's servers and cannot be read for other upstreams; "
                     "send the contents",
    "serviceTier": "service tiers cannot be chosen through the gateway",
    "continuationToken": "continuation tokens are not supported",
}
REFUSED_GENERATION = {
    "topK": "top-k sampling cannot be translated for every upstream; use topP",
    "responseLogprobs": "log probabilities are not returned through the gateway",
    "logprobs": "log probabilities are not returned through the gateway",
    "speechConfig": "only text output is supported",
    "imageConfig": "only text output is supported",
    "audioTranscriptionConfig": "only text output is supported",
}
REFUSED_PARTS = {
    "fileData": "file references (Files API or URIs) cannot be read by other upstreams; send the image inline as "
                "inlineData",
    "executableCode": "code execution parts are not supported",
    "codeExecutionResult": "code execution parts are not supported",
    "toolCall": "server-side tool parts are not supported",
    "toolResponse": "server-side tool parts are not supported",
}
# request-level hints with no internal equivalent: dropped, named in x-aiproxy-ignored-params
IGNORED_REQUEST = ("safetySettings", "labels", "store")


# --- protobuf JSON reading ----------------------------------------------------------------

def _bad(where: str, message: str) -> GatewayError:
    return invalid_request(f"{where}: {message}" if where else message, param=where or None)


def _unsupported(where: str, detail: str) -> GatewayError:
    return invalid_request(f"{where}: not supported by the gateway: {detail}.", param=where,
                           code="unsupported_parameter")


def _need(condition: bool, where: str, message: str) -> None:
    if not condition:
        raise _bad(where, message)


def _camel(name: str) -> str:
    return re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), name)


def _at(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _fields(obj: Any, names: frozenset[str], where: str) -> dict[str, Any]:
    """The object with canonical (camelCase) keys and nulls dropped; an unknown name is a 400,
    as in the real API's protobuf JSON parser."""
    if not isinstance(obj, dict):
        raise _bad(where, f"expected an object, got {_type_name(obj)}.")
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = key if key in names else _camel(key)
        if name not in names:
            raise _bad(_at(where, key), f'Unknown name "{key}": Cannot find field.')
        if value is None:
            continue
        _need(name not in out, _at(where, name), "the field is given twice (camelCase and snake_case).")
        out[name] = value
    return out


def _list(value: Any, where: str) -> list[Any]:
    _need(isinstance(value, list), where, f"expected a list, got {_type_name(value)}.")
    return value  # type: ignore[no-any-return]


def _string(value: Any, where: str) -> str:
    _need(isinstance(value, str), where, f"expected a string, got {_type_name(value)}.")
    return value  # type: ignore[no-any-return]


def _integer(value: Any, where: str, *, low: int | None = None, high: int | None = None) -> int:
    """An int field: a JSON number or, for protobuf's 64-bit ints, a numeric string."""
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        value = int(value)
    _need(isinstance(value, int) and not isinstance(value, bool), where,
          f"expected an integer, got {_type_name(value)}.")
    _need((low is None or value >= low) and (high is None or value <= high), where,
          f"expected an integer from {low} to {high}." if high is not None else f"expected an integer >= {low}.")
    return value  # type: ignore[no-any-return]


def _number(value: Any, where: str, *, low: float | None = None, high: float | None = None) -> float:
    _need(isinstance(value, (int, float)) and not isinstance(value, bool), where,
          f"expected a number, got {_type_name(value)}.")
    if low is not None and high is not None:
        _need(low <= value <= high, where, f"expected a number from {low:g} to {high:g}.")
    return value  # type: ignore[no-any-return]


def _standard_base64(data: str) -> str:
    """protobuf JSON bytes may be URL-safe and unpadded; data: URLs want standard base64."""
    standard = data.replace("-", "+").replace("_", "/")
    return standard + "=" * (-len(standard) % 4)


def _bytes_check(value: Any, where: str) -> None:
    try:
        ok = isinstance(value, str) and bool(value) and bool(base64.b64decode(_standard_base64(value), validate=True))
    except (binascii.Error, ValueError):
        ok = False
    _need(ok, where, "expected base64-encoded bytes.")


# --- schemas -------------------------------------------------------------------------------

def json_schema_of(raw: Any, where: str) -> dict[str, Any]:
    """Gemini's OpenAPI-subset Schema (upper-case types, `nullable`) as JSON Schema."""
    schema = _fields(raw, SCHEMA, where)
    out: dict[str, Any] = {}
    for key, value in schema.items():
        at = f"{where}.{key}"
        if key == "type":
            kind = _string(value, at).upper()
            _need(kind in SCHEMA_TYPES, at, f"expected one of {', '.join(SCHEMA_TYPES)}, got {value!r}.")
            if kind != "TYPE_UNSPECIFIED":
                out["type"] = kind.lower()
        elif key == "properties":
            _need(isinstance(value, dict), at, "expected an object of schemas.")
            out["properties"] = {name: json_schema_of(sub, f"{at}.{name}") for name, sub in value.items()}
        elif key == "items":
            out["items"] = json_schema_of(value, at)
        elif key == "anyOf":
            out["anyOf"] = [json_schema_of(sub, f"{at}[{i}]") for i, sub in enumerate(_list(value, at))]
        elif key in ("minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties"):
            out[key] = _integer(value, at, low=0)
        elif key == "example":
            out["examples"] = [value]
        elif key not in ("nullable", "propertyOrdering"):  # property order: a generation hint only
            out[key] = value
    if schema.get("nullable") is True:
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        elif "anyOf" in out:
            out["anyOf"].append({"type": "null"})
    return out


def _response_schema_check(schema: Any, where: str) -> None:
    _need(isinstance(schema, dict), where, f"expected a JSON Schema object, got {_type_name(schema)}.")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise _bad(where, f"not a valid JSON Schema: {exc.message}.") from exc


# --- generateContent request: check and canonicalise -----------------------------------------

def _part_canonical(raw: Any, where: str, role: str, ignored: set[str]) -> dict[str, Any] | None:
    """One part in canonical form, or None for a part that is dropped (earlier thoughts,
    a bare thought signature)."""
    part = _fields(raw, PART, where)
    present = [k for k in PART_DATA if k in part and part[k] != ""]
    if not present and "thoughtSignature" in part:  # Gemini 3 can end a stream with a signature-only part
        _bytes_check(part["thoughtSignature"], f"{where}.thoughtSignature")
        return None
    _need(bool(present), where, "required oneof field 'data' must have one initialized field (text, inlineData, "
          "functionCall, functionResponse, ...).")
    _need(len(present) == 1, where, f"oneof field 'data' is already set; cannot set '{present[-1]}'.")
    kind = present[0]
    if kind in REFUSED_PARTS:
        raise _unsupported(f"{where}.{kind}", REFUSED_PARTS[kind])
    if "videoMetadata" in part:
        raise _unsupported(f"{where}.videoMetadata", "video input is not supported")
    for hint in ("partMetadata", "mediaResolution"):
        if hint in part:
            ignored.add(f"contents.parts.{hint}")
    signature = part.get("thoughtSignature")
    if signature is not None:
        _bytes_check(signature, f"{where}.thoughtSignature")
    if part.get("thought") is True:
        return None
    value = part[kind]
    if kind == "text":
        return {"text": _string(value, f"{where}.text")}
    if kind == "inlineData":
        at = f"{where}.inlineData"
        blob = _fields(value, BLOB, at)
        mime = _string(blob.get("mimeType", ""), f"{at}.mimeType")
        _need(bool(mime), f"{at}.mimeType", "mime_type is not specified.")
        if not mime.startswith("image/"):
            raise _unsupported(f"{at}.mimeType", f"only images can be sent inline, not '{mime}'")
        _need(role == "user", at, "images are only allowed in user turns.")
        data = _string(blob.get("data", ""), f"{at}.data")
        _need(bool(data), f"{at}.data", "data is not specified.")
        data = _standard_base64(data)
        base64_validate(data, f"{at}.data")
        return {"inlineData": {"mimeType": mime, "data": data}}
    if kind == "functionCall":
        at = f"{where}.functionCall"
        _need(role == "model", at, "function calls are only allowed in model turns.")
        call = _fields(value, FUNCTION_CALL, at)
        name = call.get("name")
        _need(isinstance(name, str) and bool(name), f"{at}.name", "Name cannot be empty.")
        args = call.get("args", {})
        _need(isinstance(args, dict), f"{at}.args", f"expected an object (Struct), got {_type_name(args)}.")
        out: dict[str, Any] = {"functionCall": {"name": name, "args": args}}
        if call.get("id"):
            out["functionCall"]["id"] = _string(call["id"], f"{at}.id")
        if signature:
            out["thoughtSignature"] = signature
        return out
    at = f"{where}.functionResponse"
    _need(role == "user", at, "function responses are only allowed in user turns.")
    result = _fields(value, FUNCTION_RESPONSE, at)
    name = result.get("name")
    _need(isinstance(name, str) and bool(name), f"{at}.name", "Name cannot be empty.")
    response = result.get("response")
    _need(isinstance(response, dict), f"{at}.response", f"expected an object (Struct), got {_type_name(response)}.")
    if result.get("parts"):
        raise _unsupported(f"{at}.parts", "function responses can only carry a JSON response")
    for live_only in ("willContinue", "scheduling"):
        if result.get(live_only) not in (None, False, "SCHEDULING_UNSPECIFIED"):
            raise _unsupported(f"{at}.{live_only}", "non-blocking function responses are not supported")
    out = {"functionResponse": {"name": name, "response": response}}
    if result.get("id"):
        out["functionResponse"]["id"] = _string(result["id"], f"{at}.id")
    return out


def _content_canonical(raw: Any, where: str, ignored: set[str], *, system: bool = False) -> dict[str, Any]:
    content = _fields(raw, CONTENT, where)
    role = content.get("role") or "user"
    _string(role, f"{where}.role")
    if not system:
        _need(role in ("user", "model", "function", "tool"), f"{where}.role",
              f"Please use a valid role: user, model (got {role!r}).")
        role = "model" if role == "model" else "user"
    parts = _list(content.get("parts", []), f"{where}.parts")
    _need(bool(parts), f"{where}.parts", "contents.parts must not be empty.")
    canonical = [_part_canonical(p, f"{where}.parts[{i}]", "user" if system else role, ignored)
                 for i, p in enumerate(parts)]
    kept = [p for p in canonical if p is not None]
    if system:
        for i, p in enumerate(canonical):
            _need(p is None or "text" in p, f"{where}.parts[{i}]", "a system instruction takes text parts only.")
    return {"role": role, "parts": kept}


def _tools_canonical(raw: Any, ignored: set[str]) -> list[dict[str, Any]]:
    declarations: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, entry in enumerate(_list(raw, "tools")):
        tool = _fields(entry, TOOL, f"tools[{i}]")
        for kind in tool:
            if kind != "functionDeclarations":
                raise _unsupported(f"tools[{i}].{kind}", "only functionDeclarations can be offered to every upstream")
        for j, decl_raw in enumerate(_list(tool.get("functionDeclarations", []), f"tools[{i}].functionDeclarations")):
            where = f"tools[{i}].functionDeclarations[{j}]"
            decl = _fields(decl_raw, DECLARATION, where)
            name = _string(decl.get("name", ""), f"{where}.name")
            _need(bool(FUNCTION_NAME.match(name)), f"{where}.name",
                  "Invalid function name. Must start with a letter or an underscore and contain only a-z, A-Z, 0-9, "
                  "underscores, dots, colons and dashes, with a maximum length of 128.")
            _need(name not in seen, f"{where}.name", f"duplicate function name '{name}'.")
            seen.add(name)
            _need(not ("parameters" in decl and "parametersJsonSchema" in decl), f"{where}.parametersJsonSchema",
                  "parameters and parameters_json_schema are mutually exclusive.")
            if decl.get("behavior") not in (None, "UNSPECIFIED", "BLOCKING"):
                raise _unsupported(f"{where}.behavior", "non-blocking functions are not supported")
            if "response" in decl or "responseJsonSchema" in decl:
                ignored.add("tools.functionDeclarations.response")
            if "parameters" in decl:
                at = f"{where}.parameters"
                schema = json_schema_of(decl["parameters"], at)
            else:
                at = f"{where}.parametersJsonSchema"
                schema = decl.get("parametersJsonSchema", {"type": "object", "properties": {}})
            problem = _schema_problem(orjson.dumps(schema))
            _need(problem is None, at, f"not a valid schema for function parameters: {problem}.")
            out: dict[str, Any] = {"name": name, "parametersJsonSchema": schema}
            if decl.get("description"):
                out["description"] = _string(decl["description"], f"{where}.description")
            declarations.append(out)
    return [{"functionDeclarations": declarations}] if declarations else []


def _tool_config_canonical(raw: Any, names: set[str]) -> dict[str, Any]:
    config = _fields(raw, TOOL_CONFIG, "toolConfig")
    if config.get("retrievalConfig"):
        raise _unsupported("toolConfig.retrievalConfig", "it only applies to server-side retrieval tools")
    if config.get("includeServerSideToolInvocations"):
        raise _unsupported("toolConfig.includeServerSideToolInvocations", "server-side tools are not supported")
    where = "toolConfig.functionCallingConfig"
    calling = _fields(config.get("functionCallingConfig", {}), CALLING_CONFIG, where)
    mode = calling.get("mode", "AUTO")
    _need(mode in MODES, f"{where}.mode", f"expected one of {', '.join(MODES)}, got {mode!r}.")
    allowed = [_string(n, f"{where}.allowedFunctionNames[{i}]")
               for i, n in enumerate(_list(calling.get("allowedFunctionNames", []), f"{where}.allowedFunctionNames"))]
    if allowed:
        _need(mode == "ANY", f"{where}.allowedFunctionNames",
              "allowed_function_names can only be set when mode is ANY.")
        unknown = [n for n in allowed if n not in names]
        _need(not unknown, f"{where}.allowedFunctionNames",
              f"function '{unknown[0] if unknown else ''}' is not declared in tools.")
    if mode == "ANY":
        _need(bool(names), f"{where}.mode", "mode ANY needs tools with functionDeclarations.")
    out: dict[str, Any] = {"mode": "AUTO" if mode == "MODE_UNSPECIFIED" else mode}
    if allowed:
        out["allowedFunctionNames"] = allowed
    return {"functionCallingConfig": out}


def _generation_canonical(raw: Any, ignored: set[str]) -> dict[str, Any]:
    where = "generationConfig"
    config = _fields(raw, GENERATION, where)
    for name, detail in REFUSED_GENERATION.items():
        if config.get(name):  # proto3: zero, false and empty mean unset
            raise _unsupported(f"{where}.{name}", detail)
    out: dict[str, Any] = {}
    if "temperature" in config:
        out["temperature"] = _number(config["temperature"], f"{where}.temperature", low=0, high=2)
    if "topP" in config:
        out["topP"] = _number(config["topP"], f"{where}.topP", low=0, high=1)
    for name in ("presencePenalty", "frequencyPenalty"):
        if name in config:
            out[name] = _number(config[name], f"{where}.{name}", low=-2, high=2)
    if "seed" in config:
        out["seed"] = _integer(config["seed"], f"{where}.seed")
    if "maxOutputTokens" in config:
        out["maxOutputTokens"] = _integer(config["maxOutputTokens"], f"{where}.maxOutputTokens", low=1)
    if "candidateCount" in config:
        out["candidateCount"] = _integer(config["candidateCount"], f"{where}.candidateCount", low=1, high=8)
    if "stopSequences" in config:
        stop = _list(config["stopSequences"], f"{where}.stopSequences")
        _need(len(stop) <= 5 and all(isinstance(s, str) for s in stop), f"{where}.stopSequences",
              "expected at most 5 strings.")
        out["stopSequences"] = stop
    modalities = config.get("responseModalities") or []
    _need(all(m in ("TEXT", "MODALITY_UNSPECIFIED") for m in _list(modalities, f"{where}.responseModalities")),
          f"{where}.responseModalities", "only TEXT output is supported by the gateway.")
    thinking = _fields(config.get("thinkingConfig", {}), THINKING, f"{where}.thinkingConfig")
    if thinking.get("includeThoughts"):
        raise _unsupported(f"{where}.thinkingConfig.includeThoughts", "thought summaries are not returned")
    if thinking:
        ignored.add(f"{where}.thinkingConfig")
    if "enableEnhancedCivicAnswers" in config:
        ignored.add(f"{where}.enableEnhancedCivicAnswers")
    resolution = config.get("mediaResolution")
    if resolution is not None:
        _need(isinstance(resolution, str) and resolution.startswith("MEDIA_RESOLUTION_"), f"{where}.mediaResolution",
              f"expected a MEDIA_RESOLUTION_* value, got {resolution!r}.")
        out["mediaResolution"] = resolution
    mime = config.get("responseMimeType") or "text/plain"
    if mime not in ("text/plain", "application/json"):
        raise _unsupported(f"{where}.responseMimeType", f"'{mime}' (use text/plain or application/json)")
    _need(not ("responseSchema" in config and "responseJsonSchema" in config), f"{where}.responseJsonSchema",
          "response_json_schema and response_schema are mutually exclusive.")
    if "responseSchema" in config:
        schema: Any = json_schema_of(config["responseSchema"], f"{where}.responseSchema")
    else:
        schema = config.get("responseJsonSchema")
        if schema is not None:
            _response_schema_check(schema, f"{where}.responseJsonSchema")
    if schema is not None:
        _need(mime == "application/json", f"{where}.responseMimeType",
              f"response_mime_type must be application/json when a response schema is set, got '{mime}'.")
        out["responseJsonSchema"] = schema
    if mime == "application/json":
        out["responseMimeType"] = mime
    return out


def generate_request_canonical(raw: Any, *, model: str) -> dict[str, Any]:
    """The generateContent body, checked like the real API, in canonical form (plus the
    hints it carried, under `_ignored`)."""
    ignored: set[str] = set()
    request = _fields(raw, REQUEST, "")
    for name, detail in REFUSED_REQUEST.items():
        if request.get(name):
            raise _unsupported(name, detail)
    contents = _list(request.get("contents", []), "contents")
    _need(bool(contents), "contents", "contents is not specified.")
    out: dict[str, Any] = {
        "model": model, "contents": [_content_canonical(c, f"contents[{i}]", ignored) for i, c in enumerate(contents)],
    }
    if "systemInstruction" in request:
        out["systemInstruction"] = _content_canonical(request["systemInstruction"], "systemInstruction", ignored,
                                                      system=True)
    tools = _tools_canonical(request["tools"], ignored) if "tools" in request else []
    if tools:
        out["tools"] = tools
    names = {d["name"] for t in tools for d in t["functionDeclarations"]}
    out["toolConfig"] = _tool_config_canonical(request.get("toolConfig", {}), names)
    out["generationConfig"] = _generation_canonical(request.get("generationConfig", {}), ignored)
    for i, setting in enumerate(_list(request.get("safetySettings", []), "safetySettings")):
        _fields(setting, SAFETY_SETTING, f"safetySettings[{i}]")
    ignored.update(name for name in IGNORED_REQUEST if request.get(name) not in (None, [], {}))
    out["_ignored"] = sorted(ignored)
    return out


def _url_model(model: str | None, body: dict[str, Any]) -> str:
    name = model or body.get("model")
    _need(isinstance(name, str) and bool(name), "model", "the model is not specified.")
    return str(name).removeprefix("models/")


def chat_request_parse(raw: bytes, *, model: str | None = None, stream: bool | None = None) -> InboundChat:
    body = json_body(raw)
    name = _url_model(model, body)
    return InboundChat(generate_request_canonical(body, model=name), name, bool(stream))


def count_tokens_parse(raw: bytes, *, model: str | None = None) -> InboundChat:
    body = _fields(json_body(raw), COUNT_REQUEST, "")
    _need(not ("contents" in body and "generateContentRequest" in body), "generateContentRequest",
          "contents and generate_content_request are mutually exclusive.")
    inner = body.get("generateContentRequest", {"contents": body.get("contents")})
    name = _url_model(model, inner if isinstance(inner, dict) else {})
    return InboundChat(generate_request_canonical(inner, model=name), name, False)


def count_tokens_encode(tokens: int) -> bytes:
    return orjson.dumps({"totalTokens": tokens, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": tokens}]})


# --- canonical request -> internal (OpenAI-shaped) request ------------------------------------

def _call_id(call: dict[str, Any], signature: str | None, position: str) -> str:
    """The call's own id, else one made here (stable within the request), carrying the
    thought signature the way the Gemini adapter reads it back."""
    if call.get("id"):
        return str(call["id"])
    made = f"call_{position}"
    if signature:
        made += SIGNATURE_MARK + signature.replace("+", "-").replace("/", "_").rstrip("=")
    return made


def _tool_result_text(response: dict[str, Any]) -> str:
    """Gemini's documented convention is {"output": ...} (or {"error": ...}); a lone output
    travels as itself, anything else as JSON."""
    if len(response) == 1:
        key, value = next(iter(response.items()))
        if key in ("output", "result"):
            return value if isinstance(value, str) else orjson.dumps(value).decode()
        if key == "error":
            return "Error: " + (value if isinstance(value, str) else orjson.dumps(value).decode())
    return orjson.dumps(response).decode()


def _messages(body: dict[str, Any], detail: str | None) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    system = body.get("systemInstruction")
    if system and system["parts"]:
        messages.append({"role": "system", "content": "\n".join(p["text"] for p in system["parts"])})
    unanswered: list[tuple[str, str]] = []  # (name, id) of function calls without a response yet
    for i, content in enumerate(body["contents"]):
        parts = content["parts"]
        if content["role"] == "model":
            text = "".join(p["text"] for p in parts if "text" in p)
            calls = []
            for j, part in enumerate(parts):
                if "functionCall" in part:
                    call = part["functionCall"]
                    call_id = _call_id(call, part.get("thoughtSignature"), f"{i}_{j}")
                    unanswered.append((call["name"], call_id))
                    calls.append({"id": call_id, "type": "function",
                                  "function": {"name": call["name"], "arguments": orjson.dumps(call["args"]).decode()}})
            if text or calls:
                message: dict[str, Any] = {"role": "assistant", "content": text or None}
                if calls:
                    message["tool_calls"] = calls
                messages.append(message)
            continue
        user: list[dict[str, Any]] = []
        for j, part in enumerate(parts):
            if "text" in part:
                user.append({"type": "text", "text": part["text"]})
            elif "inlineData" in part:
                blob = part["inlineData"]
                image: dict[str, Any] = {"url": f"data:{blob['mimeType']};base64,{blob['data']}"}
                if detail:
                    image["detail"] = detail
                user.append({"type": "image_url", "image_url": image})
            else:
                result = part["functionResponse"]
                match = next((k for k, (_, cid) in enumerate(unanswered) if cid == result.get("id")), None)
                if match is None:
                    match = next((k for k, (name, _) in enumerate(unanswered) if name == result["name"]), None)
                if match is None:
                    where = f"contents[{i}].parts[{j}].functionResponse"
                    raise _bad(f"{where}.name", f"no functionCall named '{result['name']}' in an earlier model turn is "
                               "waiting for this response.")
                _, call_id = unanswered.pop(match)
                messages.append({"role": "tool", "tool_call_id": call_id,
                                 "content": _tool_result_text(result["response"])})
        if user:
            messages.append({"role": "user", "content": user})
    return messages


def to_internal(request: InboundChat) -> dict[str, Any]:
    body = request.native
    config = body["generationConfig"]
    payload: dict[str, Any] = {"model": request.model,
                               "messages": _messages(body, RESOLUTION_DETAIL.get(config.get("mediaResolution", "")))}
    if request.stream:
        payload["stream"] = True
        payload["stream_options"] = {"include_usage": True}
    for ours, theirs in (("temperature", "temperature"), ("top_p", "topP"), ("seed", "seed"),
                         ("presence_penalty", "presencePenalty"), ("frequency_penalty", "frequencyPenalty"),
                         ("max_tokens", "maxOutputTokens")):
        if theirs in config:
            payload[ours] = config[theirs]
    if config.get("stopSequences"):
        payload["stop"] = config["stopSequences"]
    if config.get("candidateCount", 1) != 1:
        payload["n"] = config["candidateCount"]
    if "responseJsonSchema" in config:
        payload["response_format"] = {"type": "json_schema",
                                      "json_schema": {"name": "response", "schema": config["responseJsonSchema"]}}
    elif config.get("responseMimeType") == "application/json":
        payload["response_format"] = {"type": "json_object"}
    declarations = [d for t in body.get("tools", []) for d in t["functionDeclarations"]]
    calling = body["toolConfig"]["functionCallingConfig"]
    if declarations:
        allowed = calling.get("allowedFunctionNames")
        if allowed and len(allowed) > 1:  # the model may call only these: offer only these
            declarations = [d for d in declarations if d["name"] in allowed]
        tools = []
        for declaration in declarations:
            function: dict[str, Any] = {"name": declaration["name"], "parameters": declaration["parametersJsonSchema"]}
            if declaration.get("description"):
                function["description"] = declaration["description"]
            if calling["mode"] == "VALIDATED":  # calls must match their schema, like OpenAI's strict
                function["strict"] = True
            tools.append({"type": "function", "function": function})
        payload["tools"] = tools
        if calling["mode"] == "NONE":
            payload["tool_choice"] = "none"
        elif calling["mode"] == "ANY":
            payload["tool_choice"] = ({"type": "function", "function": {"name": allowed[0]}}
                                      if allowed and len(allowed) == 1 else "required")
    payload["_ignored"] = list(body["_ignored"])
    return payload


# --- internal answers -> Gemini ----------------------------------------------------------------

def _args(arguments: str) -> dict[str, Any]:
    try:
        value = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {"value": value}


def usage_metadata(usage: dict[str, Any]) -> dict[str, Any]:
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    thoughts = int((usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0)
    cached = int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
    meta: dict[str, Any] = {"promptTokenCount": prompt, "candidatesTokenCount": completion - thoughts,
                            "totalTokenCount": int(usage.get("total_tokens") or prompt + completion)}
    if thoughts:
        meta["thoughtsTokenCount"] = thoughts
    if cached:
        meta["cachedContentTokenCount"] = cached
    return meta


def _function_call_part(call_id: str | None, name: str, arguments: str) -> dict[str, Any]:
    call: dict[str, Any] = {"name": name, "args": _args(arguments)}
    if call_id:
        call["id"] = call_id
    return {"functionCall": call}


def response_id() -> str:
    return uuid.uuid4().hex[:22]


def completion_encode(body: dict[str, Any], model: str) -> bytes:
    candidates = []
    for position, choice in enumerate(body.get("choices") or []):
        message = choice.get("message") or {}
        parts: list[dict[str, Any]] = []
        if isinstance(message.get("content"), str) and message["content"]:
            parts.append({"text": message["content"]})
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            parts.append(_function_call_part(call.get("id"), function.get("name") or "",
                                             function.get("arguments") or ""))
        candidate: dict[str, Any] = {}
        if parts:
            candidate["content"] = {"role": "model", "parts": parts}
        candidate["finishReason"] = FINISH.get(choice.get("finish_reason") or "stop", "OTHER")
        candidate["index"] = choice.get("index", position)
        candidates.append(candidate)
    out: dict[str, Any] = {"candidates": sorted(candidates, key=lambda c: c["index"])}
    if isinstance(body.get("usage"), dict):
        out["usageMetadata"] = usage_metadata(body["usage"])
    out["modelVersion"] = model
    out["responseId"] = response_id()
    return orjson.dumps(out)


class StreamEncoder:
    """OpenAI chunks in, SSE events out, each a partial GenerateContentResponse. Each
    candidate's latest text piece is held back by one event, so that the last event carries
    the last piece with the finishReason and the usage, as the real API's does (an extra
    empty text part there would come back in a client's chat history, and the API rejects
    empty parts). Function calls are sent whole in the last event: their argument
    fragments are collected."""

    def __init__(self, model: str, *, include_usage: bool = True) -> None:
        self.model = model
        self.response_id = response_id()
        self.seen: set[int] = set()
        self.held: dict[int, str] = {}  # candidate -> text piece not sent yet
        self.calls: dict[int, dict[int, dict[str, Any]]] = {}  # candidate -> tool index -> id, name, arguments
        self.finish_reasons: dict[int, str] = {}
        self.usage: dict[str, Any] | None = None

    def _event(self, body: dict[str, Any]) -> bytes:
        body["modelVersion"] = self.model
        body["responseId"] = self.response_id
        return b"data: " + orjson.dumps(body) + SSE_END

    def encode(self, chunk: dict[str, Any]) -> bytes:
        if isinstance(chunk.get("usage"), dict):
            self.usage = usage_metadata(chunk["usage"])
        candidates = []
        for choice in chunk.get("choices") or []:
            index = int(choice.get("index") or 0)
            self.seen.add(index)
            delta = choice.get("delta") or {}
            for call in delta.get("tool_calls") or []:
                slot = self.calls.setdefault(index, {}).setdefault(int(call.get("index") or 0),
                                                                   {"id": None, "name": "", "arguments": ""})
                function = call.get("function") or {}
                slot["id"] = call.get("id") or slot["id"]
                slot["name"] += function.get("name") or ""
                slot["arguments"] += function.get("arguments") or ""
            if choice.get("finish_reason"):
                self.finish_reasons[index] = FINISH.get(choice["finish_reason"], "OTHER")
            if isinstance(delta.get("content"), str) and delta["content"]:
                if index in self.held:
                    candidates.append({"content": {"role": "model", "parts": [{"text": self.held[index]}]},
                                       "index": index})
                self.held[index] = delta["content"]
        return self._event({"candidates": candidates}) if candidates else b""

    def finish(self) -> bytes:
        candidates = []
        for index in sorted(self.seen | set(self.finish_reasons)) or [0]:
            parts = [{"text": self.held[index]}] if index in self.held else []
            parts += [_function_call_part(c["id"], c["name"], c["arguments"])
                      for _, c in sorted(self.calls.get(index, {}).items())]
            candidates.append({"content": {"role": "model", "parts": parts or [{"text": ""}]},
                               "finishReason": self.finish_reasons.get(index, "STOP"), "index": index})
        body: dict[str, Any] = {"candidates": candidates}
        if self.usage is not None:
            body["usageMetadata"] = self.usage
        return self._event(body)

    def error(self, error: GatewayError) -> bytes:
        return b"data: " + error_response(error)[1] + SSE_END


# --- errors ------------------------------------------------------------------------------------

def error_response(error: GatewayError) -> tuple[int, bytes]:
    status = 503 if error.status == 529 else error.status  # 529 is Anthropic's overloaded
    name = STATUS.get(status, "INTERNAL" if status >= 500 else "INVALID_ARGUMENT")
    details: list[dict[str, Any]] = []
    if error.code:
        info: dict[str, Any] = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": error.code.upper(),
                                "domain": "aiproxy"}
        if error.param:
            info["metadata"] = {"field": error.param}
        details.append(info)
    retry = error.headers.get("retry-after") or error.headers.get("Retry-After")
    if retry and retry.isascii() and retry.isdigit():
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry}s"})
    body: dict[str, Any] = {"code": status, "message": error.message, "status": name}
    if details:
        body["details"] = details
    return status, orjson.dumps({"error": body})


# --- embeddings --------------------------------------------------------------------------------

def _embed_canonical(raw: Any, where: str, model: str) -> dict[str, Any]:
    request = _fields(raw, EMBED_REQUEST, where)
    if request.get("model") is not None:
        _need(str(request["model"]).removeprefix("models/") == model, _at(where, "model"),
              f"the model of each request must be the model in the URL (models/{model}).")
    content = request.get("content")
    _need(content is not None, _at(where, "content"), "content is not specified.")
    parsed = _content_canonical(content, _at(where, "content"), set())
    for i, part in enumerate(parsed["parts"]):
        _need("text" in part, _at(where, f"content.parts[{i}]"), "only text can be embedded.")
    text = "\n".join(p["text"] for p in parsed["parts"])
    _need(bool(text.strip()), _at(where, "content.parts"), "the text to embed is empty.")
    out: dict[str, Any] = {"text": text, "hints": [name for name in ("taskType", "title") if request.get(name) is not None]}
    if "outputDimensionality" in request:
        out["dimensions"] = _integer(request["outputDimensionality"], _at(where, "outputDimensionality"), low=1)
    return out


def embeddings_request_parse(raw: bytes, *, model: str | None = None) -> InboundChat:
    """embedContent ({content, ...}) or batchEmbedContents ({requests: [...]}), told apart by
    the body, as the pipeline serves both methods with this one parser."""
    body = json_body(raw)
    name = _url_model(model, body)
    if "requests" in body:
        batch = _fields(body, BATCH_EMBED, "")
        requests = _list(batch["requests"], "requests")
        _need(bool(requests), "requests", "requests is not specified.")
        _need(len(requests) <= 100, "requests", "at most 100 requests can be in one batch.")
        items = [_embed_canonical(r, f"requests[{i}]", name) for i, r in enumerate(requests)]
    else:
        items = [_embed_canonical(body, "", name)]
    dimensions = {item.get("dimensions") for item in items}
    _need(len(dimensions) == 1, "requests.outputDimensionality", "every request must ask for the same dimensionality.")
    return InboundChat({"batch": "requests" in body, "requests": items}, name, False)


def embeddings_to_internal(request: InboundChat) -> dict[str, Any]:
    items = request.native["requests"]
    payload: dict[str, Any] = {"model": request.model, "input": [item["text"] for item in items]}
    if items[0].get("dimensions"):
        payload["dimensions"] = items[0]["dimensions"]
    hints = sorted({hint for item in items for hint in item["hints"]})
    if hints:
        payload["_ignored"] = hints  # reported in x-aiproxy-ignored-params, never sent upstream
    return payload


def embeddings_encode(data: dict[str, Any], request: InboundChat) -> bytes:
    rows = sorted(data.get("data") or [], key=lambda d: d.get("index", 0))
    vectors = [{"values": row.get("embedding") or []} for row in rows]
    if request.native["batch"]:
        out: dict[str, Any] = {"embeddings": vectors}
    else:
        out = {"embedding": vectors[0] if vectors else {"values": []}}
    usage = data.get("usage")
    if isinstance(usage, dict) and usage.get("prompt_tokens") is not None:
        tokens = int(usage["prompt_tokens"])
        out["usageMetadata"] = {"promptTokenCount": tokens, "totalTokenCount": tokens}
    return orjson.dumps(out)


# --- models ------------------------------------------------------------------------------------

def model_object(group: ModelGroup) -> dict[str, Any]:
    """A model group as Gemini's Model resource (the gateway does not know which
    methods a model serves, so all of them are listed)."""
    model: dict[str, Any] = {
        "name": f"models/{group.name}", "baseModelId": group.name, "version": "001",
        "displayName": group.name,
        "description": f"{group.name} via {group_owner(group)}",
        "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens", "embedContent",
                                       "batchEmbedContents"],
    }
    if group.context_window:
        model["inputTokenLimit"] = group.context_window
    return model


def models_page(models: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({"models": models})


def stream_encoder(model: str, *, include_usage: bool) -> StreamEncoder:
    return StreamEncoder(model, include_usage=include_usage)
