"""``POST /v1/embeddings`` with the stock openai SDK (sync and async, float and base64, dimensions)
against the gateway served by uvicorn (FastAPI host), on echo and on a loopback upstream answering
in each provider's own wire format: OpenAI, Azure, an OpenAI-compatible preset (groq), Gemini,
Vertex AI, Bedrock Titan and Cohere. Batches larger than a provider takes are split and put back in
order; bad input is a 400 naming the parameter."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest

from rec_llm_gateway.providers.echo_embeddings import echo_vector

from ..conftest import PROVIDER_KEY
from ..embedding_fakes import DEFAULT_SIZE, fake_vector
from ..support import FakeUpstream, Recorded

TEXTS = ["alpha", "beta gamma", "delta epsilon zeta"]

# (case id, model the client asks for, what each upstream call's path ends with, inputs per call)
CASES = [
    ("openai", "openai:text-embedding-3-small", "/v1/embeddings", 2048),
    ("azure", "azure:embedder", "/openai/deployments/embedder/embeddings", 2048),
    ("groq", "groq:nomic-embed-text", "/v1/embeddings", 2048),
    ("gemini", "gemini:gemini-embedding-001", ":batchEmbedContents", 100),
    ("vertex", "vertex:text-embedding-005", "text-embedding-005:predict", 250),
    ("vertex-gemini", "vertex:gemini-embedding-001", "gemini-embedding-001:predict", 1),
    ("titan", "bedrock:amazon.titan-embed-text-v2:0", "/model/amazon.titan-embed-text-v2:0/invoke", 1),
    ("cohere", "bedrock:cohere.embed-english-v3", "/model/cohere.embed-english-v3/invoke", 96),
]
CASE_IDS = [case[0] for case in CASES]


def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)


def embedding_calls(wires: FakeUpstream, ending: str) -> list[Recorded]:
    return [request for request in wires.requests if request.path.endswith(ending)]


@pytest.mark.parametrize(("case", "model", "ending", "per_call"), CASES, ids=CASE_IDS)
def test_sdk_sync_floats(
    case: str, model: str, ending: str, per_call: int, wires: FakeUpstream, wires_gateway: str
) -> None:
    result = client(wires_gateway).embeddings.create(model=model, input=TEXTS, encoding_format="float")
    assert [item.embedding for item in result.data] == [fake_vector(text) for text in TEXTS]
    assert [item.index for item in result.data] == [0, 1, 2]
    assert result.usage.prompt_tokens > 0
    calls = embedding_calls(wires, ending)
    assert len(calls) == -(-len(TEXTS) // per_call)  # one call per batch the provider takes
    extension = result.model_extra["x_rec_llm"]  # type: ignore[index]
    assert extension["provider"] == model.split(":")[0]


@pytest.mark.parametrize(("case", "model", "ending", "per_call"), CASES, ids=CASE_IDS)
def test_sdk_async_default_base64_with_dimensions(
    case: str, model: str, ending: str, per_call: int, wires: FakeUpstream, wires_gateway: str
) -> None:
    size = 1024 if case == "cohere" else 256  # Cohere v3 gives only 1,024

    async def run() -> Any:
        async with openai.AsyncOpenAI(base_url=f"{wires_gateway}/v1", api_key="unused", max_retries=0) as api:
            # The SDK asks for base64 unless told otherwise, and decodes it.
            return await api.embeddings.create(model=model, input=TEXTS, dimensions=size)

    result = asyncio.run(run())
    # Cohere v3 takes no size (1,024, its only one, is accepted): the fake answers its default size.
    answered = DEFAULT_SIZE if case == "cohere" else size
    assert [item.embedding for item in result.data] == [fake_vector(text, answered) for text in TEXTS]
    body = embedding_calls(wires, ending)[0].json
    if case in ("openai", "azure", "groq"):
        assert body["encoding_format"] == "base64" and body["dimensions"] == size  # passed through


def test_echo_needs_no_upstream(wires_gateway: str, wires: FakeUpstream) -> None:
    api = client(wires_gateway)
    result = api.embeddings.create(
        model="echo:text-embedding-3-small", input="hello", encoding_format="float"
    )
    assert result.data[0].embedding == echo_vector("hello", 1536)
    sized = api.embeddings.create(model="echo:anything", input=["hello", "hello"], dimensions=32)
    assert sized.data[0].embedding == pytest.approx(echo_vector("hello", 32), rel=1e-6)  # float32 on the wire
    assert sized.data[0].embedding == sized.data[1].embedding
    tokens = api.embeddings.create(model="echo:anything", input=[[1, 2, 3], [4]], encoding_format="float")
    assert tokens.data[1].embedding == echo_vector([4], 256) and tokens.usage.prompt_tokens == 4
    assert wires.requests == []


@pytest.mark.parametrize(
    ("model", "count", "ending", "calls"),
    [
        ("gemini:gemini-embedding-001", 230, ":batchEmbedContents", [100, 100, 30]),
        ("bedrock:cohere.embed-english-v3", 200, "/invoke", [96, 96, 8]),
        ("openai:text-embedding-3-small", 4500, "/v1/embeddings", [2048, 2048, 404]),
        ("vertex:text-embedding-005", 260, ":predict", [250, 10]),
    ],
    ids=["gemini", "cohere", "openai", "vertex"],
)
def test_large_requests_are_split_and_put_back_in_order(
    model: str, count: int, ending: str, calls: list[int], wires: FakeUpstream, wires_gateway: str
) -> None:
    texts = [f"document number {index}" for index in range(count)]
    result = client(wires_gateway).embeddings.create(model=model, input=texts, encoding_format="float")
    assert [item.embedding for item in result.data] == [fake_vector(text) for text in texts]
    sizes = []
    for call in embedding_calls(wires, ending):
        body = call.json
        sizes.append(len(body.get("requests") or body.get("texts") or body.get("instances") or body["input"]))
    assert sorted(sizes, reverse=True) == calls


def test_token_ids_pass_through_to_openai_compatible_upstreams(
    wires: FakeUpstream, wires_gateway: str
) -> None:
    result = client(wires_gateway).embeddings.create(
        model="openai:text-embedding-3-small", input=[[1, 2], [3]], encoding_format="float"
    )
    assert wires.last.json["input"] == [[1, 2], [3]]
    assert [item.embedding for item in result.data] == [fake_vector("1 2"), fake_vector("3")]


def bad_request(url: str, **kwargs: Any) -> openai.BadRequestError:
    with pytest.raises(openai.BadRequestError) as caught:
        client(url).embeddings.create(**kwargs)
    return caught.value


@pytest.mark.parametrize(
    ("kwargs", "param", "code"),
    [
        ({"input": ""}, "input", "empty_input"),
        ({"input": []}, "input", "empty_input"),
        ({"input": ["x"] * 100_000}, "input", "too_many_inputs"),
        ({"input": [["a", "b"]]}, "input", "invalid_type"),
        ({"input": [1, [2]]}, "input", "invalid_type"),
        ({"input": "a", "dimensions": 0}, "dimensions", "invalid_value"),
        ({"input": "a", "encoding_format": "hex"}, "encoding_format", "invalid_value"),
    ],
    ids=["empty", "empty-list", "100k-strings", "nested-strings", "mixed", "zero-dims", "format"],
)
def test_bad_input_is_a_400_in_openais_envelope(
    kwargs: dict[str, Any], param: str, code: str, wires: FakeUpstream, wires_gateway: str
) -> None:
    error = bad_request(wires_gateway, model="openai:text-embedding-3-small", **kwargs)
    assert error.status_code == 400
    assert (error.body["param"], error.body["code"]) == (param, code)  # type: ignore[index]
    assert wires.requests == []  # refused before any upstream call


@pytest.mark.parametrize(
    ("model", "dimensions"),
    [
        ("bedrock:amazon.titan-embed-text-v2:0", 300),
        ("bedrock:cohere.embed-english-v3", 512),
        ("openai:text-embedding-3-small", 4096),
        ("gemini:gemini-embedding-001", 64),
        ("openai:text-embedding-ada-002", 512),
    ],
)
def test_dimensions_the_model_does_not_give_are_refused(
    model: str, dimensions: int, wires: FakeUpstream, wires_gateway: str
) -> None:
    error = bad_request(wires_gateway, model=model, input="a", dimensions=dimensions)
    assert (error.body["param"], error.body["code"]) == ("dimensions", "unsupported_dimensions")  # type: ignore[index]
    assert wires.requests == []


def test_what_a_provider_cannot_embed_is_refused_by_name(wires: FakeUpstream, wires_gateway: str) -> None:
    tokens = bad_request(wires_gateway, model="gemini:gemini-embedding-001", input=[1, 2, 3])
    assert (tokens.body["param"], tokens.body["code"]) == ("input", "unsupported_input")  # type: ignore[index]
    chat_only = bad_request(wires_gateway, model="anthropic:claude-sonnet-4-5", input="a")
    assert (chat_only.body["param"], chat_only.body["code"]) == ("model", "unsupported_operation")  # type: ignore[index]
    not_embedding = bad_request(
        wires_gateway, model="bedrock:anthropic.claude-3-haiku-20240307-v1:0", input="a"
    )
    assert not_embedding.body["code"] == "unsupported_model"  # type: ignore[index]
    assert wires.requests == []


@pytest.mark.parametrize(
    ("model", "status"),
    [
        ("openai:text-embedding-3-small", 502),
        ("gemini:gemini-embedding-001", 502),
        ("bedrock:amazon.titan-embed-text-v2:0", 502),
        ("openai:text-embedding-3-small", 429),
    ],
)
def test_upstream_errors_keep_the_envelope(
    model: str, status: int, wires: FakeUpstream, wires_gateway: str
) -> None:
    upstream_status = 503 if status == 502 else status
    with pytest.raises(openai.APIStatusError) as caught:
        client(wires_gateway).embeddings.create(model=model, input=["ok", f"fail {upstream_status}"])
    assert caught.value.status_code == status
    assert set(caught.value.body) >= {"message", "type", "code"}  # type: ignore[arg-type]
    assert PROVIDER_KEY not in str(caught.value.body)


def test_extra_fields_reach_the_providers_that_understand_them(
    wires: FakeUpstream, wires_gateway: str
) -> None:
    api = client(wires_gateway)
    api.embeddings.create(
        model="gemini:gemini-embedding-001", input="q", extra_body={"task_type": "RETRIEVAL_QUERY"}
    )
    assert wires.last.json["taskType"] == "RETRIEVAL_QUERY" and wires.last.path.endswith(":embedContent")
    api.embeddings.create(
        model="bedrock:cohere.embed-english-v3", input="q", extra_body={"input_type": "search_query"}
    )
    assert wires.last.json["input_type"] == "search_query"
    assert wires.last.headers["authorization"].startswith("AWS4-HMAC-SHA256")  # signed like Converse
    api.embeddings.create(model="azure:embedder", input="q", user="u-1")
    assert wires.last.query == "api-version=2024-10-21" and wires.last.json["user"] == "u-1"
    assert wires.last.headers["api-key"] == PROVIDER_KEY


def test_models_list_embedding_models_with_their_kind(wires_gateway: str) -> None:
    models = {model.id: model.model_extra for model in client(wires_gateway).models.list()}
    small = models["openai:text-embedding-3-small"]
    assert small is not None
    assert (small["kind"], small["dimensions"], small["max_input_tokens"]) == ("embedding", 1536, 8191)
    titan = models["bedrock:amazon.titan-embed-text-v2:0"]
    assert titan is not None and titan["dimensions_allowed"] == [256, 512, 1024]
    chat = models["openai:gpt-4o"]
    assert chat is not None and chat["kind"] == "chat"
    assert "kind" not in (models["openai:my-finetune"] or {})  # unknown: no guess
    assert models["echo:echo-embed-1"]["kind"] == "embedding"  # type: ignore[index]
