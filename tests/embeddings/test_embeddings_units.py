"""Embeddings without sockets: the request model, batching, base64, the catalog, every provider's
translation (OpenAI pass-through, Gemini, Vertex, Bedrock Titan and Cohere) and echo's vectors."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import struct
from collections.abc import Sequence
from typing import Any

import pytest

from rec_llm_gateway.catalog.embeddings import embedding_models_for, lookup_embedding
from rec_llm_gateway.embeddings import (
    EmbeddingBatch,
    check_dimensions,
    embed_in_batches,
    embedding_response,
    estimate_tokens,
    from_base64,
    text_inputs,
    to_base64,
)
from rec_llm_gateway.errors import BadGatewayError, GatewayError, InvalidRequestError
from rec_llm_gateway.providers.bedrock.embeddings import CohereEmbeddings, TitanEmbeddings, bedrock_embeddings
from rec_llm_gateway.providers.echo_embeddings import echo_embeddings, echo_vector
from rec_llm_gateway.providers.gemini.embeddings import (
    GEMINI_EMBEDDINGS,
    gemini_embed_method,
    vertex_embeddings,
)
from rec_llm_gateway.providers.openai_embeddings import OPENAI_EMBEDDINGS
from rec_llm_gateway.schema_embeddings import EmbeddingRequest


def parse(**body: Any) -> EmbeddingRequest:
    body.setdefault("model", "text-embedding-3-small")
    return EmbeddingRequest.from_json(json.dumps(body).encode())


def raised(function: Any, *args: Any) -> InvalidRequestError:
    with pytest.raises(InvalidRequestError) as caught:
        function(*args)
    return caught.value


def refusal(max_inputs: int | None = None, **body: Any) -> InvalidRequestError:
    body.setdefault("model", "m")
    context = None if max_inputs is None else {"max_inputs": max_inputs}
    with pytest.raises(InvalidRequestError) as caught:
        EmbeddingRequest.from_json(json.dumps(body).encode(), context)
    return caught.value


# -- the request --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "inputs", "tokens"),
    [
        ("hello", ["hello"], False),
        (["a", "b"], ["a", "b"], False),
        ([1, 2, 3], [[1, 2, 3]], True),
        ([[1], [2, 3]], [[1], [2, 3]], True),
    ],
    ids=["string", "strings", "token-ids", "token-id-lists"],
)
def test_the_four_input_shapes(value: Any, inputs: list[Any], tokens: bool) -> None:
    request = parse(input=value, encoding_format="base64", dimensions=8, user="u1", task_type="X")
    assert request.inputs == inputs
    assert request.is_tokens is tokens
    assert request.wants_base64
    assert request.model_extra == {"task_type": "X"}  # unknown fields kept for the providers


@pytest.mark.parametrize(
    ("value", "code", "where"),
    [
        ("", "empty_input", "'input' must not be an empty string"),
        ([], "empty_input", "'input' must not be an empty list"),
        (["a", ""], "empty_input", "'input[1]'"),
        ([[1], []], "empty_input", "'input[1]'"),
        ([["a"]], "invalid_type", "'input[0][0]'"),
        ([1, "a"], "invalid_type", "'input[1]'"),
        (["a", 1], "invalid_type", "'input[1]'"),
        ([[1], 2], "invalid_type", "'input[1]'"),
        ([[1, -1]], "invalid_type", "'input[0][1]'"),
        ([True], "invalid_type", "'input[0]'"),
        ([1.5], "invalid_type", "'input[0]'"),
        ({"text": "a"}, "invalid_type", "'input' must be a string, a list of strings"),
        (None, "invalid_type", "'input'"),
    ],
)
def test_bad_input_is_a_400_naming_input(value: Any, code: str, where: str) -> None:
    error = refusal(input=value)
    assert (error.status_code, error.param, error.code) == (400, "input", code)
    assert where in error.message


def test_too_many_inputs_is_refused_before_the_items_are_read() -> None:
    error = refusal(input=["x"] * 100_000)
    assert (error.param, error.code) == ("input", "too_many_inputs")
    assert "100000 items; at most 2048" in error.message
    assert refusal(max_inputs=3, input=["a"] * 4).code == "too_many_inputs"
    EmbeddingRequest.from_json(json.dumps({"model": "m", "input": ["a"] * 4}).encode(), {"max_inputs": 4})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("dimensions", 0),
        ("dimensions", 8193),
        ("dimensions", "256"),
        ("encoding_format", "hex"),
        ("user", 5),
        ("model", 3),
    ],
)
def test_bad_parameters_are_named(field: str, value: Any) -> None:
    assert refusal(input="a", **{field: value}).param == field


def test_missing_input_and_model_are_named() -> None:
    assert refusal().param == "input"
    with pytest.raises(InvalidRequestError) as caught:
        EmbeddingRequest.from_json(b'{"input": "a"}')
    assert caught.value.param == "model"


# -- batches, order, base64 ------------------------------------------------------------------------------


def test_batches_come_back_in_input_order_whatever_order_they_finish_in() -> None:
    inputs = [f"t{i}" for i in range(23)]
    calls: list[list[str]] = []

    async def call(batch: Sequence[Any]) -> EmbeddingBatch:
        calls.append(list(batch))
        # later batches finish first
        for _ in range(30 - len(calls) * 5 if len(calls) < 6 else 0):
            await asyncio.sleep(0)
        return EmbeddingBatch(vectors=[[float(item[1:])] for item in batch], prompt_tokens=len(batch))

    batches = asyncio.run(embed_in_batches(inputs, 5, call))
    assert sorted(len(batch) for batch in calls) == [3, 5, 5, 5, 5]
    result = embedding_response(batches, model="m", base64_output=False)
    assert [item["embedding"] for item in result.response["data"]] == [[float(i)] for i in range(23)]
    assert [item["index"] for item in result.response["data"]] == list(range(23))
    assert result.usage is not None and result.usage.prompt_tokens == 23
    assert result.response["usage"] == {"prompt_tokens": 23, "total_tokens": 23}


def test_a_failed_batch_cancels_the_others_and_is_raised_as_itself() -> None:
    started: list[int] = []
    cancelled: list[int] = []

    async def call(batch: Sequence[Any]) -> EmbeddingBatch:
        number = batch[0]
        started.append(number)
        if number == 1:
            raise BadGatewayError("batch 1 broke")
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(number)
            raise
        return EmbeddingBatch(vectors=[[0.0]])

    with pytest.raises(BadGatewayError, match="batch 1 broke"):
        asyncio.run(embed_in_batches(list(range(10)), 1, call))
    assert started[:4] == [0, 1, 2, 3]  # four at a time
    assert cancelled and 1 not in cancelled


def test_an_upstream_that_returns_the_wrong_number_of_vectors_is_a_502() -> None:
    async def call(batch: Sequence[Any]) -> EmbeddingBatch:
        return EmbeddingBatch(vectors=[[0.0]])

    with pytest.raises(BadGatewayError, match="1 embeddings for 2 inputs"):
        asyncio.run(embed_in_batches(["a", "b"], 10, call))


def test_base64_is_little_endian_float32_as_openai_sends_it() -> None:
    vector = [0.5, -1.25, 3.0]
    encoded = to_base64(vector)
    assert struct.unpack("<3f", base64.b64decode(encoded)) == (0.5, -1.25, 3.0)
    assert from_base64(encoded) == vector
    with pytest.raises(BadGatewayError):
        from_base64("not base64!")


def test_response_converts_between_floats_and_base64_as_the_client_asked() -> None:
    floats = EmbeddingBatch(vectors=[[0.5, 1.0]], prompt_tokens=None)
    encoded = EmbeddingBatch(vectors=[to_base64([2.0])], prompt_tokens=None)
    as_base64 = embedding_response([floats, encoded], model="m", base64_output=True, estimate=7)
    assert [item["embedding"] for item in as_base64.response["data"]] == [
        to_base64([0.5, 1.0]),
        to_base64([2.0]),
    ]
    as_floats = embedding_response([floats, encoded], model="m", base64_output=False)
    assert [item["embedding"] for item in as_floats.response["data"]] == [[0.5, 1.0], [2.0]]
    # no count from the upstream: the estimate stands in; no estimate either: usage unknown
    assert as_base64.usage is not None and as_base64.usage.prompt_tokens == 7
    assert as_floats.usage is None


def test_token_ids_are_refused_by_text_only_providers() -> None:
    error = raised(text_inputs, parse(input=[1, 2]), "gemini")
    assert (error.param, error.code) == ("input", "unsupported_input")
    assert text_inputs(parse(input=["a"]), "gemini") == ["a"]
    assert estimate_tokens(["abcd", "abcde"]) == 3


# -- the catalog and dimensions ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "provider", "dimensions", "accepted"),
    [
        ("text-embedding-3-small", "openai", 512, True),
        ("text-embedding-3-small", "openai", 1537, False),
        ("text-embedding-ada-002", "openai", 1536, True),
        ("text-embedding-ada-002", "openai", 512, False),
        ("gemini-embedding-001", "gemini", 768, True),
        ("gemini-embedding-001", "gemini", 64, False),
        ("amazon.titan-embed-text-v2:0", "bedrock", 512, True),
        ("amazon.titan-embed-text-v2:0", "bedrock", 300, False),
        ("us.cohere.embed-v4:0", "bedrock", 1024, True),
        ("cohere.embed-english-v3", "bedrock", 512, False),
        ("my-own-model", "openai", 5000, True),  # not catalogued: the upstream judges
    ],
)
def test_dimensions_the_model_does_not_give_are_a_400(
    model: str, provider: str, dimensions: int, accepted: bool
) -> None:
    request = parse(input="a", dimensions=dimensions)
    if accepted:
        check_dimensions(request, model, provider)
        return
    error = raised(check_dimensions, request, model, provider)
    assert (error.status_code, error.param, error.code) == (400, "dimensions", "unsupported_dimensions")
    assert str(dimensions) in error.message


def test_catalog_entries() -> None:
    small = lookup_embedding("text-embedding-3-small")
    assert small is not None and (small.dimensions, small.max_input_tokens) == (1536, 8191)
    assert small.describe()["kind"] == "embedding"
    vertex = lookup_embedding("gemini-embedding-001", "vertex")
    assert vertex is not None and vertex.max_batch == 1  # Vertex's predict: one instance per call
    assert {info.id for info in embedding_models_for("azure")} >= {"text-embedding-3-large"}
    assert lookup_embedding("eu.cohere.embed-v4:0") == lookup_embedding("cohere.embed-v4:0")
    assert lookup_embedding("nothing-like-it") is None


# -- OpenAI and compatible: pass-through ----------------------------------------------------------------


def test_openai_passes_the_request_through_with_its_own_model_name() -> None:
    request = parse(input=["a", "b", "c"], dimensions=64, encoding_format="base64", user="u", x_extra=1)
    payload = OPENAI_EMBEDDINGS.payload(request, "deployment-7", request.inputs)
    assert payload == {
        "model": "deployment-7",
        "input": ["a", "b", "c"],
        "dimensions": 64,
        "encoding_format": "base64",
        "user": "u",
        "x_extra": 1,
    }
    tokens = parse(input=[5, 6])
    assert OPENAI_EMBEDDINGS.payload(tokens, "m", tokens.inputs)["input"] == [5, 6]  # the client's shape
    assert OPENAI_EMBEDDINGS.payload(request, "m", ["b"])["input"] == ["b"]  # one slice of a split


def test_openai_answer_is_read_in_index_order() -> None:
    data = {
        "object": "list",
        "model": "text-embedding-3-small-v2",
        "data": [
            {"object": "embedding", "index": 1, "embedding": [1.0]},
            {"object": "embedding", "index": 0, "embedding": "AAAAAA=="},
        ],
        "usage": {"prompt_tokens": 4, "total_tokens": 4},
    }
    batch = OPENAI_EMBEDDINGS.parse(data, 2, {})
    assert batch.vectors == ["AAAAAA==", [1.0]]
    assert (batch.prompt_tokens, batch.model) == (4, "text-embedding-3-small-v2")


def test_openai_error_in_a_200_body_is_raised() -> None:
    with pytest.raises(GatewayError, match="overloaded"):
        OPENAI_EMBEDDINGS.parse({"error": {"message": "overloaded", "type": "server_error"}}, 1, {})
    with pytest.raises(BadGatewayError, match="without 'data'"):
        OPENAI_EMBEDDINGS.parse({"object": "list"}, 1, {})


# -- Gemini and Vertex ------------------------------------------------------------------------------------


def test_gemini_one_input_uses_embed_content() -> None:
    request = parse(model="gemini-embedding-001", input="hello", dimensions=768, task_type="RETRIEVAL_QUERY")
    assert gemini_embed_method(1) == "embedContent"
    assert GEMINI_EMBEDDINGS.payload(request, "gemini-embedding-001", ["hello"]) == {
        "content": {"parts": [{"text": "hello"}]},
        "taskType": "RETRIEVAL_QUERY",
        "outputDimensionality": 768,
    }
    batch = GEMINI_EMBEDDINGS.parse({"embedding": {"values": [0.1, 0.2]}}, 1, {})
    assert batch.vectors == [[0.1, 0.2]] and batch.prompt_tokens is None


def test_gemini_several_inputs_use_batch_embed_contents() -> None:
    request = parse(
        model="gemini-embedding-001", input=["a", "b"], title="Doc", task_type="RETRIEVAL_DOCUMENT"
    )
    assert gemini_embed_method(2) == "batchEmbedContents"
    payload = GEMINI_EMBEDDINGS.payload(request, "models/gemini-embedding-001", ["a", "b"])
    assert payload == {
        "requests": [
            {
                "model": "models/gemini-embedding-001",
                "content": {"parts": [{"text": text}]},
                "taskType": "RETRIEVAL_DOCUMENT",
                "title": "Doc",
            }
            for text in ("a", "b")
        ]
    }
    answer = {"embeddings": [{"values": [1.0]}, {"values": [2.0]}], "usageMetadata": {"promptTokenCount": 3}}
    batch = GEMINI_EMBEDDINGS.parse(answer, 2, {})
    assert batch.vectors == [[1.0], [2.0]] and batch.prompt_tokens == 3
    assert GEMINI_EMBEDDINGS.max_batch == 100


def test_gemini_task_type_must_be_a_string() -> None:
    request = parse(model="gemini-embedding-001", input="a", task_type=5)
    error = raised(GEMINI_EMBEDDINGS.payload, request, "g", ["a"])
    assert error.param == "task_type"


def test_gemini_error_body_and_odd_shapes() -> None:
    with pytest.raises(GatewayError, match="quota"):
        GEMINI_EMBEDDINGS.parse({"error": {"message": "quota"}}, 2, {})
    with pytest.raises(BadGatewayError):
        GEMINI_EMBEDDINGS.parse([], 2, {})


def test_vertex_predict_body_and_token_counts() -> None:
    request = parse(model="text-embedding-005", input=["a", "b"], dimensions=256, task_type="CLUSTERING")
    dialect = vertex_embeddings("text-embedding-005")
    assert dialect.max_batch == 250 and vertex_embeddings("gemini-embedding-001").max_batch == 1
    assert dialect.payload(request, "text-embedding-005", ["a", "b"]) == {
        "instances": [
            {"content": "a", "task_type": "CLUSTERING"},
            {"content": "b", "task_type": "CLUSTERING"},
        ],
        "parameters": {"outputDimensionality": 256},
    }
    answer = {
        "predictions": [
            {"embeddings": {"values": [1.0], "statistics": {"token_count": 2.0, "truncated": False}}},
            {"embeddings": {"values": [2.0], "statistics": {"token_count": 3, "truncated": False}}},
        ]
    }
    batch = dialect.parse(answer, 2, {})
    assert batch.vectors == [[1.0], [2.0]] and batch.prompt_tokens == 5


# -- Bedrock ------------------------------------------------------------------------------------------------


def test_bedrock_picks_the_family_from_the_model_id() -> None:
    assert isinstance(bedrock_embeddings("amazon.titan-embed-text-v2:0"), TitanEmbeddings)
    assert isinstance(bedrock_embeddings("us.cohere.embed-v4:0"), CohereEmbeddings)
    arn = "arn:aws:bedrock:us-east-1::foundation-model/cohere.embed-english-v3"
    assert isinstance(bedrock_embeddings(arn), CohereEmbeddings)
    error = raised(bedrock_embeddings, "anthropic.claude-3-haiku")
    assert (error.param, error.code) == ("model", "unsupported_model")


def test_titan_v2_one_text_per_call_with_dimensions_and_normalize() -> None:
    dialect = bedrock_embeddings("amazon.titan-embed-text-v2:0")
    assert dialect.max_batch == 1
    request = parse(model="amazon.titan-embed-text-v2:0", input=["a", "b"], dimensions=256, normalize=False)
    assert dialect.payload(request, "amazon.titan-embed-text-v2:0", ["b"]) == {
        "inputText": "b",
        "dimensions": 256,
        "normalize": False,
    }
    batch = dialect.parse({"embedding": [0.5], "inputTextTokenCount": 2}, 1, {})
    assert batch.vectors == [[0.5]] and batch.prompt_tokens == 2
    v1 = bedrock_embeddings("amazon.titan-embed-text-v1")
    assert v1.payload(request, "amazon.titan-embed-text-v1", ["a"]) == {"inputText": "a"}
    bad = parse(model="amazon.titan-embed-text-v2:0", input="a", normalize="yes")
    assert raised(dialect.payload, bad, "t", ["a"]).param == "normalize"


def test_cohere_batches_of_96_input_type_and_output_dimension() -> None:
    v4 = bedrock_embeddings("cohere.embed-v4:0")
    assert v4.max_batch == 96
    request = parse(model="cohere.embed-v4:0", input=["a", "b"], dimensions=512, input_type="search_query")
    assert v4.payload(request, "cohere.embed-v4:0", ["a", "b"]) == {
        "texts": ["a", "b"],
        "input_type": "search_query",
        "embedding_types": ["float"],
        "output_dimension": 512,
    }
    v3 = bedrock_embeddings("cohere.embed-english-v3")
    plain = parse(model="cohere.embed-english-v3", input="a", truncate="END")
    assert v3.payload(plain, "cohere.embed-english-v3", ["a"]) == {
        "texts": ["a"],
        "input_type": "search_document",
        "embedding_types": ["float"],
        "truncate": "END",
    }
    headers = {"x-amzn-bedrock-input-token-count": "9"}
    batch = v3.parse({"id": "x", "embeddings": {"float": [[1.0], [2.0]]}}, 2, headers)
    assert batch.vectors == [[1.0], [2.0]] and batch.prompt_tokens == 9
    assert v3.parse({"embeddings": [[3.0]]}, 1, {}).vectors == [[3.0]]
    wrong = parse(model="cohere.embed-english-v3", input="a", input_type="poetry")
    assert raised(v3.payload, wrong, "c", ["a"]).param == "input_type"


# -- echo ---------------------------------------------------------------------------------------------------


def test_echo_vectors_are_deterministic_unit_vectors() -> None:
    first, again, other = echo_vector("hello", 64), echo_vector("hello", 64), echo_vector("hullo", 64)
    assert first == again and first != other and len(first) == 64
    assert math.isclose(math.fsum(value * value for value in first), 1.0)
    assert echo_vector([1, 2, 3], 8) == echo_vector([1, 2, 3], 8) != echo_vector([1, 2, 4], 8)
    assert len(echo_vector("...", 4)) == 4 and echo_vector("", 4)  # no words: still a unit vector


def test_echo_texts_that_share_words_are_closer() -> None:
    def cosine(a: str, b: str) -> float:
        return sum(x * y for x, y in zip(echo_vector(a, 512), echo_vector(b, 512), strict=True))

    query = "how do I mount the gateway in FastAPI"
    related = "Mount the gateway inside a FastAPI app with app.mount"
    unrelated = "Bedrock signs requests with SigV4"
    assert cosine(query, related) > 0.3 > abs(cosine(query, unrelated))
    assert echo_vector("The Gateway", 16) == echo_vector("the gateway!", 16)  # words, not spelling


def test_echo_answer_sizes_and_tokens() -> None:
    answer = echo_embeddings(parse(model="anything", input=["one two", "three"]), "anything")
    data = answer.response["data"]
    assert [len(item["embedding"]) for item in data] == [256, 256]
    assert answer.usage is not None and answer.usage.prompt_tokens == 3
    like_openai = echo_embeddings(parse(model="text-embedding-3-small", input="a"), "text-embedding-3-small")
    assert len(like_openai.response["data"][0]["embedding"]) == 1536
    sized = echo_embeddings(parse(input="a", dimensions=10, encoding_format="base64"), "x")
    assert len(base64.b64decode(sized.response["data"][0]["embedding"])) == 40
    tokens = echo_embeddings(parse(input=[[1, 2], [3]]), "x")
    assert tokens.usage is not None and tokens.usage.prompt_tokens == 3
    assert refusal(input="a", dimensions=8193).param == "dimensions"  # the gateway's bound: 8,192
