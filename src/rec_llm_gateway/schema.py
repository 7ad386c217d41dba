"""OpenAI chat-completions wire models.

Requests are validated strictly where the gateway relies on a field (roles, content part types,
``model``, ``stream``) and loosely elsewhere: every model keeps unknown fields (``extra="allow"``) so
that parameters this module has never heard of still reach OpenAI-compatible upstreams untouched.
Validation runs from the raw JSON bytes (``ChatCompletionRequest.from_json``) in pydantic-core.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from .errors import InvalidRequestError

__all__ = [
    "AssistantMessage",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionRequest",
    "DeveloperMessage",
    "FunctionMessage",
    "Message",
    "SystemMessage",
    "ToolMessage",
    "UserMessage",
    "content_text",
]


MAX_MODEL_LENGTH = 2048

# The ranges OpenAI's API enforces (a 400 naming the parameter), so that a request the gateway accepts
# is one OpenAI would accept, whichever provider serves it; one definition for every request model.
Temperature = Annotated[float, Field(ge=0, le=2)]
TopP = Annotated[float, Field(ge=0, le=1)]
ChoiceCount = Annotated[int, Field(ge=1, le=128)]
Penalty = Annotated[float, Field(ge=-2, le=2)]


class _Open(BaseModel):
    """A wire object: unknown fields are kept and passed on."""

    model_config = ConfigDict(
        extra="allow", strict=True, populate_by_name=True, defer_build=True, allow_inf_nan=False
    )

    @classmethod
    def from_json(cls, body: bytes, context: dict[str, Any] | None = None) -> Self:
        """Validate a request body, turning every problem into a 400 in OpenAI's envelope.
        ``context`` reaches the model's validators (the configured limits)."""
        try:
            request = cls.model_validate_json(body, context=context)
        except ValidationError as exc:
            raise _as_invalid_request(exc) from None
        # Typed fields refuse NaN and infinities; unknown fields (at any depth) travel upstream as
        # they are, and JSON has no way to write those numbers. Only bodies that could hold one (the
        # NaN/Infinity tokens, or an exponent big enough to overflow) are walked.
        where = _non_finite(request) if _maybe_non_finite(body) else None
        if where is not None:
            raise InvalidRequestError(f"Invalid value for '{where}': numbers must be finite.", param=where)
        return request

    def to_payload(self) -> dict[str, Any]:
        """The request as JSON-ready data: only the fields the client sent (or a hook set)."""
        return self.model_dump(mode="json", exclude_unset=True)


_Item = TypeVar("_Item")
FastList = Annotated[list[_Item], Field(fail_fast=True)]
"""A list that stops validating at its first bad item. Without it, a body of a million bad items (3 MB
of ``{},``) made pydantic report a million errors, and materialising them took seconds of event-loop
CPU per request (found by the fuzz suite). The client is told about the first one."""


class TextPart(_Open):
    type: Literal["text"]
    text: str


class ImageURL(_Open):
    url: str
    detail: str | None = None


class ImagePart(_Open):
    type: Literal["image_url"]
    image_url: ImageURL


class InputAudioPart(_Open):
    type: Literal["input_audio"]
    input_audio: dict[str, Any]


class FilePart(_Open):
    type: Literal["file"]
    file: dict[str, Any]


class RefusalPart(_Open):
    type: Literal["refusal"]
    refusal: str


UserContentPart = Annotated[TextPart | ImagePart | InputAudioPart | FilePart, Field(discriminator="type")]
AssistantContentPart = Annotated[TextPart | RefusalPart, Field(discriminator="type")]


class FunctionCall(_Open):
    name: str
    arguments: str


class ToolCall(_Open):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class SystemMessage(_Open):
    role: Literal["system"]
    content: str | FastList[TextPart]
    name: str | None = None


class DeveloperMessage(_Open):
    role: Literal["developer"]
    content: str | FastList[TextPart]
    name: str | None = None


class UserMessage(_Open):
    role: Literal["user"]
    content: str | FastList[UserContentPart]
    name: str | None = None


class AssistantMessage(_Open):
    role: Literal["assistant"]
    content: str | FastList[AssistantContentPart] | None = None
    name: str | None = None
    tool_calls: FastList[ToolCall] | None = None
    refusal: str | None = None


