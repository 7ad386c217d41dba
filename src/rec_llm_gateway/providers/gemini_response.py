"""Gemini answers -> OpenAI shapes, shared by the ``gemini`` and ``vertex`` providers.

- ``translate_response``: a ``GenerateContentResponse`` -> a ``chat.completion`` and its usage;
- ``GeminiStreamTranslator``: ``streamGenerateContent?alt=sse`` events -> ``chat.completion.chunk``
  dicts (each event is a whole response object holding the *delta*; ``usageMetadata`` repeats on
  every event, so the last one wins and goes out once, in its own chunk, when the stream ends);

Mapping: text parts are joined into ``content``; parts marked ``thought: true`` are thought summaries
and go to ``reasoning_content``; ``functionCall`` parts become ``tool_calls`` (Gemini sends them
whole, so a stream carries each call in one delta with its full arguments). ``finishReason``
``STOP`` is ``tool_calls`` when the candidate called a function, else ``stop``; ``MAX_TOKENS`` is
``length``; safety-like reasons are ``content_filter``; anything else is ``stop``. A prompt Gemini
blocked (``promptFeedback.blockReason``, no candidates) is one empty ``content_filter`` choice whose
``refusal`` carries Gemini's explanation.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from typing import Any, Final

import pydantic_core

from ..errors import BadGatewayError
from ..usage import TokenUsage, token_count
from .base import StreamTranslator, UpstreamCall
from .gemini_errors import google_stream_error
from .gemini_translate import tool_call_id

__all__ = ["GeminiStreamTranslator", "map_finish_reason", "translate_response", "usage_from"]

_FILTERED: Final = frozenset({"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII"})
_NOT_ID = re.compile(r"[^A-Za-z0-9]")


def map_finish_reason(reason: Any, called: bool) -> str:
    """OpenAI's ``finish_reason`` for a Gemini ``finishReason``."""
    if reason == "STOP" or reason is None:
        return "tool_calls" if called else "stop"
    if reason == "MAX_TOKENS":
        return "length"
    if reason in _FILTERED or (isinstance(reason, str) and reason.startswith("IMAGE_")):
        return "content_filter"
    return "stop"  # OTHER, LANGUAGE, MALFORMED_FUNCTION_CALL, ...: the candidate simply ended


def usage_from(meta: Any) -> TokenUsage | None:
    """OpenAI-style usage from ``usageMetadata`` (thoughts count as completion tokens)."""
    if not isinstance(meta, dict):
        return None
    prompt = token_count(meta.get("promptTokenCount")) + token_count(meta.get("toolUsePromptTokenCount"))
    thoughts = token_count(meta.get("thoughtsTokenCount"))
    completion = token_count(meta.get("candidatesTokenCount")) + thoughts
    return TokenUsage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        cached_tokens=token_count(meta.get("cachedContentTokenCount")),
        reasoning_tokens=thoughts,
    )


class _Ids:
    """Tool-call ids for one response: Gemini's own when it gives one, else ``call_<responseId>_<n>``
    (unique within a conversation, stable for a given response)."""

    __slots__ = ("count", "prefix")

    def __init__(self, response_id: Any) -> None:
        stem = _NOT_ID.sub("", response_id)[:32] if isinstance(response_id, str) else ""
        self.prefix = f"call_{stem or secrets.token_hex(8)}_"
        self.count = 0

    def make(self, call: dict[str, Any], signature: Any) -> dict[str, Any]:
        given = call.get("id")
        base = given if isinstance(given, str) and given else f"{self.prefix}{self.count}"
        self.count += 1
        args = call.get("args")
        return {
            "id": tool_call_id(base, signature if isinstance(signature, str) else None),
            "type": "function",
            "function": {
                "name": str(call.get("name") or ""),
                "arguments": json.dumps(
                    args if isinstance(args, dict) else {}, ensure_ascii=False, separators=(",", ":")
                ),
            },
        }


