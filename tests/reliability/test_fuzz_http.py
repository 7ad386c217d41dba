"""Bad input, fuzzed, over real HTTP: the gateway in FastAPI under uvicorn on 127.0.0.1.

A smaller set than ``test_fuzz.py``, to exercise real HTTP parsing: bodies and headers through an
httpx client, and raw request bytes through a socket (junk request lines, lying or duplicated
Content-Length, broken chunked encoding, unterminated bodies). uvicorn may refuse some raw input
itself with its own plain-text 400 before the gateway sees it: that is fine; whatever reaches the
gateway gets the gateway's properties (``fuzz_support.check_response``). Every exchange is bounded
by a socket or client timeout: a hang fails the case.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote_to_bytes, urlsplit

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ..fuzz_support import (
    HEADER_CHOICES,
    METHODS,
    TIMEOUT,
    Answer,
    chat_requests,
    check_chat_outcome,
    check_response,
    encode,
    fuzz_settings,
    junk_header_value,
    mutated_requests,
    paths,
    raw_bodies,
)
from ..support import count_cases, gateway_server

LIMIT = 256 * 1024
CONFIG = {"providers": {"echo": {}}, "limits": {"max_body_bytes": LIMIT}}
VALID = encode({"model": "echo:echo-1", "messages": [{"role": "user", "content": "hello over http"}]})
UVICORN_REFUSAL = b"Invalid HTTP request received."


@dataclass
class Server:
    url: str
    host: str
    port: int
    client: httpx.Client


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with gateway_server(CONFIG, "fastapi") as (url, _), httpx.Client(timeout=TIMEOUT) as client:
        parts = urlsplit(url)
        yield Server(url, parts.hostname or "127.0.0.1", parts.port or 80, client)


def answer_of(response: httpx.Response, method: str = "POST") -> Answer:
    return Answer(response.status_code, dict(response.headers), response.content, method=method)


_CONTROL = bytes(range(32)).replace(b"\t", b"") + b"\x7f"


def _sendable(value: bytes) -> bytes:
    """What an HTTP client will put on the wire: no control characters, no outer whitespace."""
    return value.translate(None, _CONTROL).strip(b" \t")


# -- through an HTTP client ---------------------------------------------------------------------------


@fuzz_settings(40)
@given(request=chat_requests)
def test_valid_requests_over_http(server: Server, request: dict[str, Any]) -> None:
    count_cases("fuzz: http bodies")
    body = encode(request)
    response = server.client.post(f"{server.url}/v1/chat/completions", content=body)
    check_chat_outcome(answer_of(response), body, limit=LIMIT, request=request)


@fuzz_settings(120)
@given(
    body=raw_bodies
    | st.builds(
        lambda value, ascii_only: encode(value, ascii_only=ascii_only), mutated_requests(), st.booleans()
    )
)
def test_bad_bodies_over_http(server: Server, body: bytes) -> None:
    count_cases("fuzz: http bodies")
    response = server.client.post(
        f"{server.url}/v1/chat/completions", content=body, headers={"content-type": "application/json"}
    )
    check_chat_outcome(answer_of(response), body, limit=LIMIT)


# Framing headers are left to the raw-socket test: an HTTP client refuses to lie about them.
_CLIENT_HEADERS = sorted(set(HEADER_CHOICES) - {b"content-length", b"transfer-encoding"})


@fuzz_settings(100)
@given(
    headers=st.lists(
        st.sampled_from(_CLIENT_HEADERS).flatmap(
            lambda name: st.tuples(st.just(name), HEADER_CHOICES[name].map(_sendable))
        )
        | st.tuples(
            st.text(
                alphabet="abcdefghijklmnopqrstuvwxyz-_!#$%&'*+.^`|~0123456789", min_size=1, max_size=12
            ).map(str.encode),
            junk_header_value.map(_sendable),
        ),
        max_size=5,
    ),
    body=st.sampled_from([VALID, b"{}", b"nope"]),
)
def test_headers_over_http(server: Server, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    try:
        request = server.client.build_request(
            "POST", f"{server.url}/v1/chat/completions", content=body, headers=headers
        )
        response = server.client.send(request)
    except (httpx.LocalProtocolError, httpx.InvalidURL, ValueError):
        return  # the client itself would not send these headers
    count_cases("fuzz: http headers")
    answer = answer_of(response)
    if answer.status == 400 and answer.body == UVICORN_REFUSAL:
        return  # uvicorn refused the request before the gateway saw it
    check_response(answer)
    if answer.status != 413:
        check_chat_outcome(answer, body, limit=LIMIT)


# -- raw bytes on a socket ----------------------------------------------------------------------------


@dataclass
class RawRequest:
    data: bytes
    complete: bool
    """False when the body is cut short (a lying Content-Length, an unterminated chunked body)."""
    target: bytes
    method: bytes
    websocket: bool = False


def _chunked(body: bytes, *, terminated: bool, broken: bool) -> bytes:
    out = b""
    for start in range(0, len(body), 7):
        piece = body[start : start + 7]
        size = b"zz" if broken and start == 0 else f"{len(piece):x}".encode()
        out += size + b"\r\n" + piece + b"\r\n"
    return out + (b"0\r\n\r\n" if terminated else b"")


def _target(path: str) -> bytes:
    # Percent-encoded as a client would (existing %xx escapes kept); raw bytes come from JUNK_TARGETS.
    return quote("/llm" + path, safe="/%:?=&@!$'()*+,;~", errors="surrogatepass").encode()


WEBSOCKET_HEADERS = [b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", b"Sec-WebSocket-Version: 13"]
KNOWN_METHODS = [b"GET", b"HEAD", b"POST", b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS", b"TRACE"]
JUNK_TARGETS = [
    b"*",
    b"",
    b"//",
    b"http://x/llm/health",
    b"/llm/\xff\xfe",
    b"/llm/health?\x00",
    b"/llm/h\xc3\xa9",
]


@st.composite
def raw_requests(draw: st.DrawFn) -> RawRequest:
    """Mostly well-formed HTTP/1.1 (so that it reaches the gateway), sometimes junk at every level."""
    clean = draw(st.integers(0, 9)) < 7
    if clean:
        method = draw(st.sampled_from(KNOWN_METHODS))  # an HTTP parser refuses methods it does not know
        target = _target(draw(paths))
        version = b"HTTP/1.1"
        extra = st.sampled_from(_CLIENT_HEADERS).flatmap(
            lambda name: st.tuples(st.just(name), HEADER_CHOICES[name].map(_sendable))
        )
        framings = ["length", "length", "length", "short", "long", "chunked", "broken", "open"]
    else:
        method = draw(METHODS.map(str.encode) | st.sampled_from([b"get", b"G\x00T", b"", b"POST\xff"]))
        target = draw(paths.map(_target) | st.sampled_from(JUNK_TARGETS))
        version = draw(st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.1x", b""]))
        extra = st.sampled_from(_CLIENT_HEADERS).flatmap(
            lambda name: st.tuples(st.just(name), HEADER_CHOICES[name])
        )
        framings = ["length", "short", "long", "chunked", "broken", "open", "both"]
    body = draw(st.sampled_from([VALID, b"", b"{}"]) | raw_bodies.filter(lambda data: len(data) < 5000))
    framing = draw(st.sampled_from(framings))
    headers = [b"Host: 127.0.0.1", b"Connection: close"]
    headers += [name + b": " + value for name, value in draw(st.lists(extra, max_size=3))]
    complete = True
    if framing == "length":
        headers.append(b"Content-Length: %d" % len(body))
    elif framing == "short":  # the rest of the body arrives as the start of a next request
        headers.append(b"Content-Length: %d" % (len(body) // 2))
    elif framing == "long":  # the body never completes
        headers.append(b"Content-Length: %d" % (len(body) + 10))
        complete = False
    elif framing in ("chunked", "broken", "open"):
        headers.append(b"Transfer-Encoding: chunked")
        body = _chunked(body, terminated=framing != "open", broken=framing == "broken")
        complete = framing != "open"
    else:  # both: request smuggling's favourite ambiguity
        headers += [b"Content-Length: %d" % len(body), b"Transfer-Encoding: chunked"]
        body = _chunked(body, terminated=True, broken=False)
    # A WebSocket handshake: the gateway has no such routes. (Short targets only: uvicorn's WebSocket
    # handshake parser never answers a request line over 8 KB and never calls the app either.)
    websocket = clean and len(target) < 4000 and draw(st.integers(0, 9)) == 0
    if websocket:
        method, body, complete = b"GET", b"", True
        headers = [b"Host: 127.0.0.1", b"Upgrade: websocket", b"Connection: Upgrade", *WEBSOCKET_HEADERS]
    head = method + b" " + target + b" " + version + b"\r\n" + b"\r\n".join(headers) + b"\r\n\r\n"
    return RawRequest(head + body, complete, target, method, websocket)


def exchange(server: Server, request: RawRequest) -> bytes:
    """Send the bytes; read until the server closes. An incomplete request is half-closed first."""
    with socket.create_connection((server.host, server.port), timeout=TIMEOUT) as sock:
        sock.sendall(request.data)
        if not request.complete:
            sock.shutdown(socket.SHUT_WR)  # the client gives up: the server must let go too
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass
        except TimeoutError:
            pytest.fail(f"no end to the exchange within {TIMEOUT}s: {request.data[:300]!r}")
    return received


def parse_response(data: bytes) -> Answer:
    """The first HTTP/1.1 response in ``data`` (Content-Length or chunked framing)."""
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *lines = head.split(b"\r\n")
    status = int(status_line.split(b" ")[1])
    headers = {}
    for line in lines:
        name, _, value = line.partition(b":")
        headers[name.decode("latin-1").strip().lower()] = value.decode("latin-1").strip()
    if "content-length" in headers:
        body = rest[: int(headers["content-length"])]
    elif headers.get("transfer-encoding") == "chunked":
        body = b""
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line, 16)
            if size == 0:
                break
            body, rest = body + rest[:size], rest[size + 2 :]
    else:
        body = rest
    return Answer(status, headers, body)


@fuzz_settings(120)
@given(request=raw_requests())
def test_raw_requests_over_a_socket(server: Server, request: RawRequest) -> None:
    count_cases("fuzz: http raw")
    received = exchange(server, request)
    if not received:
        assert not request.complete, f"no response to a complete request: {request.data[:300]!r}"
        return
    assert received.startswith(b"HTTP/1."), received[:200]
    answer = parse_response(received)
    answer.method = request.method.decode("latin-1")
    assert answer.status < 500, received[:500]
    if answer.body == UVICORN_REFUSAL or answer.headers.get("content-type", "").startswith("text/plain"):
        # uvicorn refused the bytes itself, or (an empty 403) the host app closed a WebSocket
        # handshake that was not the gateway's
        assert answer.status == 400 or (request.websocket and answer.status == 403), received[:300]
        return
    path = unquote_to_bytes(request.target.split(b"?")[0])
    # FastAPI's own answers (its mount pattern does not match /llm/%0A, say): a {"detail": ...} body,
    # or an empty 403 refusing a WebSocket handshake. The gateway never answers in those shapes.
    host_answered = answer.body.startswith(b'{"detail":') or (answer.status == 403 and not answer.body)
    if (path == b"/llm" or path.startswith(b"/llm/")) and not host_answered:
        check_response(answer)  # the gateway answered (elsewhere the host app did: no 5xx is enough)
