"""OpenAI ``messages`` -> Converse ``system`` and ``messages`` (pure functions).

- ``system`` / ``developer`` messages become ``system: [{text}]`` blocks, in order.
- ``user`` content parts: text -> ``{text}``; ``image_url`` -> ``{image: {format, source: {bytes}}}``
  (data URLs are decoded here; http(s) URLs must have been fetched by the caller and are passed in
  ``images``); ``file`` parts with ``file_data`` -> ``{document}``; audio and ``file_id`` -> 400.
- ``assistant`` text -> ``{text}``; ``tool_calls`` -> ``{toolUse}`` (arguments parsed; invalid JSON
  is a 400); ``tool`` messages -> ``{toolResult}`` blocks in a user turn.
- Consecutive turns of the same role are merged: Converse wants user and assistant to alternate,
  and one assistant turn's tool results must arrive together.
- A part carrying Anthropic-style ``cache_control`` is followed by a ``{cachePoint}`` block.
- When no tools are sent (``tool_choice: "none"`` or no ``tools``) but the history holds tool calls,
  Converse would refuse ``toolUse``/``toolResult`` blocks without a ``toolConfig``; they are then
  rendered as text instead, which keeps ``none`` a guarantee (the model cannot call anything).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any, Final

from ...errors import InvalidRequestError
from ...schema import content_text
from ...translate.request import parse_data_url, tool_arguments

__all__ = [
    "IMAGE_FORMATS",
    "ImageBlock",
    "convert_messages",
    "image_block_from_data_url",
    "image_urls",
    "tool_use_id",
]

ImageBlock = dict[str, Any]
"""``{"format": "png", "source": {"bytes": "<base64>"}}``."""

IMAGE_FORMATS: Final = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/pjpeg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}
_DOCUMENT_FORMATS: Final = {
    "application/pdf": "pdf",
    "text/csv": "csv",
    "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "text/html": "html",
    "text/plain": "txt",
    "text/markdown": "md",
}
_DOCUMENT_EXTENSIONS: Final = frozenset(_DOCUMENT_FORMATS.values())
_TOOL_USE_ID: Final = re.compile(r"[a-zA-Z0-9_.:-]{1,64}")
_DOCUMENT_NAME_JUNK: Final = re.compile(r"[^A-Za-z0-9\s\-()\[\]]+")
_CACHE_POINT: Final = {"cachePoint": {"type": "default"}}


def image_urls(messages: list[Any]) -> list[str]:
    """The distinct http(s) image URLs in user messages, in order (the caller fetches them)."""
    urls: dict[str, None] = {}
    for message in messages:
        if message.role == "user" and isinstance(message.content, list):
            for part in message.content:
                if part.type == "image_url":
                    url = part.image_url.url
                    if url.startswith(("http://", "https://")):
                        urls[url] = None
    return list(urls)


def convert_messages(
    messages: list[Any], *, images: Mapping[str, ImageBlock], structured_tools: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(system, messages)`` for a Converse request."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    documents: dict[str, int] = {}

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return  # Converse refuses empty turns; an empty message carries nothing anyway
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})

    for index, message in enumerate(messages):
        role = message.role
        if role in ("system", "developer"):
            system.extend(_text_blocks(message.content))
        elif role == "user":
            add("user", _user_blocks(message.content, index, images, documents))
        elif role == "assistant":
            add("assistant", _assistant_blocks(message, index, structured_tools))
        elif role == "tool":
            add("user", [_tool_result(message, structured_tools)])
        else:
            raise InvalidRequestError(
                f"messages[{index}]: role '{role}' is not supported by Bedrock; use tool messages.",
                param=f"messages[{index}].role",
                code="unsupported_value",
            )
    return system, turns


def tool_use_id(call_id: str) -> str:
    """A Converse-valid ``toolUseId`` for an OpenAI tool call id (ids from other providers may be
    longer or use other characters); stable, so a call and its result still match."""
    if _TOOL_USE_ID.fullmatch(call_id):
        return call_id
    return "call_" + hashlib.sha256(call_id.encode()).hexdigest()[:40]


def _text_blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for part in content or ():
        if getattr(part, "type", None) == "text" and part.text:
            blocks.append({"text": part.text})
            if _wants_cache_point(part):
                blocks.append(_CACHE_POINT)
    return blocks


def _wants_cache_point(part: Any) -> bool:
    extra = part.model_extra
    return bool(extra and extra.get("cache_control"))


def _user_blocks(
    content: Any, index: int, images: Mapping[str, ImageBlock], documents: dict[str, int]
) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for position, part in enumerate(content):
        where = f"messages[{index}].content[{position}]"
        kind = part.type
        if kind == "text":
            if not part.text:
                continue
            blocks.append({"text": part.text})
        elif kind == "image_url":
            blocks.append({"image": _image(part.image_url.url, images, where)})
        elif kind == "file":
            blocks.append({"document": _document(part.file, where, documents)})
        else:
            raise InvalidRequestError(
                f"{where}: content parts of type '{kind}' are not supported by Bedrock.",
                param=f"{where}.type",
                code="unsupported_content",
            )
        if _wants_cache_point(part):
            blocks.append(_CACHE_POINT)
    return blocks


def _image(url: str, images: Mapping[str, ImageBlock], where: str) -> ImageBlock:
    if url.startswith("data:"):
        return image_block_from_data_url(url, where)
    block = images.get(url)
    if block is None:
        raise InvalidRequestError(
            f"{where}: image URLs must be data: or http(s): URLs.",
            param=f"{where}.image_url.url",
            code="invalid_image_url",
        )
    return block


def image_block_from_data_url(url: str, where: str = "image") -> ImageBlock:
    parsed = parse_data_url(url, f"{where}.image_url.url")
    mime, data = parsed.media_type, parsed.data
    image_format = IMAGE_FORMATS.get(mime)
    if image_format is None:
        raise InvalidRequestError(
            f"{where}: image type '{mime}' is not supported by Bedrock (png, jpeg, gif, webp).",
            param=f"{where}.image_url.url",
            code="invalid_image_format",
        )
    return {"format": image_format, "source": {"bytes": data}}


def _document(file: dict[str, Any], where: str, documents: dict[str, int]) -> dict[str, Any]:
    data_url = file.get("file_data")
    if not isinstance(data_url, str) or not data_url.startswith("data:"):
        raise InvalidRequestError(
            f"{where}: Bedrock needs the file inline as 'file_data' (a data: URL); "
            "'file_id' has no equivalent.",
            param=f"{where}.file",
            code="unsupported_content",
        )
    parsed = parse_data_url(data_url, f"{where}.file.file_data")
    mime, data = parsed.media_type, parsed.data
    filename = str(file.get("filename") or "document")
    stem, dot, extension = filename.rpartition(".")
    document_format = _DOCUMENT_FORMATS.get(mime) or (
        extension.lower() if dot and extension.lower() in _DOCUMENT_EXTENSIONS else None
    )
    if document_format is None:
        raise InvalidRequestError(
            f"{where}: file type '{mime}' is not supported by Bedrock documents.",
            param=f"{where}.file.file_data",
            code="unsupported_content",
        )
    # Names allow letters, digits, single spaces, hyphens, parentheses and brackets, and must be
    # unique within a request.
    name = " ".join(_DOCUMENT_NAME_JUNK.sub("-", stem if dot else filename).split())[:180] or "document"
    seen = documents.get(name, 0)
    documents[name] = seen + 1
    if seen:
        name = f"{name} ({seen + 1})"
    return {"format": document_format, "name": name, "source": {"bytes": data}}


def _assistant_blocks(message: Any, index: int, structured_tools: bool) -> list[dict[str, Any]]:
    content = message.content
    blocks: list[dict[str, Any]] = []
    if isinstance(content, str):
        if content:
            blocks.append({"text": content})
    elif content:
        for part in content:
            text = part.text if part.type == "text" else part.refusal
            if text:
                blocks.append({"text": text})
    elif message.refusal:
        blocks.append({"text": message.refusal})
    for position, call in enumerate(message.tool_calls or ()):
        arguments = call.function.arguments
        parsed = tool_arguments(arguments, f"messages[{index}].tool_calls[{position}].function.arguments")
        if structured_tools:
            blocks.append(
                {"toolUse": {"toolUseId": tool_use_id(call.id), "name": call.function.name, "input": parsed}}
            )
        else:
            blocks.append(
                {"text": f"[called tool {call.function.name} (call id {call.id}) with arguments {arguments}]"}
            )
    return blocks


def _tool_result(message: Any, structured_tools: bool) -> dict[str, Any]:
    text = content_text(message.content)
    if not structured_tools:
        return {"text": f"[result of tool call {message.tool_call_id}]\n{text}"}
    return {
        "toolResult": {
            "toolUseId": tool_use_id(message.tool_call_id),
            "content": [{"text": text}] if text else [],
            "status": "success",
        }
    }
