"""An Anthropic Messages request -> the gateway's OpenAI chat request (for every provider but Claude).

The mapping, field by field:

- ``system`` (a string or text blocks) -> one leading ``system`` message;
- a user turn's ``tool_result`` blocks -> ``tool`` messages first (OpenAI wants them right after the
  assistant's ``tool_calls``), then the rest of the turn as a user message; images inside a tool
  result follow in a user message of their own (OpenAI tool messages hold text only);
- ``image`` (base64 or URL) -> ``image_url`` parts; a base64 PDF ``document`` -> a ``file`` part; a
  text document -> a text part;
- assistant ``tool_use`` -> ``tool_calls`` (``input`` serialised as the ``arguments`` string);
  ``thinking`` blocks from earlier turns are not sent back (their signatures only mean something to
  Claude, and Claude is served natively);
- ``tools`` -> function tools; ``tool_choice`` auto/any/tool/none -> auto/required/named/none, and
  ``disable_parallel_tool_use`` -> ``parallel_tool_calls: false``;
- ``thinking`` with a budget -> ``reasoning_effort`` (the nearest effort of the Anthropic provider's
  own table); ``output_config.effort`` -> ``reasoning_effort``; ``output_config.format`` ->
  ``response_format``;
- ``max_tokens`` -> ``max_completion_tokens`` (what OpenAI's reasoning models require; every
  provider of the gateway reads it), ``stop_sequences`` -> ``stop``, ``metadata.user_id`` -> ``user``.

The rule for what has no equivalent is the Anthropic provider's: dropped (with a debug log) when the
client still gets an answer of the shape it asked for (``cache_control``, ``citations``, ``top_k``,
``service_tier``), refused with a 400 naming the field when it would not (server tools, URL or file
documents, server tool blocks in the history).
"""

from __future__ import annotations

import logging
from typing import Any, Final

import pydantic_core

from ..errors import InvalidRequestError
from ..providers.anthropic_translate import THINKING_BUDGETS
from ..schema import ChatCompletionRequest
from .wire import Block, InputMessage, MessagesRequest, require_object

__all__ = ["reasoning_effort_for", "to_chat"]

logger = logging.getLogger("rec_llm_gateway.messages")

_EFFORTS: Final = ("low", "medium", "high")
"""The efforts a thinking budget maps to: the ones every reasoning provider of the gateway accepts."""

_OUTPUT_EFFORTS: Final = {"low": "low", "medium": "medium", "high": "high", "max": "high"}

_MAPPED: Final = frozenset(
    {"max_tokens", "stream", "temperature", "top_p", "stop_sequences", "metadata", "output_config"}
)

_ONLY_NATIVE = "it has no equivalent outside Anthropic's API; route this model to Claude"


def to_chat(request: MessagesRequest) -> ChatCompletionRequest:
    """Translate a validated Messages request. Raises ``InvalidRequestError`` (400, naming the
    field) for what cannot be translated."""
    payload: dict[str, Any] = {"model": request.model, "messages": _messages(request)}
    payload["max_completion_tokens"] = request.max_tokens
    if request.stream:
        # The usage chunk is how the answer learns its token counts (message_delta's usage).
        payload["stream"] = True
        payload["stream_options"] = {"include_usage": True}
    for name in ("temperature", "top_p"):
        value = getattr(request, name)
        if value is not None:
            payload[name] = value
    if request.stop_sequences:
        payload["stop"] = request.stop_sequences
    user = (request.metadata or {}).get("user_id")
    if isinstance(user, str) and user:
        payload["user"] = user
    if request.tools:
        payload["tools"] = [_tool(tool, f"tools[{position}]") for position, tool in enumerate(request.tools)]
        if request.tool_choice is not None:
            _tool_choice(request.tool_choice, payload)
    effort = reasoning_effort_for(request.thinking)
    output = (request.model_extra or {}).get("output_config")
    if output is not None:
        effort = _output_config(require_object(output, "output_config"), payload) or effort
    if effort is not None:
        payload["reasoning_effort"] = effort
    if logger.isEnabledFor(logging.DEBUG):
        for name in request.model_fields_set | set(request.model_extra or ()):
            if name not in _MAPPED and name not in ChatCompletionRequest.model_fields:
                logger.debug("messages: dropping %r (no equivalent in the chat request)", name)
    return ChatCompletionRequest.model_validate(payload)


def reasoning_effort_for(thinking: Block | None) -> str | None:
    """``thinking: {"type": "enabled", "budget_tokens": N}`` as the largest effort whose budget in
    the Anthropic provider's table fits in ``N`` (at least ``low``); adaptive or disabled: none."""
    if not thinking or thinking.get("type") != "enabled":
        return None
    budget = thinking.get("budget_tokens")
    if not isinstance(budget, int) or isinstance(budget, bool):
        raise InvalidRequestError(
            "'thinking.budget_tokens' must be an integer.", param="thinking.budget_tokens"
        )
    effort = _EFFORTS[0]
    for name in _EFFORTS:
        if THINKING_BUDGETS[name] <= budget:
            effort = name
    return effort


