"""Retrieval-augmented generation through the gateway: embed documents, find the ones closest to a
question, answer the question with them as context. Everything goes through one gateway route per
step (``/v1/embeddings``, then ``/v1/chat/completions``), with the stock ``openai`` SDK.

On the built-in ``echo`` provider no key is needed: echo's vectors are bag-of-words lookalikes
(texts that share words point the same way) and its "answer" repeats the prompt, so the demo shows
the flow, the costs and the gateway's extension without a model. Point ``--embedding-model`` and
``--chat-model`` at real ones (``openai:text-embedding-3-small``, ``anthropic:claude-sonnet-4-5``)
with ``--config`` to run it for real.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from openai import OpenAI

DOCUMENTS = [
    "The gateway mounts inside an existing FastAPI or Starlette app with app.mount('/llm', gateway).",
    "Litestar apps add the gateway with the GatewayPlugin from rec_llm_gateway.integrations.litestar.",
    "Model names take the form provider:model, for example openai:gpt-4o-mini or echo:echo-1.",
    "Every response carries x_rec_llm with the provider, latency, overhead and cost of the call.",
    "Bedrock requests are signed with SigV4 using the standard AWS credential chain.",
    "Embeddings requests larger than a provider's batch limit are split and put back in order.",
]


@dataclass
class Index:
    """Documents and their vectors, searched by cosine similarity (a vector store stands in here)."""

    documents: list[str]
    vectors: list[list[float]]

    def search(self, query: Sequence[float], top: int) -> list[tuple[float, str]]:
        scored = [
            (_cosine(query, vector), document)
            for vector, document in zip(self.vectors, self.documents, strict=True)
        ]
        return sorted(scored, reverse=True)[:top]


def build_index(client: OpenAI, model: str, documents: list[str]) -> Index:
    # One request for all documents: the gateway splits it if the provider takes fewer per call.
    result = client.embeddings.create(model=model, input=documents)
    return Index(documents, [item.embedding for item in result.data])


def answer(client: OpenAI, index: Index, embedding_model: str, chat_model: str, question: str) -> str:
    query = client.embeddings.create(model=embedding_model, input=question).data[0].embedding
    context = "\n".join(f"- {document}" for _, document in index.search(query, top=2))
    reply = client.chat.completions.create(
        model=chat_model,
        messages=[
            {"role": "system", "content": "Answer from the context only."},
            {"role": "user", "content": f"Context:\n{context}\n\nQuestion: {question}"},
        ],
    )
    return reply.choices[0].message.content or ""


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = math.fsum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(math.fsum(x * x for x in a)) * math.sqrt(math.fsum(y * y for y in b))
    return dot / norm if norm else 0.0
