"""The Provider protocol and the HTTP machinery every HTTP provider shares.

A provider turns an OpenAI chat request into one upstream call and the answer back into OpenAI
shapes. Two levels:

- ``Provider``: implement ``complete`` (returns a ``ChatResult``) and ``stream`` (yields OpenAI
  ``chat.completion.chunk`` dicts, the usage chunk with ``choices: []`` included). Use this for
  anything that is not plain HTTP (the built-in ``echo``, an in-process model).
- ``HTTPProvider``: implement the pure translation steps (``build_request``, ``parse_response``,
  ``stream_translator``, ``parse_error``); connection handling, timeouts, size caps, error mapping,
  SSE decoding and upstream timing are shared.

Custom providers subclass either and are registered by a plugin's ``register_providers`` hook.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

import httpx
import pydantic_core

from ..config import ProviderConfig
from ..errors import (
    BadGatewayError,
    GatewayError,
    InvalidModelError,
    RateLimitError,
    ServiceUnavailableError,
    UpstreamError,
    UpstreamTimeoutError,
    scrub_secrets,
)
from ..schema import ChatCompletionRequest
from ..usage import TokenUsage

__all__ = [
    "ChatResult",
    "HTTPProvider",
    "Provider",
    "StreamTranslator",
    "UpstreamCall",
    "path_segment",
]

DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024


@dataclass(slots=True)
class UpstreamCall:
    """One attempt against one provider. Per-request state lives here, never on the provider."""

    request: ChatCompletionRequest
    model: str
    """The provider's own name for the model (after ``model_map``)."""
    http: httpx.AsyncClient
    request_id: str
    transport: httpx.AsyncBaseTransport | None = None
    """The client's transport: the main upstream request goes straight to it, skipping the client's
    cookie, auth and redirect machinery (none of which a gateway uses; ~10% of a request's cost)."""
    stream: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    """Extra outbound headers the gateway adds (trace context); never the client's credentials."""
    upstream_seconds: float = 0.0
    """Time spent waiting on the upstream, added up by the provider (for ``overhead_ms``)."""
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    response_model: str | None = None
    """The model the upstream says answered, once known."""


@dataclass(slots=True)
class ChatResult:
    """A complete (non-streaming) answer: an OpenAI ``chat.completion`` dict and its usage."""

    response: dict[str, Any]
    usage: TokenUsage | None


class Provider:
    """Base of every provider. Subclass and set ``type_name``; see the module docstring.

    Args:
        name: the configured name (the key under ``providers:``).
        settings: the validated settings, an instance of ``settings_model``.
    """

    type_name: ClassVar[str] = ""
    settings_model: ClassVar[type[ProviderConfig]] = ProviderConfig
    otel_provider_name: ClassVar[str] = ""
    """``gen_ai.provider.name`` for telemetry (``openai``, ``anthropic``, ``gcp.gemini``, ...)."""
    family_prefixes: tuple[str, ...] = ()
    """Unprefixed model names starting with one of these route here when nothing else claims them."""
    default_base_url: str | None = None
    price_provider: str | None = None
    """The genai-prices provider id used to price calls (``None``: look it up by ``base_url``;
    ``"free"``: every call costs 0). ``pricing:`` in the config overrides either."""

    def __init__(self, name: str, settings: ProviderConfig) -> None:
        self.name = name
        self.settings = settings
        self.base_url = (settings.base_url or self.default_base_url or "").rstrip("/")
        self._keys = itertools.cycle(settings.keys() or [""])
        self._secrets = tuple(settings.secret_values())
        self.total_timeout = settings.timeout.total
        parsed = urlsplit(self.base_url) if self.base_url else None
        self.server_address: str | None = parsed.hostname if parsed else None
        self.server_port: int | None = (
            (parsed.port or (443 if parsed.scheme == "https" else 80)) if parsed and parsed.hostname else None
        )

    @property
    def type(self) -> str:
        return self.settings.type or self.type_name

    def next_key(self) -> str:
        """The next API key in rotation ("" when none is configured)."""
        return next(self._keys)

    @property
    def secrets(self) -> tuple[str, ...]:
        return self._secrets

    def upstream_model(self, model: str) -> str:
        """The provider's own name for a client-facing model name."""
        return self.settings.model_map.get(model, model)

    def configured_models(self) -> list[str]:
        """Client-facing model names the config gives this provider (``models``, ``model_map``);
        unprefixed requests for these route here."""
        return list(dict.fromkeys([*self.settings.models, *self.settings.model_map]))

    def model_ids(self) -> list[str]:
        """What ``/v1/models`` lists: the configured models, or the type's catalog when none are set."""
        return self.configured_models() or self.catalog_models()

    def catalog_models(self) -> list[str]:
        """Well-known models of this provider type, listed when the config names none."""
        return []

    def describe(self) -> dict[str, Any]:
        """What ``GET /providers`` shows: never a key."""
        return {
            "name": self.name,
            "type": self.type,
            "models": self.model_ids(),
            "base_url": self.base_url or None,
        }

    async def complete(self, call: UpstreamCall) -> ChatResult:
        raise NotImplementedError

    def stream(self, call: UpstreamCall) -> AsyncIterator[dict[str, Any]]:
        raise NotImplementedError

    async def check_health(self, http: httpx.AsyncClient) -> None:
        """Raise when the provider is not usable. The default assumes it is."""

    async def aclose(self) -> None:
        """Release anything the provider holds (the shared HTTP client is closed by the gateway)."""


