"""Every recorded Anthropic exchange in ``$REC_LLM_TRAFFIC_DIR/anthropic`` through ``/v1/messages``.

- **Natively**, to an Anthropic upstream that answers with the recording: the recorded request body
  reaches the upstream byte for byte, and the recorded answer (JSON or SSE) reaches the client byte
  for byte; recorded errors arrive with their status, type and message in Anthropic's envelope.
- **Translated**, to an OpenAI upstream that answers with the recording's meaning (translated by the
  Anthropic provider's own response translators): the OpenAI request means what the recording asked
  (system, turns, tools), and what the real SDK reads back means what the recording said (text,
  thinking, tool calls, stop reason, usage).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import httpx2
import pytest

from rec_llm_gateway.providers.anthropic.response import FINISH_REASONS, from_anthropic
from rec_llm_gateway.providers.anthropic.stream import AnthropicStreamTranslator
from rec_llm_gateway.providers.base import UpstreamCall
from rec_llm_gateway.schema import ChatCompletionRequest

from ..anthropic_fake import API_KEY
from ..support import FakeUpstream, Reply, gateway_server, serve_fake, traffic_dir

TRAFFIC = traffic_dir()
pytestmark = pytest.mark.skipif(TRAFFIC is None, reason="REC_LLM_TRAFFIC_DIR is not set")
FOLDER = (TRAFFIC or Path("/nonexistent")) / "anthropic"
NAMES = sorted(path.name.removesuffix(".request.json") for path in FOLDER.glob("*.request.json"))
KEY = "gk-replay-0123456789"


def recording(name: str) -> tuple[dict[str, Any], int, bytes, str]:
    """(request, status, response bytes, content type)."""
    request = json.loads((FOLDER / f"{name}.request.json").read_text())
    sse = FOLDER / f"{name}.response.sse"
    if sse.exists():
        return request, 200, sse.read_bytes(), "text/event-stream; charset=utf-8"
    response = json.loads((FOLDER / f"{name}.response.json").read_text())
    return request, response["_status"], json.dumps(response["body"]).encode(), "application/json"


@pytest.fixture(scope="module")
def _upstreams() -> Iterator[tuple[FakeUpstream, FakeUpstream]]:
    with serve_fake() as anthropic_fake, serve_fake() as openai_fake:
        yield anthropic_fake, openai_fake


@pytest.fixture
def upstreams(_upstreams: tuple[FakeUpstream, FakeUpstream]) -> Iterator[tuple[FakeUpstream, FakeUpstream]]:
    for fake in _upstreams:
        fake.reset()
    yield _upstreams
    for fake in _upstreams:
        fake.reset()


@pytest.fixture
def gateway_url(upstreams: tuple[FakeUpstream, FakeUpstream]) -> Iterator[str]:
    native, translated = upstreams
    config = {
        "providers": {
            "anthropic": {
                "api_key": API_KEY,
                "base_url": native.url,
                "timeout": 5,
                "prices_from": "anthropic",
            },
            "openai": {
                "api_key": "sk-replay-openai-0123456789",
                "base_url": f"{translated.url}/v1",
                "prices_from": "openai",
            },
        },
        "auth": {"api_keys": [KEY]},
    }
    with gateway_server(config, "bare") as (url, _):
        yield url


@pytest.mark.parametrize("name", NAMES)
def test_native_replay_is_byte_for_byte(
    name: str, gateway_url: str, upstreams: tuple[FakeUpstream, FakeUpstream]
) -> None:
    native, _ = upstreams
    request, status, answer, content_type = recording(name)
    if content_type.startswith("text/event-stream"):
        native.reply(Reply(sse=[answer], content_type=content_type))
    else:
        native.reply(Reply(status=status, body=answer, content_type=content_type))
    path = "/v1/messages/count_tokens" if "count_tokens" in request["uri"] else "/v1/messages"
    sent = json.dumps(request["body"], indent=1).encode()  # any client formatting must survive
    headers = {**{k.lower(): v for k, v in request["headers"].items()}, "x-api-key": KEY}
    response = httpx.post(f"{gateway_url}{path}", content=sent, headers=headers, timeout=10)
    assert native.last.path == path
    assert native.last.body == sent
    assert native.last.headers["x-api-key"] == API_KEY  # the provider's key, never the client's
    assert response.status_code == status
    if status == 200:
        assert response.content == answer
        assert response.headers["content-type"].split(";")[0] == content_type.split(";")[0]
    else:
        recorded = json.loads(answer)
        assert response.json()["type"] == "error"
        assert response.json()["error"] == {
            "type": recorded["error"]["type"],
            "message": recorded["error"]["message"],
        }


def openai_answer(status: int, answer: bytes, content_type: str, model: str) -> Reply:
    """The recording's answer as an OpenAI upstream would give it (the provider's translators)."""
    if not content_type.startswith("text/event-stream"):
        completion = from_anthropic(json.loads(answer)).response
        return Reply(json=completion)
    call = UpstreamCall(
        request=ChatCompletionRequest.model_validate(
            {"model": model, "messages": [{"role": "user", "content": "x"}]}
        ),
        model=model,
        http=None,  # type: ignore[arg-type]
        request_id="replay",
    )
    translator = AnthropicStreamTranslator(call)
    frames: list[bytes | str | dict[str, Any]] = []
    for event in answer.split(b"\n\n"):
        data = [line[6:] for line in event.split(b"\n") if line.startswith(b"data: ")]
        if data:
            frames.extend(translator.feed(data[0]))
    return Reply(sse=[*frames, "data: [DONE]\n\n"])


def meaning(message: anthropic.types.Message) -> dict[str, Any]:
    blocks = message.content
    return {
        "text": "".join(block.text for block in blocks if block.type == "text"),
        "thinking": "".join(block.thinking for block in blocks if block.type == "thinking"),
        "tools": [(block.id, block.name, block.input) for block in blocks if block.type == "tool_use"],
        "finish": FINISH_REASONS.get(message.stop_reason or "", "stop"),
        "usage": (
            message.usage.input_tokens,
            message.usage.output_tokens,
            message.usage.cache_read_input_tokens or 0,
            message.usage.cache_creation_input_tokens or 0,
        ),
    }


def recorded_message(answer: bytes, content_type: str) -> anthropic.types.Message:
    """The recording read by the real SDK (over a mock transport), as its client saw it."""

    def respond(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=answer, headers={"content-type": content_type})

    client = anthropic.Anthropic(
        api_key="k", http_client=httpx2.Client(transport=httpx2.MockTransport(respond))
    )
    arguments: dict[str, Any] = {
        "model": "m",
        "max_tokens": 1,
        "messages": [{"role": "user", "content": "x"}],
    }
    if content_type.startswith("text/event-stream"):
        with client.messages.stream(**arguments) as stream:
            return stream.get_final_message()
    return client.messages.create(**arguments)


SUCCESSFUL = [name for name in NAMES if "error" not in name]


@pytest.mark.parametrize("name", SUCCESSFUL)
def test_translated_replay_keeps_the_meaning(
    name: str, gateway_url: str, upstreams: tuple[FakeUpstream, FakeUpstream]
) -> None:
    _, translated = upstreams
    request, status, answer, content_type = recording(name)
    body = request["body"]
    translated.reply(openai_answer(status, answer, content_type, body["model"]))
    client = anthropic.Anthropic(base_url=gateway_url, api_key=KEY, max_retries=0)
    # Parameters this SDK version has no keyword for (temperature, in newer ones) ride in extra_body.
    known = ("max_tokens", "messages", "system", "tools", "tool_choice", "thinking")
    arguments: dict[str, Any] = {key: body[key] for key in known if key in body}
    arguments["model"] = f"openai:{body['model']}"
    arguments["extra_body"] = {
        key: value for key, value in body.items() if key not in (*known, "model", "stream")
    }
    if body.get("stream"):
        with client.messages.stream(**arguments) as stream:
            got = stream.get_final_message()
    else:
        got = client.messages.create(**arguments)
    assert meaning(got) == meaning(recorded_message(answer, content_type))

    sent = translated.last.json
    system = body.get("system")
    roles = [message["role"] for message in sent["messages"]]
    assert roles[0] == ("system" if system else "user")
    tool_results = sum(
        1
        for turn in body["messages"]
        if isinstance(turn["content"], list)
        for block in turn["content"]
        if block.get("type") == "tool_result"
    )
    assert roles.count("tool") == tool_results
    assert [tool["function"]["name"] for tool in sent.get("tools", [])] == [
        t["name"] for t in body.get("tools", [])
    ]
    assert sent["max_completion_tokens"] == body["max_tokens"]
    assert bool(sent.get("stream")) == bool(body.get("stream"))
