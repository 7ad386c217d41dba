"""An Anthropic Messages request -> the gateway's OpenAI chat request (for every provider but Claude).

The messages, block by block (the other parameters are ``params``'s):

- ``system`` (a string or text blocks), and the ``system`` turns Claude Code sends mid-conversation
  -> ``system`` messages where they stand;
- a user turn's ``tool_result`` blocks -> ``tool`` messages first (OpenAI wants them right after the
  assistant's ``tool_calls``), then the rest of the turn as a user message; images inside a tool
  result follow in a user message of their own (OpenAI tool messages hold text only); ``is_error``
  is said in words (``Error: ...``);
- ``image`` (base64 or URL) -> ``image_url`` parts; a base64 PDF ``document`` -> a ``file`` part; a
  text document -> a text part;
- assistant ``tool_use`` -> ``tool_calls`` (``input`` serialised as the ``arguments`` string);
  ``thinking`` blocks from earlier turns are not sent back (their signatures only mean something to
  Claude, and Claude is served natively).

The rule for what has no equivalent is the Anthropic provider's: dropped (with a debug log) when the
client still gets an answer of the shape it asked for (``cache_control``, ``citations``, ``top_k``,
``service_tier``, ``context_management``), refused with a 400 naming the field when it would not
(server tools, URL or file documents, server tool blocks in the history).
"""

from __future__ import annotations

import logging
from typing import Any, Final

import pydantic_core

from ..errors import InvalidRequestError
from ..schema import ChatCompletionRequest
from .params import ONLY_NATIVE, add_parameters
from .wire import Block, CountTokensRequest, InputMessage, MessagesRequest, require_object

__all__ = ["chat_payload", "to_chat"]

logger = logging.getLogger("rec_llm_gateway.messages")

_MAPPED: Final = frozenset(
    {"max_tokens", "stream", "temperature", "top_p", "stop_sequences", "metadata", "output_config"}
)


def to_chat(request: MessagesRequest | CountTokensRequest) -> ChatCompletionRequest:
    """Translate a validated Messages (or count_tokens) request. Raises ``InvalidRequestError``
    (400, naming the field) for what cannot be translated."""
    return ChatCompletionRequest.model_validate(chat_payload(request))


def chat_payload(request: MessagesRequest | CountTokensRequest) -> dict[str, Any]:
    """The OpenAI chat request body for ``request`` (see ``to_chat``)."""
    payload: dict[str, Any] = {"model": request.model, "messages": _messages(request)}
    add_parameters(request, payload)
    if logger.isEnabledFor(logging.DEBUG):
        for name in request.model_fields_set | set(request.model_extra or ()):
            if name not in _MAPPED and name not in ChatCompletionRequest.model_fields:
                logger.debug("messages: dropping %r (no equivalent in the chat request)", name)
    return payload


# -- messages -------------------------------------------------------------------------------------


def _messages(request: MessagesRequest | CountTokensRequest) -> list[dict[str, Any]]:
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
        elif message.role == "system":
            texts = [_text_part(block, path)["text"] for block, path in _blocks(message, where)]
            if any(texts):
                messages.append({"role": "system", "content": "".join(texts)})
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
            f"Image sources of type {kind!r} cannot be translated: send base64 or a URL ({ONLY_NATIVE}).",
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
        f"Documents with a {kind!r} source cannot be translated: send a base64 PDF or text ({ONLY_NATIVE}).",
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
        f"Content blocks of type {kind!r} cannot be translated ({ONLY_NATIVE}).", param=f"{path}.type"
    )
