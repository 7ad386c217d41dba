"""Legacy text completions without sockets: the request model, and the one-message-chat translation
used for native providers (request, complete answer, stream chunks)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rec_llm_gateway.completions_translate import TextChunks, chat_request, text_completion
from rec_llm_gateway.errors import InvalidRequestError
from rec_llm_gateway.schema import UserMessage
from rec_llm_gateway.schema_completions import CompletionRequest


def parse(**body: Any) -> CompletionRequest:
    body.setdefault("model", "claude-sonnet-4-5")
    return CompletionRequest.from_json(json.dumps(body).encode())


@pytest.mark.parametrize(
    ("prompt", "prompts"),
    [
        ("Say hi", ["Say hi"]),
        (["a", "b"], ["a", "b"]),
        ([1, 2], [[1, 2]]),
        ([[1], [2]], [[1], [2]]),
        ("", [""]),
    ],
)
def test_prompt_shapes(prompt: Any, prompts: list[Any]) -> None:
    assert parse(prompt=prompt).prompts == prompts
    assert parse().prompts == [""]  # absent: OpenAI reads it as the start of a document


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("prompt", [["a"]]),
        ("prompt", []),
        ("prompt", {"text": "a"}),
        ("temperature", 3),
        ("top_p", 1.5),
        ("n", 0),
        ("logprobs", 6),
        ("best_of", 21),
        ("max_tokens", -1),
        ("stream", "yes"),
    ],
)
def test_bad_parameters_are_400s_naming_them(field: str, value: Any) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse(**{field: value})
    assert caught.value.param == field


def test_chat_request_keeps_the_parameters_chat_shares() -> None:
    request = parse(
        prompt="Once upon a time",
        max_tokens=20,
        temperature=0.5,
        top_p=0.9,
        n=2,
        stop=["\n"],
        presence_penalty=0.1,
        frequency_penalty=0.2,
        seed=7,
        user="u1",
        stream=True,
        stream_options={"include_usage": True},
        safety_settings=[{"category": "X"}],
    )
    chat = chat_request(request, "anthropic")
    assert chat.messages == [UserMessage(role="user", content="Once upon a time")]
    payload = chat.to_payload()
    assert payload == {
        "model": "claude-sonnet-4-5",
        "messages": [{"role": "user", "content": "Once upon a time"}],
        "max_tokens": 20,
        "temperature": 0.5,
        "top_p": 0.9,
        "n": 2,
        "stop": ["\n"],
        "presence_penalty": 0.1,
        "frequency_penalty": 0.2,
        "seed": 7,
        "user": "u1",
        "stream": True,
        "stream_options": {"include_usage": True},
        "safety_settings": [{"category": "X"}],  # unknown fields travel on, as for chat
    }
    assert chat.wants_stream_usage


def test_only_what_the_client_sent_is_set() -> None:
    assert chat_request(parse(prompt="hi"), "gemini").to_payload() == {
        "model": "claude-sonnet-4-5",
        "messages": [{"role": "user", "content": "hi"}],
    }


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"prompt": ["a", "b"]}, "prompt"),
        ({"prompt": [1, 2]}, "prompt"),
        ({"echo": True}, "echo"),
        ({"suffix": "end"}, "suffix"),
        ({"logprobs": 2}, "logprobs"),
        ({"best_of": 3}, "best_of"),
        ({"logit_bias": {"50256": -100}}, "logit_bias"),
    ],
)
def test_what_chat_cannot_honour_is_refused_by_name(fields: dict[str, Any], param: str) -> None:
    fields.setdefault("prompt", "hi")
    with pytest.raises(InvalidRequestError) as caught:
        chat_request(parse(**fields), "anthropic")
    assert (caught.value.param, caught.value.code) == (param, "unsupported_parameter")
    assert "anthropic" in caught.value.message
    # harmless values of the same parameters pass
    chat_request(parse(prompt="hi", echo=False, best_of=1, logit_bias={}), "anthropic")


def test_complete_answer_in_the_text_completion_shape() -> None:
    chat = {
        "id": "chatcmpl-abc",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "claude-sonnet-4-5",
        "system_fingerprint": "fp",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "Hello"}, "finish_reason": "stop"},
            {"index": 1, "message": {"role": "assistant", "content": None}, "finish_reason": "length"},
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }
    assert text_completion(chat) == {
        "id": "cmpl-abc",
        "object": "text_completion",
        "created": 1700000000,
        "model": "claude-sonnet-4-5",
        "system_fingerprint": "fp",
        "choices": [
            {"text": "Hello", "index": 0, "logprobs": None, "finish_reason": "stop"},
            {"text": "", "index": 1, "logprobs": None, "finish_reason": "length"},
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }


def test_stream_chunks_in_the_text_completion_shape() -> None:
    base = {"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 5, "model": "m"}
    chat_chunks = [
        {
            **base,
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}],
        },
        {**base, "choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {"content": "lo"}, "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        {**base, "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}},
    ]
    converter = TextChunks()
    converted = [converter.convert(chunk) for chunk in chat_chunks]
    assert converted[0] is None  # the role-only opening chunk has no counterpart
    head = {"id": "cmpl-s", "object": "text_completion", "created": 5, "model": "m"}
    assert converted[1:] == [
        {**head, "choices": [{"text": "Hel", "index": 0, "logprobs": None, "finish_reason": None}]},
        {**head, "choices": [{"text": "lo", "index": 0, "logprobs": None, "finish_reason": None}]},
        {**head, "choices": [{"text": "", "index": 0, "logprobs": None, "finish_reason": "stop"}]},
        {**head, "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}},
    ]