class StreamTranslator:
    """Turns one upstream stream event into zero or more OpenAI chunk dicts. One per stream.

    The default understands OpenAI's own chunks (``data: {...}``, ``data: [DONE]``).
    """

    done: bool = False

    def feed(self, data: Any) -> list[dict[str, Any]]:
        """``data`` is what ``HTTPProvider.iter_events`` yields: an SSE event's data bytes by default."""
        if data == b"[DONE]":
            self.done = True
            return []
        chunk = _parse_json(data)
        if not isinstance(chunk, dict):
            raise BadGatewayError("the upstream sent a stream event that is not a JSON object")
        if "error" in chunk and "choices" not in chunk:
            raise stream_error(chunk["error"])
        return [chunk]

    def finish(self) -> list[dict[str, Any]]:
        """Chunks to emit when the upstream stream ends (after the last event)."""
        return []


def stream_error(error: Any) -> GatewayError:
    """An error event inside an upstream stream (OpenAI-style ``{"error": {...}}``)."""
    if isinstance(error, dict):
        message = str(error.get("message") or "the upstream reported an error mid-stream")
        return BadGatewayError(
            message, error_type=str(error.get("type") or "upstream_error"), code=error.get("code")
        )
    return BadGatewayError(f"the upstream reported an error mid-stream: {str(error)[:200]}")


