"""ResponsesFlow without the HTTP pipeline: translated (echo) and native (OpenAI over MockTransport)
attempts, conversations saved and continued, and the memory store's expiry."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from rec_llm_gateway.errors import NotFoundError, ServiceUnavailableError
from rec_llm_gateway.providers.base import Provider, UpstreamCall
from rec_llm_gateway.providers.echo import EchoProvider, EchoSettings
from rec_llm_gateway.providers.openai import OpenAIProvider, OpenAISettings
from rec_llm_gateway.responses.flow import ResponsesFlow
from rec_llm_gateway.responses.store import Conversations, MemoryConversationStore
from rec_llm_gateway.responses.wire import ResponsesRequest


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def flow(store: MemoryConversationStore | None = None) -> ResponsesFlow:
    return ResponsesFlow(Conversations(MemoryConversationStore() if store is None else store, 60.0), "drop")


def call(
    provider: Provider, body: dict[str, Any], http: httpx.AsyncClient | None = None, stream: bool = False
) -> UpstreamCall:
    request = ResponsesRequest.from_json(json.dumps({"model": "m", **body}).encode())
    return UpstreamCall(
        request=request, model="m", http=http or httpx.AsyncClient(), request_id="r", stream=stream
    )  # type: ignore[arg-type]


ECHO = EchoProvider("echo", EchoSettings())


async def test_translated_turns_continue_through_the_store() -> None:
    responses = flow()
    first = (
        await responses.complete(ECHO, call(ECHO, {"input": "hello there", "instructions": "x"}))
    ).response
    assert first["object"] == "response" and first["output"][0]["content"][0]["text"] == "hello there"
    assert first["id"].startswith("resp_") and first["status"] == "completed"
    assert first["usage"]["output_tokens"] == 2
    second_call = call(ECHO, {"input": "again", "previous_response_id": first["id"]})
    second = (await responses.complete(ECHO, second_call)).response
    assert second["previous_response_id"] == first["id"]
    sent = second_call.request.to_payload()  # the chat request the echo provider answered
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]  # no instructions carried
    stored = await responses.conversations.load(second["id"])
    assert [item.get("role") for item in stored.history()] == ["user", "assistant", "user", "assistant"]


async def test_store_false_keeps_nothing_and_unknown_ids_are_404() -> None:
    store = MemoryConversationStore()
    responses = flow(store)
    await responses.complete(ECHO, call(ECHO, {"input": "hi", "store": False}))
    assert len(store) == 0
    await responses.complete(ECHO, call(ECHO, {"input": "hi"}))  # store defaults to true
    assert len(store) == 1
    with pytest.raises(NotFoundError) as caught:
        await responses.complete(ECHO, call(ECHO, {"input": "hi", "previous_response_id": "resp_nope"}))
    assert caught.value.status_code == 404 and caught.value.param == "previous_response_id"
    assert caught.value.code == "previous_response_not_found"


async def test_expired_responses_are_gone() -> None:
    clock = Clock()
    store = MemoryConversationStore(clock=clock)
    responses = flow(store)
    first = (await responses.complete(ECHO, call(ECHO, {"input": "hi"}))).response
    clock.now += 61
    with pytest.raises(NotFoundError):
        await responses.complete(ECHO, call(ECHO, {"input": "x", "previous_response_id": first["id"]}))
    assert await responses.conversations.find(first["id"]) is None


async def test_memory_store_drops_the_oldest_beyond_its_size() -> None:
    store = MemoryConversationStore(max_entries=2)
    for key in "abc":
        await store.put(key, key.encode(), 10)
    assert [await store.get(key) for key in "abc"] == [None, b"b", b"c"]
    assert await store.delete("b") and not await store.delete("b")


async def test_translated_stream_saves_before_its_last_event() -> None:
    store = MemoryConversationStore()
    responses = flow(store)
    events = []
    async for event in responses.stream(ECHO, call(ECHO, {"input": "one two", "stream": True}, stream=True)):
        if event["type"] == "response.completed":
            assert await responses.conversations.find(event["response"]["id"]) is not None
        events.append(event)
    assert events[-1]["type"] == "response.completed"
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == "one two"


def native_provider(handler: Any) -> tuple[OpenAIProvider, httpx.AsyncClient]:
    settings = OpenAISettings.model_validate(
        {"base_url": "http://upstream/v1", "api_key": "sk-test-123456789"}
    )
    return OpenAIProvider("openai", settings), httpx.AsyncClient(transport=httpx.MockTransport(handler))


def native_response(response_id: str, text: str) -> dict[str, Any]:
    return {
        "id": response_id,
        "object": "response",
        "status": "completed",
        "model": "gpt-x",
        "output": [
            {"id": "rs_up", "type": "reasoning", "summary": []},
            {
                "id": "msg_up",
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            },
        ],
        "usage": {
            "input_tokens": 7,
            "output_tokens": 3,
            "total_tokens": 10,
            "input_tokens_details": {"cached_tokens": 4},
            "output_tokens_details": {"reasoning_tokens": 1},
        },
        "previous_response_id": None,
    }


async def test_native_pass_through_with_history_inline() -> None:
    sent: list[tuple[str, dict[str, Any]]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append((str(request.url), json.loads(request.content)))
        return httpx.Response(200, json=native_response(f"resp_up{len(sent)}", "hi"))

    provider, http = native_provider(handler)
    responses = flow()
    first = await responses.complete(provider, call(provider, {"input": "q1", "custom_field": 1}, http))
    assert first.usage is not None and first.usage.cached_tokens == 4 and first.usage.reasoning_tokens == 1
    assert sent[0][0] == "http://upstream/v1/responses"
    assert sent[0][1] == {"model": "m", "input": "q1", "custom_field": 1}
    await responses.complete(
        provider, call(provider, {"input": "q2", "previous_response_id": "resp_up1"}, http)
    )
    body = sent[1][1]
    assert "previous_response_id" not in body
    # the stored conversation inline: ids left out, the reasoning item (no encrypted_content) dropped
    assert body["input"] == [
        {"type": "message", "role": "user", "content": "q1"},
        {
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": "hi", "annotations": []}],
        },
        {"type": "message", "role": "user", "content": "q2"},
    ]
    stored = await responses.conversations.load("resp_up2")
    assert stored.response["previous_response_id"] == "resp_up1"


async def test_native_unknown_previous_id_is_404_too() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("the upstream must not be asked")

    provider, http = native_provider(handler)
    with pytest.raises(NotFoundError):
        await flow().complete(
            provider, call(provider, {"input": "x", "previous_response_id": "resp_made_elsewhere"}, http)
        )


async def test_native_stream_passes_events_and_saves() -> None:
    final = native_response("resp_s", "yo")
    frames = [
        {
            "type": "response.created",
            "sequence_number": 0,
            "response": {**final, "status": "in_progress", "output": []},
        },
        {
            "type": "response.output_text.delta",
            "sequence_number": 1,
            "item_id": "msg_up",
            "output_index": 1,
            "content_index": 0,
            "delta": "yo",
            "logprobs": [],
        },
        {"type": "response.completed", "sequence_number": 2, "response": final},
    ]
    body = "".join(f"event: {frame['type']}\ndata: {json.dumps(frame)}\n\n" for frame in frames)

    def handler(request: httpx.Request) -> httpx.Response:
        assert json.loads(request.content)["stream"] is True
        return httpx.Response(200, content=body.encode(), headers={"content-type": "text/event-stream"})

    provider, http = native_provider(handler)
    responses = flow()
    events = [
        event
        async for event in responses.stream(
            provider, call(provider, {"input": "x", "stream": True}, http, stream=True)
        )
    ]
    assert [event["type"] for event in events] == [frame["type"] for frame in frames]
    assert (await responses.conversations.load("resp_s")).response["output"][1]["content"][0]["text"] == "yo"


class BrokenStore:
    async def put(self, key: str, value: bytes, ttl_seconds: float) -> None:
        raise ConnectionError("store down")

    async def get(self, key: str) -> bytes | None:
        raise ConnectionError("store down")

    async def delete(self, key: str) -> bool:
        raise ConnectionError("store down")

    async def aclose(self) -> None:
        pass


async def test_a_failing_store_never_loses_an_answer_nor_shortens_a_conversation(
    caplog: pytest.LogCaptureFixture,
) -> None:
    responses = ResponsesFlow(Conversations(BrokenStore(), 60.0), "drop")
    answered = await responses.complete(ECHO, call(ECHO, {"input": "hi"}))
    assert answered.response["output"][0]["content"][0]["text"] == "hi"
    assert "was not stored" in caplog.text
    with pytest.raises(ServiceUnavailableError) as caught:
        await responses.complete(
            ECHO, call(ECHO, {"input": "x", "previous_response_id": answered.response["id"]})
        )
    assert caught.value.status_code == 503 and caught.value.code == "state_unavailable"
