"""Upstream faults for every wire format: the fault matrix's fake upstreams and fault shapes.

- ``WIRES``: per wire format (OpenAI, Anthropic, Gemini, Bedrock), a normal answer from the existing
  fakes (``openai_echo``, ``anthropic_upstream``, ``gemini_upstream``, ``bedrock_handler``), its
  native error bodies, an in-stream error event, a malformed event, and how a stream opens.
- ``FaultUpstream``: a ``FakeUpstream`` that picks its answer from the *model name* of each request
  (``<fault>-<n>``; anything else is answered normally), so hundreds of cases can run at once against
  one server. It adds ``FaultReply.stall_after``: send that many SSE frames (or body bytes), then go
  silent until the client hangs up.
- ``RawServer``: a raw TCP server for what an ASGI app cannot do: ``reset`` answers the start of a
  valid response and then resets the connection (TCP RST); ``silent`` accepts and never says a word
  (a TLS handshake that never completes when the client speaks https to it).
- ``closed_port()``: a bound socket that does not listen: connecting to it is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from rec_llm_gateway.providers.bedrock.eventstream import encode_frame

from . import anthropic_fake, bedrock_support, gemini_support
from .conftest import PROVIDER_KEY
from .support import FakeUpstream, Recorded, Reply, _frame, openai_echo

Frame = bytes | str | dict[str, Any]


# -- wire formats -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Wire:
    """How one wire format answers, fails and streams."""

    name: str
    ok: Callable[[Recorded], Reply]
    error: Callable[[int, str, dict[str, str]], Reply]
    """``(status, message, headers)`` -> the native error response."""
    stream_error: Callable[[str], Frame]
    """An error event inside a stream, in the native shape."""
    malformed: Frame
    """A stream event whose payload is not JSON."""
    stream_content_type: str = "text/event-stream"

    def model(self, request: Recorded) -> str:
        path = request.path
        if self.name == "gemini":
            return path.rsplit("/models/", 1)[-1].split(":", 1)[0]
        if self.name == "bedrock":
            return path.split("/model/", 1)[-1].rsplit("/", 1)[0]
        return str(request.json.get("model", ""))

    def is_stream(self, request: Recorded) -> bool:
        if self.name == "gemini":
            return request.path.endswith(":streamGenerateContent")
        if self.name == "bedrock":
            return request.path.endswith("/converse-stream")
        return bool(request.json.get("stream"))

    def opening(self, request: Recorded) -> list[Frame]:
        """The first complete frame of a normal stream (it translates to at least one chunk)."""
        frames = self.ok(request).sse
        assert frames, f"{self.name}: the normal answer to a stream request is not a stream"
        return frames[:1]

    def body(self, request: Recorded) -> bytes:
        """The normal non-streaming body."""
        return json.dumps(self.ok(request).json).encode()


def _openai_error(status: int, message: str, headers: dict[str, str]) -> Reply:
    error_type = "requests" if status == 429 else "server_error" if status >= 500 else "invalid_request_error"
    return Reply(
        status=status, json={"error": {"message": message, "type": error_type, "code": None}}, headers=headers
    )


def _anthropic_error(status: int, message: str, headers: dict[str, str]) -> Reply:
    error_type = {429: "rate_limit_error", 529: "overloaded_error", 401: "authentication_error"}.get(
        status, "api_error" if status >= 500 or status == 200 else "invalid_request_error"
    )
    return anthropic_fake.error(status, error_type, message, headers)


def _gemini_error(status: int, message: str, headers: dict[str, str]) -> Reply:
    body = gemini_support.rpc_error(500 if status == 200 else status, message)
    return Reply(status=status, json=body, headers=headers)


def _bedrock_error(status: int, message: str, headers: dict[str, str]) -> Reply:
    kind = {429: "ThrottlingException", 401: "UnrecognizedClientException", 403: "AccessDeniedException"}.get(
        status, "InternalServerException"
    )
    return bedrock_support.bedrock_error(status, kind, message, **headers)


WIRES: dict[str, Wire] = {
    "openai": Wire(
        "openai",
        ok=openai_echo,
        error=_openai_error,
        stream_error=lambda message: {"error": {"message": message, "type": "server_error", "code": None}},
        malformed=b'data: {"id": "chatcmpl-stream1", "choices": [{"index": 0, \n\n',
    ),
    "anthropic": Wire(
        "anthropic",
        ok=anthropic_fake.anthropic_upstream,
        error=_anthropic_error,
        stream_error=lambda message: anthropic_fake.frame(
            {"type": "error", "error": {"type": "api_error", "message": message}}
        ),
        malformed='event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0,\n\n',
    ),
    "gemini": Wire(
        "gemini",
        ok=gemini_support.gemini_upstream,
        error=_gemini_error,
        stream_error=lambda message: gemini_support.sse([gemini_support.rpc_error(500, message)])[0],
        malformed=b'data: {"candidates": [{"content": \r\n\r\n',
    ),
    "bedrock": Wire(
        "bedrock",
        ok=bedrock_support.bedrock_handler,
        error=_bedrock_error,
        stream_error=lambda message: bedrock_support.exception_frame("internalServerException", message),
        malformed=encode_frame(
            {
                ":event-type": "contentBlockDelta",
                ":content-type": "application/json",
                ":message-type": "event",
            },
            b'{"contentBlockIndex": 0, "delta": {"te',
        ),
        stream_content_type=bedrock_support.EVENTSTREAM,
    ),
}

PROVIDER_WIRE = {
    "openai": "openai",
    "azure": "openai",
    "openrouter": "openai",
    "anthropic": "anthropic",
    "gemini": "gemini",
    "vertex": "gemini",
    "bedrock": "bedrock",
}


PROVIDERS = ("openai", "azure", "openrouter", "anthropic", "gemini", "vertex", "bedrock")
TRANSPORTS = ("aiohttp", "httpx")


def provider_settings(kind: str, base: str, credentials: str) -> dict[str, Any]:
    """A provider of type ``kind`` whose upstream is ``base`` (Vertex: with that credentials file)."""
    settings: dict[str, Any] = {
        "openai": {"api_key": PROVIDER_KEY, "base_url": f"{base}/v1"},
        "azure": {"api_key": PROVIDER_KEY, "base_url": base, "api_version": "2024-10-21"},
        "openrouter": {"api_key": PROVIDER_KEY, "base_url": f"{base}/api/v1"},
        "anthropic": {"api_key": anthropic_fake.API_KEY, "base_url": base},
        "gemini": {"api_key": PROVIDER_KEY, "base_url": f"{base}/v1beta"},
        "vertex": {
            "credentials_file": credentials,
            "project_id": "test-project",
            "location": "us-central1",
            "base_url": f"{base}/v1beta1",
        },
        "bedrock": {
            "region": bedrock_support.REGION,
            "aws_access_key_id": bedrock_support.ACCESS_KEY,
            "aws_secret_access_key": bedrock_support.SECRET_KEY,
            "base_url": base,
            "control_plane_url": base,
        },
    }[kind]
    return {"type": kind, **settings}


def wire_of(request: Recorded) -> Wire:
    """The wire format a request speaks, from its path."""
    path = request.path
    if path.endswith("/v1/messages"):
        return WIRES["anthropic"]
    if path.endswith((":generateContent", ":streamGenerateContent")):
        return WIRES["gemini"]
    if path.endswith(("/converse", "/converse-stream")):
        return WIRES["bedrock"]
    return WIRES["openai"]


# -- faults ---------------------------------------------------------------------------------------


@dataclass
class FaultReply(Reply):
    stall_after: int | None = None
    """Send this many SSE frames (or body bytes), then nothing until the client hangs up."""
    tag: str | None = None
    """Set by ``FaultUpstream``: the request's tag, under which it records when the client hung up."""


