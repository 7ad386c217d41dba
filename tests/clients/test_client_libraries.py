"""What retrieval apps are built with, against the gateway served by uvicorn: LangChain's
``OpenAIEmbeddings`` and LlamaIndex's ``OpenAILike`` (with its defaults: the legacy ``/completions``
route) and ``OpenAIEmbedding``, on echo and on loopback upstreams.

langchain-openai is in the ``dev`` extra; LlamaIndex is heavy (numpy, nltk, SQLAlchemy, ...) and
lives in the ``clients`` extra: its tests skip when it is not installed."""

from __future__ import annotations

from typing import Any

import pytest

from rec_llm_gateway.providers.echo_embeddings import echo_vector

from ..embedding_fakes import fake_vector
from ..support import FakeUpstream


@pytest.fixture
def offline_tiktoken(monkeypatch: pytest.MonkeyPatch) -> Any:
    """LangChain tokenizes texts with tiktoken before sending them, and tiktoken downloads its
    vocabulary on first use: there is no network here, so a byte-level encoding stands in. The
    gateway then sees what LangChain sends by default: lists of token ids."""
    import tiktoken

    encoding = tiktoken.Encoding(
        name="bytes",
        pat_str=r"\S+|\s+",
        mergeable_ranks={bytes([i]): i for i in range(256)},
        special_tokens={},
    )
    monkeypatch.setattr(tiktoken, "encoding_for_model", lambda model: encoding)
    monkeypatch.setattr(tiktoken, "get_encoding", lambda name: encoding)
    return encoding


def test_langchain_openai_embeddings_defaults_on_echo(wires_gateway: str, offline_tiktoken: Any) -> None:
    langchain_openai = pytest.importorskip("langchain_openai")
    embeddings = langchain_openai.OpenAIEmbeddings(base_url=f"{wires_gateway}/v1", api_key="unused")
    documents = embeddings.embed_documents(["the cat sat", "on the mat"])
    # LangChain sent token ids (its default): echo's vectors are those of the ids, 1,536 long for
    # LangChain's default model (text-embedding-ada-002), as the catalog says
    ids = [offline_tiktoken.encode(text) for text in ("the cat sat", "on the mat")]
    assert documents == [pytest.approx(echo_vector(tokens, 1536), rel=1e-6) for tokens in ids]
    query = embeddings.embed_query("the cat sat")
    assert query == documents[0]


@pytest.mark.parametrize(
    "model",
    ["openai:text-embedding-3-small", "gemini:gemini-embedding-001", "bedrock:cohere.embed-english-v3"],
)
def test_langchain_openai_embeddings_on_upstreams(
    model: str, wires: FakeUpstream, wires_gateway: str
) -> None:
    langchain_openai = pytest.importorskip("langchain_openai")
    # Text, not token ids: native providers embed text only (check_embedding_ctx_length=False is
    # LangChain's switch for any server that is not OpenAI's own).
    embeddings = langchain_openai.OpenAIEmbeddings(
        model=model, base_url=f"{wires_gateway}/v1", api_key="unused", check_embedding_ctx_length=False
    )
    texts = [f"chunk {index}" for index in range(5)]
    assert embeddings.embed_documents(texts) == [fake_vector(text) for text in texts]
    assert wires.requests


def test_langchain_async(wires_gateway: str) -> None:
    import asyncio

    langchain_openai = pytest.importorskip("langchain_openai")
    embeddings = langchain_openai.OpenAIEmbeddings(
        model="echo:any", base_url=f"{wires_gateway}/v1", api_key="unused", check_embedding_ctx_length=False
    )
    vectors = asyncio.run(embeddings.aembed_documents(["a", "b"]))
    assert vectors == [pytest.approx(echo_vector(text, 256), rel=1e-6) for text in ("a", "b")]


def test_llamaindex_openai_like_with_its_defaults(wires: FakeUpstream, wires_gateway: str) -> None:
    openai_like = pytest.importorskip("llama_index.llms.openai_like")
    # Its defaults: not a chat model, so `complete` goes to /v1/completions.
    llm = openai_like.OpenAILike(model="echo-1", api_base=f"{wires_gateway}/v1", api_key="unused")
    assert llm.complete("Hello there").text == "Hello there"
    assert (
        "".join(part.delta or "" for part in llm.stream_complete("Streaming works too"))
        == "Streaming works too"
    )
    passed = openai_like.OpenAILike(
        model="openai:gpt-3.5-turbo-instruct", api_base=f"{wires_gateway}/v1", api_key="unused"
    )
    assert passed.complete("Say hi").text == " echo: Say hi"
    assert wires.last.path == "/v1/completions"


def test_llamaindex_openai_embedding(wires: FakeUpstream, wires_gateway: str) -> None:
    embedding_module = pytest.importorskip("llama_index.embeddings.openai")
    embedder = embedding_module.OpenAIEmbedding(
        model_name="echo:text-embedding-3-small",
        api_base=f"{wires_gateway}/v1",
        api_key="unused",
        dimensions=64,
    )
    vector = embedder.get_text_embedding("hello")
    assert vector == pytest.approx(echo_vector("hello", 64), rel=1e-6)
    batch = embedder.get_text_embedding_batch(["a", "b", "c"])
    assert batch[2] == pytest.approx(echo_vector("c", 64), rel=1e-6)
    query = embedding_module.OpenAIEmbedding(
        model_name="openai:text-embedding-3-small", api_base=f"{wires_gateway}/v1", api_key="unused"
    ).get_query_embedding("where is the cat?")
    assert query == fake_vector("where is the cat?")
