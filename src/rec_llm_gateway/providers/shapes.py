"""The shape every provider's output must have before the gateway reads it (issue 16 item 14).

An upstream may send valid JSON of any shape (``index: [1]``, ``choices: 5``, a tool call whose
``index`` is ``{}``); OpenAI-compatible answers pass through almost untouched and native translators
copy upstream values. The stream assembler, the SSE encoder, usage and ``post_response`` read these
fields, and a wrong type there was a 500 or a stream dropped without an error event. Checked once,
here, for every provider: a few ``isinstance`` per chunk; a misfit is the upstream's 502.
"""

from __future__ import annotations

from typing import Any

from ..errors import BadGatewayError

__all__ = ["check_chunk", "check_completion"]

_TEXT = (str, type(None))


def _misfit(provider: str, where: str, what: str) -> BadGatewayError:
    return BadGatewayError(
        f"upstream '{provider}' sent a response the gateway cannot read ({where} {what})",
        code="invalid_upstream_response",
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_top(data: dict[str, Any], provider: str, kind: str) -> None:
    # ``object`` and ``created`` pass through unread (a ``post_response`` hook that cannot be given
    # the response is skipped, see pipeline/endings.py); ``id`` and ``model`` reach telemetry.
    for name in ("id", "model"):
        if name in data and not isinstance(data[name], str):
            raise _misfit(provider, f"{kind}.{name}", "is not a string")
    if data.get("usage") is not None and not isinstance(data["usage"], dict):
        raise _misfit(provider, f"{kind}.usage", "is not an object")
    if not isinstance(data.get("choices"), list):
        raise _misfit(provider, f"{kind}.choices", "is not a list")


def _check_tool_calls(calls: Any, provider: str, where: str, streamed: bool) -> None:
    if calls is None:
        return
    if not isinstance(calls, list):
        raise _misfit(provider, where, "is not a list")
    for position, call in enumerate(calls):
        here = f"{where}[{position}]"
        if not isinstance(call, dict):
            raise _misfit(provider, here, "is not an object")
        if streamed and "index" in call and not _is_int(call["index"]):
            raise _misfit(provider, f"{here}.index", "is not an integer")
        if not isinstance(call.get("id"), _TEXT):
            raise _misfit(provider, f"{here}.id", "is not a string")
        function = call.get("function")
        if function is None:
            continue
        if not isinstance(function, dict):
            raise _misfit(provider, f"{here}.function", "is not an object")
        for name in ("name", "arguments"):
            if not isinstance(function.get(name), _TEXT):
                raise _misfit(provider, f"{here}.function.{name}", "is not a string")


def _check_choice(choice: Any, provider: str, where: str, part: str) -> None:
    if not isinstance(choice, dict):
        raise _misfit(provider, where, "is not an object")
    if "index" in choice and not _is_int(choice["index"]):
        raise _misfit(provider, f"{where}.index", "is not an integer")
    if not isinstance(choice.get("finish_reason"), _TEXT):
        raise _misfit(provider, f"{where}.finish_reason", "is not a string")
    body = choice.get(part)
    if body is None:
        return
    if not isinstance(body, dict):
        raise _misfit(provider, f"{where}.{part}", "is not an object")
    for name in ("role", "refusal", "reasoning_content"):
        if not isinstance(body.get(name), _TEXT):
            raise _misfit(provider, f"{where}.{part}.{name}", "is not a string")
    content = body.get("content")
    if not isinstance(content, _TEXT) and not (part == "message" and isinstance(content, list)):
        raise _misfit(provider, f"{where}.{part}.content", "is not a string")
    _check_tool_calls(body.get("tool_calls"), provider, f"{where}.{part}.tool_calls", part == "delta")


def check_completion(data: Any, provider: str) -> None:
    """Raise a 502 unless ``data`` is a ``chat.completion`` the gateway can read and hand on."""
    if not isinstance(data, dict):
        raise _misfit(provider, "the response", "is not an object")
    _check_top(data, provider, "response")
    for position, choice in enumerate(data["choices"]):
        _check_choice(choice, provider, f"choices[{position}]", "message")


_TEXT_TYPES = frozenset((str, type(None)))
_USAGE_TYPES = frozenset((dict, type(None)))
_PLAIN_DELTA = frozenset(("content", "role"))


def check_chunk(chunk: Any, provider: str) -> None:
    """Raise a 502 unless ``chunk`` is a ``chat.completion.chunk`` the gateway can read.

    It runs per chunk: the common shape (text deltas) is recognised with a few exact type tests
    (~1 us); anything else takes the thorough path, which names the misfit."""
    if type(chunk) is dict:
        choices = chunk.get("choices")
        if (
            type(choices) is list
            and type(chunk.get("id", "")) is str
            and type(chunk.get("model", "")) is str
            and type(chunk.get("usage")) in _USAGE_TYPES
        ):
            for choice in choices:
                if (
                    type(choice) is not dict
                    or type(choice.get("index", 0)) is not int
                    or type(choice.get("finish_reason")) not in _TEXT_TYPES
                ):
                    break
                delta = choice.get("delta")
                if delta is not None and (
                    type(delta) is not dict
                    or type(delta.get("content")) not in _TEXT_TYPES
                    or type(delta.get("role")) not in _TEXT_TYPES
                    or not delta.keys() <= _PLAIN_DELTA
                ):
                    break
            else:
                return
    _check_chunk_thoroughly(chunk, provider)


def _check_chunk_thoroughly(chunk: Any, provider: str) -> None:
    if not isinstance(chunk, dict):
        raise _misfit(provider, "a chunk", "is not an object")
    _check_top(chunk, provider, "chunk")
    for position, choice in enumerate(chunk["choices"]):
        _check_choice(choice, provider, f"chunk.choices[{position}]", "delta")
