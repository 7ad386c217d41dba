"""The shared translation core (``rec_llm_gateway.translate``): the ``Reply`` state machine, its
OpenAI writers, and the request-side helpers every native provider uses."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from rec_llm_gateway.errors import InvalidRequestError
from rec_llm_gateway.schema import ChatCompletionRequest
from rec_llm_gateway.translate import ChunkWriter, CompletionWriter, Reply, arguments_json
from rec_llm_gateway.translate.errors import ErrorBody
from rec_llm_gateway.translate.request import (
    claude_thinking,
    json_tool,
    json_tool_name,
    parse_data_url,
    tool_arguments,
)
from rec_llm_gateway.usage import TokenUsage


def deltas(chunks: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any], str | None]]:
    return [
        (choice["index"], choice["delta"], choice["finish_reason"])
        for chunk in chunks
        for choice in chunk["choices"]
    ]


# -- Reply + ChunkWriter ----------------------------------------------------------------------------


def test_a_stream_of_text_and_tool_calls_keyed_by_vendor_blocks() -> None:
    writer = ChunkWriter("r1", "m", created=7)
    reply = Reply(writer)
    chunks: list[dict[str, Any]] = []
    events = [
        lambda: reply.begin(),
        lambda: reply.text("Hi"),
        lambda: reply.tool_call("block-3", "call_a", "a", ""),  # the vendor's key, not the OpenAI index
        lambda: reply.tool_arguments("block-3", '{"x"'),
        lambda: reply.tool_call("block-7", "call_b", "b", ""),
        lambda: reply.tool_end("block-7"),  # never sent arguments: "{}"
        lambda: reply.tool_arguments("block-3", ":1}"),
        lambda: reply.finish("tool_calls"),
        lambda: reply.add_usage(TokenUsage(prompt_tokens=3, completion_tokens=4, total_tokens=7)),
    ]
    for event in events:  # one upstream event each
        event()
        chunks += writer.take()
    call_a = {"index": 0, "id": "call_a", "type": "function", "function": {"name": "a", "arguments": ""}}
    call_b = {"index": 1, "id": "call_b", "type": "function", "function": {"name": "b", "arguments": ""}}
    assert deltas(chunks) == [
        (0, {"role": "assistant", "content": ""}, None),
        (0, {"content": "Hi"}, None),
        (0, {"tool_calls": [call_a]}, None),
        (0, {"tool_calls": [{"index": 0, "function": {"arguments": '{"x"'}}]}, None),
        (0, {"tool_calls": [call_b]}, None),
        (0, {"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}, None),
        (0, {"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}, None),
        (0, {}, "tool_calls"),
    ]
    assert chunks[-1] == {
        "id": "r1",
        "object": "chat.completion.chunk",
        "created": 7,
        "model": "m",
        "choices": [],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
    }
    assert all(chunk["choices"][0]["logprobs"] is None for chunk in chunks[:-1])
    assert reply.usage == TokenUsage(prompt_tokens=3, completion_tokens=4, total_tokens=7)
    assert writer.take() == []


def test_each_take_is_one_event_and_deltas_merge_only_within_it() -> None:
    writer = ChunkWriter()
    reply = Reply(writer)
    reply.reasoning("think")  # begins the choice by itself
    reply.text("a")
    first = writer.take()
    reply.text("b")
    reply.text("c")  # "content" is taken in the open delta: a chunk of its own
    second = writer.take()
    assert [delta for _, delta, _ in deltas(first)] == [
        {"role": "assistant", "content": ""},
        {"reasoning_content": "think", "content": "a"},
    ]
    assert [delta for _, delta, _ in deltas(second)] == [{"content": "b"}, {"content": "c"}]
    reply.tool_call(1, "x", "f", "{}")
    reply.tool_call(2, "y", "g", "{}")  # whole calls in one event (Gemini): one delta
    [(_, delta, _)] = deltas(writer.take())
    assert [call["id"] for call in delta["tool_calls"]] == ["x", "y"]


def test_the_json_tool_is_the_content_and_not_a_tool_call() -> None:
    writer = ChunkWriter()
    reply = Reply(writer, json_tool="json_response")
    reply.tool_call(0, "t1", "json_response", "")
    reply.tool_arguments(0, '{"a":')
    reply.tool_arguments(0, "1}")
    reply.tool_call(1, "t2", "json_response", '{"again":1}')  # a second answer is dropped
    reply.tool_arguments(1, "ignored")
    reply.finish("tool_calls")  # only the JSON tool was called: that is the answer
    assert [(delta, finish) for _, delta, finish in deltas(writer.take())] == [
        ({"role": "assistant", "content": ""}, None),
        ({"content": '{"a":'}, None),
        ({"content": "1}"}, None),
        ({}, "stop"),
    ]


def test_a_silent_json_tool_answers_an_empty_object_at_the_finish() -> None:
    writer = ChunkWriter()
    reply = Reply(writer, json_tool="j")
    reply.tool_call("k", "t", "j")
    reply.finish("tool_calls")
    assert [delta for _, delta, _ in deltas(writer.take())][1:] == [{"content": "{}"}, {}]


def test_arguments_for_a_block_that_never_started_are_kept() -> None:
    writer = ChunkWriter()
    reply = Reply(writer)
    reply.tool_arguments(5, '{"q":1}')
    [_, (_, delta, _)] = deltas(writer.take())
    assert delta == {
        "tool_calls": [
            {"index": 0, "id": None, "type": "function", "function": {"name": None, "arguments": '{"q":1}'}}
        ]
    }


def test_choices_are_numbered_apart() -> None:
    writer = ChunkWriter()
    reply = Reply(writer)
    reply.tool_call((0, 0), "a", "f", "{}", choice=0)
    reply.tool_call((1, 0), "b", "g", "{}", choice=1)
    reply.logprobs({"content": []}, choice=1)
    reply.finish("tool_calls", choice=1)
    reply.finish("stop", choice=0)
    chunks = writer.take()
    calls = [
        (index, delta["tool_calls"][0]["index"])
        for index, delta, _ in deltas(chunks)
        if "tool_calls" in delta
    ]
    assert calls == [(0, 0), (1, 0)]
    assert chunks[3]["choices"][0]["logprobs"] == {"content": []}
    assert [(index, finish) for index, _, finish in deltas(chunks) if finish] == [
        (1, "tool_calls"),
        (0, "stop"),
    ]


# -- Reply + CompletionWriter -----------------------------------------------------------------------


def test_a_complete_answer() -> None:
    writer = CompletionWriter("r", "m", created=1)
    reply = Reply(writer)
    reply.reasoning("hmm")
    reply.thinking_block({"type": "thinking", "thinking": "hmm", "signature": "s"})
    reply.text("Hello ")
    reply.text("there")
    reply.tool_call(0, "c1", "f", arguments_json({"city": "Zürich"}))
    reply.finish("tool_calls")
    reply.add_usage(TokenUsage(prompt_tokens=1, completion_tokens=2, total_tokens=3))
    assert writer.response() == {
        "id": "r",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Hello there",
                    "refusal": None,
                    "reasoning_content": "hmm",
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "f", "arguments": '{"city":"Zürich"}'},
                        }
                    ],
                    "thinking_blocks": [{"type": "thinking", "thinking": "hmm", "signature": "s"}],
                },
                "logprobs": None,
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
    }


def test_only_tool_calls_mean_null_content_and_nothing_means_empty_content() -> None:
    writer = CompletionWriter()
    reply = Reply(writer)
    reply.tool_call(0, "c", "f", "{}")
    reply.finish("tool_calls")
    assert writer.response()["choices"][0]["message"]["content"] is None
    empty = CompletionWriter()
    Reply(empty).finish("stop")
    assert empty.response()["choices"][0]["message"] == {"role": "assistant", "content": "", "refusal": None}
    assert "usage" not in empty.response()


def test_a_json_answer_replaces_the_text_around_it() -> None:
    writer = CompletionWriter()
    reply = Reply(writer, json_tool="json_response")
    reply.text("Here it is: ")
    reply.tool_call(1, "t", "json_response", '{"a":1}')
    reply.finish("tool_calls")
    [choice] = writer.response()["choices"]
    assert choice["message"]["content"] == '{"a":1}' and choice["finish_reason"] == "stop"
    assert "tool_calls" not in choice["message"]


# -- request helpers --------------------------------------------------------------------------------


def test_data_urls() -> None:
    assert parse_data_url("data:Image/PNG;base64,AAAA", "p") == parse_data_url(
        "data:image/png;base64,AAAA", "p"
    )
    plain = parse_data_url("data:,hello%20world", "p")
    assert plain.media_type == "text/plain" and base64.b64decode(plain.data) == b"hello world"
    for bad in ("data:image/png;base64", "data:image/png;base64,", "https://x.test/a.png"):
        with pytest.raises(InvalidRequestError) as caught:
            parse_data_url(bad, "messages[0].content[1].image_url.url")
        assert caught.value.param == "messages[0].content[1].image_url.url"


def test_tool_arguments() -> None:
    assert tool_arguments(' {"a": [1]} ', "p") == {"a": [1]}
    assert tool_arguments("  ", "p") == {}
    for bad in ("{", "[1, 2]", "3"):
        with pytest.raises(InvalidRequestError) as caught:
            tool_arguments(bad, "messages[1].tool_calls[0].function.arguments")
        assert caught.value.param == "messages[1].tool_calls[0].function.arguments"
        assert caught.value.code == "invalid_tool_arguments"


def request(**fields: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": "x"}], **fields}
    )


def tool(name: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}


def test_json_tool_names_avoid_client_tools() -> None:
    schema = {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}}}
    assert json_tool_name(request(response_format=schema)) == "json_response"
    assert json_tool_name(request(response_format=schema), schema_name=True) == "answer"
    clash = request(response_format=schema, tools=[tool("answer"), tool("answer_2")])
    assert json_tool_name(clash, schema_name=True) == "answer_3"
    assert json_tool_name(request(response_format={"type": "text"})) is None
    assert json_tool_name(request()) is None


def test_json_tool() -> None:
    fmt = {
        "type": "json_schema",
        "json_schema": {
            "name": "City",
            "description": "A city.",
            "strict": True,
            "schema": {"properties": {}},
        },
    }
    made = json_tool(request(response_format=fmt))
    assert made is not None
    assert made.name == "json_response" and made.strict
    assert made.schema == {"type": "object", "properties": {}}
    assert made.description.endswith(" A city.")
    assert json_tool(request(response_format={"type": "json_object"})) is not None
    assert json_tool(request(response_format={"type": "text"})) is None
    for bad, param in (
        ({"type": "yaml"}, "response_format.type"),
        ({"type": "json_schema"}, "response_format.json_schema"),
        (
            {"type": "json_schema", "json_schema": {"schema": {"type": "array"}}},
            "response_format.json_schema.schema",
        ),
    ):
        with pytest.raises(InvalidRequestError) as caught:
            json_tool(request(response_format=bad))
        assert caught.value.param == param


def test_claude_thinking() -> None:
    assert claude_thinking(None, 500, answer_room=8192) == (None, 500)
    assert claude_thinking("none", None, answer_room=8192) == (None, None)
    assert claude_thinking("low", None, answer_room=8192) == (
        {"type": "enabled", "budget_tokens": 2048},
        10240,
    )
    assert claude_thinking("high", None, answer_room=8192, model_max_output=12000) == (
        {"type": "enabled", "budget_tokens": 11999},
        12000,
    )
    assert claude_thinking("medium", 3000, answer_room=8192) == (
        {"type": "enabled", "budget_tokens": 2999},
        3000,
    )
    with pytest.raises(InvalidRequestError) as small:
        claude_thinking("low", 1000, answer_room=8192)
    assert small.value.param == "max_tokens"
    with pytest.raises(InvalidRequestError) as unknown:
        claude_thinking("max", None, answer_room=8192)
    assert unknown.value.param == "reasoning_effort"


def test_error_bodies() -> None:
    body = ErrorBody(400, b'{"error": {"message": "bad", "type": "x"}}', "up")
    assert body.field("error", "type") == "x" and body.field("error", "nope", "deeper") is None
    assert body.message(body.field("error", "message")) == "bad"
    assert (
        ErrorBody(502, b"<html>Bad Gateway</html>", "up").message()
        == "upstream 'up' returned HTTP 502: <html>Bad Gateway</html>"
    )
    assert ErrorBody(500, b'{"no": "message"}', "up").message() == "upstream 'up' returned HTTP 500"
    assert ErrorBody(404, b'[{"error": {"code": 404}}]', "up").field("error", "code") == 404


# -- the other direction: OpenAI chunks back into a Reply -----------------------------------------


def test_openai_chunks_read_back_into_the_same_answer() -> None:
    """What ChunkWriter emitted, read back by read_chunk, makes the same complete answer (the path a
    route answering in another shape takes from any provider's stream)."""
    from rec_llm_gateway.translate.openai_chunks import read_chunk

    def tell(reply: Reply) -> None:
        reply.begin()
        reply.reasoning("hmm")
        reply.text("Hi")
        reply.tool_call("k1", "c1", "f", "")
        reply.tool_arguments("k1", '{"a":')
        reply.tool_arguments("k1", "1}")
        reply.tool_call("k2", "c2", "g", "")
        reply.finish("tool_calls")
        reply.add_usage(TokenUsage(prompt_tokens=1, completion_tokens=2, total_tokens=3))

    direct = CompletionWriter("r", "m", created=1)
    tell(Reply(direct))
    chunks = ChunkWriter("r", "m", created=1)
    tell(Reply(chunks))
    again = CompletionWriter(created=1)
    reply = Reply(again)
    for chunk in chunks.take():
        read_chunk(reply, chunk)
    assert again.response() == direct.response()
    assert reply.usage == TokenUsage(prompt_tokens=1, completion_tokens=2, total_tokens=3)
    message = again.response()["choices"][0]["message"]
    assert [call["function"]["arguments"] for call in message["tool_calls"]] == ['{"a":1}', "{}"]


# -- echo is built by the core too -----------------------------------------------------------------


async def test_echo_answers_n_choices_through_the_core() -> None:
    import httpx

    from rec_llm_gateway import Gateway
    from rec_llm_gateway.providers.base import UpstreamCall

    provider = Gateway({"providers": {"echo": {}}}).providers["echo"]
    request = ChatCompletionRequest.model_validate(
        {"model": "e", "messages": [{"role": "user", "content": "a b"}], "n": 2, "max_tokens": 1}
    )
    call = UpstreamCall(request=request, model="e", http=httpx.AsyncClient(), request_id="r")
    result = await provider.complete(call)
    assert [
        (c["index"], c["message"]["content"], c["finish_reason"]) for c in result.response["choices"]
    ] == [
        (0, "a ", "length"),
        (1, "a ", "length"),
    ]
    assert result.usage is not None and result.usage.completion_tokens == 2
    chunks = [chunk async for chunk in provider.stream(call)]
    texts: dict[int, str] = {}
    for chunk in chunks:
        for choice in chunk["choices"]:
            texts[choice["index"]] = texts.get(choice["index"], "") + (choice["delta"].get("content") or "")
    assert texts == {0: "a ", 1: "a "}
    assert call.usage == result.usage and chunks[-1]["usage"] == result.usage.to_openai()
