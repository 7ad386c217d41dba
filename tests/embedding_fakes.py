"""A fake upstream (for ``FakeUpstream``) that embeds in every provider's wire format, and answers
OpenAI's legacy ``/completions``.

``embeddings_upstream`` answers by path:

- ``.../embeddings`` (OpenAI, Azure, OpenAI-compatible): ``{"object": "list", "data": [...]}`` with
  the items in *reverse* order (each with its ``index``), base64 when asked;
- ``...:embedContent`` / ``...:batchEmbedContents`` (Gemini), ``...:predict`` (Vertex),
  ``/model/{id}/invoke`` (Bedrock Titan and Cohere, token count in the header for Cohere);
- ``.../completions`` (not chat): a ``text_completion`` echoing the prompt, or its stream;
- ``POST /token`` (Vertex's OAuth) and everything else: the Gemini, Anthropic, Bedrock and OpenAI chat
  fakes;
- any path under ``/down/``: 503, for failover.

Every input's vector is ``fake_vector(text, size)``, so a test can check which vector belongs to
which input. A text ``fail <status>`` makes the call fail with that status in the wire's error shape.
Each wire refuses a body its real API would refuse (a missing field, too many inputs per call), so a
translation that sends the wrong shape fails the test.
"""

from __future__ import annotations

import base64
import struct
from typing import Any
from urllib.parse import unquote

from .anthropic_fake import anthropic_upstream
from .bedrock_support import bedrock_handler
from .conftest import PROVIDER_KEY
from .fault_support import provider_settings
from .gemini_support import gemini_upstream, rpc_error
from .support import Recorded, Reply, openai_echo

DEFAULT_SIZE = 8


def all_providers(base: str, credentials: str) -> dict[str, Any]:
    """A provider of every type (and a preset, and echo) whose upstream is ``base``."""
    providers = {
        kind: {**provider_settings(kind, base, credentials), "timeout": 10}
        for kind in ("openai", "azure", "gemini", "vertex", "bedrock", "anthropic")
    }
    providers["groq"] = {"type": "groq", "api_key": PROVIDER_KEY, "base_url": f"{base}/v1"}
    providers["echo"] = {"type": "echo"}
    # A base_url of its own: only what the config names is listed (and kind comes from the catalog).
    providers["openai"]["models"] = ["text-embedding-3-small", "gpt-4o", "my-finetune"]
    return providers


def fake_vector(text: str, size: int = DEFAULT_SIZE) -> list[float]:
    """A vector that identifies ``text``: its length, then the sum of its code points, then zeros."""
    head = [float(len(text)), float(sum(map(ord, text)) % 65_536)]
    return (head + [0.25] * size)[:size]


def embeddings_upstream(request: Recorded) -> Reply:
    path = unquote(request.path)
    if request.method != "POST" or path == "/token":
        return gemini_upstream(request)
    if path.startswith("/down/"):
        return Reply(status=503, json={"error": {"message": "down for maintenance", "type": "server_error"}})
    body = request.json
    if path.endswith("/embeddings"):
        return _openai(body)
    if path.endswith((":embedContent", ":batchEmbedContents")):
        return _gemini(path, body)
    if path.endswith(":predict"):
        return _vertex(body)
    if path.endswith("/invoke"):
        return _bedrock(path, body)
    if path.endswith("/completions") and not path.endswith("/chat/completions"):
        return _text_completion(body)
    if path.endswith((":generateContent", ":streamGenerateContent")):
        return gemini_upstream(request)
    if path.endswith("/v1/messages"):
        return anthropic_upstream(request)
    if path.endswith(("/converse", "/converse-stream")):
        return bedrock_handler(request)
    return openai_echo(request)


def _failure(texts: list[str]) -> int | None:
    for text in texts:
        if isinstance(text, str) and text.startswith("fail "):
            return int(text.split()[1])
    return None


