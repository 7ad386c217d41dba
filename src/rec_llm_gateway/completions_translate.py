"""Legacy text completions on providers that only chat: the request becomes a one-message chat and
the answer comes back in the ``text_completion`` shape (streams included).

OpenAI-compatible upstreams never come here: they get ``/completions`` as the client sent it.
For the others, the rule for parameters that have no chat equivalent (README, "Legacy completions"):

- translated: ``prompt`` (one string) becomes the user message; ``max_tokens``, ``temperature``,
  ``top_p``, ``n``, ``stop``, ``presence_penalty``, ``frequency_penalty``, ``seed``, ``user``,
  ``stream``, ``stream_options`` keep their meaning; unknown fields travel on as for chat;
- refused with a 400 naming the parameter: a list of prompts or token ids, ``echo: true``,
  ``suffix``, ``logprobs``, ``best_of`` above 1 and ``logit_bias`` (each changes what text comes
  back in a way a chat model cannot honour, so dropping them silently would mislead).

OpenAI's own default of 16 tokens when ``max_tokens`` is unset is not imposed: the provider's
default applies, as it would for chat.
"""

from __future__ import annotations

from typing import Any, Final

from pydantic import ValidationError

from .errors import InvalidRequestError
from .schema import ChatCompletionRequest, _as_invalid_request
from .schema_completions import CompletionRequest

__all__ = ["TextChunks", "chat_request", "text_completion"]

_CHAT_FIELDS: Final = (
    "model",
    "stream",
    "stream_options",
    "max_tokens",
    "temperature",
    "top_p",
    "n",
    "stop",
    "presence_penalty",
    "frequency_penalty",
    "seed",
    "user",
)


def chat_request(request: CompletionRequest, provider: str) -> ChatCompletionRequest:
    """The one-message chat that asks ``provider`` for what ``request`` asks."""
    prompts = request.prompts
    if len(prompts) != 1 or not isinstance(prompts[0], str):
        what = "token ids" if not isinstance(prompts[0], str) else "several prompts"
        raise _unsupported("prompt", f"{what} (send one prompt as a string)", provider)
    for name, refused in (
        ("echo", request.echo),
        ("suffix", request.suffix is not None),
        ("logprobs", request.logprobs is not None),
        ("best_of", (request.best_of or 1) > 1),
        ("logit_bias", bool(request.logit_bias)),
        ("max_tokens", request.max_tokens == 0),  # "no new text": only useful with echo
    ):
        if refused:
            raise _unsupported(name, f"'{name}'", provider)
    fields = request.model_fields_set
    # An explicit null means "not set", as OpenAI reads it.
    values: dict[str, Any] = {
        name: getattr(request, name)
        for name in _CHAT_FIELDS
        if name in fields and getattr(request, name) is not None
    }
    values.update(request.model_extra or {})
    values["messages"] = [{"role": "user", "content": prompts[0]}]
    # Lax: the values were validated once already, some as models (``stream_options``).
    try:
        return ChatCompletionRequest.model_validate(values, strict=False)
    except ValidationError as exc:  # a value chat takes more narrowly (max_tokens: 0): a 400 naming it
        raise _as_invalid_request(exc) from None


def text_completion(response: dict[str, Any]) -> dict[str, Any]:
    """A ``chat.completion`` dict as a ``text_completion`` dict."""
    choices = [
        {
            "text": _text(choice.get("message")),
            "index": choice.get("index", index),
            "logprobs": None,
            "finish_reason": choice.get("finish_reason"),
        }
        for index, choice in enumerate(response.get("choices") or ())
        if isinstance(choice, dict)
    ]
    completion: dict[str, Any] = {
        "id": _completion_id(response.get("id")),
        "object": "text_completion",
        "created": response.get("created", 0),
        "model": response.get("model", ""),
        "choices": choices,
    }
    if response.get("system_fingerprint"):
        completion["system_fingerprint"] = response["system_fingerprint"]
    if response.get("usage") is not None:
        completion["usage"] = response["usage"]
    return completion


class TextChunks:
    """Turns ``chat.completion.chunk`` dicts into ``text_completion`` stream chunks. One per stream.

    OpenAI's text streams carry the same ``text_completion`` object as a complete answer, a piece of
    text per chunk; the chat stream's opening chunk (a role, no text) has no counterpart and is
    dropped; the usage chunk keeps its place (``choices: []``)."""

    __slots__ = ()

    def convert(self, chunk: dict[str, Any]) -> dict[str, Any] | None:
        choices = []
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta")
            text = delta.get("content") if isinstance(delta, dict) else None
            finish = choice.get("finish_reason")
            if not text and not finish:
                continue
            choices.append(
                {
                    "text": text or "",
                    "index": choice.get("index", 0),
                    "logprobs": None,
                    "finish_reason": finish,
                }
            )
        if not choices and chunk.get("usage") is None:
            return None
        converted: dict[str, Any] = {
            "id": _completion_id(chunk.get("id")),
            "object": "text_completion",
            "created": chunk.get("created", 0),
            "model": chunk.get("model", ""),
            "choices": choices,
        }
        if chunk.get("usage") is not None:
            converted["usage"] = chunk["usage"]
        return converted


def _text(message: Any) -> str:
    if not isinstance(message, dict):
        return ""
    content = message.get("content")
    return content if isinstance(content, str) else ""


def _completion_id(chat_id: Any) -> str:
    if not isinstance(chat_id, str):
        return ""
    return "cmpl-" + chat_id.removeprefix("chatcmpl-") if chat_id.startswith("chatcmpl-") else chat_id


def _unsupported(param: str, what: str, provider: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"Provider '{provider}' answers text completions through chat and cannot honour {what}; "
        "use an OpenAI-compatible provider for it.",
        param=param,
        code="unsupported_parameter",
    )