# -- messages -------------------------------------------------------------------------------------


def _messages(request: MessagesRequest) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    system = request.system
    if isinstance(system, str):
        if system:
            messages.append({"role": "system", "content": system})
    elif system:
        parts = [_text_part(block, f"system[{position}]") for position, block in enumerate(system)]
        parts = [part for part in parts if part["text"]]
        if parts:
            messages.append({"role": "system", "content": parts[0]["text"] if len(parts) == 1 else parts})
    for position, message in enumerate(request.messages):
        where = f"messages[{position}]"
        if message.role == "user":
            messages.extend(_user(message, where))
        else:
            assistant = _assistant(message, where)
            if assistant is not None:
                messages.append(assistant)
    if not messages or all(message["role"] == "system" for message in messages):
        raise InvalidRequestError("'messages' must contain at least one message.", param="messages")
    return messages


def _blocks(message: InputMessage, where: str) -> list[tuple[Block, str]]:
    content = message.content
    if isinstance(content, str):
        return [({"type": "text", "text": content}, f"{where}.content")]
    paths = [f"{where}.content[{position}]" for position in range(len(content))]
    return [(require_object(block, path), path) for block, path in zip(content, paths, strict=True)]


def _user(message: InputMessage, where: str) -> list[dict[str, Any]]:
    tool_messages: list[dict[str, Any]] = []
    tool_images: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for block, path in _blocks(message, where):
        if block.get("type") == "tool_result":
            tool_message, images = _tool_result(block, path)
            tool_messages.append(tool_message)
            tool_images.extend(images)
        else:
            part = _user_part(block, path)
            if part is not None:
                parts.append(part)
    out = tool_messages
    if tool_images:
        out.append({"role": "user", "content": tool_images})
    if parts:
        only_text = len(parts) == 1 and parts[0]["type"] == "text"
        out.append({"role": "user", "content": parts[0]["text"] if only_text else parts})
    return out


def _user_part(block: Block, path: str) -> dict[str, Any] | None:
    kind = block.get("type")
    if kind == "text":
        part = _text_part(block, path)
        return part if part["text"] else None
    if kind == "image":
        return _image_part(block, path)
    if kind == "document":
        return _document_part(block, path)
    if kind in ("thinking", "redacted_thinking"):
        raise InvalidRequestError(f"A user turn cannot hold a {kind} block.", param=f"{path}.type")
    raise _unsupported_block(kind, path)


def _text_part(block: Block, path: str) -> dict[str, Any]:
    text = block.get("text")
    if not isinstance(text, str):
        raise InvalidRequestError(f"'{path}.text' must be a string.", param=f"{path}.text")
    return {"type": "text", "text": text}


def _image_part(block: Block, path: str) -> dict[str, Any]:
    source = require_object(block.get("source"), f"{path}.source")
    kind = source.get("type")
    if kind == "base64":
        media_type, data = source.get("media_type"), source.get("data")
        if not isinstance(media_type, str) or not isinstance(data, str):
            raise InvalidRequestError(
                "A base64 image needs string 'media_type' and 'data'.", param=f"{path}.source"
            )
        url = f"data:{media_type};base64,{data}"
    elif kind == "url" and isinstance(source.get("url"), str):
        url = source["url"]
    else:
        raise InvalidRequestError(
            f"Image sources of type {kind!r} cannot be translated: send base64 or a URL ({_ONLY_NATIVE}).",
            param=f"{path}.source.type",
        )
    return {"type": "image_url", "image_url": {"url": url}}


def _document_part(block: Block, path: str) -> dict[str, Any]:
    source = require_object(block.get("source"), f"{path}.source")
    kind = source.get("type")
    title = block.get("title")
    pdf = source.get("media_type") == "application/pdf"
    if kind == "base64" and pdf and isinstance(source.get("data"), str):
        file: dict[str, Any] = {"file_data": f"data:application/pdf;base64,{source['data']}"}
        file["filename"] = title if isinstance(title, str) and title else "document.pdf"
        return {"type": "file", "file": file}
    if kind == "text" and isinstance(source.get("data"), str):
        text = source["data"]
        return {"type": "text", "text": f"{title}\n\n{text}" if isinstance(title, str) and title else text}
    if kind == "content" and isinstance(source.get("content"), list | str):
        content = source["content"]
        texts = (
            [content]
            if isinstance(content, str)
            else [
                _text_part(part, f"{path}.source.content[{i}]")["text"]
                for i, part in enumerate(content)
                if isinstance(part, dict) and part.get("type") == "text"
            ]
        )
        return {"type": "text", "text": "\n\n".join(texts)}
    raise InvalidRequestError(
        f"Documents with a {kind!r} source cannot be translated: send a base64 PDF or text ({_ONLY_NATIVE}).",
        param=f"{path}.source.type",
    )