def _read_parts(parts: Any, ids: _Ids, room: int | None) -> tuple[str, str, list[dict[str, Any]]]:
    """(text, thought text, tool calls) of a candidate's parts; at most ``room`` calls."""
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in parts:
        if not isinstance(part, dict):
            continue
        text = part.get("text")
        if isinstance(text, str):
            (thoughts if part.get("thought") else texts).append(text)
            continue
        call = part.get("functionCall")
        if isinstance(call, dict) and (room is None or len(calls) < room):
            calls.append(ids.make(call, part.get("thoughtSignature")))
        # inlineData, executableCode, ...: nothing in a chat completion can carry them
    return "".join(texts), "".join(thoughts), calls


def _logprobs(result: Any) -> dict[str, Any] | None:
    if not isinstance(result, dict):
        return None
    tops = result.get("topCandidates") or []
    content = []
    for position, chosen in enumerate(result.get("chosenCandidates") or ()):
        entry = _logprob(chosen)
        top = tops[position].get("candidates") if position < len(tops) else None
        entry["top_logprobs"] = [_logprob(item) for item in top or ()]
        content.append(entry)
    return {"content": content, "refusal": None}


def _logprob(item: dict[str, Any]) -> dict[str, Any]:
    token = str(item.get("token", ""))
    return {"token": token, "logprob": float(item.get("logProbability", 0.0)), "bytes": list(token.encode())}


def _blocked_message(feedback: Any) -> str | None:
    reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
    if not reason:
        return None
    return str(feedback.get("blockReasonMessage") or f"The prompt was blocked ({reason}).")


def _completion_id(response_id: Any) -> str:
    if not isinstance(response_id, str) or not response_id:
        response_id = secrets.token_hex(12)
    return f"chatcmpl-{response_id}"


def translate_response(
    data: Any, model: str, *, single_call: bool = False
) -> tuple[dict[str, Any], TokenUsage | None]:
    """A ``chat.completion`` (and its usage) for a ``GenerateContentResponse``."""
    if not isinstance(data, dict):
        raise BadGatewayError("the upstream returned a response that is not a JSON object")
    ids = _Ids(data.get("responseId"))
    choices: list[dict[str, Any]] = []
    for position, candidate in enumerate(data.get("candidates") or ()):
        if not isinstance(candidate, dict):
            continue
        content = candidate.get("content")
        parts = content.get("parts") if isinstance(content, dict) else None
        text, thoughts, calls = _read_parts(parts or (), ids, 1 if single_call else None)
        # refusal: null when there is none, as OpenAI's spec requires of every message.
        message: dict[str, Any] = {
            "role": "assistant",
            "content": text if text or not calls else None,
            "refusal": None,
        }
        if thoughts:
            message["reasoning_content"] = thoughts
        if calls:
            message["tool_calls"] = calls
        choices.append(
            {
                "index": candidate.get("index", position),
                "message": message,
                "logprobs": _logprobs(candidate.get("logprobsResult")),
                "finish_reason": map_finish_reason(candidate.get("finishReason"), bool(calls)),
            }
        )
    if not choices:
        refusal = _blocked_message(data.get("promptFeedback"))
        if refusal is None:
            raise BadGatewayError("the upstream returned a response without candidates")
        message = {"role": "assistant", "content": "", "refusal": refusal}
        choices.append({"index": 0, "message": message, "logprobs": None, "finish_reason": "content_filter"})
    response: dict[str, Any] = {
        "id": _completion_id(data.get("responseId")),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": data.get("modelVersion") or model,
        "choices": choices,
    }
    usage = usage_from(data.get("usageMetadata"))
    if usage is not None:
        response["usage"] = usage.to_openai()
    return response, usage


