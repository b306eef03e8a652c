"""What the response cache agrees to store: only whole answers."""

from __future__ import annotations

from gateway.hotpath.response_cache import completion_assemble, completion_complete


def _chunk(delta, finish=None, **extra):  # type: ignore[no-untyped-def]
    return {"id": "c1", "created": 1, "model": "m", "choices": [{"index": 0, "delta": delta, "finish_reason": finish,
                                                                 **extra}]}


def test_a_finished_stream_is_assembled_with_its_tool_call_arguments() -> None:
    chunks = [_chunk({"role": "assistant", "content": ""}),
              _chunk({"tool_calls": [{"index": 0, "id": "t1", "function": {"name": "f", "arguments": '{"a"'}}]}),
              _chunk({"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}),
              _chunk({}, "tool_calls"),
              {"id": "c1", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}}]
    body = completion_assemble(chunks)
    assert body is not None and completion_complete(body)
    call = body["choices"][0]["message"]["tool_calls"][0]
    assert call == {"id": "t1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
    assert body["usage"]["completion_tokens"] == 4


def test_a_cut_stream_or_a_partial_tool_call_is_not_stored() -> None:
    assert completion_assemble([_chunk({"content": "half an ans"})]) is None
    partial = {"choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "tool_calls": [{"id": "t", "type": "function", "function": {"name": "f", "arguments": '{"a": '}}]}}]}
    assert not completion_complete(partial)
    assert not completion_complete({"choices": [{"index": 0, "finish_reason": "content_filter", "message": {}}]})


def test_refusals_and_logprobs_in_a_stream_are_not_cached() -> None:
    assert completion_assemble([_chunk({"refusal": "I can't"}), _chunk({}, "stop")]) is None
    assert completion_assemble([_chunk({"content": "x"}, logprobs={"content": []}), _chunk({}, "stop")]) is None
