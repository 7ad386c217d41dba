"""A Responses request -> the gateway's chat-completions request, for providers without the Responses API.

    instructions                  -> a leading system message (never carried over from history)
    message items                 -> user / system / developer / assistant messages
    function_call items           -> ``tool_calls`` of the assistant message they follow
    function_call_output items    -> ``tool`` messages (images in them follow as a user message)
    reasoning items               -> dropped (no chat equivalent; providers re-think)
    function tools                -> chat function tools; built-in tools (web_search, ...) dropped
                                     and named in the result, or refused (``builtin_tools: reject``)
    text.format, reasoning.effort -> response_format, reasoning_effort
    max_output_tokens             -> max_completion_tokens

``history`` is what a stored previous response contributes (its input and output items), already
trusted: item types the gateway cannot translate (a native upstream's ``web_search_call``) are skipped
there, while in the client's new ``input`` they are a 400.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from ..errors import InvalidRequestError
from ..schema import ChatCompletionRequest
from .wire import (
    TRANSLATED_ITEM_TYPES,
    FunctionCallItem,
    FunctionCallOutputItem,
    InputImage,
    InputItem,
    InputText,
    MessageItem,
    OutputText,
    Refusal,
    ResponsesRequest,
    parse_items,
)

__all__ = ["ChatTranslation", "to_chat_request"]

logger = logging.getLogger("rec_llm_gateway")

_UNSAFE = re.compile(r"[^A-Za-z0-9_.:\-]")

BuiltinToolPolicy = Literal["drop", "reject"]


@dataclass(slots=True)
class ChatTranslation:
    request: ChatCompletionRequest
    dropped_tools: list[str] = field(default_factory=list)
    """Built-in tools (``web_search``, ...) left out because the upstream cannot run them."""


def to_chat_request(
    request: ResponsesRequest,
    history: Sequence[dict[str, Any]] = (),
    *,
    builtin_tools: BuiltinToolPolicy = "drop",
    provider: str = "",
) -> ChatTranslation:
    """The chat request that asks ``provider`` what ``request`` asks (see the module docstring)."""
    items: list[InputItem | dict[str, Any]] = [
        item for item in parse_items(list(history), "history") if not isinstance(item, dict)
    ]
    new = parse_items(request.input_items())
    for index, item in enumerate(new):
        if isinstance(item, dict):
            kind = str(item.get("type"))[:64]
            raise InvalidRequestError(
                f"Invalid value for 'input[{index}].type': items of type {kind!r} cannot be sent to "
                f"provider {provider!r}, which does not speak the Responses API; supported here: "
                f"{', '.join(TRANSLATED_ITEM_TYPES)}.",
                param=f"input[{index}].type",
                code="invalid_value",
            )
    items.extend(new)
    messages = _Messages(len(items) - len(new)).build(items, request.instructions)
    payload: dict[str, Any] = {"model": request.model, "messages": messages}
    tools, dropped = _tools(request.tools or [], builtin_tools, provider)
    if tools:
        payload["tools"] = tools
    if request.tool_choice is not None:
        choice = _tool_choice(request.tool_choice, dropped)
        if choice is not None and (tools or choice == "none"):
            payload["tool_choice"] = choice
    if request.parallel_tool_calls is not None and tools:
        payload["parallel_tool_calls"] = request.parallel_tool_calls
    for name in ("temperature", "top_p", "user", "safety_identifier"):
        value = getattr(request, name)
        if value is not None:
            payload[name] = value
    if request.max_output_tokens is not None:
        payload["max_completion_tokens"] = request.max_output_tokens
    response_format = _response_format(request)
    if response_format is not None:
        payload["response_format"] = response_format
    if request.reasoning is not None and request.reasoning.effort is not None:
        payload["reasoning_effort"] = request.reasoning.effort
    if request.stream:
        payload["stream"] = True
        payload["stream_options"] = {"include_usage": True}
    try:
        chat = ChatCompletionRequest.model_validate(payload)
    except ValidationError as exc:  # pragma: no cover - the items were validated above
        raise InvalidRequestError(f"The request cannot be translated: {exc.errors()[0]['msg']}.") from None
    if dropped:
        logger.debug("responses: built-in tools %s left out for provider %r", dropped, provider)
    return ChatTranslation(chat, dropped)


class _Messages:
    """Builds chat messages from items; ``first_new`` is where the client's own input begins (for
    error positions)."""

    def __init__(self, first_new: int) -> None:
        self.first_new = first_new
        self.messages: list[dict[str, Any]] = []
        self.assistant: dict[str, Any] | None = None  # the message the next function_call joins
        self.calls: set[str] = set()
        self.deferred_images: list[dict[str, Any]] = []  # from tool outputs, sent after the tool turn

    def build(
        self, items: list[InputItem | dict[str, Any]], instructions: str | None
    ) -> list[dict[str, Any]]:
        if instructions:
            self.messages.append({"role": "system", "content": instructions})
        for position, item in enumerate(items):
            if isinstance(item, FunctionCallOutputItem):
                self._tool_output(item, position)
                continue
            self._flush_images()
            if isinstance(item, MessageItem):
                self._message(item, position)
            elif isinstance(item, FunctionCallItem):
                self._function_call(item)
        self._flush_images()
        if not self.messages:
            raise InvalidRequestError("The input has no messages.", param="input", code="invalid_value")
        return self.messages

    def _where(self, position: int) -> str:
        offset = position - self.first_new
        return f"input[{offset}]" if offset >= 0 else "previous_response_id"

    def _message(self, item: MessageItem, position: int) -> None:
        if item.role == "assistant":
            text, refusal = _assistant_content(item.content)
            message: dict[str, Any] = {"role": "assistant", "content": text}
            if refusal:
                message["refusal"] = refusal
            self.messages.append(message)
            self.assistant = message
            return
        self.assistant = None
        if item.role == "user":
            content: Any = _user_content(item.content, self._where(position))
        else:
            content = _text(item.content)
        self.messages.append({"role": item.role, "content": content})

    def _function_call(self, item: FunctionCallItem) -> None:
        if self.assistant is None:
            self.assistant = {"role": "assistant", "content": None}
            self.messages.append(self.assistant)
        call = {
            **(item.model_extra or {}),  # provider extras (Gemini's thought signature) ride along
            "id": item.call_id,
            "type": "function",
            "function": {"name": item.name, "arguments": item.arguments},
        }
        self.assistant.setdefault("tool_calls", []).append(call)
        self.calls.add(item.call_id)

    def _tool_output(self, item: FunctionCallOutputItem, position: int) -> None:
        where = self._where(position)
        if item.call_id not in self.calls:
            raise InvalidRequestError(
                f"No tool call found for function call output with call_id {item.call_id[:80]!r} "
                f"('{where}.call_id').",
                param=f"{where}.call_id",
                code="invalid_value",
            )
        self.assistant = None
        if isinstance(item.output, str):
            text = item.output
        else:
            text = _text(item.output)
            images = [part for part in item.output if isinstance(part, InputImage)]
            self.deferred_images.extend(_image(part, f"{where}.output") for part in images)
        self.messages.append({"role": "tool", "tool_call_id": item.call_id, "content": text})

    def _flush_images(self) -> None:
        if self.deferred_images:
            self.messages.append({"role": "user", "content": self.deferred_images})
            self.deferred_images = []


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(getattr(part, "text", "") for part in content)


def _assistant_content(content: Any) -> tuple[str | None, str | None]:
    if isinstance(content, str):
        return content, None
    text = "".join(part.text for part in content if not isinstance(part, Refusal) and hasattr(part, "text"))
    refusal = "".join(part.refusal for part in content if isinstance(part, Refusal))
    return text or None, refusal or None


def _user_content(content: Any, where: str) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    parts: list[dict[str, Any]] = []
    for index, part in enumerate(content):
        if isinstance(part, InputImage):
            parts.append(_image(part, f"{where}.content[{index}]"))
        elif isinstance(part, Refusal):
            continue
        elif isinstance(part, InputText | OutputText):
            parts.append({"type": "text", "text": part.text})
        else:  # input_file
            if not part.file_data:
                raise _needs_inline(f"{where}.content[{index}]", "files must be sent inline (file_data)")
            file: dict[str, Any] = {"file_data": part.file_data}
            if part.filename:
                file["filename"] = part.filename
            parts.append({"type": "file", "file": file})
    return parts


def _image(part: InputImage, where: str) -> dict[str, Any]:
    if not part.image_url:
        raise _needs_inline(f"{where}.image_url", "images must be sent as image_url (an https or data: URL)")
    image: dict[str, Any] = {"url": part.image_url}
    if part.detail:
        image["detail"] = part.detail
    return {"type": "image_url", "image_url": image}


def _needs_inline(param: str, what: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"'{param}': {what} to this provider; file ids and file URLs need OpenAI's own storage.",
        param=param,
        code="invalid_value",
    )


def _tools(
    tools: list[dict[str, Any]], policy: BuiltinToolPolicy, provider: str
) -> tuple[list[dict[str, Any]], list[str]]:
    chat_tools: list[dict[str, Any]] = []
    dropped: list[str] = []
    for index, tool in enumerate(tools):
        kind = tool.get("type")
        if kind != "function":
            builtin = _tool_label(tool)
            if policy == "reject":
                raise InvalidRequestError(
                    f"Invalid value for 'tools[{index}].type': the built-in tool {builtin!r} cannot run on "
                    f"provider {provider!r} (only function tools can).",
                    param=f"tools[{index}].type",
                    code="unsupported_tool",
                )
            dropped.append(builtin)
            continue
        name = tool.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidRequestError(
                f"Missing required parameter: 'tools[{index}].name'.",
                param=f"tools[{index}].name",
                code="missing_required_parameter",
            )
        function: dict[str, Any] = {"name": name}
        for key in ("description", "parameters", "strict"):
            if tool.get(key) is not None:
                function[key] = tool[key]
        chat_tools.append({"type": "function", "function": function})
    return chat_tools, dropped


def _tool_label(tool: dict[str, Any]) -> str:
    """``web_search``, ``namespace:multi_agent_v1``, ``mcp:deepwiki``: safe for a header and a log."""
    label = str(tool.get("type"))
    name = tool.get("name") or tool.get("server_label")
    if isinstance(name, str) and name:
        label += f":{name}"
    return _UNSAFE.sub("", label)[:80]


def _tool_choice(choice: str | dict[str, Any], dropped: list[str]) -> str | dict[str, Any] | None:
    if isinstance(choice, str):
        if choice not in ("auto", "none", "required"):
            raise InvalidRequestError(
                f"Invalid value for 'tool_choice': {choice[:64]!r}; expected auto, none or required.",
                param="tool_choice",
                code="invalid_value",
            )
        return choice
    kind = choice.get("type")
    if kind == "function" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    if kind == "allowed_tools" and choice.get("mode") in ("auto", "required"):
        return str(choice["mode"])
    if isinstance(kind, str) and any(label.partition(":")[0] == kind for label in dropped):
        raise InvalidRequestError(
            f"Invalid value for 'tool_choice': the built-in tool {kind[:64]!r} cannot run on this provider.",
            param="tool_choice",
            code="unsupported_tool",
        )
    raise InvalidRequestError(
        "Invalid value for 'tool_choice': expected auto, none, required or "
        "{'type': 'function', 'name': ...}.",
        param="tool_choice",
        code="invalid_value",
    )


def _response_format(request: ResponsesRequest) -> dict[str, Any] | None:
    fmt = request.text.format if request.text is not None else None
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return {"type": "json_object"}
    if fmt.type == "json_schema":
        if fmt.schema_ is None:
            raise InvalidRequestError(
                "Missing required parameter: 'text.format.schema'.",
                param="text.format.schema",
                code="missing_required_parameter",
            )
        spec: dict[str, Any] = {"name": fmt.name or "response", "schema": fmt.schema_}
        if fmt.strict is not None:
            spec["strict"] = fmt.strict
        if fmt.description:
            spec["description"] = fmt.description
        return {"type": "json_schema", "json_schema": spec}
    raise InvalidRequestError(
        f"Invalid value for 'text.format.type': {fmt.type[:64]!r}; "
        "expected text, json_object or json_schema.",
        param="text.format.type",
        code="invalid_value",
    )
