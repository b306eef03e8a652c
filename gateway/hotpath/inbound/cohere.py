"""Cohere's API v2 as clients see it (what `cohere.ClientV2` calls): POST /v2/chat (streamed
when the body says `"stream": true`) and POST /v2/embed, errors as Cohere's {"id", "message"}.

Every request is validated here and turned into the internal OpenAI-shaped request (a
Cohere upstream too goes through the adapter: the internal format is the common ground).

Decisions worth knowing:
- `p` is `top_p`; `k` has no internal field: `k: 0` (Cohere's "off") is accepted, any
  other value is a 400 naming it. `tool_choice` REQUIRED/NONE is required/none;
  `strict_tools` marks every function strict; `response_format` json_object (with an
  optional `json_schema`) is OpenAI's json_object / json_schema.
- Refused with a 400 naming the field (the internal format cannot carry them):
  `documents` (RAG), `thinking`, `logprobs: true`, `safety_mode` other than the default
  CONTEXTUAL, and `response_format` together with `tools` (as the real API refuses it).
- Ignored, and named in the `x-aiproxy-ignored-params` response header: `priority`
  (a scheduling hint) and `citation_options` (the gateway never returns citations).
  `citations` and `thinking` content in assistant history are dropped: they are the
  model's own annotations and reasoning, which the internal format has no place for.
- Tool results: text parts and `document` parts (their `data` as JSON) become the tool
  message's text. Assistant `tool_plan` is the assistant text beside its tool calls.
- Answers: text beside tool calls is returned as `tool_plan` (Cohere's place for it). In
  a stream that text arrives as content, before the tool calls: the gateway cannot know
  that tool calls will follow. The internal format does not tell a stop sequence from a
  natural end, so STOP_SEQUENCE is never reported (COMPLETE is); a content filter stop
  is ERROR. A stream that fails after it started ends with `message-end` whose
  finish_reason is ERROR (TIMEOUT for a timeout) and whose `error` says why: that is
  how Cohere reports it (the SDK raises on HTTP errors only, not on stream events).
- Embed: `texts`, or `inputs` whose content is text only (an input's text parts are
  joined by a newline). `input_type` is required (as the real API requires it for
  every v3+ model) but not forwarded: OpenAI-shaped embeddings have no such field, so a
  Cohere upstream always embeds as `search_document`. `output_dimension` is
  `dimensions`. `embedding_types` may be `float` and `base64` (the float32 bytes,
  little-endian, as Cohere documents it); the quantised types (int8, uint8, binary,
  ubinary) are a 400: they are the model's own quantisation, which cannot be derived
  honestly from another upstream's floats. `images`, image inputs, `max_tokens` and
  `truncate` START/END are 400s; `priority` is ignored.
"""

from __future__ import annotations

import base64
import struct
import uuid
from typing import Any

import orjson

from ..errors import GatewayError, invalid_request
from ..validate import TOOL_NAME, _schema_problem, _type_name, image_url_validate, json_body
from . import InboundChat

# no token counting here (no such endpoint); model objects as OpenAI's
from .openai import count_tokens_encode, count_tokens_parse, model_object  # noqa: F401

WIRE = "cohere"
CHAT_ENDPOINT = "chat"
CHAT_FIELDS = frozenset({
    "model", "messages", "stream", "tools", "strict_tools", "documents", "citation_options", "response_format",
    "safety_mode", "max_tokens", "stop_sequences", "temperature", "seed", "frequency_penalty", "presence_penalty",
    "k", "p", "logprobs", "tool_choice", "thinking", "priority",
})
EMBED_FIELDS = frozenset({
    "model", "input_type", "texts", "images", "inputs", "max_tokens", "output_dimension", "embedding_types",
    "truncate", "priority",
})
ROLES = ("system", "user", "assistant", "tool")
INPUT_TYPES = ("search_document", "search_query", "classification", "clustering", "image")
EMBEDDING_TYPES = ("float", "int8", "uint8", "binary", "ubinary", "base64")
SUPPORTED_EMBEDDING_TYPES = ("float", "base64")
MAX_TEXTS = 96
FINISH = {"stop": "COMPLETE", "length": "MAX_TOKENS", "tool_calls": "TOOL_CALL", "function_call": "TOOL_CALL",
          "content_filter": "ERROR"}
