"""``POST /v1/completions`` (legacy text completions) with the stock openai SDK through uvicorn:
passed through to OpenAI-compatible upstreams (OpenAI, Azure), answered as a one-message chat by
native providers (Gemini, Anthropic, echo) in the ``text_completion`` shape, streams included."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest

from ..support import FakeUpstream


def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)


PASS_THROUGH = [
    ("openai:gpt-3.5-turbo-instruct", "/v1/completions"),
    ("azure:instruct", "/openai/deployments/instruct/completions"),
    ("groq:llama-3.1-8b", "/v1/completions"),
]
NATIVE = [
    ("gemini:gemini-2.5-flash", ":generateContent"),
    ("anthropic:claude-sonnet-4-5", "/v1/messages"),
    ("bedrock:amazon.nova-lite-v1:0", "/converse"),
    ("echo:echo-1", None),
]


@pytest.mark.parametrize(("model", "path"), PASS_THROUGH, ids=[m.split(":")[0] for m, _ in PASS_THROUGH])
def test_pass_through(model: str, path: str, wires: FakeUpstream, wires_gateway: str) -> None:
    result = client(wires_gateway).completions.create(
        model=model, prompt="Say hi", max_tokens=5, echo=False, logprobs=None, suffix="!", extra_body={"x": 1}
    )
    assert result.object == "text_completion"
    assert result.choices[0].text == " echo: Say hi" and result.choices[0].finish_reason == "stop"
    assert result.usage is not None and result.usage.total_tokens == 4
    sent = wires.last
    assert sent.path.endswith(path)
    assert sent.json["prompt"] == "Say hi" and sent.json["suffix"] == "!" and sent.json["x"] == 1


@pytest.mark.parametrize("usage", [False, True])
def test_pass_through_stream(usage: bool, wires: FakeUpstream, wires_gateway: str) -> None:
    options = {"stream_options": {"include_usage": True}} if usage else {}
    chunks = list(
        client(wires_gateway).completions.create(
            model="openai:gpt-3.5-turbo-instruct", prompt="Say hi there", stream=True, **options
        )
    )
    assert "".join(chunk.choices[0].text for chunk in chunks if chunk.choices) == " echo: Say hi there"
    assert wires.last.json["stream_options"] == {"include_usage": True}  # asked for, to price the call
    assert (chunks[-1].usage is not None) is usage  # stripped again when the client did not ask


@pytest.mark.parametrize(("model", "path"), NATIVE, ids=[m.split(":")[0] for m, _ in NATIVE])
def test_native_providers_answer_through_chat(
    model: str, path: str | None, wires: FakeUpstream, wires_gateway: str
) -> None:
    result = client(wires_gateway).completions.create(model=model, prompt="Tell me a story", max_tokens=50)
    assert result.object == "text_completion" and result.id
    assert result.choices[0].text == "Tell me a story"
    assert result.choices[0].finish_reason == "stop" and result.choices[0].logprobs is None
    assert result.usage is not None and result.usage.prompt_tokens > 0
    if path is not None:
        assert wires.last.path.endswith(path)
        assert "prompt" not in wires.last.json  # asked as a chat


@pytest.mark.parametrize(("model", "path"), NATIVE, ids=[m.split(":")[0] for m, _ in NATIVE])
def test_native_streams_in_the_text_completion_shape(
    model: str, path: str | None, wires: FakeUpstream, wires_gateway: str
) -> None:
    async def run() -> list[Any]:
        async with openai.AsyncOpenAI(base_url=f"{wires_gateway}/v1", api_key="unused", max_retries=0) as api:
            stream = await api.completions.create(
                model=model, prompt="Once upon a time", stream=True, stream_options={"include_usage": True}
            )
            return [chunk async for chunk in stream]

    chunks = asyncio.run(run())
    assert all(chunk.object == "text_completion" for chunk in chunks)
    text = "".join(chunk.choices[0].text for chunk in chunks if chunk.choices)
    # the Bedrock fake streams the words without their spaces
    assert text == ("Onceuponatime" if model.startswith("bedrock") else "Once upon a time")
    finishes = [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices]
    assert finishes[-1] == "stop" and finishes.count("stop") == 1
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    assert chunks[-1].model_extra["x_rec_llm"]["provider"] == model.split(":")[0]  # type: ignore[index]


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"prompt": ["one", "two"]}, "prompt"),
        ({"prompt": [1, 2, 3]}, "prompt"),
        ({"prompt": "hi", "echo": True}, "echo"),
        ({"prompt": "hi", "suffix": "end"}, "suffix"),
        ({"prompt": "hi", "logprobs": 2}, "logprobs"),
        ({"prompt": "hi", "best_of": 2}, "best_of"),
    ],
)
def test_what_chat_cannot_honour_is_a_400(
    kwargs: dict[str, Any], param: str, wires: FakeUpstream, wires_gateway: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client(wires_gateway).completions.create(model="gemini:gemini-2.5-flash", **kwargs)
    assert caught.value.body["param"] == param  # type: ignore[index]
    assert wires.requests == []


def test_bad_input_is_a_400_naming_the_parameter(wires: FakeUpstream, wires_gateway: str) -> None:
    for kwargs, param in (
        ({"prompt": [["a"]]}, "prompt"),
        ({"prompt": "a", "temperature": 5}, "temperature"),
    ):
        with pytest.raises(openai.BadRequestError) as caught:
            client(wires_gateway).completions.create(model="openai:gpt-3.5-turbo-instruct", **kwargs)
        assert caught.value.body["param"] == param  # type: ignore[index]
    assert wires.requests == []
