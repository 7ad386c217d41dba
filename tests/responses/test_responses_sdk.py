"""``/v1/responses`` with the real openai SDK against the gateway under uvicorn, to a fake OpenAI
serving the Responses API (native pass-through) and to fake Anthropic, Gemini and Bedrock upstreams
(translated): text, streams, the stream helper, function tools over turns, structured output,
retrieve and delete, and bad input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from pydantic import BaseModel

from ..anthropic_fake import API_KEY as ANTHROPIC_KEY
from ..anthropic_fake import anthropic_upstream
from ..bedrock_support import bedrock_handler, isolate_aws, provider_config
from ..gemini_support import gemini_upstream
from ..responses_fake import API_KEY as OPENAI_KEY
from ..responses_fake import responses_upstream
from ..support import FakeUpstream, gateway_server, serve_fake

MODELS = {
    "openai": "openai:gpt-4.1",
    "azure": "azure:gpt-4.1",
    "anthropic": "anthropic:claude-sonnet-4-5",
    "gemini": "gemini:gemini-2.5-flash",
    "bedrock": "bedrock:us.amazon.nova-micro-v1:0",
}
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def squeezed(text: str) -> str:
    """``text`` without whitespace: the fake Bedrock streams words without the spaces between them."""
    return "".join(text.split())


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, FakeUpstream]]:
    with (
        serve_fake(responses_upstream) as native,
        serve_fake(anthropic_upstream) as anthropic,
        serve_fake(gemini_upstream) as gemini,
        serve_fake(bedrock_handler) as bedrock,
    ):
        yield {"openai": native, "anthropic": anthropic, "gemini": gemini, "bedrock": bedrock}


@pytest.fixture(scope="module")
def gateway_url(fakes: dict[str, FakeUpstream], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    config = {
        "providers": {
            "openai": {"api_key": OPENAI_KEY, "base_url": f"{fakes['openai'].url}/v1", "timeout": 5},
            "azure": {
                "api_key": OPENAI_KEY,
                "base_url": fakes["openai"].url,
                "api_version": "2024-10-21",
                "deployments": {"gpt-4.1": "my-gpt41"},
                "timeout": 5,
            },
            "anthropic": {"api_key": ANTHROPIC_KEY, "base_url": fakes["anthropic"].url, "timeout": 5},
            "gemini": {
                "api_key": "gemini-fake-key-1234",
                "base_url": f"{fakes['gemini'].url}/v1beta",
                "timeout": 5,
            },
            "bedrock": provider_config(fakes["bedrock"].url),
        }
    }
    with pytest.MonkeyPatch.context() as patch:
        isolate_aws(patch, tmp_path_factory.mktemp("aws"))
        with gateway_server(config) as (url, _):
            yield url


@pytest.fixture
def client(gateway_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway_url}/v1", api_key="anything", max_retries=0) as sdk:
        yield sdk


@pytest.fixture(params=list(MODELS))
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_create(client: openai.OpenAI, kind: str) -> None:
    response = client.responses.create(model=MODELS[kind], input="hello there", instructions="Be brief.")
    assert response.output_text == "hello there"
    assert response.status == "completed" and response.object == "response"
    assert response.usage is not None and response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    assert response.model  # the upstream's name for it


def test_create_stream(client: openai.OpenAI, kind: str) -> None:
    events = list(client.responses.create(model=MODELS[kind], input="one two three", stream=True))
    kinds = [event.type for event in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    streamed = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    assert squeezed(streamed) == "onetwothree"
    assert [event.sequence_number for event in events] == sorted(event.sequence_number for event in events)
    final = events[-1].response  # type: ignore[union-attr]
    assert final.output_text == streamed and final.usage is not None


def test_stream_helper_and_retrieve(client: openai.OpenAI, kind: str) -> None:
    with client.responses.stream(model=MODELS[kind], input="streamed words") as stream:
        texts = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert squeezed("".join(texts)) == "streamedwords" == squeezed(final.output_text)
    stored = client.responses.retrieve(final.id)
    assert stored.id == final.id and stored.output_text == final.output_text


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_function_tool_over_turns(client: openai.OpenAI, kind: str, stream: bool) -> None:
    def create(**fields: Any) -> Any:
        if not stream:
            return client.responses.create(model=MODELS[kind], tools=[WEATHER_TOOL], **fields)
        with client.responses.stream(model=MODELS[kind], tools=[WEATHER_TOOL], **fields) as events:
            return events.get_final_response()

    first = create(input="What is the weather in Paris?")
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) >= 1 and calls[0].name == "get_weather"
    assert "Paris" in json.loads(calls[0].arguments)["city"]
    second = create(
        previous_response_id=first.id,
        input=[
            {"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 21C"}
            for call in calls
        ],
    )
    assert "sunny,21C" in squeezed(second.output_text)
    assert second.previous_response_id == first.id


class Answer(BaseModel):
    answer: str


@pytest.mark.parametrize("kind", ["openai", "azure", "anthropic", "gemini"])
def test_structured_output(client: openai.OpenAI, kind: str) -> None:
    # The fakes answer a JSON schema with {"answer": <text>} (OpenAI, Anthropic's forced tool) or echo
    # the text (Gemini), so the question is the JSON the schema wants.
    parsed = client.responses.parse(
        model=MODELS[kind], input='{"answer": "42"}' if kind == "gemini" else "42", text_format=Answer
    )
    assert parsed.output_parsed is not None and parsed.output_parsed.answer.strip() in (
        "42",
        '{"answer": "42"}',
    )


def test_delete(client: openai.OpenAI, kind: str) -> None:
    response = client.responses.create(model=MODELS[kind], input="keep me")
    client.responses.delete(response.id)
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.retrieve(response.id)
    assert caught.value.body["code"] == "not_found"  # type: ignore[index]
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model=MODELS[kind], input="again", previous_response_id=response.id)
    assert caught.value.body["param"] == "previous_response_id"  # type: ignore[index]


def test_store_false_is_not_kept(client: openai.OpenAI) -> None:
    response = client.responses.create(model=MODELS["anthropic"], input="forget me", store=False)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)


def test_native_upstream_gets_the_history_inline(
    client: openai.OpenAI, fakes: dict[str, FakeUpstream]
) -> None:
    first = client.responses.create(
        model=MODELS["openai"], input="first question", reasoning={"effort": "low"}
    )
    fakes["openai"].reset()
    client.responses.create(model=MODELS["openai"], input="second", previous_response_id=first.id)
    body = fakes["openai"].last.json
    assert "previous_response_id" not in body and body["model"] == "gpt-4.1"
    assert [item.get("role") or item["type"] for item in body["input"]] == ["user", "assistant", "user"]


def test_azure_gets_the_deployment_as_model(client: openai.OpenAI, fakes: dict[str, FakeUpstream]) -> None:
    fakes["openai"].reset()
    response = client.responses.create(model=MODELS["azure"], input="hi azure")
    assert response.output_text == "hi azure"
    assert fakes["openai"].last.path == "/openai/v1/responses"
    assert fakes["openai"].last.json["model"] == "my-gpt41"


def test_translated_conversation_continues_on_another_provider(
    client: openai.OpenAI, fakes: dict[str, FakeUpstream]
) -> None:
    first = client.responses.create(model=MODELS["gemini"], input="my name is Ada")
    fakes["anthropic"].reset()
    client.responses.create(
        model=MODELS["anthropic"], input="what is my name?", previous_response_id=first.id
    )
    messages = fakes["anthropic"].last.json["messages"]
    assert [message["role"] for message in messages] == ["user", "assistant", "user"]
    assert "Ada" in json.dumps(messages[0])


def test_builtin_tools_dropped_with_a_header(gateway_url: str) -> None:
    body = {"model": MODELS["anthropic"], "input": "hi", "tools": [{"type": "web_search"}, WEATHER_TOOL]}
    response = httpx.post(f"{gateway_url}/v1/responses", json=body)
    assert response.status_code == 200
    assert response.headers["x-rec-llm-dropped-tools"] == "web_search"
    native = httpx.post(f"{gateway_url}/v1/responses", json={**body, "model": MODELS["openai"]})
    assert native.status_code == 200 and "x-rec-llm-dropped-tools" not in native.headers


def test_builtin_tools_refused_by_setting(fakes: dict[str, FakeUpstream]) -> None:
    config = {
        "providers": {"anthropic": {"api_key": ANTHROPIC_KEY, "base_url": fakes["anthropic"].url}},
        "responses": {"builtin_tools": "reject"},
    }
    with gateway_server(config, "bare") as (url, _):
        response = httpx.post(
            f"{url}/v1/responses",
            json={"model": MODELS["anthropic"], "input": "hi", "tools": [{"type": "web_search"}]},
        )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unsupported_tool"
    assert response.json()["error"]["param"] == "tools[0].type"


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"input": [{"type": "computer_call", "id": "c"}]}, 400, "input[0].type"),
        (
            {"input": [{"type": "function_call_output", "call_id": "call_nowhere", "output": "x"}]},
            400,
            "input[0].call_id",
        ),
        ({"input": [{"type": "function_call", "name": "f"}]}, 400, "input[0].call_id"),
        ({"input": "x", "previous_response_id": "resp_never_issued"}, 404, "previous_response_id"),
        ({"input": "x", "text": {"format": {"type": "yaml"}}}, 400, "text.format.type"),
        ({}, 400, "input"),
    ],
)
def test_bad_input(gateway_url: str, body: dict[str, Any], status: int, param: str) -> None:
    response = httpx.post(f"{gateway_url}/v1/responses", json={"model": MODELS["anthropic"], **body})
    assert response.status_code == status
    error = response.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error" and error["message"]


def test_unknown_route_and_method(gateway_url: str) -> None:
    assert httpx.get(f"{gateway_url}/v1/responses").status_code == 405
    assert httpx.put(f"{gateway_url}/v1/responses/resp_x").status_code == 405
    missing = httpx.get(f"{gateway_url}/v1/responses/resp_missing")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