class HTTPProvider(Provider):
    """A provider reached over HTTP. Subclasses supply the pure translation steps."""

    stream_content_type: ClassVar[str] = "text/event-stream"

    def __init__(self, name: str, settings: ProviderConfig) -> None:
        super().__init__(name, settings)
        timeout = settings.timeout
        # Built once: httpx reads the per-request timeout from request extensions.
        self._timeout = {
            "connect": timeout.connect,
            "read": timeout.read,
            "write": timeout.write,
            "pool": timeout.connect,
        }

    # -- translation: override these -------------------------------------------------------------

    def build_request(self, call: UpstreamCall) -> httpx.Request:
        raise NotImplementedError(f"{type(self).__name__} must override build_request or build_request_async")

    async def build_request_async(self, call: UpstreamCall) -> httpx.Request:
        """Override instead of ``build_request`` when building needs I/O (credentials, images)."""
        return self.build_request(call)

    def parse_response(self, data: Any, call: UpstreamCall) -> ChatResult:
        raise NotImplementedError

    def stream_translator(self, call: UpstreamCall) -> StreamTranslator:
        return StreamTranslator()

    def parse_error(self, status: int, headers: httpx.Headers, body: bytes) -> GatewayError:
        """Turn an upstream error response into the gateway error the client sees."""
        return error_from_openai_body(status, headers, body, self.name)

    async def check_health_with(self, http: httpx.AsyncClient, request: httpx.Request) -> None:
        """Send a cheap request (built by the subclass); raise the mapped error unless it succeeds."""
        request.extensions["timeout"] = self._timeout
        try:
            response = await http.send(request)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from None
        if response.status_code >= 400:
            raise self._scrubbed(self.parse_error(response.status_code, response.headers, response.content))

    # -- shared HTTP -----------------------------------------------------------------------------

    def make_request(
        self,
        call: UpstreamCall,
        url: str | httpx.URL,
        *,
        json_body: Any,
        headers: dict[str, str],
        params: Any = None,
    ) -> httpx.Request:
        """An ``httpx.Request`` with the provider's timeouts and the gateway's extra headers."""
        if call.headers:
            headers = {**headers, **call.headers}
        return httpx.Request(
            "POST",
            url,
            params=params,
            headers=headers,
            content=pydantic_core.to_json(json_body),
            extensions={"timeout": self._timeout},
        )

    async def complete(self, call: UpstreamCall) -> ChatResult:
        request = await self.build_request_async(call)
        started = time.perf_counter()
        try:
            response = await self._send(call, request)
            try:
                body = await _read_capped(response, call.max_response_bytes)
            finally:
                await response.aclose()
        finally:
            call.upstream_seconds += time.perf_counter() - started
        if response.status_code >= 400:
            raise self._scrubbed(self.parse_error(response.status_code, response.headers, body))
        data = _parse_json(body)
        try:
            return self.parse_response(data, call)
        except GatewayError as exc:  # an error body sent with 200 may quote what it should not
            raise self._scrubbed(exc) from None
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise BadGatewayError(
                f"upstream '{self.name}' returned a response the gateway cannot read ({type(exc).__name__})"
            ) from None

    async def stream(self, call: UpstreamCall) -> AsyncIterator[dict[str, Any]]:
        request = await self.build_request_async(call)
        started = time.perf_counter()
        try:
            response = await self._send(call, request)
        finally:
            call.upstream_seconds += time.perf_counter() - started
        try:
            if response.status_code >= 400:
                body = await _read_capped(response, 1024 * 1024)
                raise self._scrubbed(self.parse_error(response.status_code, response.headers, body))
            content_type = response.headers.get("content-type", "")
            if not content_type.startswith(self.stream_content_type):
                raise BadGatewayError(
                    f"upstream '{self.name}' answered a stream with content type {content_type[:60]!r}"
                )
            if isinstance(response.stream, httpx.AsyncByteStream):
                response.stream = _CappedStream(response.stream, call.max_response_bytes)
            translator = self.stream_translator(call)
            events = self.iter_events(response).__aiter__()
            while True:
                waited = time.perf_counter()
                try:
                    data = await events.__anext__()
                except StopAsyncIteration:
                    break
                except httpx.HTTPError as exc:
                    raise self._transport_error(exc) from None
                finally:
                    call.upstream_seconds += time.perf_counter() - waited
                try:
                    chunks = translator.feed(data)
                except GatewayError as exc:
                    raise self._scrubbed(exc) from None
                for chunk in chunks:
                    yield chunk
                if translator.done:
                    break
            for chunk in translator.finish():
                yield chunk
        finally:
            await response.aclose()

    async def iter_events(self, response: httpx.Response) -> AsyncIterator[Any]:
        """The ``data`` of each server-sent event, as bytes. Override for other framing (Bedrock's
        binary event stream); the translator's ``feed`` receives whatever this yields."""
        async for data in _iter_sse_data(response):
            yield data

    async def _send(self, call: UpstreamCall, request: httpx.Request) -> httpx.Response:
        try:
            if call.transport is not None:
                return await call.transport.handle_async_request(request)
            return await call.http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from None

    def _transport_error(self, exc: httpx.HTTPError) -> GatewayError:
        kind = type(exc).__name__
        if isinstance(exc, httpx.TimeoutException):
            return UpstreamTimeoutError(f"upstream '{self.name}' timed out ({kind})")
        if isinstance(exc, httpx.ConnectError):
            return BadGatewayError(
                f"could not connect to upstream '{self.name}' ({kind})", code="upstream_unreachable"
            )
        return BadGatewayError(
            f"upstream '{self.name}' connection failed ({kind})", code="upstream_connection_error"
        )

    def _scrubbed(self, error: GatewayError) -> GatewayError:
        error.message = scrub_secrets(error.message, self._secrets)
        return error


class _CappedStream(httpx.AsyncByteStream):
    """A streamed response body that fails once more than ``limit`` bytes have arrived.

    A stream's answer is held in memory too (the assembled response for hooks and usage), so
    ``limits.max_response_bytes`` caps it like a non-streaming body; it also bounds the buffer of an
    event that never ends."""

    def __init__(self, stream: httpx.AsyncByteStream, limit: int) -> None:
        self._stream = stream
        self._limit = limit

    async def __aiter__(self) -> AsyncIterator[bytes]:
        left = self._limit
        async for part in self._stream:
            left -= len(part)
            if left < 0:
                raise BadGatewayError(f"the upstream response is larger than {self._limit} bytes")
            yield part

    async def aclose(self) -> None:
        await self._stream.aclose()


async def _iter_sse_data(response: httpx.Response) -> AsyncIterator[bytes]:
    """Yield the ``data`` of each server-sent event, as bytes.

    Hand-rolled rather than httpx-sse because it is the per-chunk hot path: it splits each network
    read once instead of decoding text and building an event object per line. It follows the SSE
    rules upstreams rely on: LF or CRLF line ends, several ``data:`` lines joined by newlines,
    comments and other fields ignored, an event ends at a blank line or at the end of the body.
    """
    pending = b""
    data_lines: list[bytes] = []
    async for received in response.aiter_bytes():
        lines = (pending + received).split(b"\n")
        pending = lines.pop()
        for line in lines:
            if line.endswith(b"\r"):
                line = line[:-1]
            if line:
                if line.startswith(b"data:"):
                    data_lines.append(line[6:] if line[5:6] == b" " else line[5:])
            elif data_lines:
                yield b"\n".join(data_lines)
                data_lines.clear()
    pending = pending.rstrip(b"\r")
    if pending.startswith(b"data:"):
        data_lines.append(pending[6:] if pending[5:6] == b" " else pending[5:])
    if data_lines:
        yield b"\n".join(data_lines)


