"""The AWS event-stream framing (``application/vnd.amazon.eventstream``) that ConverseStream answers in.

Each frame is::

    total_length u32 | headers_length u32 | prelude_crc u32 | headers | payload | message_crc u32

(big-endian; ``prelude_crc`` is the CRC32 of the first 8 bytes, ``message_crc`` the CRC32 of
everything before it). A header is ``name_len u8, name, type u8, value``.

Hand-rolled rather than ``botocore.eventstream.EventStreamBuffer`` because it is the per-chunk hot
path: botocore re-concatenates its whole buffer on every read, slices it per field and builds
several objects per frame; this decoder keeps only the unconsumed tail, checks both CRCs with
``zlib.crc32`` on memoryviews and caches parsed header blocks (a stream repeats the same few header
blocks byte for byte), which makes it several times faster per frame (see
``benchmarks/bedrock_eventstream.py``). It also keeps bearer-token (API key) deployments free of
botocore.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from typing import Any, Final

from ...errors import BadGatewayError

__all__ = ["EventStreamDecoder", "Frame", "encode_frame"]

Frame = tuple[dict[str, Any], bytes]
"""One decoded message: its headers (shared between frames: do not mutate) and raw payload."""

_PRELUDE: Final = struct.Struct(">III")
_U32: Final = struct.Struct(">I")
_U16: Final = struct.Struct(">H")
_PRELUDE_LENGTH: Final = 12
_MIN_FRAME: Final = 16
# botocore's limits: 128 KiB of headers and 16 MiB of payload per frame.
_MAX_HEADERS: Final = 128 * 1024
_MAX_FRAME: Final = 16 * 1024 * 1024 + _MAX_HEADERS + _MIN_FRAME
_HEADER_CACHE_LIMIT: Final = 64
# value type -> (struct format, byte size) for the fixed-size integer types
_FIXED: Final = {2: (">b", 1), 3: (">h", 2), 4: (">i", 4), 5: (">q", 8), 8: (">q", 8)}


def _corrupt(reason: str) -> BadGatewayError:
    return BadGatewayError(
        f"the upstream sent a corrupt event stream ({reason})", code="invalid_event_stream"
    )


class EventStreamDecoder:
    """Incremental decoder: ``feed(bytes)`` returns the frames completed by those bytes.

    Raises ``BadGatewayError`` (502) on a CRC mismatch or a malformed frame, and from ``close()``
    when the stream ended in the middle of a frame.
    """

    __slots__ = ("_header_cache", "_pending")

    def __init__(self) -> None:
        self._pending = b""
        self._header_cache: dict[bytes, dict[str, Any]] = {}

    def feed(self, data: bytes) -> list[Frame]:
        buffer = self._pending + data if self._pending else data
        size = len(buffer)
        frames: list[Frame] = []
        start = 0
        with memoryview(buffer) as view:
            while size - start >= _PRELUDE_LENGTH:
                total, headers_length, prelude_crc = _PRELUDE.unpack_from(buffer, start)
                if zlib.crc32(view[start : start + 8]) != prelude_crc:
                    raise _corrupt("prelude CRC mismatch")
                if not _MIN_FRAME <= total <= _MAX_FRAME or headers_length > min(
                    total - _MIN_FRAME, _MAX_HEADERS
                ):
                    raise _corrupt(f"impossible frame length {total}")
                end = start + total
                if end > size:
                    break  # the rest of this frame is still on its way
                if zlib.crc32(view[start : end - 4]) != _U32.unpack_from(buffer, end - 4)[0]:
                    raise _corrupt("message CRC mismatch")
                headers_end = start + _PRELUDE_LENGTH + headers_length
                raw_headers = buffer[start + _PRELUDE_LENGTH : headers_end]
                headers = self._header_cache.get(raw_headers)
                if headers is None:
                    headers = _parse_headers(raw_headers)
                    if len(self._header_cache) < _HEADER_CACHE_LIMIT:
                        self._header_cache[raw_headers] = headers
                frames.append((headers, buffer[headers_end : end - 4]))
                start = end
        self._pending = buffer[start:] if start < size else b""
        return frames

    def close(self) -> None:
        """Check that the stream did not end inside a frame."""
        if self._pending:
            raise _corrupt(f"the stream ended inside a frame ({len(self._pending)} bytes left over)")


def _parse_headers(data: bytes) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    position, end = 0, len(data)
    try:
        while position < end:
            name_length = data[position]
            name = data[position + 1 : position + 1 + name_length].decode("utf-8")
            position += 1 + name_length
            kind = data[position]
            position += 1
            value: Any
            if kind in (6, 7):  # byte array, string: u16 length prefix
                (length,) = _U16.unpack_from(data, position)
                raw = data[position + 2 : position + 2 + length]
                if len(raw) != length:
                    raise _corrupt("truncated header value")
                value = raw.decode("utf-8") if kind == 7 else raw
                position += 2 + length
            elif kind in (0, 1):  # boolean true / false: no value bytes
                value = kind == 0
            elif kind in _FIXED:
                fmt, width = _FIXED[kind]
                (value,) = struct.unpack_from(fmt, data, position)
                position += width
            elif kind == 9:  # uuid
                raw = data[position : position + 16]
                if len(raw) != 16:
                    raise _corrupt("truncated header value")
                value = uuid.UUID(bytes=raw)
                position += 16
            else:
                raise _corrupt(f"unknown header value type {kind}")
            headers[name] = value
    except (IndexError, struct.error, UnicodeDecodeError):
        raise _corrupt("malformed headers") from None
    if position != end:
        raise _corrupt("malformed headers")
    return headers


def encode_frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One frame with string headers and correct CRCs (for tests and fake upstreams)."""
    raw_headers = b"".join(
        bytes([len(name.encode())])
        + name.encode()
        + b"\x07"
        + _U16.pack(len(value.encode()))
        + value.encode()
        for name, value in headers.items()
    )
    total = _PRELUDE_LENGTH + len(raw_headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(raw_headers))
    prelude += _U32.pack(zlib.crc32(prelude))
    message = prelude + raw_headers + payload
    return message + _U32.pack(zlib.crc32(message))
