"""``/v1/responses`` in the gateway's OpenAPI description (imported only when it is built, through
``ResponsesOperation.describe`` and the stored-response routes' models in ``openapi.py``).

The request is described as every upstream takes it (the gateway's wire model also keeps what only
OpenAI and Azure take through: other item and tool types, unknown fields): input items that are
messages, function calls and their outputs; function tools or built-in ones (dropped for translated
upstreams); a text, JSON-object or JSON-schema format.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from .wire import ResponsesRequest

__all__ = ["DeletedResponse", "ResponseEvent", "ResponseObject", "ResponsesCreate", "patch_schemas"]


class _Doc(BaseModel):
    model_config = ConfigDict(extra="allow")


class InputText(_Doc):
    type: Literal["input_text", "output_text"]
    text: str


class InputImage(_Doc):
    type: Literal["input_image"]
    image_url: str = Field(
        min_length=1, description="An https URL or a data: URL (file ids need OpenAI's storage)."
    )
    detail: str | None = None


class InputFile(_Doc):
    type: Literal["input_file"]
    file_data: str = Field(
        min_length=1, description="The file inline (file ids and URLs need OpenAI's storage)."
    )
    filename: str | None = None


class Refusal(_Doc):
    type: Literal["refusal"]
    refusal: str


Part = Annotated[InputText | InputImage | InputFile | Refusal, Field(discriminator="type")]


class Message(_Doc):
    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[Part]


class FunctionCall(_Doc):
    type: Literal["function_call"]
    call_id: str
    name: str
    arguments: str = Field(description="JSON text.")


class FunctionCallOutput(_Doc):
    """Answers a ``function_call`` earlier in the conversation (same ``call_id``), else a 400."""

    type: Literal["function_call_output"]
    call_id: str
    output: str | list[Part]


class FunctionTool(_Doc):
    type: Literal["function"]
    name: str = Field(min_length=1)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


# Any other type is a built-in tool (web_search, file_search, ...): run by OpenAI, left out for other
# upstreams (named in x-rec-llm-dropped-tools) or refused with responses.builtin_tools: reject.
_BUILTIN_TOOL = {
    "type": "object",
    "required": ["type"],
    "properties": {"type": {"type": "string", "not": {"const": "function"}}},
    "description": "A built-in tool (web_search, file_search, ...), run by OpenAI only.",
}


class NamedFunction(_Doc):
    type: Literal["function"]
    name: str


class JSONSchemaFormat(_Doc):
    type: Literal["json_schema"]
    name: str | None = None
    schema_: dict[str, Any] = Field(alias="schema")
    strict: bool | None = None
    description: str | None = None


class PlainFormat(_Doc):
    type: Literal["text", "json_object"]


class TextConfig(_Doc):
    format: Annotated[JSONSchemaFormat | PlainFormat, Field(discriminator="type")] | None = None
    verbosity: str | None = None


class Reasoning(_Doc):
    effort: str | None = Field(None, description="minimal, low, medium or high (reasoning_effort).")
    summary: str | None = None


class _ResponsesInput(_Doc):
    """``POST /v1/responses``. ``store`` (default true) keeps the response for ``GET`` and for a next
    turn's ``previous_response_id`` (a missing or expired one is a 404)."""

    model: str
    input: (
        str
        | Annotated[
            list[Annotated[Message | FunctionCall | FunctionCallOutput, Field(discriminator="type")]],
            Field(min_length=1),
        ]
    )
    tools: list[FunctionTool] | None = Field(None, description="Function tools, or built-in ones.")
    tool_choice: Literal["auto", "none", "required"] | NamedFunction | None = None
    text: TextConfig | None = None
    reasoning: Reasoning | None = None


# The other fields as the wire model declares them (OpenAI's ranges included): one definition.
_WIRE_FIELDS: Final = (
    "instructions",
    "max_output_tokens",
    "temperature",
    "top_p",
    "metadata",
    "store",
    "previous_response_id",
    "include",
    "prompt_cache_key",
    "parallel_tool_calls",
    "stream",
    "user",
    "safety_identifier",
)
_wire = ResponsesRequest.model_fields
ResponsesCreate = create_model(  # type: ignore[call-overload]  # field definitions built at run time
    "ResponsesCreate",
    __base__=_ResponsesInput,
    __doc__=_ResponsesInput.__doc__,
    **{name: (_wire[name].annotation, _wire[name]) for name in _WIRE_FIELDS},
)


class ResponseObject(_Doc):
    """A Response: ``output`` holds ``message``, ``function_call`` and ``reasoning`` items."""

    id: str
    object: Literal["response"]
    status: Literal["completed", "incomplete", "failed", "in_progress"]
    model: str
    output: list[dict[str, Any]]
    usage: dict[str, Any] | None = None


class ResponseEvent(_Doc):
    """One stream event: response.created, response.output_text.delta, ..., response.completed (or
    error and response.failed)."""

    type: str


class DeletedResponse(_Doc):
    id: str
    object: Literal["response"]
    deleted: Literal[True]


def patch_schemas(schemas: dict[str, Any], ref: str) -> None:
    """What pydantic cannot say: a tool is a function tool or any built-in one (its type is not
    ``function``)."""
    tools = schemas["ResponsesCreate"]["properties"]["tools"]
    array = next(option for option in tools["anyOf"] if option.get("type") == "array")
    array["items"] = {"anyOf": [{"$ref": ref.format(model="FunctionTool")}, _BUILTIN_TOOL]}
