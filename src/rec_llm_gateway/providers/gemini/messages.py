"""OpenAI chat request -> Gemini ``generateContent`` body, shared by the ``gemini`` and ``vertex``
providers. Pure functions: no I/O, no state.

Messages:

- ``system`` / ``developer`` -> ``systemInstruction.parts`` (wherever they appear in the history);
- ``user`` -> role ``user``: text; images as ``inlineData`` (data URLs) or ``fileData`` (http(s)://
  and gs:// URLs); ``input_audio`` and ``file`` parts likewise;
- ``assistant`` -> role ``model``: text and ``functionCall`` parts (``args`` parsed from the JSON
  string; a thought signature carried in the tool-call id goes back on the same part);
- ``tool`` -> a ``functionResponse`` part under the function's NAME, looked up from the assistant
  tool call with the same id; a result that is not a JSON object is wrapped as ``{"output": ...}``
  (the key Google's SDK uses). Results of parallel calls end up in one user content because
  adjacent contents of the same role are merged.

Tool-call ids: Gemini often gives a function call no id, so the gateway makes one
(``call_<responseId>_<n>``). Gemini 3 attaches a ``thoughtSignature`` to function calls that must
come back on the same part in the next request; OpenAI clients only reliably echo a tool call's
``id``, so the signature travels inside it: ``<id>__sig__<signature in base64url, unpadded>``.
The id stays within ``[A-Za-z0-9_-]``. A signature in Google's OpenAI-compatible field
(``tool_call.extra_content.google.thought_signature``) is accepted too.
"""

from __future__ import annotations

import json
from typing import Any, Final
from urllib.parse import urlsplit

from ...errors import InvalidRequestError
from ...schema import (
    AssistantMessage,
    ChatCompletionRequest,
    DeveloperMessage,
    FilePart,
    FunctionMessage,
    ImagePart,
    InputAudioPart,
    SystemMessage,
    TextPart,
    ToolCall,
    ToolMessage,
    UserMessage,
)
from ...translate.request import parse_data_url, tool_arguments

__all__ = ["SIGNATURE_MARK", "split_tool_call_id", "tool_call_id", "translate_messages"]

SIGNATURE_MARK: Final = "__sig__"

_MIME_BY_SUFFIX: Final = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
    "heic": "image/heic",
    "heif": "image/heif",
    "pdf": "application/pdf",
    "txt": "text/plain",
    "mp3": "audio/mp3",
    "wav": "audio/wav",
    "flac": "audio/flac",
    "mp4": "video/mp4",
}


def tool_call_id(base: str, signature: str | None) -> str:
    """The OpenAI tool-call id for a Gemini function call (with its thought signature, if any)."""
    if not signature:
        return base
    return f"{base}{SIGNATURE_MARK}{signature.rstrip('=').replace('+', '-').replace('/', '_')}"


def split_tool_call_id(value: str) -> tuple[str, str | None]:
    """(base id, thought signature in standard base64) from an id made by ``tool_call_id``."""
    base, mark, encoded = value.partition(SIGNATURE_MARK)
    if not mark or not encoded:
        return value, None
    signature = encoded.replace("-", "+").replace("_", "/")
    return base, signature + "=" * (-len(signature) % 4)


def translate_messages(request: ChatCompletionRequest) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(systemInstruction parts, contents) for the request's messages."""
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool_call_id -> function name, from the assistant messages so far
    for position, message in enumerate(request.messages):
        if isinstance(message, SystemMessage | DeveloperMessage):
            system.extend(_text_parts(message.content))
        elif isinstance(message, UserMessage):
            _append(contents, "user", _user_parts(message.content, position))
        elif isinstance(message, AssistantMessage):
            _append(contents, "model", _model_parts(message, position, names))
        elif isinstance(message, ToolMessage):
            _append(contents, "user", [_tool_result(message, position, names)])
        elif isinstance(message, FunctionMessage):
            response = {"name": message.name, "response": _result_object(message.content or "")}
            _append(contents, "user", [{"functionResponse": response}])
    return system, contents


def _append(contents: list[dict[str, Any]], role: str, parts: list[dict[str, Any]]) -> None:
    if not parts:
        return  # Gemini refuses a content without parts; an empty message carries nothing anyway
    if contents and contents[-1]["role"] == role:
        contents[-1]["parts"].extend(parts)
    else:
        contents.append({"role": role, "parts": parts})


def _text_parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    return [{"text": part.text} for part in content or () if isinstance(part, TextPart) and part.text]