class ToolMessage(_Open):
    role: Literal["tool"]
    content: str | FastList[TextPart]
    tool_call_id: str


class FunctionMessage(_Open):
    """The deprecated ``function`` role; still accepted by OpenAI, so passed through."""

    role: Literal["function"]
    content: str | None
    name: str


Message = Annotated[
    SystemMessage | DeveloperMessage | UserMessage | AssistantMessage | ToolMessage | FunctionMessage,
    Field(discriminator="role"),
]


class StreamOptions(_Open):
    include_usage: bool | None = None


class FunctionDefinition(_Open):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(_Open):
    type: str = "function"
    function: FunctionDefinition | None = None


class ChatCompletionRequest(_Open):
    """``POST /v1/chat/completions`` body. Unknown fields are kept (``request.model_extra``)."""

    # Bounded: the router caches routes by model name, so names of megabytes would be kept in memory
    # (4096 of them). 2048 is AWS Bedrock's own limit on a model id or ARN, the longest in use.
    model: Annotated[str, Field(max_length=MAX_MODEL_LENGTH)]
    messages: Annotated[list[Message], Field(min_length=1, fail_fast=True)]
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    n: ChoiceCount | None = None
    stop: str | FastList[str] | None = None
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None
    presence_penalty: Penalty | None = None
    frequency_penalty: Penalty | None = None
    seed: int | None = None
    user: str | None = None
    tools: FastList[Tool] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    response_format: dict[str, Any] | None = None
    logprobs: bool | None = None
    top_logprobs: Annotated[int, Field(ge=0, le=20)] | None = None

    @field_validator("tool_choice")
    @classmethod
    def _tool_choice_shape(cls, value: str | dict[str, Any] | None) -> str | dict[str, Any] | None:
        # Providers read `function.name` from the object form ({"type": "function", "function":
        # {"name": ...}}); `"function": 5` crashed Bedrock's translation with a 500 (found by the
        # fuzz suite). Runs only when a client sends tool_choice.
        if isinstance(value, dict):
            function = value.get("function")
            if function is not None and not (
                isinstance(function, dict) and isinstance(function.get("name", ""), str)
            ):
                raise PydanticCustomError(
                    "tool_choice_function", "'function' must be an object with a string 'name'"
                )
        return value

    @property
    def wants_stream_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class Completion(_Open):
    """What a chat or text completion response has (the models handed to ``post_response``)."""

    model_config = ConfigDict(extra="allow", strict=False, defer_build=True)

    id: str
    object: str
    created: int = 0
    model: str
    choices: list[dict[str, Any]]
    usage: dict[str, Any] | None = None


class ChatCompletion(Completion):
    """A ``chat.completion`` response, as handed to ``post_response`` hooks."""

    object: str = "chat.completion"


class ChatCompletionChunk(_Open):
    """One ``chat.completion.chunk`` event of a stream; the usage (when asked for) rides on a last
    chunk with no choices. (Described in the OpenAPI document; the gateway passes chunks as dicts.)"""

    model_config = ConfigDict(extra="allow", strict=False, defer_build=True)

    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    choices: list[dict[str, Any]]
    usage: dict[str, Any] | None = None


# A float overflows to infinity only if its integer digits plus its exponent reach 309: so either the
# exponent has 3+ digits, or (with an exponent of at most 99) the mantissa has 210+ digits. The old
# regex only looked for 309-digit runs, missing `1` + 290 zeros + `e20` (an infinity passed through),
# and its digit-run branch cost O(309 * n) on long runs of digits (seconds for a 10 MB body). Mapping
# every digit to `0` and searching for fixed substrings is linear and several times faster on
# ordinary bodies too (both found by the fuzz suite).
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789E", b"000000000e")
_LONG_DIGIT_RUN = b"0" * 200


def _maybe_non_finite(body: bytes) -> bool:
    """Whether ``body`` could hold NaN or an infinity (a cheap pre-check before walking the request)."""
    if b"NaN" in body or b"Infinity" in body:
        return True
    digits = body.translate(_DIGITS_AS_ZERO)
    return b"0e000" in digits or b"0e+000" in digits or _LONG_DIGIT_RUN in digits


