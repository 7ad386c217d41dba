"""``HTTPProvider``: the HTTP machinery every HTTP provider shares.

Connection handling, per-provider timeouts, response size caps, transport error mapping, SSE decoding
and upstream timing live here; a provider subclass supplies only the pure translation steps.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any, ClassVar
from urllib.parse import quote

import httpx
import pydantic_core

from ..config import ProviderConfig
from ..errors import (
    BadGatewayError,
    GatewayError,
    InvalidModelError,
    UpstreamConnectionError,
    UpstreamTimeoutError,
    UpstreamUnreachableError,
    scrub_secrets,
)
from .base import ChatResult, Provider, StreamTranslator, UpstreamCall, parse_json
from .upstream_errors import error_from_openai_body

__all__ = ["HTTPProvider", "body_parts", "path_segment"]


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

    async def fetch(self, call: UpstreamCall, request: httpx.Request) -> bytes:
        """Send ``request`` and read the whole answer (capped); an error status raises the mapped,
        scrubbed error. The wait counts as upstream time."""
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
        return body

    async def complete(self, call: UpstreamCall) -> ChatResult:
        body = await self.fetch(call, await self.build_request_async(call))
        data = parse_json(body)
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
        translator: StreamTranslator | None = None
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
            if translator is not None:
                call.usage = translator.usage
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
            return UpstreamUnreachableError(f"could not connect to upstream '{self.name}' ({kind})")
        return UpstreamConnectionError(f"upstream '{self.name}' connection failed ({kind})")

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


def body_parts(response: httpx.Response) -> AsyncIterator[bytes]:
    """The body as it arrives. Straight from the transport's stream when it is not content-encoded
    (the gateway sends no ``Accept-Encoding``, so normally it is not): httpx's decoder and chunker
    layers would cost a few generator frames and microseconds per chunk for nothing."""
    if "content-encoding" in response.headers or not isinstance(response.stream, httpx.AsyncByteStream):
        return response.aiter_bytes()
    return response.stream.__aiter__()


async def _iter_sse_data(response: httpx.Response) -> AsyncIterator[bytes]:
    """Yield the ``data`` of each server-sent event, as bytes.

    Hand-rolled rather than httpx-sse because it is the per-chunk hot path: it splits each network
    read once instead of decoding text and building an event object per line. It follows the SSE
    rules upstreams rely on: LF or CRLF line ends, several ``data:`` lines joined by newlines,
    comments and other fields ignored, an event ends at a blank line or at the end of the body.
    """
    pending = b""
    data_lines: list[bytes] = []
    async for received in body_parts(response):
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
        # the same error as a stream cut off after its first chunk (HTTPProvider._transport_error)
        raise UpstreamConnectionError(f"the upstream response was cut off ({type(exc).__name__})") from None
    return b"".join(parts)


def path_segment(value: str) -> str:
    """``value`` (a model or deployment the client chose) as exactly one URL path segment.

    Every reserved character is escaped, so ``/``, ``?``, ``#`` and ``@`` stay inside the segment.
    ``.`` and ``..`` cannot be escaped reliably (URL normalisation resolves them, even from ``%2E``,
    climbing out of the provider's path with the gateway's credentials): they are refused."""
    if value in (".", ".."):
        raise InvalidModelError(f"'{value}' is not a model name", param="model")
    return quote(value, safe="")