def _tool_result(block: Block, path: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    tool_use_id = block.get("tool_use_id")
    if not isinstance(tool_use_id, str) or not tool_use_id:
        raise InvalidRequestError("A tool_result needs its 'tool_use_id'.", param=f"{path}.tool_use_id")
    content = block.get("content")
    texts: list[str] = []
    images: list[dict[str, Any]] = []
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        for position, item in enumerate(content):
            item_path = f"{path}.content[{position}]"
            part = _user_part(require_object(item, item_path), item_path)
            if part is None:
                continue
            if part["type"] == "text":
                texts.append(part["text"])
            else:
                images.append(part)
    elif content is not None:
        raise InvalidRequestError("'content' must be a string or a list of blocks.", param=f"{path}.content")
    text = "\n".join(texts)
    if block.get("is_error") is True:
        # OpenAI has no error flag on a tool message: the model is told in words.
        text = f"Error: {text}" if text else "Error"
    return {"role": "tool", "tool_call_id": tool_use_id, "content": text}, images


def _assistant(message: InputMessage, where: str) -> dict[str, Any] | None:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block, path in _blocks(message, where):
        kind = block.get("type")
        if kind == "text":
            texts.append(_text_part(block, path)["text"])
        elif kind == "tool_use":
            calls.append(_tool_call(block, path))
        elif kind in ("thinking", "redacted_thinking"):
            continue
        else:
            raise _unsupported_block(kind, path)
    text = "".join(texts)
    if not text and not calls:
        return None
    assistant: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        assistant["tool_calls"] = calls
    return assistant


def _tool_call(block: Block, path: str) -> dict[str, Any]:
    call_id, name, arguments = block.get("id"), block.get("name"), block.get("input", {})
    if not isinstance(call_id, str) or not isinstance(name, str):
        raise InvalidRequestError("A tool_use block needs a string 'id' and 'name'.", param=path)
    if not isinstance(arguments, dict):
        raise InvalidRequestError("'input' must be an object.", param=f"{path}.input")
    encoded = pydantic_core.to_json(arguments).decode()
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": encoded}}


def _unsupported_block(kind: Any, path: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"Content blocks of type {kind!r} cannot be translated ({_ONLY_NATIVE}).", param=f"{path}.type"
    )


# -- tools and output ------------------------------------------------------------------------------


def _tool(tool: Block, path: str) -> dict[str, Any]:
    tool = require_object(tool, path)
    kind = tool.get("type")
    if kind not in (None, "custom"):
        raise InvalidRequestError(
            f"Tools of type {kind!r} are run by Anthropic's servers ({_ONLY_NATIVE}).", param=f"{path}.type"
        )
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidRequestError("A tool needs a 'name'.", param=f"{path}.name")
    schema = tool.get("input_schema")
    function: dict[str, Any] = {
        "name": name,
        "parameters": schema if isinstance(schema, dict) else {"type": "object", "properties": {}},
    }
    if isinstance(tool.get("description"), str):
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


def _tool_choice(choice: Block, payload: dict[str, Any]) -> None:
    kind = choice.get("type")
    if kind == "auto":
        payload["tool_choice"] = "auto"
    elif kind == "any":
        payload["tool_choice"] = "required"
    elif kind == "none":
        payload["tool_choice"] = "none"
    elif kind == "tool" and isinstance(choice.get("name"), str):
        payload["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    else:
        raise InvalidRequestError(
            "Invalid value for 'tool_choice': expected type auto, any, tool (with a name) or none.",
            param="tool_choice",
        )
    if choice.get("disable_parallel_tool_use") is True and kind != "none":
        payload["parallel_tool_calls"] = False


def _output_config(config: Block, payload: dict[str, Any]) -> str | None:
    fmt = config.get("format")
    if fmt is not None:
        fmt = require_object(fmt, "output_config.format")
        if fmt.get("type") != "json_schema" or not isinstance(fmt.get("schema"), dict):
            raise InvalidRequestError(
                '\'output_config.format\' must be {"type": "json_schema", "schema": {...}}.',
                param="output_config.format",
            )
        payload["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": fmt["schema"]},
        }
    effort = config.get("effort")
    if effort is None:
        return None
    if effort not in _OUTPUT_EFFORTS:
        raise InvalidRequestError(
            f"Invalid value for 'output_config.effort': {effort!r}.", param="output_config.effort"
        )
    return _OUTPUT_EFFORTS[effort]