def _non_finite(value: Any, path: str = "") -> str | None:
    """The path of the first NaN or infinity among ``value``'s unknown fields, or ``None``."""
    if isinstance(value, float):
        return None if math.isfinite(value) else path or "(body)"
    if isinstance(value, BaseModel):
        for name, item in (value.__pydantic_extra__ or {}).items():
            found = _non_finite(item, f"{path}.{name}" if path else name)
            if found:
                return found
        for name in type(value).model_fields:
            item = getattr(value, name)
            if isinstance(item, BaseModel | list | dict):
                found = _non_finite(item, f"{path}.{name}" if path else name)
                if found:
                    return found
        return None
    if isinstance(value, dict):
        for name, item in value.items():
            found = _non_finite(item, f"{path}.{name}")
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _non_finite(item, f"{path}[{index}]")
            if found:
                return found
    return None


def content_text(content: Any) -> str:
    """The text of a message's ``content``: the string itself, or its text parts joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.text for part in content if isinstance(part, TextPart))
    return ""


def _as_invalid_request(exc: ValidationError) -> InvalidRequestError:
    """Turn pydantic's report into one readable OpenAI-style message, naming the first bad field."""
    errors = exc.errors(include_url=False, include_input=False)
    if not errors:  # pragma: no cover - pydantic always reports at least one
        return InvalidRequestError("Invalid request body.")
    # For a union ("content": str | list of parts) pydantic reports each branch; the deepest location
    # is the branch the client was evidently aiming at.
    first = max(errors, key=lambda error: len(error["loc"]))
    if first["type"] == "json_invalid":
        # The parser's reason and position ("lone leading surrogate in hex escape at line 1 column
        # 45", "recursion limit exceeded ..."): without it, valid-looking JSON refused for nesting
        # deeper than 200 or an escaped lone surrogate left the client guessing.
        reason = (first.get("ctx") or {}).get("error")
        detail = f": {reason}" if isinstance(reason, str) and reason else ""
        return InvalidRequestError(f"The request body is not valid JSON{detail}.", code="invalid_json")
    if first["type"] == "model_type" and not first["loc"]:
        return InvalidRequestError("The request body must be a JSON object.", code="invalid_body")
    param = _param_path(first["loc"])
    message = _describe(first, param)
    more = len(errors) - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return InvalidRequestError(message, param=param or None, code=_code_for(first["type"]))


def _param_path(loc: tuple[int | str, ...]) -> str:
    # pydantic puts the union member's tag into the location ("messages.0.user.content"); the client
    # never wrote that, so drop tags that name a role or part type.
    parts: list[str] = []
    for position, item in enumerate(loc):
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif item == "str" or "[" in item or _is_union_tag(loc, position):
            pass  # a union member's name, not a field the client wrote
        else:
            parts.append(("." if parts else "") + item)
    return "".join(parts)


_ROLE_TAGS = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_PART_TAGS = frozenset({"text", "image_url", "input_audio", "file", "refusal"})


def _is_union_tag(loc: tuple[int | str, ...], position: int) -> bool:
    if position < 2 or not isinstance(loc[position - 1], int):
        return False
    container, item = loc[position - 2], loc[position]
    return (container == "messages" and item in _ROLE_TAGS) or (
        item in _PART_TAGS and container != "messages"
    )


def _describe(error: Any, param: str) -> str:
    kind = error["type"]
    where = f"'{param}'" if param else "the request body"
    if kind == "missing":
        return f"Missing required parameter: {where}."
    if kind == "union_tag_invalid":
        allowed = error.get("ctx", {}).get("expected_tags") or ""
        tag = "role" if "messages" in param and "content" not in param else "type"
        expected = f" Expected one of {allowed}." if allowed else ""
        return f"Invalid value for {where}: unsupported {tag}.{expected}"
    if kind == "union_tag_not_found":
        tag = "role" if param.startswith("messages") and "content" not in param else "type"
        return f"Missing required parameter: {where} needs a '{tag}'."
    if kind == "too_short" and param == "messages":
        return "'messages' must contain at least one message."
    if kind == "extra_forbidden":
        return f"Unrecognized request argument supplied: {where}."
    return f"Invalid value for {where}: {error['msg']}."


def _code_for(kind: str) -> str | None:
    if kind == "missing":
        return "missing_required_parameter"
    if kind in ("union_tag_invalid", "union_tag_not_found", "literal_error"):
        return "invalid_value"
    return "invalid_type" if kind.endswith(("_type", "_parsing")) else "invalid_value"
