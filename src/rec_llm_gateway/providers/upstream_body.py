"""Reading upstream bodies: size caps (on the bytes that arrive and on decoded bytes), the
longest SSE event allowed, and SSE decoding. Shared by ``HTTPProvider`` and the native pass-throughs."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from ..errors import BadGatewayError, UpstreamConnectionError, UpstreamTimeoutError
from .base import DEFAULT_MAX_EVENT_BYTES

__all__ = ["body_parts", "event_limit", "event_too_large"]


class _CappedStream(httpx.AsyncByteStream):
    """A streamed response body that fails once more than ``limit`` bytes have arrived.

    A stream's answer is held in memory too (the assembled response for hooks and usage), so
    ``limits.max_response_bytes`` caps it like a non-streaming body. This counts bytes as they arrive;
    a content-encoded body is capped again after decoding (``body_parts``): 2 MB of gzip can become
    gigabytes. ``event_limit`` bounds one SSE line or event (``limits.max_event_bytes``)."""

    def __init__(
        self, stream: httpx.AsyncByteStream, limit: int, event_limit: int = DEFAULT_MAX_EVENT_BYTES
    ) -> None:
        self._stream = stream
        self.limit = limit
        self.event_limit = event_limit

    async def __aiter__(self) -> AsyncIterator[bytes]:
        left = self.limit
        async for part in self._stream:
            left -= len(part)
            if left < 0:
                raise _too_large(self.limit)
            yield part

    async def aclose(self) -> None:
        await self._stream.aclose()


def _too_large(limit: int) -> BadGatewayError:
    return BadGatewayError(f"the upstream response is larger than {limit} bytes")


def event_too_large(limit: int) -> BadGatewayError:
    return BadGatewayError(
        f"the upstream sent a stream event longer than {limit} bytes", code="upstream_event_too_large"
    )


def body_parts(response: httpx.Response) -> AsyncIterator[bytes]:
    """The body as it arrives. Straight from the transport's stream when it is not content-encoded
    (the gateway sends no ``Accept-Encoding``, so normally it is not): httpx's decoder and chunker
    layers would cost a few generator frames and microseconds per chunk for nothing. A decoded body
    is capped by the limit the arriving bytes have."""
    if "content-encoding" in response.headers or not isinstance(response.stream, httpx.AsyncByteStream):
        if isinstance(response.stream, _CappedStream):
            return _capped(response.aiter_bytes(), response.stream.limit)
        return response.aiter_bytes()
    return response.stream.__aiter__()


def event_limit(response: httpx.Response) -> int:
    """The longest stream event allowed on ``response`` (``limits.max_event_bytes`` of its call)."""
    stream = response.stream
    return stream.event_limit if isinstance(stream, _CappedStream) else DEFAULT_MAX_EVENT_BYTES


async def _capped(parts: AsyncIterator[bytes], limit: int) -> AsyncIterator[bytes]:
    left = limit
    async for part in parts:
        left -= len(part)
        if left < 0:
            raise _too_large(limit)
        yield part


async def _iter_sse_data(response: httpx.Response) -> AsyncIterator[bytes]:
    """Yield the ``data`` of each server-sent event, as bytes.

    Hand-rolled rather than httpx-sse because it is the per-chunk hot path: it splits each network
    read once instead of decoding text and building an event object per line. It follows the SSE
    rules upstreams rely on: LF or CRLF line ends, several ``data:`` lines joined by newlines,
    comments and other fields ignored, an event ends at a blank line or at the end of the body.
    A line or an event longer than the event limit is a 502. Reads without a line end are collected
    and joined once the line ends (joining them on every read cost quadratic CPU on a long line).
    """
    limit = event_limit(response)
    pending: list[bytes] = []
    pending_size = 0
    data_lines: list[bytes] = []
    data_size = 0
    async for received in body_parts(response):
        if (
            not pending
            and not data_lines
            and received.endswith(b"\n\n")
            and received.startswith(b"data:")
            and received.find(b"\n") == len(received) - 2
        ):  # the common read, one whole event of one data line: no split, no loop
            line = received[:-2]
            if line.endswith(b"\r"):
                line = line[:-1]
            if len(line) > limit:
                raise event_too_large(limit)
            yield line[6:] if line[5:6] == b" " else line[5:]
            continue
        if b"\n" not in received:
            pending.append(received)
            pending_size += len(received)
            if pending_size > limit:
                raise event_too_large(limit)
            continue
        if pending:
            pending.append(received)
            received = b"".join(pending)
            pending.clear()
        lines = received.split(b"\n")
        tail = lines.pop()
        if tail:
            pending.append(tail)
        pending_size = len(tail)
        for line in lines:
            if line.endswith(b"\r"):
                line = line[:-1]
            if line:
                if line.startswith(b"data:"):
                    data_lines.append(line[6:] if line[5:6] == b" " else line[5:])
                    data_size += len(line)
                    if data_size > limit:
                        raise event_too_large(limit)
            elif data_lines:
                yield b"\n".join(data_lines)
                data_lines.clear()
                data_size = 0
        if pending_size > limit:
            raise event_too_large(limit)
    last = b"".join(pending).rstrip(b"\r")
    if last.startswith(b"data:"):
        data_lines.append(last[6:] if last[5:6] == b" " else last[5:])
    if data_lines:
        yield b"\n".join(data_lines)


async def _read_capped(response: httpx.Response, limit: int) -> bytes:
    length = response.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise BadGatewayError(f"the upstream response is larger than {limit} bytes")
    parts: list[bytes] = []
    size = 0
    try:
        async for part in body_parts(response):  # (two async generator layers fewer than aiter_bytes)
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