class GeminiStreamTranslator(StreamTranslator):
    """One per stream. ``feed`` takes an SSE event's data bytes; ``feed_event`` the parsed object
    (also usable for the elements of the JSON-array form of ``streamGenerateContent``).

    Per candidate it emits a role chunk, then one delta per event (content, reasoning_content
    and/or complete tool calls), then the finish chunk; ``finish`` adds the one usage chunk.
    Chunks are plain dicts built from a prepared head: this runs once per upstream event.
    """

    def __init__(self, call: UpstreamCall, provider: str, *, single_call: bool = False) -> None:
        self._call = call
        self._provider = provider
        self._limit = 1 if single_call else None
        self._head: dict[str, Any] | None = None
        self._ids = _Ids(None)
        self._usage: Any = None
        self._open: set[int] = set()
        self._calls: dict[int, int] = {}

    def feed(self, data: Any) -> list[dict[str, Any]]:
        try:
            event = pydantic_core.from_json(data)  # about 3x faster than json.loads on these events
        except ValueError:
            raise BadGatewayError("the upstream sent a stream event that is not valid JSON") from None
        try:
            return self.feed_event(event)
        except (AttributeError, KeyError, TypeError, ValueError, IndexError) as exc:
            # a shape the translation does not expect: the upstream's fault, not a gateway bug
            raise BadGatewayError(
                f"upstream '{self._provider}' sent a stream event the gateway cannot read "
                f"({type(exc).__name__})"
            ) from None

    def feed_event(self, event: Any) -> list[dict[str, Any]]:
        if not isinstance(event, dict):
            raise BadGatewayError("the upstream sent a stream event that is not a JSON object")
        if "error" in event:
            raise google_stream_error(event["error"], self._provider)
        head = self._head or self._start(event)
        meta = event.get("usageMetadata")
        if meta is not None:
            self._usage = meta
        candidates = event.get("candidates")
        if not candidates:
            return self._blocked(head, event.get("promptFeedback"))
        out: list[dict[str, Any]] = []
        for position, candidate in enumerate(candidates):
            if not isinstance(candidate, dict):
                continue
            index = candidate.get("index", position)
            if index not in self._open:
                self._open.add(index)
                delta: dict[str, Any] = {"role": "assistant", "content": ""}
                out.append({**head, "choices": [{"index": index, "delta": delta, "finish_reason": None}]})
            content = candidate.get("content")
            parts = content.get("parts") if isinstance(content, dict) else None
            if parts:
                sent = self._calls.get(index, 0)
                room = None if self._limit is None else self._limit - sent
                text, thoughts, calls = _read_parts(parts, self._ids, room)
                delta = {}
                if thoughts:
                    delta["reasoning_content"] = thoughts
                if text:
                    delta["content"] = text
                if calls:
                    for offset, tool_call in enumerate(calls):
                        tool_call["index"] = sent + offset
                    delta["tool_calls"] = calls
                    self._calls[index] = sent + len(calls)
                if delta:
                    choice: dict[str, Any] = {"index": index, "delta": delta, "finish_reason": None}
                    logprobs = candidate.get("logprobsResult")
                    if logprobs is not None:
                        choice["logprobs"] = _logprobs(logprobs)
                    out.append({**head, "choices": [choice]})
            reason = candidate.get("finishReason")
            if reason:
                finish = map_finish_reason(reason, index in self._calls)
                out.append({**head, "choices": [{"index": index, "delta": {}, "finish_reason": finish}]})
        return out

    def finish(self) -> list[dict[str, Any]]:
        usage = usage_from(self._usage)
        if self._head is None or usage is None:
            return []
        return [{**self._head, "choices": [], "usage": usage.to_openai()}]

    def _start(self, event: dict[str, Any]) -> dict[str, Any]:
        response_id = event.get("responseId")
        model = event.get("modelVersion")
        if isinstance(model, str) and model:
            self._call.response_model = model
        self._ids = _Ids(response_id)
        self._head = {
            "id": _completion_id(response_id),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model or self._call.model,
        }
        return self._head

    def _blocked(self, head: dict[str, Any], feedback: Any) -> list[dict[str, Any]]:
        refusal = _blocked_message(feedback)
        if refusal is None or 0 in self._open:
            return []  # an event with nothing but usage metadata
        self._open.add(0)
        delta = {"role": "assistant", "content": "", "refusal": refusal}
        return [
            {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]},
            {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "content_filter"}]},
        ]
