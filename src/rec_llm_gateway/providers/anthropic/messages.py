"""OpenAI chat messages -> Anthropic ``system`` blocks and alternating user/assistant turns.

- ``system`` and ``developer`` messages become the top-level ``system`` (wherever they appear);
- consecutive messages of one role merge into one turn (Anthropic requires alternation);
- ``tool`` messages become ``tool_result`` blocks leading the next user turn (consecutive ones share
  it); assistant ``tool_calls`` become ``tool_use`` blocks with the JSON ``arguments`` parsed;
- images (https or ``data:`` URLs) and inline files (PDF, text, images) become image/document blocks;
- ``cache_control`` on a content part, a whole message or a tool is passed on (prompt caching).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Final

from ...errors import InvalidRequestError
from ...schema import (
    AssistantMessage,
    ChatCompletionRequest,
    DeveloperMessage,
    FilePart,
    ImagePart,
    SystemMessage,
    TextPart,
    ToolMessage,
    UserMessage,
)
from ...translate.request import parse_data_url, tool_arguments

__all__ = ["IMAGE_TYPES", "image_block", "to_messages"]

IMAGE_TYPES: Final = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


def to_messages(request: ChatCompletionRequest) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system blocks, alternating user/assistant turns)."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for position, message in enumerate(request.messages):
        where = f"messages[{position}]"
        if isinstance(message, SystemMessage | DeveloperMessage):
            system.extend(_text_blocks(message.content, message.model_extra))
        elif isinstance(message, UserMessage):
            content = message.content
            if isinstance(content, str) and not (message.model_extra or {}).get("cache_control"):
                if content:
                    _append(turns, "user", content)
            else:
                _append(turns, "user", _user_blocks(content, message.model_extra, where))
        elif isinstance(message, AssistantMessage):
            _append(turns, "assistant", _assistant_blocks(message, where))
        elif isinstance(message, ToolMessage):
            _append_tool_result(turns, message)
        else:
            raise InvalidRequestError(
                "The deprecated 'function' role is not supported by Anthropic; use tools.", param=where
            )
    if turns and turns[-1]["role"] == "assistant" and _strip_trailing_whitespace(turns[-1]):
        turns.pop()  # a prefill: Anthropic rejects trailing whitespace (and empty turns) there
    if not turns:
        raise InvalidRequestError(
            "Anthropic needs at least one user or assistant message besides system messages.",
            param="messages",
        )
    return system, turns


def _append(turns: list[dict[str, Any]], role: str, content: str | list[dict[str, Any]]) -> None:
    """Add content to the conversation, merging into the previous turn when the role repeats
    (Anthropic requires user and assistant turns to alternate)."""
    if not content:
        return
    if turns and turns[-1]["role"] == role:
        previous = turns[-1]
        if isinstance(previous["content"], str):
            previous["content"] = [{"type": "text", "text": previous["content"]}]
        previous["content"].extend(
            [{"type": "text", "text": content}] if isinstance(content, str) else content
        )
    else:
        turns.append({"role": role, "content": content})


def _append_tool_result(turns: list[dict[str, Any]], message: ToolMessage) -> None:
    content = message.content
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": message.tool_call_id}
    if isinstance(content, str):
        if content:
            block["content"] = content
    else:
        parts = _text_blocks(content, None)
        if parts:
            block["content"] = parts
    cache_control = (message.model_extra or {}).get("cache_control")
    if cache_control is not None:
        block["cache_control"] = cache_control
    if turns and turns[-1]["role"] == "user":
        previous = turns[-1]
        if isinstance(previous["content"], str):
            previous["content"] = [{"type": "text", "text": previous["content"]}]
        blocks = previous["content"]
        # Tool results must lead their user turn: place it after the results already there.
        at = 0
        while at < len(blocks) and blocks[at].get("type") == "tool_result":
            at += 1
        blocks.insert(at, block)
    else:
        turns.append({"role": "user", "content": [block]})


def _text_blocks(content: str | list[TextPart], extra: dict[str, Any] | None) -> list[dict[str, Any]]:
    blocks = (
        ([{"type": "text", "text": content}] if content else [])
        if isinstance(content, str)
        else [_text_block(part) for part in content if part.text]
    )
    _message_cache_control(blocks, extra)
    return blocks


def _text_block(part: TextPart) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": part.text}
    cache_control = (part.model_extra or {}).get("cache_control")
    if cache_control is not None:
        block["cache_control"] = cache_control
    return block


def _message_cache_control(blocks: list[dict[str, Any]], extra: dict[str, Any] | None) -> None:
    """``cache_control`` on a whole message marks its last block (where Anthropic expects it)."""
    cache_control = (extra or {}).get("cache_control")
    if cache_control is not None and blocks:
        blocks[-1]["cache_control"] = cache_control


def _user_blocks(content: str | list[Any], extra: dict[str, Any] | None, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return _text_blocks(content, extra)
    blocks: list[dict[str, Any]] = []
    for position, part in enumerate(content):
        if isinstance(part, TextPart):
            if part.text:
                blocks.append(_text_block(part))
            continue
        if isinstance(part, ImagePart):
            block = image_block(part.image_url.url, f"{where}.content[{position}].image_url.url")
        elif isinstance(part, FilePart):
            block = _file_block(part.file, f"{where}.content[{position}].file")
        else:
            raise InvalidRequestError(
                f"Anthropic does not accept content parts of type {part.type!r}.",
                param=f"{where}.content[{position}].type",
            )
        cache_control = (part.model_extra or {}).get("cache_control")
        if cache_control is not None:
            block["cache_control"] = cache_control
        blocks.append(block)
    _message_cache_control(blocks, extra)
    return blocks


def image_block(url: str, param: str) -> dict[str, Any]:
    """An OpenAI image URL (https or ``data:``) as an Anthropic image block."""
    if url.startswith("data:"):
        parsed = parse_data_url(url, param)
        media_type, data = parsed.media_type, parsed.data
        if media_type not in IMAGE_TYPES:
            raise InvalidRequestError(
                f"Anthropic accepts images of type {', '.join(sorted(IMAGE_TYPES))}, not {media_type!r}.",
                param=param,
            )
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    if url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise InvalidRequestError("An image URL must be an http(s) URL or a base64 data URL.", param=param)


def _file_block(file: dict[str, Any], param: str) -> dict[str, Any]:
    data_url = file.get("file_data")
    if not isinstance(data_url, str):
        raise InvalidRequestError(
            "Anthropic needs the file inline as 'file_data' (a base64 data URL); file ids are OpenAI's.",
            param=param,
        )
    parsed = parse_data_url(data_url, f"{param}.file_data")
    media_type, data = parsed.media_type, parsed.data
    if media_type in IMAGE_TYPES:
        return image_block(data_url, f"{param}.file_data")
    if media_type == "application/pdf":
        source: dict[str, Any] = {"type": "base64", "media_type": media_type, "data": data}
    elif media_type == "text/plain":
        try:
            text = base64.b64decode(data, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidRequestError("The text file is not base64-encoded UTF-8.", param=param) from None
        source = {"type": "text", "media_type": media_type, "data": text}
    else:
        raise InvalidRequestError(
            f"Anthropic accepts PDF, plain-text and image files, not {media_type!r}.", param=param
        )
    block: dict[str, Any] = {"type": "document", "source": source}
    if isinstance(file.get("filename"), str):
        block["title"] = file["filename"]
    return block


def _assistant_blocks(message: AssistantMessage, where: str) -> list[dict[str, Any]]:
    extra = message.model_extra or {}
    # Thinking blocks returned earlier (``thinking_blocks``, with their signatures) must come first.
    blocks: list[dict[str, Any]] = [
        block for block in extra.get("thinking_blocks") or () if isinstance(block, dict)
    ]
    content = message.content
    if isinstance(content, str):
        if content:
            blocks.append({"type": "text", "text": content})
    elif content:
        for part in content:
            text = part.text if isinstance(part, TextPart) else part.refusal
            if text:
                blocks.append(
                    _text_block(part) if isinstance(part, TextPart) else {"type": "text", "text": text}
                )
    for position, call in enumerate(message.tool_calls or ()):
        parsed = tool_arguments(call.function.arguments, f"{where}.tool_calls[{position}].function.arguments")
        blocks.append({"type": "tool_use", "id": call.id, "name": call.function.name, "input": parsed})
    _message_cache_control(blocks, extra)
    return blocks


def _strip_trailing_whitespace(turn: dict[str, Any]) -> bool:
    """Strip the end of a final assistant turn; ``True`` when nothing is left of it."""
    content = turn["content"]
    if isinstance(content, str):
        turn["content"] = content = content.rstrip()
        return not content
    if content and content[-1].get("type") == "text":
        content[-1]["text"] = content[-1]["text"].rstrip()
        if not content[-1]["text"]:
            content.pop()
    return not content
