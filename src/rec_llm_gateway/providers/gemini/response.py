"""A Gemini ``GenerateContentResponse`` -> an OpenAI ``chat.completion``, and what the stream shares
(``stream``): reading a candidate's parts, tool-call ids, finish reasons, usage, log probabilities.

Mapping: text parts are joined into ``content``; parts marked ``thought: true`` are thought summaries
and go to ``reasoning_content``; ``functionCall`` parts become ``tool_calls`` (Gemini sends them
whole, so a stream carries each call in one delta with its full arguments). ``finishReason``
``STOP`` is ``tool_calls`` when the candidate called a function, else ``stop``; ``MAX_TOKENS`` is
``length``; safety-like reasons are ``content_filter``; anything else is ``stop``. A prompt Gemini
blocked (``promptFeedback.blockReason``, no candidates) is one empty ``content_filter`` choice whose
``refusal`` carries Gemini's explanation.
"""

from __future__ import annotations

import re
import secrets
from typing import Any, Final

from ...errors import BadGatewayError
from ...translate import CompletionWriter, Reply, arguments_json
from ...usage import TokenUsage, token_count
from ..base import ChatResult
from .messages import tool_call_id

__all__ = [
    "ToolCallIds",
    "blocked_message",
    "completion_id",
    "map_finish_reason",
    "read_logprobs",
    "say",
    "translate_response",
    "usage_from",
]

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


class ToolCallIds:
    """Tool-call ids for one response: Gemini's own when it gives one, else ``call_<responseId>_<n>``
    (unique within a conversation, stable for a given response)."""

    __slots__ = ("count", "prefix")

    def __init__(self, response_id: Any) -> None:
        stem = _NOT_ID.sub("", response_id)[:32] if isinstance(response_id, str) else ""
        self.prefix = f"call_{stem or secrets.token_hex(8)}_"
        self.count = 0

    def make(self, call: dict[str, Any], signature: Any) -> str:
        given = call.get("id")
        base = given if isinstance(given, str) and given else f"{self.prefix}{self.count}"
        self.count += 1
        return tool_call_id(base, signature if isinstance(signature, str) else None)


def say(reply: Reply, choice: int, parts: Any, ids: ToolCallIds, limit: int | None) -> bool:
    """Tell ``reply`` what a candidate's ``parts`` hold (thoughts, text, then function calls; at most
    ``limit`` calls per choice). ``True`` when there was anything to say."""
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
        if isinstance(call, dict):
            calls.append(part)
        # inlineData, executableCode, ...: nothing in a chat completion can carry them
    thought, said = "".join(thoughts), "".join(texts)
    if thought:
        reply.reasoning(thought, choice)
    if said:
        reply.text(said, choice)
    made = 0
    for part in calls:
        made_so_far = reply.tool_calls(choice)
        if limit is not None and made_so_far >= limit:
            break
        call = part["functionCall"]
        args = call.get("args")
        reply.tool_call(
            (choice, made_so_far),
            ids.make(call, part.get("thoughtSignature")),
            str(call.get("name") or ""),
            arguments_json(args if isinstance(args, dict) else {}),
            choice,
        )
        made += 1
    return bool(thought or said or made)


def read_logprobs(result: Any) -> dict[str, Any] | None:
    """``logprobsResult`` as OpenAI's choice ``logprobs``."""
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


def blocked_message(feedback: Any) -> str | None:
    """Gemini's explanation when it blocked the prompt (``None`` when it did not)."""
    reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
    if not reason:
        return None
    return str(feedback.get("blockReasonMessage") or f"The prompt was blocked ({reason}).")


def completion_id(response_id: Any) -> str:
    if not isinstance(response_id, str) or not response_id:
        response_id = secrets.token_hex(12)
    return f"chatcmpl-{response_id}"


def translate_response(data: Any, model: str, *, single_call: bool = False) -> ChatResult:
    """A ``chat.completion`` (and its usage) for a ``GenerateContentResponse``."""
    if not isinstance(data, dict):
        raise BadGatewayError("the upstream returned a response that is not a JSON object")
    ids = ToolCallIds(data.get("responseId"))
    writer = CompletionWriter(completion_id(data.get("responseId")), data.get("modelVersion") or model)
    reply = Reply(writer)
    for position, candidate in enumerate(data.get("candidates") or ()):
        if not isinstance(candidate, dict):
            continue
        choice = candidate.get("index", position)
        content = candidate.get("content")
        parts = content.get("parts") if isinstance(content, dict) else None
        say(reply, choice, parts or (), ids, 1 if single_call else None)
        logprobs = candidate.get("logprobsResult")
        if logprobs is not None:
            reply.logprobs(read_logprobs(logprobs), choice)
        reply.finish(map_finish_reason(candidate.get("finishReason"), reply.tool_calls(choice) > 0), choice)
    if not reply.begun():
        refusal = blocked_message(data.get("promptFeedback"))
        if refusal is None:
            raise BadGatewayError("the upstream returned a response without candidates")
        reply.refusal(refusal)
        reply.finish("content_filter")
    reply.add_usage(usage_from(data.get("usageMetadata")))
    return ChatResult(response=writer.response(), usage=reply.usage)
