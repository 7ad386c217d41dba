"""OpenAI Responses API wire models (``POST /v1/responses``).

The request is validated where the gateway relies on a field and kept whole otherwise (unknown fields
stay, for native pass-through to OpenAI and Azure). ``input`` items are checked one by one against the
item types the gateway translates (``message``, ``function_call``, ``function_call_output``,
``reasoning``); other types (``web_search_call``, ``item_reference``, ...) stay raw dicts, which only a
native upstream can take. Errors name the item (``input[3].call_id``), in OpenAI's envelope.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Self, cast

from pydantic import BaseModel, Field, PrivateAttr, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from ..errors import InvalidRequestError
from ..schema import MAX_MODEL_LENGTH, FastList, Temperature, TopP, _as_invalid_request, _Open

__all__ = [
    "FunctionCallItem",
    "FunctionCallOutputItem",
    "InputItem",
    "MessageItem",
    "ReasoningItem",
    "ResponsesRequest",
    "parse_items",
]


class InputText(_Open):
    type: Literal["input_text"]
    text: str


class InputImage(_Open):
    type: Literal["input_image"]
    image_url: str | None = None
    file_id: str | None = None
    detail: str | None = None


class InputFile(_Open):
    type: Literal["input_file"]
    file_data: str | None = None
    file_id: str | None = None
    file_url: str | None = None
    filename: str | None = None


class OutputText(_Open):
    type: Literal["output_text"]
    text: str


class Refusal(_Open):
    type: Literal["refusal"]
    refusal: str


ContentPart = Annotated[
    InputText | InputImage | InputFile | OutputText | Refusal, Field(discriminator="type")
]


class MessageItem(_Open):
    """A message; ``type`` may be left out (the "easy" input message form)."""

    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: str | FastList[ContentPart]
    id: str | None = None
    status: str | None = None


class FunctionCallItem(_Open):
    type: Literal["function_call"]
    call_id: str
    name: str
    arguments: str
    id: str | None = None
    status: str | None = None


class FunctionCallOutputItem(_Open):
    type: Literal["function_call_output"]
    call_id: str
    output: str | FastList[ContentPart]
    id: str | None = None
    status: str | None = None


class SummaryText(_Open):
    type: Literal["summary_text"] = "summary_text"
    text: str


class ReasoningItem(_Open):
    type: Literal["reasoning"]
    summary: FastList[SummaryText] = Field(default_factory=list)
    id: str | None = None
    content: list[dict[str, Any]] | None = None
    encrypted_content: str | None = None


InputItem = MessageItem | FunctionCallItem | FunctionCallOutputItem | ReasoningItem
"""An input item the gateway can translate for any provider."""

_ITEM_MODELS: dict[str, type[BaseModel]] = {
    "message": MessageItem,
    "function_call": FunctionCallItem,
    "function_call_output": FunctionCallOutputItem,
    "reasoning": ReasoningItem,
}
TRANSLATED_ITEM_TYPES = tuple(_ITEM_MODELS)


class TextFormat(_Open):
    type: str
    name: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None
    description: str | None = None


class TextConfig(_Open):
    format: TextFormat | None = None
    verbosity: str | None = None


class ReasoningConfig(_Open):
    effort: str | None = None
    summary: str | None = None


@dataclass(slots=True)
class RequestState:
    """What the gateway learns about one request on its way (not part of the wire model)."""

    history: list[dict[str, Any]] | None = None
    """The stored conversation before this turn, once read (``previous_response_id``)."""
    dropped_tools: list[str] = field(default_factory=list)
    """Built-in tools left out for the upstream that answered."""


class ResponsesRequest(_Open):
    """``POST /v1/responses`` body. Unknown fields are kept (``request.model_extra``)."""

    _state: RequestState = PrivateAttr(default_factory=RequestState)

    model: Annotated[str, Field(max_length=MAX_MODEL_LENGTH)]
    input: str | Annotated[list[dict[str, Any]], Field(min_length=1, fail_fast=True)] | None = None
    instructions: str | None = None
    tools: FastList[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    text: TextConfig | None = None
    reasoning: ReasoningConfig | None = None
    # OpenAI's ranges, as for chat (schema.ChatCompletionRequest): a 400 naming the parameter.
    max_output_tokens: Annotated[int, Field(ge=1)] | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None
    previous_response_id: str | None = None
    include: FastList[str] | None = None
    prompt_cache_key: str | None = None
    parallel_tool_calls: bool | None = None
    stream: bool | None = None
    user: str | None = None
    safety_identifier: str | None = None

    @field_validator("tools")
    @classmethod
    def _typed_tools(cls, tools: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        for tool in tools or ():
            if not isinstance(tool.get("type"), str):
                raise PydanticCustomError("tool_type", "every tool needs a string 'type'")
        return tools

    @classmethod
    def from_json(cls, body: bytes, context: dict[str, Any] | None = None) -> Self:
        """Validate a request body, turning every problem into a 400 in OpenAI's envelope."""
        request = super().from_json(body, context)
        if request.input is None and request.previous_response_id is None:
            raise InvalidRequestError("Missing required parameter: 'input'.", param="input")
        return request

    @property
    def stores(self) -> bool:
        """Whether the response is kept for ``GET`` and ``previous_response_id`` (OpenAI's default)."""
        return self.store is not False

    def input_items(self) -> list[dict[str, Any]]:
        """``input`` as a list of items (a string is one user message)."""
        if self.input is None:
            return []
        if isinstance(self.input, str):
            return [{"type": "message", "role": "user", "content": self.input}]
        return self.input

    @property
    def state(self) -> RequestState:
        return self._state

    def with_history(self, history: list[dict[str, Any]] | None) -> ResponsesRequest:
        """This request with ``history`` inline instead of ``previous_response_id``, for an upstream
        that holds no conversation of the gateway's. Item ids are left out (an ``item_reference`` is
        nothing but its id) and reasoning items without ``encrypted_content`` dropped: the upstream
        would look those up in its own storage."""
        if history is None:
            return self
        items = [
            item if item.get("type") == "item_reference" else {k: v for k, v in item.items() if k != "id"}
            for item in history
            if item.get("type") != "reasoning" or item.get("encrypted_content")
        ]
        return self.model_copy(update={"input": [*items, *self.input_items()], "previous_response_id": None})

    def to_payload(self) -> dict[str, Any]:
        """The request as JSON-ready data: only the fields the client sent (or a hook set)."""
        payload = self.model_dump(mode="json", exclude_unset=True, by_alias=True)
        if payload.get("previous_response_id", "") is None:
            del payload["previous_response_id"]
        return payload