def _parse_json(body: bytes | str) -> Any:
    # pydantic-core's parser: ~4x faster than json.loads on stream chunks, and already a dependency.
    try:
        return pydantic_core.from_json(body)
    except ValueError:
        raise BadGatewayError("the upstream returned a body that is not valid JSON") from None


async def _read_capped(response: httpx.Response, limit: int) -> bytes:
    length = response.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise BadGatewayError(f"the upstream response is larger than {limit} bytes")
    parts: list[bytes] = []
    size = 0
    try:
        async for part in response.aiter_bytes():
            size += len(part)
            if size > limit:
                raise BadGatewayError(f"the upstream response is larger than {limit} bytes")
            parts.append(part)
    except httpx.TimeoutException:
        raise UpstreamTimeoutError("the upstream stopped sending its response (read timeout)") from None
    except httpx.HTTPError as exc:
        # the same code as a stream cut off after its first chunk (HTTPProvider._transport_error)
        raise BadGatewayError(
            f"the upstream response was cut off ({type(exc).__name__})", code="upstream_connection_error"
        ) from None
    return b"".join(parts)


def path_segment(value: str) -> str:
    """``value`` (a model or deployment the client chose) as exactly one URL path segment.

    Every reserved character is escaped, so ``/``, ``?``, ``#`` and ``@`` stay inside the segment.
    ``.`` and ``..`` cannot be escaped reliably (URL normalisation resolves them, even from ``%2E``,
    climbing out of the provider's path with the gateway's credentials): they are refused."""
    if value in (".", ".."):
        raise InvalidModelError(f"'{value}' is not a model name", param="model")
    return quote(value, safe="")


def error_from_openai_body(status: int, headers: httpx.Headers, body: bytes, provider: str) -> GatewayError:
    """Map an upstream error in OpenAI's envelope (or anything else) to the error the client sees.

    4xx keep their status, message, type and code; 429 keeps ``Retry-After``; 5xx become 502 (529,
    "overloaded", becomes 503).
    """
    try:
        data = json.loads(body) if body else None
    except ValueError:
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        message = str(error.get("message") or "")
        error_type = error.get("type")
        code = error.get("code")
        param = error.get("param")
    else:
        message = error if isinstance(error, str) else ""
        error_type = code = param = None
    if not message:
        text = body[:300].decode("utf-8", "replace").strip() if data is None else ""
        message = f"upstream '{provider}' returned HTTP {status}" + (f": {text}" if text else "")
    return upstream_status_error(
        status,
        message,
        provider=provider,
        error_type=str(error_type) if error_type else None,
        code=str(code) if code is not None else None,
        param=str(param) if param is not None else None,
        retry_after=headers.get("retry-after"),
    )


def upstream_status_error(
    status: int,
    message: str,
    *,
    provider: str,
    error_type: str | None = None,
    code: str | None = None,
    param: str | None = None,
    retry_after: str | None = None,
) -> GatewayError:
    """The gateway error for an upstream HTTP error status (shared by every provider)."""
    if status == 429:
        return RateLimitError(
            message,
            retry_after=_parse_retry_after(retry_after),
            error_type=error_type or "rate_limit_error",
            code=code,
        )
    if status == 529:
        # Anthropic's "overloaded": the upstream works but sheds load, so 503 (try later or elsewhere).
        overloaded = ServiceUnavailableError(
            f"upstream '{provider}' is overloaded: {message}",
            error_type=error_type or "overloaded_error",
            code=code or "upstream_overloaded",
        )
        seconds = _parse_retry_after(retry_after)
        if seconds is not None:
            overloaded.headers["retry-after"] = str(max(1, int(-(-seconds // 1))))
        overloaded.upstream_status = status  # type: ignore[attr-defined]
        return overloaded
    if 400 <= status < 500:
        return UpstreamError(
            message,
            status_code=status,
            provider=provider,
            error_type=error_type or "invalid_request_error",
            code=code,
            param=param,
        )
    if not message.startswith(f"upstream '{provider}' "):  # a body without a message already says so
        message = f"upstream '{provider}' failed with HTTP {status}: {message}"
    error = BadGatewayError(message, code=code or "upstream_error")
    error.upstream_status = status  # type: ignore[attr-defined]
    return error


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return max(0.0, seconds)
