"""The stock openai SDK through the gateway (FastAPI host, uvicorn on loopback) to a fake Gemini API
and a fake Vertex AI (with a fake OAuth token endpoint): text, streams, tools, images, errors."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import httpx
import openai
import pytest

from ..conftest import PROVIDER_KEY
from ..gemini_support import SIGNATURE, gemini_upstream, service_account_file
from ..support import FakeUpstream, Recorded, assert_streamed_text, fresh, gateway_server, serve_fake

MODEL = "gemini-2.5-flash"
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
                "additionalProperties": False,
            },
        },
    }
]


@pytest.fixture(scope="module")
def _gemini_server() -> Iterator[FakeUpstream]:
    with serve_fake(gemini_upstream) as fake:
        yield fake


@pytest.fixture
def fake(_gemini_server: FakeUpstream) -> Iterator[FakeUpstream]:
    yield from fresh(_gemini_server)


@pytest.fixture(scope="module")
def credentials_file(tmp_path_factory: pytest.TempPathFactory, _gemini_server: FakeUpstream) -> str:
    return str(service_account_file(tmp_path_factory.mktemp("vertex"), f"{_gemini_server.url}/token"))


@pytest.fixture(params=["gemini", "vertex"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def config(kind: str, fake: FakeUpstream, credentials_file: str) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "gemini": {
            "api_key": PROVIDER_KEY,
            "base_url": f"{fake.url}/v1beta",
            "timeout": 5,
            "prices_from": "google",  # a stand-in for Gemini: its prices
        },
        "vertex": {
            "credentials_file": credentials_file,
            "location": "europe-west4",
            "base_url": f"{fake.url}/v1beta1",
            "timeout": 5,
        },
    }[kind]
    return {"providers": {kind: settings}}


def client_for(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="anything", max_retries=0)


def model_calls(fake: FakeUpstream) -> list[Recorded]:
    return [request for request in fake.requests if ":" in request.path.rsplit("/", 1)[-1]]


def expected_path(kind: str, method: str) -> str:
    if kind == "gemini":
        return f"/v1beta/models/{MODEL}:{method}"
    return f"/v1beta1/projects/test-project/locations/europe-west4/publishers/google/models/{MODEL}:{method}"


def check_auth(kind: str, request: Recorded) -> None:
    if kind == "gemini":
        assert request.headers["x-goog-api-key"] == PROVIDER_KEY
        assert "authorization" not in request.headers
    else:
        assert request.headers["authorization"] == "Bearer ya29.fake-access-token"
        assert "x-goog-api-key" not in request.headers


def test_text(kind: str, fake: FakeUpstream, config: dict[str, Any]) -> None:
    with gateway_server(config) as (url, _):
        response = client_for(url).chat.completions.create(
            model=f"{kind}:{MODEL}",
            messages=[{"role": "system", "content": "Be kind."}, {"role": "user", "content": "hello gemini"}],
            temperature=0.2,
            max_tokens=50,
        )
    assert response.choices[0].message.content == "hello gemini"
    assert response.choices[0].finish_reason == "stop"
    assert response.model == MODEL
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (7, 3)
    extension = response.model_extra["x_rec_llm"]
    assert extension["provider"] == kind
    assert extension["cost_usd"] > 0  # priced from genai-prices' google table
    [sent] = model_calls(fake)
    assert sent.path == expected_path(kind, "generateContent")
    check_auth(kind, sent)
    assert sent.json == {
        "contents": [{"role": "user", "parts": [{"text": "hello gemini"}]}],
        "systemInstruction": {"parts": [{"text": "Be kind."}]},
        "generationConfig": {"temperature": 0.2, "maxOutputTokens": 50},
    }


def test_unprefixed_gemini_model_routes_by_family(fake: FakeUpstream, credentials_file: str) -> None:
    config = {"providers": {"gemini": {"api_key": PROVIDER_KEY, "base_url": f"{fake.url}/v1beta"}}}
    with gateway_server(config) as (url, _):
        response = client_for(url).chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "by family"}]
        )
        models = httpx.get(f"{url}/v1/models").json()["data"]
    assert response.choices[0].message.content == "by family"
    listed = {item["id"]: item for item in models}
    assert listed[f"gemini:{MODEL}"]["context_window"] == 1_048_576


def test_stream_text(kind: str, fake: FakeUpstream, config: dict[str, Any]) -> None:
    with gateway_server(config) as (url, _):
        stream = client_for(url).chat.completions.create(
            model=f"{kind}:{MODEL}",
            messages=[{"role": "user", "content": "one two three"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
    assert_streamed_text(chunks, "one two three")
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 3  # the last usage wins
    assert chunks[-1].model_extra["x_rec_llm"]["provider"] == kind
    [sent] = model_calls(fake)
    assert sent.path == expected_path(kind, "streamGenerateContent")
    assert parse_qs(sent.query) == {"alt": ["sse"]}
    check_auth(kind, sent)


def test_tool_call_and_result_round_trip(kind: str, fake: FakeUpstream, config: dict[str, Any]) -> None:
    question = {"role": "user", "content": "What is the weather in Paris?"}
    with gateway_server(config) as (url, _):
        client = client_for(url)
        first = client.chat.completions.create(
            model=f"{kind}:{MODEL}", messages=[question], tools=TOOLS, tool_choice="required"
        )
        choice = first.choices[0]
        assert choice.finish_reason == "tool_calls"
        assert choice.message.content is None
        [call] = choice.message.tool_calls
        assert call.function.name == "get_weather"
        assert json.loads(call.function.arguments) == {"city": "Paris"}
        assert call.id.startswith("call_fakeResponse01_0__sig__")
        assert first.usage.completion_tokens == 3 + 11  # candidates + thoughts
        assert first.usage.completion_tokens_details.reasoning_tokens == 11
        history = [
            question,
            choice.message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21 C"},
        ]
        second = client.chat.completions.create(model=f"{kind}:{MODEL}", messages=history, tools=TOOLS)
    assert second.choices[0].message.content == 'results: get_weather={"output": "sunny, 21 C"}'
    assert second.choices[0].finish_reason == "stop"
    first_sent, second_sent = model_calls(fake)
    declaration = first_sent.json["tools"][0]["functionDeclarations"][0]
    assert declaration["parametersJsonSchema"] == TOOLS[0]["function"]["parameters"]
    assert first_sent.json["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    model_turn, result_turn = second_sent.json["contents"][1:]
    assert model_turn == {
        "role": "model",
        "parts": [
            {
                "functionCall": {
                    "name": "get_weather",
                    "args": {"city": "Paris"},
                    "id": "call_fakeResponse01_0",
                },
                "thoughtSignature": SIGNATURE,  # back byte for byte, standard base64 with padding
            }
        ],
    }
    assert result_turn["role"] == "user"
    assert result_turn["parts"][0]["functionResponse"] == {
        "name": "get_weather",
        "response": {"output": "sunny, 21 C"},
        "id": "call_fakeResponse01_0",
    }


async def test_stream_tool_calls_async(kind: str, fake: FakeUpstream, config: dict[str, Any]) -> None:
    question = {"role": "user", "content": "Weather?"}
    with gateway_server(config) as (url, _):
        client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="anything", max_retries=0)
        stream = await client.chat.completions.create(
            model=f"{kind}:{MODEL}", messages=[question], tools=TOOLS, stream=True
        )
        chunks = [chunk async for chunk in stream]
        deltas = [
            call for chunk in chunks if chunk.choices for call in chunk.choices[0].delta.tool_calls or ()
        ]
        [delta] = deltas  # Gemini sends a call whole: one delta with id, name and all arguments
        assert delta.index == 0 and delta.type == "function"
        assert delta.function.name == "get_weather"
        assert json.loads(delta.function.arguments) == {"city": "Paris"}
        assert [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices][-1] == "tool_calls"
        history = [
            question,
            {"role": "assistant", "tool_calls": [delta.model_dump(exclude={"index"})]},
            {"role": "tool", "tool_call_id": delta.id, "content": '{"sky": "clear"}'},
        ]
        stream = await client.chat.completions.create(
            model=f"{kind}:{MODEL}", messages=history, tools=TOOLS, stream=True
        )
        text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices])
        await client.close()
    assert text == 'results: get_weather={"sky": "clear"}'  # a JSON object result goes as the response
    sent = model_calls(fake)[-1].json["contents"][1]["parts"][0]
    assert sent["thoughtSignature"] == SIGNATURE


def test_image_inputs(kind: str, fake: FakeUpstream, config: dict[str, Any]) -> None:
    png = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()
    with gateway_server(config) as (url, _):
        response = client_for(url).chat.completions.create(
            model=f"{kind}:{MODEL}",
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is in these?"},
                        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
                        {"type": "image_url", "image_url": {"url": "https://example.com/cat.webp"}},
                        {"type": "image_url", "image_url": {"url": "gs://bucket/dog"}},
                    ],
                }
            ],
        )
    assert response.choices[0].message.content == (
        f"saw inline image/png {len(png)}, file image/webp https://example.com/cat.webp, "
        "file image/jpeg gs://bucket/dog"
    )
    parts = model_calls(fake)[0].json["contents"][0]["parts"]
    assert parts[1] == {"inlineData": {"mimeType": "image/png", "data": png}}


@pytest.mark.parametrize(
    ("upstream_status", "error_class", "client_status"),
    [
        (400, openai.BadRequestError, 400),
        (401, openai.AuthenticationError, 401),
        (403, openai.PermissionDeniedError, 403),
        (429, openai.RateLimitError, 429),
        (500, openai.InternalServerError, 502),
    ],
)
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_upstream_errors(
    kind: str,
    fake: FakeUpstream,
    config: dict[str, Any],
    upstream_status: int,
    error_class: type[openai.APIStatusError],
    client_status: int,
    stream: bool,
) -> None:
    with gateway_server(config) as (url, _), pytest.raises(error_class) as caught:
        client_for(url).chat.completions.create(
            model=f"{kind}:{MODEL}",
            messages=[{"role": "user", "content": f"fail {upstream_status}"}],
            stream=stream,
        )
    error = caught.value
    assert error.status_code == client_status
    assert f"fake upstream failure {upstream_status}" in error.message
    if upstream_status < 500:
        assert (
            error.type
            == {
                400: "INVALID_ARGUMENT",
                401: "UNAUTHENTICATED",
                403: "PERMISSION_DENIED",
                429: "RESOURCE_EXHAUSTED",
            }[upstream_status]
        )
    if upstream_status == 429:
        assert error.response.headers["retry-after"] == "7"
    assert PROVIDER_KEY not in error.response.text


def test_health(kind: str, fake: FakeUpstream, config: dict[str, Any]) -> None:
    with gateway_server(config) as (url, _):
        health = httpx.get(f"{url}/providers/{kind}/health").json()
        described = httpx.get(f"{url}/providers").json()
    assert health["status"] == "healthy", health
    probe = fake.requests[-1]
    if kind == "gemini":
        assert (probe.method, probe.path, probe.query) == ("GET", "/v1beta/models", "pageSize=1")
    else:
        assert probe.path.endswith(f"/publishers/google/models/{MODEL}:countTokens")
    check_auth(kind, probe)
    assert PROVIDER_KEY not in json.dumps(described)


def test_health_reports_a_bad_key(fake: FakeUpstream) -> None:
    from ..support import Reply

    config = {"providers": {"gemini": {"api_key": PROVIDER_KEY, "base_url": f"{fake.url}/v1beta"}}}
    fake.reply(
        Reply(status=400, json={"error": {"code": 400, "message": "API key not valid.", "status": "X"}})
    )
    with gateway_server(config) as (url, _):
        health = httpx.get(f"{url}/providers/gemini/health").json()
    assert health["status"] == "unhealthy"
    assert health["error"] == "API key not valid."


def test_vertex_fetches_one_token_and_signs_it_with_the_service_account(
    fake: FakeUpstream, credentials_file: str
) -> None:
    config = {
        "providers": {
            "vertex": {
                "credentials_file": credentials_file,
                "base_url": f"{fake.url}/v1",
                "location": "global",
            }
        }
    }
    with gateway_server(config) as (url, _):
        client = client_for(url)
        for word in ("one", "two", "three"):
            client.chat.completions.create(
                model=f"vertex:{MODEL}", messages=[{"role": "user", "content": word}]
            )
    tokens = [request for request in fake.requests if request.path == "/token"]
    assert len(tokens) == 1  # cached for the next calls
    form = parse_qs(tokens[0].body.decode())
    assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    header, payload, signature = form["assertion"][0].split(".")
    claims = json.loads(_unb64(payload))
    assert json.loads(_unb64(header))["alg"] == "RS256"
    assert claims["iss"] == "gateway@test-project.iam.gserviceaccount.com"
    assert claims["aud"] == "https://oauth2.googleapis.com/token"  # google-auth's audience, whatever the URI
    assert claims["scope"] == "https://www.googleapis.com/auth/cloud-platform"
    _verify_rs256(credentials_file, f"{header}.{payload}".encode(), _unb64(signature))
    calls = model_calls(fake)
    assert len(calls) == 3
    assert (
        calls[0].path
        == f"/v1/projects/test-project/locations/global/publishers/google/models/{MODEL}:generateContent"
    )


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _verify_rs256(credentials_file: str, signed: bytes, signature: bytes) -> None:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    with open(credentials_file) as file:
        pem = json.load(file)["private_key"].encode()
    key = serialization.load_pem_private_key(pem, password=None)
    key.public_key().verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())  # raises if forged