def parse_items(items: list[dict[str, Any]], where: str = "input") -> list[InputItem | dict[str, Any]]:
    """Validate each item of a known type; keep others as they are (raw dicts).

    An item without ``type`` but with ``role`` is a message. Errors name the item: ``input[3].call_id``.
    """
    parsed: list[InputItem | dict[str, Any]] = []
    for index, item in enumerate(items):
        kind = item.get("type", "message" if "role" in item else None)
        if not isinstance(kind, str):
            raise InvalidRequestError(
                f"Missing required parameter: '{where}[{index}].type'.",
                param=f"{where}[{index}].type",
                code="missing_required_parameter",
            )
        model = _ITEM_MODELS.get(kind)
        if model is None:
            parsed.append(item)
            continue
        try:
            parsed.append(cast(InputItem, model.model_validate(item)))
        except ValidationError as exc:
            raise _item_error(exc, f"{where}[{index}]") from None
    return parsed


def _item_error(exc: ValidationError, prefix: str) -> InvalidRequestError:
    """pydantic's report for one item, with the item's place in front of the field it names."""
    inner = _as_invalid_request(exc)
    param = f"{prefix}.{inner.param}" if inner.param else prefix
    message = inner.message.replace(f"'{inner.param}'", f"'{param}'") if inner.param else inner.message
    return InvalidRequestError(message, param=param, code=inner.code)