ENORMOUS = 256 * 1024
"""Bytes of padding in an enormous answer (the matrix sets ``limits.max_response_bytes`` to 64 KiB)."""

HTML = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"


def fault_reply(fault: str, wire: Wire, request: Recorded) -> Reply:
    """The upstream's answer for ``fault`` in ``wire``'s format (HTTP-level faults only)."""
    stream = wire.is_stream(request)
    if fault == "slow_first_byte":
        return FaultReply(hang=True)
    if fault == "stall_after_headers":
        return FaultReply(
            sse=[], stall_after=0, content_type=wire.stream_content_type if stream else "application/json"
        )
    if fault == "stall_mid_body":
        if stream:
            return FaultReply(
                sse=wire.opening(request) + ["unused"], stall_after=1, content_type=wire.stream_content_type
            )
        body = wire.body(request)
        return FaultReply(sse=[body], stall_after=len(body) // 2, content_type="application/json")
    if fault == "slow_drip":
        # bytes keep coming, each well inside `read`, but the answer (or a stream's first chunk) never
        # does: only `total` ends it
        if not stream:
            body = wire.body(request)
            pieces: list[Frame] = [body[i : i + 8] for i in range(0, len(body), 8)]
            return Reply(sse=pieces, chunk_delay=0.25, content_type="application/json")
        return Reply(sse=_keepalives(wire), chunk_delay=0.25, content_type=wire.stream_content_type)
    if fault == "truncated":
        if stream:  # complete events, then a clean end of the body without the stream's final event
            return Reply(sse=wire.opening(request), content_type=wire.stream_content_type)
        body = wire.body(request)  # content-length says more than arrives: the server closes early
        return Reply(body=body, content_type="application/json", cut_after=len(body) // 2)
    if fault == "malformed_json":
        if stream:
            return Reply(sse=[*wire.opening(request), wire.malformed], content_type=wire.stream_content_type)
        return Reply(body=b'{"id": "x", "choices": [', content_type="application/json")
    if fault == "wrong_content_type":
        if stream:  # a JSON answer to a stream request
            return Reply(body=wire.body(_as_unstreamed(request)), content_type="application/json")
        return Reply(body=HTML, content_type="text/html")
    if fault == "error_200":
        if stream:
            return Reply(
                sse=[wire.stream_error("the model is overloaded, try later")],
                content_type=wire.stream_content_type,
            )
        return wire.error(200, "the model is overloaded, try later", {})
    if fault == "rate_limited_retry_after":
        return wire.error(429, "rate limited", {"retry-after": "7"})
    if fault == "rate_limited":
        return wire.error(429, "rate limited", {})
    if fault == "status_500":
        return wire.error(500, "internal failure", {})
    if fault == "status_503_html":
        return Reply(status=503, body=HTML, content_type="text/html")
    if fault == "status_529":
        return wire.error(529, "Overloaded", {})
    if fault == "enormous":
        padding = "x" * ENORMOUS
        if stream:
            frames = wire.ok(request).sse or []
            # a pause between frames, so that the first chunk reaches the client before the big one
            padded = [frames[0], _padded_frame(wire, padding), *frames[1:]]
            return Reply(sse=padded, chunk_delay=0.05, content_type=wire.stream_content_type)
        data = wire.ok(request).json
        return Reply(json={**data, "padding": padding})
    if fault == "compressed_bomb":
        return _compressed_bomb(wire, request, stream)
    raise ValueError(f"unknown fault {fault!r}")


def _compressed_bomb(wire: Wire, request: Recorded, stream: bool) -> Reply:
    """Gzip that decompresses to 4x ``ENORMOUS`` (a few KiB on the wire, well under the cap)."""
    padding = "x" * (4 * ENORMOUS)
    gzip = zlib.compressobj(wbits=31)
    headers = {"content-encoding": "gzip"}
    if not stream:
        body = json.dumps({**wire.ok(request).json, "padding": padding}).encode()
        return Reply(
            body=gzip.compress(body) + gzip.flush(), content_type="application/json", headers=headers
        )
    frames = wire.ok(request).sse or []
    # the opening flushed on its own, so that its chunk reaches the client before the bomb
    opening = gzip.compress(_frame(frames[0])) + gzip.flush(zlib.Z_SYNC_FLUSH)
    bomb = gzip.compress(_frame(_padded_frame(wire, padding))) + gzip.flush()
    return Reply(
        sse=[opening, bomb], chunk_delay=0.05, content_type=wire.stream_content_type, headers=headers
    )


def _keepalives(wire: Wire) -> list[Frame]:
    """40 frames that carry no chunk: the keep-alives each format has, or a frame sent byte by byte."""
    if wire.name == "anthropic":
        return [anthropic_fake.frame({"type": "ping"})] * 40
    if wire.name == "bedrock":
        frame = bedrock_support.event("messageStart", {"role": "assistant"})
        return [frame[i : i + 1] for i in range(min(40, len(frame)))]
    return [b": keep-alive\n\n"] * 40  # SSE comments, as OpenRouter sends while it waits


def _as_unstreamed(request: Recorded) -> Recorded:
    """The same request as a non-streaming one (to answer a stream with a plain JSON body)."""
    path = request.path.replace(":streamGenerateContent", ":generateContent").replace(
        "/converse-stream", "/converse"
    )
    body = request.json
    if isinstance(body, dict) and "stream" in body:
        body = {**body, "stream": False}
    return Recorded(request.method, path, request.query, request.headers, json.dumps(body).encode())


def _padded_frame(wire: Wire, padding: str) -> Frame:
    """A valid stream event carrying ``padding`` as text."""
    if wire.name == "openai":
        return {
            "id": "chatcmpl-stream1",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": "m",
            "choices": [{"index": 0, "delta": {"content": padding}, "finish_reason": None}],
        }
    if wire.name == "anthropic":
        delta = {"type": "text_delta", "text": padding}
        return anthropic_fake.frame({"type": "content_block_delta", "index": 0, "delta": delta})
    if wire.name == "gemini":
        event = {"candidates": [{"content": {"role": "model", "parts": [{"text": padding}]}, "index": 0}]}
        return gemini_support.sse([event])[0]
    return bedrock_support.event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": padding}})


def partial_response(request: Recorded) -> bytes:
    """The start of a valid HTTP response to ``request`` (for ``RawServer`` to reset after)."""
    wire = wire_of(request)
    if wire.is_stream(request):
        head = (
            f"HTTP/1.1 200 OK\r\ncontent-type: {wire.stream_content_type}\r\n"
            "transfer-encoding: chunked\r\n\r\n"
        ).encode()
        data = b"".join(_frame(frame) for frame in wire.opening(request))
        return head + f"{len(data):x}\r\n".encode() + data + b"\r\n"
    body = wire.body(request)
    head = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    return head.encode() + body[: len(body) // 2]


# -- the fake upstream --------------------------------------------------------------------------------


def _parse_model(model: str) -> str | None:
    fault, _, number = model.rpartition("-")
    return fault if fault and number.isdigit() else None


_TAG = re.compile(rb"\btag-[0-9]+\b")


class FaultUpstream(FakeUpstream):
    """Answers normally in every wire format, or with the fault named by the request's model.

    A request whose text holds ``tag-<n>`` and that meets a hanging or stalling fault is tracked:
    ``arrived[tag]`` and ``closed[tag]`` are the ``time.monotonic()`` when it arrived and when the
    client (the gateway) hung up on it. ``keep_requests=False`` records no requests (long loops).
    """

    def __init__(self, *, keep_requests: bool = True) -> None:
        super().__init__(default=self.dispatch)
        self.keep_requests = keep_requests
        self.arrived: dict[str, float] = {}
        self.closed: dict[str, float] = {}

    def dispatch(self, request: Recorded) -> Reply:
        if not self.keep_requests:
            self.requests.clear()
        if request.path.endswith("/token"):  # the Vertex OAuth token endpoint
            return gemini_support.gemini_upstream(request)
        wire = wire_of(request)
        fault = _parse_model(wire.model(request))
        if fault is None:
            return wire.ok(request)
        reply = fault_reply(fault, wire, request)
        tag = _TAG.search(request.body)
        if tag is not None and isinstance(reply, FaultReply):
            reply.tag = tag.group().decode()
            self.arrived[reply.tag] = time.monotonic()
        return reply

    async def _answer(self, reply: Reply, send: Any, disconnected: asyncio.Event) -> None:
        try:
            await self._stall_or_answer(reply, send, disconnected)
        finally:
            if isinstance(reply, FaultReply) and reply.tag and disconnected.is_set():
                self.closed[reply.tag] = time.monotonic()

    async def _stall_or_answer(self, reply: Reply, send: Any, disconnected: asyncio.Event) -> None:
        if not isinstance(reply, FaultReply) or reply.stall_after is None:
            await super()._answer(reply, send, disconnected)
            return
        frames = reply.sse or []
        content_type = reply.content_type or "text/event-stream"
        headers = [(b"content-type", content_type.encode())]
        if content_type == "application/json" and frames:  # a plain body: stall after some bytes
            body = _frame(frames[0])
            headers.append((b"content-length", str(len(body)).encode()))
            parts = [body[: reply.stall_after]]
        else:
            parts = [_frame(frame) for frame in frames[: reply.stall_after]]
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        for part in parts:
            if part:
                await send({"type": "http.response.body", "body": part, "more_body": True})
        await disconnected.wait()  # silent until the client gives up
        self.closed_early += 1


# -- raw sockets ----------------------------------------------------------------------------------


def closed_port() -> socket.socket:
    """A socket bound to a loopback port and not listening: connections to it are refused.

    Keep it open while the port is in use so that nothing else takes the port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


class RawServer:
    """A TCP server on loopback, one thread per connection.

    Args:
        mode: ``"reset"``: read one HTTP request, send ``partial_response`` for it, then reset the
            connection (RST); ``"silent"``: accept and never send a byte.
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.accepted = 0
        self.closed_by_client = 0
        self.requests: list[Recorded] = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(512)
        self.port = self._listener.getsockname()[1]
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stopped = False
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> RawServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped = True
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            for conn in self._connections:
                with contextlib.suppress(OSError):
                    conn.close()
        self._thread.join(5)

    def _accept(self) -> None:
        while not self._stopped:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.accepted += 1
                self._connections.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            if self.mode == "silent":
                while conn.recv(65536):  # whatever the client says (a TLS hello): no answer
                    pass
                with self._lock:
                    self.closed_by_client += 1
                return
            request = _read_request(conn)
            if request is None:
                return
            self.requests.append(request)
            conn.sendall(partial_response(request))
            time.sleep(0.05)  # let the client read what was sent before the reset
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                conn.close()


def _read_request(conn: socket.socket) -> Recorded | None:
    data = b""
    while b"\r\n\r\n" not in data:
        received = conn.recv(65536)
        if not received:
            return None
        data += received
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        received = conn.recv(65536)
        if not received:
            return None
        body += received
    path, _, query = target.partition("?")
    from urllib.parse import unquote

    return Recorded(method, unquote(path), query, headers, body)


@contextlib.contextmanager
def raw_server(mode: str) -> Iterator[RawServer]:
    with RawServer(mode) as server:
        yield server