IGNORED_HINTS = ("priority", "citation_options")
DONE = b"data: [DONE]\n\n"


# --- errors ----------------------------------------------------------------------------------

def error_response(error: GatewayError) -> tuple[int, bytes]:
    status = 503 if error.status == 529 else error.status  # 529 is Anthropic's overloaded; Cohere says 503
    return status, orjson.dumps({"id": str(uuid.uuid4()), "message": error.message})


def _bad(message: str, param: str) -> GatewayError:
    return invalid_request(f"invalid request: {message}", param=param)


def _need(condition: bool, message: str, param: str) -> None:
    if not condition:
        raise _bad(message, param)


def _unmappable(param: str, detail: str) -> GatewayError:
    return invalid_request(f"invalid request: '{param}' is not supported by this gateway: {detail}",
                           param=param, code="unsupported_parameter")


def _present(body: dict[str, Any], name: str) -> bool:
    return body.get(name) is not None


def _unknown_fields_check(body: dict[str, Any], allowed: frozenset[str]) -> None:
    for name in body:
        _need(name in allowed, f"unknown field: parameter {name} is not a valid field", name)


def _number_check(body: dict[str, Any], name: str, low: float, high: float | None = None, *, integer: bool = False) -> None:
    value = body.get(name)
    if value is None:
        return
    kinds: tuple[type, ...] = (int,) if integer else (int, float)
    _need(isinstance(value, kinds) and not isinstance(value, bool),
          f"{name} must be {'an integer' if integer else 'a number'}, got {_type_name(value)}", name)
    in_range = value >= low and (high is None or value <= high)
    _need(in_range, f"{name} must be between {low} and {high}" if high is not None else f"{name} must be at least {low}", name)


# --- chat request ----------------------------------------------------------------------------