def _user_parts(content: Any, position: int) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts: list[dict[str, Any]] = []
    for index, part in enumerate(content):
        where = f"messages[{position}].content[{index}]"
        if isinstance(part, TextPart):
            if part.text:
                parts.append({"text": part.text})
        elif isinstance(part, ImagePart):
            parts.append(_media(part.image_url.url, f"{where}.image_url.url", "image/jpeg"))
        elif isinstance(part, InputAudioPart):
            audio = part.input_audio
            if not isinstance(audio.get("data"), str) or not isinstance(audio.get("format"), str):
                raise InvalidRequestError(
                    "'input_audio' needs 'data' (base64) and 'format'.", param=f"{where}.input_audio"
                )
            parts.append({"inlineData": {"mimeType": f"audio/{audio['format']}", "data": audio["data"]}})
        elif isinstance(part, FilePart):
            parts.append(_file(part.file, where))
    return parts


def _media(url: str, param: str, default_mime: str) -> dict[str, Any]:
    if url.startswith("data:"):
        parsed = parse_data_url(url, param, default_type=default_mime)
        return {"inlineData": {"mimeType": parsed.media_type, "data": parsed.data}}
    if url.split(":", 1)[0].lower() in ("http", "https", "gs"):
        return {"fileData": {"mimeType": _guess_mime(url, default_mime), "fileUri": url}}
    raise InvalidRequestError(
        f"'{param}' must be a data URL or an http(s):// or gs:// URL.", param=param, code="invalid_value"
    )


def _guess_mime(url: str, default: str) -> str:
    return _mime_of_name(urlsplit(url).path, default)


def _mime_of_name(name: str, default: str) -> str:
    # A small table instead of ``mimetypes``: its first use reads system files on the request path.
    return _MIME_BY_SUFFIX.get(name.rpartition(".")[2].lower(), default)


def _file(file: dict[str, Any], where: str) -> dict[str, Any]:
    filename = file.get("filename")
    default_mime = _mime_of_name(filename, "application/pdf") if isinstance(filename, str) else None
    data, file_id = file.get("file_data"), file.get("file_id")
    if isinstance(data, str) and data:
        if data.startswith("data:"):
            return _media(data, f"{where}.file.file_data", default_mime or "application/pdf")
        return {"inlineData": {"mimeType": default_mime or "application/pdf", "data": data}}
    if isinstance(file_id, str) and file_id.split(":", 1)[0].lower() in ("http", "https", "gs"):
        return _media(file_id, f"{where}.file.file_id", default_mime or "application/pdf")
    raise InvalidRequestError(
        "A 'file' part needs 'file_data' (base64 or a data URL) or a 'file_id' that is an http(s):// or "
        "gs:// URL; Gemini cannot read OpenAI file ids.",
        param=f"{where}.file",
        code="invalid_value",
    )


def _model_parts(message: AssistantMessage, position: int, names: dict[str, str]) -> list[dict[str, Any]]:
    parts = _text_parts(message.content)  # refusal parts and reasoning_content are not sent back
    for index, call in enumerate(message.tool_calls or ()):
        names[call.id] = call.function.name
        base, signature = split_tool_call_id(call.id)
        part: dict[str, Any] = {
            "functionCall": {
                "name": call.function.name,
                "args": tool_arguments(
                    call.function.arguments, f"messages[{position}].tool_calls[{index}].function.arguments"
                ),
                "id": base,
            }
        }
        signature = signature or _extra_signature(call)
        if signature:
            part["thoughtSignature"] = signature
        parts.append(part)
    return parts


def _extra_signature(call: ToolCall) -> str | None:
    extra = (call.model_extra or {}).get("extra_content")
    google = extra.get("google") if isinstance(extra, dict) else None
    signature = google.get("thought_signature") if isinstance(google, dict) else None
    return signature if isinstance(signature, str) and signature else None


def _tool_result(message: ToolMessage, position: int, names: dict[str, str]) -> dict[str, Any]:
    name = names.get(message.tool_call_id) or (message.model_extra or {}).get("name")
    if not isinstance(name, str) or not name:
        raise InvalidRequestError(
            f"'messages[{position}].tool_call_id' ({message.tool_call_id[:80]!r}) matches no tool call of "
            "an earlier assistant message; Gemini needs the name of the function that returned it.",
            param=f"messages[{position}].tool_call_id",
            code="invalid_value",
        )
    text = (
        message.content
        if isinstance(message.content, str)
        else "".join(part.text for part in message.content)
    )
    base, _ = split_tool_call_id(message.tool_call_id)
    return {"functionResponse": {"name": name, "response": _result_object(text), "id": base}}


def _result_object(text: str) -> dict[str, Any]:
    if text.lstrip().startswith("{"):
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if isinstance(value, dict):
            return value
    return {"output": text}