def _openai(body: dict[str, Any]) -> Reply:
    value = body["input"]
    items = [value] if isinstance(value, str) or (value and isinstance(value[0], int)) else value
    if len(items) > 2048:
        return Reply(
            status=400, json={"error": {"message": "too many inputs", "type": "invalid_request_error"}}
        )
    status = _failure(items)
    if status:
        return Reply(
            status=status, json={"error": {"message": f"failed with {status}", "type": "server_error"}}
        )
    size = body.get("dimensions") or DEFAULT_SIZE
    data = []
    for index, item in enumerate(items):
        text = item if isinstance(item, str) else " ".join(map(str, item))
        vector: Any = fake_vector(text, size)
        if body.get("encoding_format") == "base64":
            vector = base64.b64encode(struct.pack(f"<{size}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": vector})
    tokens = sum(len(str(item).split()) for item in items)
    return Reply(
        json={
            "object": "list",
            "data": data[::-1],
            "model": body["model"],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )


def _gemini(path: str, body: dict[str, Any]) -> Reply:
    model = path.rsplit("/", 1)[-1].split(":")[0]
    requests = body["requests"] if path.endswith(":batchEmbedContents") else [body]
    if len(requests) > 100:
        return Reply(status=400, json=rpc_error(400, "at most 100 requests can be in one batch"))
    if path.endswith(":batchEmbedContents") and any(
        item.get("model") != f"models/{model}" for item in requests
    ):
        return Reply(status=400, json=rpc_error(400, "each request must name the batch's model"))
    texts = [item["content"]["parts"][0]["text"] for item in requests]
    status = _failure(texts)
    if status:
        return Reply(status=status, json=rpc_error(status))
    vectors = [
        {"values": fake_vector(text, item.get("outputDimensionality") or DEFAULT_SIZE)}
        for text, item in zip(texts, requests, strict=True)
    ]
    if path.endswith(":embedContent"):
        return Reply(json={"embedding": vectors[0]})
    return Reply(json={"embeddings": vectors})


def _vertex(body: dict[str, Any]) -> Reply:
    texts = [instance["content"] for instance in body["instances"]]
    status = _failure(texts)
    if status:
        return Reply(status=status, json=rpc_error(status))
    size = (body.get("parameters") or {}).get("outputDimensionality") or DEFAULT_SIZE
    predictions = [
        {
            "embeddings": {
                "values": fake_vector(text, size),
                "statistics": {"token_count": float(len(text.split())), "truncated": False},
            }
        }
        for text in texts
    ]
    return Reply(json={"predictions": predictions, "metadata": {"billableCharacterCount": 10}})


def _bedrock(path: str, body: dict[str, Any]) -> Reply:
    model = path.split("/model/", 1)[1].rsplit("/", 1)[0]
    if "titan-embed" in model:
        text = body["inputText"]
        if _failure([text]):
            return _bedrock_error(_failure([text]) or 500)
        size = body.get("dimensions") or DEFAULT_SIZE
        return Reply(json={"embedding": fake_vector(text, size), "inputTextTokenCount": len(text.split())})
    texts = body["texts"]
    if len(texts) > 96 or body.get("input_type") is None:
        return _bedrock_error(400, "texts: at most 96; input_type is required")
    if _failure(texts):
        return _bedrock_error(_failure(texts) or 500)
    size = body.get("output_dimension") or DEFAULT_SIZE
    tokens = sum(len(text.split()) for text in texts)
    return Reply(
        json={
            "id": "emb-1",
            "embeddings": {"float": [fake_vector(text, size) for text in texts]},
            "texts": texts,
        },
        headers={"X-Amzn-Bedrock-Input-Token-Count": str(tokens)},
    )


def _bedrock_error(status: int, message: str = "failed") -> Reply:
    kind = "ValidationException" if status == 400 else "ServiceUnavailableException"
    return Reply(
        status=status, json={"message": message}, headers={"x-amzn-ErrorType": f"{kind}:http://internal"}
    )


def _text_completion(body: dict[str, Any]) -> Reply:
    prompt = body.get("prompt") or ""
    text = f" echo: {prompt}"
    head = {"id": "cmpl-fake", "object": "text_completion", "created": 1700000000, "model": body["model"]}
    usage = {
        "prompt_tokens": len(str(prompt).split()),
        "completion_tokens": 2,
        "total_tokens": len(str(prompt).split()) + 2,
    }
    if not body.get("stream"):
        choice = {"text": text, "index": 0, "logprobs": None, "finish_reason": "stop"}
        return Reply(json={**head, "choices": [choice], "usage": usage})
    frames: list[Any] = [
        {**head, "choices": [{"text": word, "index": 0, "logprobs": None, "finish_reason": None}]}
        for word in text.split(" ")[1:]
        for word in [" " + word]
    ]
    frames.append({**head, "choices": [{"text": "", "index": 0, "logprobs": None, "finish_reason": "stop"}]})
    if (body.get("stream_options") or {}).get("include_usage"):
        frames.append({**head, "choices": [], "usage": usage})
    frames.append("data: [DONE]\n\n")
    return Reply(sse=frames)