def _text_parts(content: Any, where: str, kinds: tuple[str, ...]) -> list[dict[str, Any]]:
    """The content as a list of parts (a string is one text part), each checked."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    _need(isinstance(content, list), f"{where} must be a string or a list of content blocks, got {_type_name(content)}", where)
    for j, part in enumerate(content):
        at = f"{where}[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        _need(kind in kinds, f"{at}.type must be one of: {', '.join(kinds)}", f"{at}.type")
        if kind == "text":
            _need(isinstance(part.get("text"), str), f"{at}.text must be a string", f"{at}.text")
        elif kind == "thinking":
            _need(isinstance(part.get("thinking"), str), f"{at}.thinking must be a string", f"{at}.thinking")
        elif kind == "image_url":
            image: Any = part.get("image_url")
            url: Any = image.get("url") if isinstance(image, dict) else None
            _need(isinstance(url, str), f"{at}.image_url.url is required", f"{at}.image_url.url")
            image_url_validate(url, f"{at}.image_url.url")
            detail = image.get("detail")
            _need(detail in (None, "auto", "low", "high"), f"{at}.image_url.detail must be one of: auto, low, high",
                  f"{at}.image_url.detail")
        elif kind == "document":
            document = part.get("document")
            _need(isinstance(document, dict) and isinstance(document.get("data"), dict),
                  f"{at}.document.data is required (an object)", f"{at}.document.data")
    return content


def _joined_text(parts: list[dict[str, Any]]) -> str:
    return "\n".join(p["text"] for p in parts if p.get("type") == "text")


def _tool_calls_check(calls: Any, where: str) -> list[dict[str, Any]]:
    _need(isinstance(calls, list), f"{where} must be a list", where)
    for j, call in enumerate(calls):
        at = f"{where}[{j}]"
        function: Any = call.get("function") if isinstance(call, dict) else None
        _need(isinstance(call, dict) and isinstance(call.get("id"), str) and bool(call["id"]), f"{at}.id is required", f"{at}.id")
        _need(call.get("type", "function") in (None, "function"), f"{at}.type must be function", f"{at}.type")
        _need(isinstance(function, dict) and isinstance(function.get("name"), str) and bool(function["name"]),
              f"{at}.function.name is required", f"{at}.function.name")
        arguments = function.get("arguments")
        if arguments is not None:
            _need(isinstance(arguments, str), f"{at}.function.arguments must be a JSON string", f"{at}.function.arguments")
            try:
                orjson.loads(arguments)
            except orjson.JSONDecodeError:
                raise _bad(f"{at}.function.arguments is not valid JSON", f"{at}.function.arguments") from None
    return calls


def _messages_check(messages: Any) -> None:
    _need(messages is not None, "messages is required", "messages")
    _need(isinstance(messages, list), f"messages must be a list, got {_type_name(messages)}", "messages")
    _need(len(messages) > 0, "messages must contain at least one message", "messages")
    call_ids: set[str] = set()
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        _need(isinstance(message, dict), f"{where} must be an object", where)
        role = message.get("role")
        _need(role in ROLES, f"{where}.role must be one of: {', '.join(ROLES)}, got {role!r}", f"{where}.role")
        content = message.get("content")
        at = f"{where}.content"
        if role in ("system", "user"):
            _need(content is not None, f"{at} is required", at)
            parts = _text_parts(content, at, ("text",) if role == "system" else ("text", "image_url"))
            _need(any(p.get("type") != "text" or p["text"] for p in parts), f"{at} must not be empty", at)
        elif role == "assistant":
            calls = message.get("tool_calls")
            if calls is not None:
                call_ids.update(c["id"] for c in _tool_calls_check(calls, f"{where}.tool_calls"))
            plan = message.get("tool_plan")
            _need(plan is None or isinstance(plan, str), f"{where}.tool_plan must be a string", f"{where}.tool_plan")
            parts = _text_parts(content, at, ("text", "thinking")) if content is not None else []
            _need(bool(calls) or bool(_joined_text(parts)), f"{where}: message must not be empty in a turn "
                  "(give content or tool_calls)", at)
        else:
            call_id = message.get("tool_call_id")
            _need(isinstance(call_id, str) and bool(call_id), f"{where}.tool_call_id is required", f"{where}.tool_call_id")
            _need(call_id in call_ids, f"{where}.tool_call_id {call_id!r} does not match a tool call of an earlier "
                  "assistant message", f"{where}.tool_call_id")
            _need(content is not None, f"{at} is required", at)
            _text_parts(content, at, ("text", "document"))


def _tools_check(tools: Any) -> None:
    _need(isinstance(tools, list), f"tools must be a list, got {_type_name(tools)}", "tools")
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        _need(isinstance(tool, dict) and tool.get("type", "function") == "function" and isinstance(tool.get("function"), dict),
              f"{where} must be {{type: function, function: {{name, description, parameters}}}}", where)
        function = tool["function"]
        name = function.get("name")
        _need(isinstance(name, str) and bool(TOOL_NAME.match(name)),
              f"{where}.function.name must be 1-64 letters, digits, underscores or dashes", f"{where}.function.name")
        description = function.get("description")
        _need(description is None or isinstance(description, str), f"{where}.function.description must be a string",
              f"{where}.function.description")
        _need(function.get("parameters") is not None, f"{where}.function.parameters is required", f"{where}.function.parameters")
        problem = _schema_problem(orjson.dumps(function["parameters"]))
        _need(problem is None, f"{where}.function.parameters is not a valid JSON Schema: {problem}", f"{where}.function.parameters")


def chat_request_validate(body: dict[str, Any]) -> None:
    _unknown_fields_check(body, CHAT_FIELDS)
    model = body.get("model")
    _need(isinstance(model, str) and bool(model), "model is required (a string)", "model")
    _messages_check(body.get("messages"))
    stream = body.get("stream")
    _need(stream is None or isinstance(stream, bool), f"stream must be a boolean, got {_type_name(stream)}", "stream")
    tools = body.get("tools")
    if tools is not None:
        _tools_check(tools)
    for name in ("strict_tools", "logprobs"):
        value = body.get(name)
        _need(value is None or isinstance(value, bool), f"{name} must be a boolean", name)
    choice = body.get("tool_choice")
    _need(choice in (None, "REQUIRED", "NONE"), "tool_choice must be one of: REQUIRED, NONE", "tool_choice")
    _need(choice != "REQUIRED" or bool(tools), "tool_choice REQUIRED needs the tools parameter", "tool_choice")
    fmt = body.get("response_format")
    if fmt is not None:
        kind = fmt.get("type") if isinstance(fmt, dict) else None
        _need(kind in ("text", "json_object"), "response_format.type must be one of: text, json_object", "response_format.type")
        _need(kind == "json_object" or fmt.get("json_schema") is None, "json_schema can only be used with type json_object",
              "response_format.json_schema")
        _need(kind == "text" or not tools, "response_format is not supported with tools", "response_format")
        if fmt.get("json_schema") is not None:
            problem = _schema_problem(orjson.dumps(fmt["json_schema"]))
            _need(problem is None, f"response_format.json_schema is not a valid JSON Schema: {problem}",
                  "response_format.json_schema")
    _number_check(body, "max_tokens", 1, integer=True)
    _number_check(body, "temperature", 0)
    _number_check(body, "seed", 0, integer=True)
    _number_check(body, "frequency_penalty", 0, 1)
    _number_check(body, "presence_penalty", 0, 1)
    _number_check(body, "k", 0, 500, integer=True)
    _number_check(body, "p", 0.01, 0.99)
    _number_check(body, "priority", 0, integer=True)
    stop = body.get("stop_sequences")
    _need(stop is None or (isinstance(stop, list) and len(stop) <= 5 and all(isinstance(s, str) and s for s in stop)),
          "stop_sequences must be a list of up to 5 non-empty strings", "stop_sequences")
    mode = body.get("safety_mode")
    _need(mode in (None, "CONTEXTUAL", "STRICT", "OFF"), "safety_mode must be one of: CONTEXTUAL, STRICT, OFF", "safety_mode")
    documents = body.get("documents")
    _need(documents is None or isinstance(documents, list), "documents must be a list", "documents")
    for name in ("citation_options", "thinking"):
        value = body.get(name)
        _need(value is None or isinstance(value, dict), f"{name} must be an object", name)


def chat_request_parse(raw: bytes, *, model: str | None = None, stream: bool | None = None) -> InboundChat:
    body = json_body(raw)
    chat_request_validate(body)
    return InboundChat(body, body["model"], bool(body.get("stream")))


# --- Cohere request -> internal (OpenAI-shaped) request --------------------------------------

def _refusals_check(body: dict[str, Any]) -> None:
    if body.get("documents"):
        raise _unmappable("documents", "documents for grounded answers (RAG) have no place in the internal request; "
                                       "put their text in a system or user message instead")
    if body.get("thinking") is not None:
        raise _unmappable("thinking", "reasoning settings cannot be carried to every upstream")
    if body.get("logprobs"):
        raise _unmappable("logprobs", "log probabilities are not returned through the gateway")
    if body.get("safety_mode") not in (None, "CONTEXTUAL"):
        raise _unmappable("safety_mode", "only the default CONTEXTUAL mode can be honoured on every upstream")
    if body.get("k") not in (None, 0):
        raise _unmappable("k", "top-k sampling has no equivalent in the internal request; use p instead")


def _user_content(content: Any) -> Any:
    if isinstance(content, str):
        return content
    parts: list[dict[str, Any]] = []
    for part in content:
        if part["type"] == "text":
            parts.append({"type": "text", "text": part["text"]})
        else:
            image: dict[str, Any] = {"url": part["image_url"]["url"]}
            if part["image_url"].get("detail") is not None:
                image["detail"] = part["image_url"]["detail"]
            parts.append({"type": "image_url", "image_url": image})
    return parts


def _tool_result_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    texts = []
    for part in content:
        if part["type"] == "text":
            texts.append(part["text"])
        else:
            texts.append(orjson.dumps(part["document"]["data"]).decode())
    return "\n".join(texts)


def _assistant_message(message: dict[str, Any]) -> dict[str, Any]:
    content = message.get("content")
    text = _joined_text(_text_parts(content, "", ("text", "thinking"))) if content is not None else ""
    words = "\n".join(t for t in (message.get("tool_plan") or "", text) if t)
    out: dict[str, Any] = {"role": "assistant", "content": words or None}
    calls = message.get("tool_calls")
    if calls:
        out["tool_calls"] = [{"id": c["id"], "type": "function",
                              "function": {"name": c["function"]["name"], "arguments": c["function"].get("arguments") or "{}"}}
                             for c in calls]
    return out


def to_internal(request: InboundChat) -> dict[str, Any]:
    body = request.native
    _refusals_check(body)
    messages: list[dict[str, Any]] = []
    for message in body["messages"]:
        role = message["role"]
        if role == "system":
            messages.append({"role": "system", "content": _joined_text(_text_parts(message["content"], "", ("text",)))})
        elif role == "user":
            messages.append({"role": "user", "content": _user_content(message["content"])})
        elif role == "assistant":
            messages.append(_assistant_message(message))
        else:
            messages.append({"role": "tool", "tool_call_id": message["tool_call_id"],
                             "content": _tool_result_text(message["content"])})
    payload: dict[str, Any] = {"model": body["model"], "messages": messages}
    if body.get("stream"):
        payload["stream"] = True
        payload["stream_options"] = {"include_usage": True}
    tools = body.get("tools")
    if tools:
        converted = []
        for tool in tools:
            function = tool["function"]
            spec: dict[str, Any] = {"name": function["name"], "parameters": function["parameters"]}
            if function.get("description"):
                spec["description"] = function["description"]
            if body.get("strict_tools"):
                spec["strict"] = True
            converted.append({"type": "function", "function": spec})
        payload["tools"] = converted
        choice = body.get("tool_choice")
        if choice is not None:
            payload["tool_choice"] = {"REQUIRED": "required", "NONE": "none"}[choice]
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_object":
        schema = fmt.get("json_schema")
        payload["response_format"] = ({"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}
                                      if schema is not None else {"type": "json_object"})
    for ours, theirs in (("max_tokens", "max_tokens"), ("temperature", "temperature"), ("top_p", "p"), ("seed", "seed"),
                         ("frequency_penalty", "frequency_penalty"), ("presence_penalty", "presence_penalty")):
        if body.get(theirs) is not None:
            payload[ours] = body[theirs]
    if body.get("stop_sequences"):
        payload["stop"] = body["stop_sequences"]
    ignored = [name for name in IGNORED_HINTS if _present(body, name)]
    if any(isinstance(m.get("content"), list) and any(isinstance(p, dict) and p.get("type") == "thinking" for p in m["content"])
           for m in body["messages"] if m["role"] == "assistant"):
        ignored.append("messages.content.thinking")
    if any(m.get("citations") for m in body["messages"] if m["role"] == "assistant"):
        ignored.append("messages.citations")
    payload["_ignored"] = ignored
    return payload


# --- internal answers -> Cohere ---------------------------------------------------------------

def _usage(usage: Any) -> dict[str, Any] | None:
    if not isinstance(usage, dict):
        return None
    counts = {"input_tokens": int(usage.get("prompt_tokens") or 0), "output_tokens": int(usage.get("completion_tokens") or 0)}
    return {"billed_units": dict(counts), "tokens": dict(counts)}


def _tool_call(call: dict[str, Any]) -> dict[str, Any]:
    function = call.get("function") or {}
    return {"id": call.get("id") or "call_" + uuid.uuid4().hex[:24], "type": "function",
            "function": {"name": function.get("name") or "", "arguments": function.get("arguments") or "{}"}}


def completion_encode(body: dict[str, Any], model: str) -> bytes:
    choice = (body.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    text = message.get("content") if isinstance(message.get("content"), str) else ""
    calls = [_tool_call(c) for c in message.get("tool_calls") or [] if isinstance(c, dict)]
    answer: dict[str, Any] = {"role": "assistant"}
    if calls:
        if text:
            answer["tool_plan"] = text  # Cohere's place for the words that come with tool calls
        answer["tool_calls"] = calls
    else:
        answer["content"] = [{"type": "text", "text": text or ""}]
    out: dict[str, Any] = {"id": str(uuid.uuid4()), "finish_reason": FINISH.get(choice.get("finish_reason") or "stop", "COMPLETE"),
                           "message": answer}
    usage = _usage(body.get("usage"))
    if usage is not None:
        out["usage"] = usage
    return orjson.dumps(out)


def _event(data: dict[str, Any]) -> bytes:
    return b"event: " + data["type"].encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class StreamEncoder:
    """OpenAI chunks in, Cohere's v2 event sequence out: message-start; text as content-start,
    content-delta..., content-end; each tool call as tool-call-start, tool-call-delta...,
    tool-call-end; message-end with the finish reason and usage; then `data: [DONE]`."""

    def __init__(self, model: str, *, include_usage: bool = True) -> None:
        self.model = model
        self.started = False
        self.open: tuple[str, int] | None = None  # ("content" | "tool", Cohere index)
        self.contents = 0
        self.tools: dict[Any, int] = {}  # OpenAI tool-call index -> Cohere tool-call index
        self.finish_reason = "COMPLETE"
        self.usage: dict[str, Any] | None = None

    def _start(self) -> bytes:
        self.started = True
        start = {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}
        return _event({"id": str(uuid.uuid4()), "type": "message-start", "delta": {"message": start}})

    def _close(self) -> bytes:
        if self.open is None:
            return b""
        kind, index = self.open
        self.open = None
        return _event({"type": "content-end" if kind == "content" else "tool-call-end", "index": index})

    def _text(self, text: str) -> bytes:
        out = b""
        if self.open is None or self.open[0] != "content":
            out += self._close()
            self.open = ("content", self.contents)
            self.contents += 1
            out += _event({"type": "content-start", "index": self.open[1],
                           "delta": {"message": {"content": {"type": "text", "text": ""}}}})
        return out + _event({"type": "content-delta", "index": self.open[1], "delta": {"message": {"content": {"text": text}}}})

    def _tool(self, call: dict[str, Any]) -> bytes:
        out = b""
        key = call.get("index", 0)
        function = call.get("function") or {}
        if call.get("id") or key not in self.tools:
            out += self._close()
            self.tools[key] = index = len(self.tools)
            self.open = ("tool", index)
            start = {"id": call.get("id") or "call_" + uuid.uuid4().hex[:24], "type": "function",
                     "function": {"name": function.get("name") or "", "arguments": ""}}
            out += _event({"type": "tool-call-start", "index": index, "delta": {"message": {"tool_calls": start}}})
        if function.get("arguments"):
            fragment = {"function": {"arguments": function["arguments"]}}
            out += _event({"type": "tool-call-delta", "index": self.tools[key], "delta": {"message": {"tool_calls": fragment}}})
        return out

    def encode(self, chunk: dict[str, Any]) -> bytes:
        out = b"" if self.started else self._start()
        usage = _usage(chunk.get("usage"))
        if usage is not None:
            self.usage = usage
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if delta.get("content"):
                out += self._text(delta["content"])
            for call in delta.get("tool_calls") or []:
                out += self._tool(call)
            if choice.get("finish_reason"):
                self.finish_reason = FINISH.get(choice["finish_reason"], "COMPLETE")
        return out

    def _end(self, delta: dict[str, Any]) -> bytes:
        out = (b"" if self.started else self._start()) + self._close()
        return out + _event({"type": "message-end", "delta": delta}) + DONE

    def finish(self) -> bytes:
        delta: dict[str, Any] = {"finish_reason": self.finish_reason}
        if self.usage is not None:
            delta["usage"] = self.usage
        return self._end(delta)

    def error(self, error: GatewayError) -> bytes:
        return self._end({"finish_reason": "TIMEOUT" if error.status == 504 else "ERROR", "error": error.message})


# --- embed ------------------------------------------------------------------------------------

def _embed_texts(body: dict[str, Any]) -> list[str]:
    if body.get("images") is not None:
        raise _unmappable("images", "image embeddings cannot be sent to every upstream; embed texts")
    texts: Any = body.get("texts")
    inputs: Any = body.get("inputs")
    _need(texts is not None or inputs is not None, "one of texts, images or inputs must be provided", "texts")
    _need(texts is None or inputs is None, "give either texts or inputs, not both", "inputs")
    if texts is not None:
        _need(isinstance(texts, list) and len(texts) > 0, "texts must be a non-empty list of strings", "texts")
        for i, text in enumerate(texts):
            _need(isinstance(text, str) and bool(text.strip()), f"texts[{i}] must be a non-empty string", f"texts[{i}]")
        out: list[str] = texts
    else:
        _need(isinstance(inputs, list) and len(inputs) > 0, "inputs must be a non-empty list", "inputs")
        out = []
        for i, item in enumerate(inputs):
            content: Any = item.get("content") if isinstance(item, dict) else None
            _need(isinstance(content, list) and len(content) > 0, f"inputs[{i}].content must be a non-empty list", f"inputs[{i}].content")
            pieces = []
            for j, part in enumerate(content):
                at = f"inputs[{i}].content[{j}]"
                kind = part.get("type") if isinstance(part, dict) else None
                if kind == "image_url":
                    raise _unmappable(at, "image embeddings cannot be sent to every upstream; embed text")
                _need(kind == "text", f"{at}.type must be one of: text, image_url", f"{at}.type")
                _need(isinstance(part.get("text"), str), f"{at}.text must be a string", f"{at}.text")
                pieces.append(part["text"])
            text = "\n".join(pieces)
            _need(bool(text.strip()), f"inputs[{i}] has no text", f"inputs[{i}].content")
            out.append(text)
    _need(len(out) <= MAX_TEXTS, f"total number of texts must be at most {MAX_TEXTS} - received {len(out)}", "texts")
    return out


def embed_request_validate(body: dict[str, Any]) -> list[str]:
    _unknown_fields_check(body, EMBED_FIELDS)
    model = body.get("model")
    _need(isinstance(model, str) and bool(model), "model is required (a string)", "model")
    _need(body.get("input_type") in INPUT_TYPES, f"input_type must be one of: {', '.join(INPUT_TYPES)}", "input_type")
    kinds = body.get("embedding_types")
    if kinds is not None:
        _need(isinstance(kinds, list) and len(kinds) > 0 and all(k in EMBEDDING_TYPES for k in kinds),
              f"embedding_types must be a non-empty list of: {', '.join(EMBEDDING_TYPES)}", "embedding_types")
        unsupported = [k for k in kinds if k not in SUPPORTED_EMBEDDING_TYPES]
        if unsupported:
            raise _unmappable("embedding_types", f"{', '.join(unsupported)} embeddings are the model's own quantisation and "
                                                 "cannot be made from another upstream's floats; ask for float or base64")
    _number_check(body, "output_dimension", 1, integer=True)
    _number_check(body, "priority", 0, integer=True)
    if body.get("max_tokens") is not None:
        raise _unmappable("max_tokens", "embedding inputs cannot be truncated to a token count on every upstream")
    truncate = body.get("truncate")
    _need(truncate in (None, "NONE", "START", "END"), "truncate must be one of: NONE, START, END", "truncate")
    if truncate in ("START", "END"):
        raise _unmappable("truncate", "inputs cannot be truncated on every upstream; only NONE (too long is an error) is honoured")
    return _embed_texts(body)


def embeddings_request_parse(raw: bytes, *, model: str | None = None) -> InboundChat:
    body = json_body(raw)
    texts = embed_request_validate(body)
    return InboundChat({**body, "texts": texts}, body["model"], False)


def embeddings_to_internal(request: InboundChat) -> dict[str, Any]:
    body = request.native
    payload: dict[str, Any] = {"model": body["model"], "input": body["texts"]}
    if body.get("output_dimension") is not None:
        payload["dimensions"] = body["output_dimension"]
    return payload


def embeddings_encode(data: dict[str, Any], request: InboundChat) -> bytes:
    items = sorted((d for d in data.get("data") or [] if isinstance(d, dict)), key=lambda d: d.get("index", 0))
    vectors = [d.get("embedding") or [] for d in items]
    embeddings: dict[str, Any] = {}
    for kind in request.native.get("embedding_types") or ["float"]:
        if kind == "float":
            embeddings["float"] = vectors
        else:
            embeddings["base64"] = [base64.b64encode(struct.pack(f"<{len(v)}f", *v)).decode() for v in vectors]
    tokens = int((data.get("usage") or {}).get("prompt_tokens") or 0)
    return orjson.dumps({
        "id": str(uuid.uuid4()), "embeddings": embeddings, "texts": request.native["texts"],
        "response_type": "embeddings_by_type",
        "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": tokens}},
    })


def stream_encoder(model: str, *, include_usage: bool) -> StreamEncoder:
    return StreamEncoder(model, include_usage=include_usage)


# --- models (listed as OpenAI lists them; Cohere's SDK has no model listing of its own to match) ---

def models_page(models: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({"data": models})
