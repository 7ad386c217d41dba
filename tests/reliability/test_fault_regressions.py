"""Regression tests for the bugs the fault matrix, the disconnect suite and the secrets scan found.

Each test drives one provider directly over ``httpx.MockTransport`` (no sockets), so it names the
bug precisely; the suites themselves exercise the same paths end to end.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from asgiref.testing import ApplicationCommunicator
from opentelemetry.sdk.trace import TracerProvider

from rec_llm_gateway import Gateway, hookimpl
from rec_llm_gateway import runtime as runtime_module
from rec_llm_gateway.errors import BadGatewayError, InvalidModelError
from rec_llm_gateway.providers.base import UpstreamCall
from rec_llm_gateway.providers.http import HTTPProvider, path_segment
from rec_llm_gateway.schema import ChatCompletionRequest

from .. import bedrock_support
from ..support import chunks, completion

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
PLAIN_KEY = "plainProviderSecretValue0042"
"""A key with no recognisable shape: only exact scrubbing can catch it."""


def provider(settings: dict[str, Any]) -> HTTPProvider:
    built = Gateway({"providers": {"p": settings}}).providers["p"]
    assert isinstance(built, HTTPProvider)
    return built


def call_for(http: httpx.AsyncClient, *, stream: bool = False, limit: int = 1 << 20) -> UpstreamCall:
    request = ChatCompletionRequest.from_json(json.dumps({**CHAT, "stream": stream}).encode())
    return UpstreamCall(
        request=request, model="m", http=http, request_id="r1", stream=stream, max_response_bytes=limit
    )


class Frames(httpx.AsyncByteStream):
    def __init__(self, frames: list[bytes]) -> None:
        self.frames = frames

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for frame in self.frames:
            yield frame


def serving(answer: Callable[[httpx.Request], httpx.Response]) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(answer))


def sse(frames: list[Any]) -> list[bytes]:
    return [
        b"data: " + json.dumps(frame).encode() + b"\n\n" if isinstance(frame, dict) else frame.encode()
        for frame in frames
    ]


# -- Bedrock: a 200 that is not a Converse answer ------------------------------------------------------


async def test_bedrock_200_with_an_error_body_is_a_502_not_an_empty_success() -> None:
    bedrock = provider(bedrock_support.provider_config("http://bedrock.test"))

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"message": "The model is overloaded"})

    async with serving(answer) as http:
        with pytest.raises(BadGatewayError) as raised:
            await bedrock.complete(call_for(http))
    assert raised.value.status_code == 502
    assert "overloaded" in raised.value.message


# -- streams are capped by limits.max_response_bytes ---------------------------------------------------


async def _drain(stream: AsyncIterator[dict[str, Any]]) -> list[dict[str, Any]]:
    return [chunk async for chunk in stream]


@pytest.mark.parametrize(
    "frames",
    [
        pytest.param(sse(chunks(["x" * 4000] * 8)), id="many-events"),
        pytest.param([*sse(chunks(["a"])[:1]), b"data: " + b"y" * 40_000], id="an-event-that-never-ends"),
    ],
)
async def test_a_stream_larger_than_max_response_bytes_is_a_502(frames: list[bytes]) -> None:
    openai = provider({"type": "openai", "base_url": "http://openai.test/v1"})

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Frames(frames))

    received: list[dict[str, Any]] = []

    async def drain(stream: AsyncIterator[dict[str, Any]]) -> None:
        async for chunk in stream:
            received.append(chunk)

    async with serving(answer) as http:
        with pytest.raises(BadGatewayError, match="larger than 16384 bytes"):
            await drain(openai.stream(call_for(http, stream=True, limit=16_384)))
    assert received, "the chunks before the cap still arrive"


async def test_a_stream_within_max_response_bytes_is_untouched() -> None:
    openai = provider({"type": "openai", "base_url": "http://openai.test/v1"})
    frames = sse(chunks(["a", "b"]))

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Frames(frames))

    async with serving(answer) as http:
        received = await _drain(openai.stream(call_for(http, stream=True, limit=sum(map(len, frames)))))
    assert [chunk["choices"][0]["finish_reason"] for chunk in received if chunk["choices"]][-1] == "stop"


# -- error text inside a 200 body is scrubbed ----------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("openai", {"error": {"message": f"Incorrect API key provided: {PLAIN_KEY}", "type": "auth"}}),
        ("anthropic", {"type": "error", "error": {"type": "api_error", "message": f"bad key {PLAIN_KEY}"}}),
        ("gemini", {"error": {"code": 400, "message": f"API key {PLAIN_KEY} not valid", "status": "X"}}),
    ],
)
async def test_an_error_body_sent_with_200_is_scrubbed(kind: str, body: dict[str, Any]) -> None:
    upstream = provider({"type": kind, "api_key": PLAIN_KEY, "base_url": "http://upstream.test"})

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=body)

    async with serving(answer) as http:
        with pytest.raises(BadGatewayError) as raised:
            await upstream.complete(call_for(http))
    assert PLAIN_KEY not in raised.value.message
    if kind != "gemini":  # the Gemini provider does not quote a 200's error text at all
        assert "[redacted]" in raised.value.message


# -- a stream request left before its first chunk ------------------------------------------------------


async def test_a_stream_request_left_before_its_first_chunk_closes_the_upstream(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The client leaves while the upstream has not answered yet: the call must be cancelled at once
    (it used to wait for the upstream, up to ``timeout.total``), and on_error sees a 499."""
    arrived, cancelled = asyncio.Event(), asyncio.Event()

    async def thinking(request: httpx.Request) -> httpx.Response:
        arrived.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        raise AssertionError("unreachable")

    errors: list[tuple[int, str | None]] = []

    class Watch:
        @hookimpl
        def on_error(self, error: Any) -> None:
            errors.append((error.status_code, error.code))

    monkeypatch.setattr(runtime_module, "upstream_transport", lambda config: httpx.MockTransport(thinking))
    gateway = Gateway({"providers": {"openai": {"base_url": "http://openai.test/v1"}}}, plugins=[Watch()])
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/chat/completions",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json")],
    }
    client = ApplicationCommunicator(gateway, scope)
    body = json.dumps({**CHAT, "model": "openai:gpt-4o-mini", "stream": True}).encode()
    await client.send_input({"type": "http.request", "body": body, "more_body": False})
    await asyncio.wait_for(arrived.wait(), 5)
    await client.send_input({"type": "http.disconnect"})
    await asyncio.wait_for(cancelled.wait(), 2)
    await client.wait(2)
    assert errors == [(499, "client_disconnected")]
    await gateway.aclose()


# -- a model name cannot climb out of the provider's URL ---------------------------------------------


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param(
            {"type": "azure", "base_url": "http://azure.test", "api_version": "2024-10-21"}, id="azure"
        ),
        pytest.param(bedrock_support.provider_config("http://bedrock.test"), id="bedrock"),
    ],
)
@pytest.mark.parametrize("model", [".", ".."])
async def test_a_dot_segment_model_is_refused_not_resolved(settings: dict[str, Any], model: str) -> None:
    """``/openai/deployments/../chat/completions`` is normalised to ``/openai/chat/completions``
    (by httpx, and by yarl even from ``%2E%2E``): the client would pick the upstream path."""
    upstream = provider(settings)
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={})

    async with serving(answer) as http:
        call = call_for(http)
        call.model = model
        with pytest.raises(InvalidModelError) as raised:
            await upstream.complete(call)
    assert raised.value.status_code == 400
    assert not sent


def test_path_segment_keeps_everything_in_one_segment() -> None:
    for value in ("../x", "a/b", "m?k=v", "m#f", "u@evil.example", "http://evil.example/", "%2e%2e", "..."):
        segment = path_segment(value)
        assert "/" not in segment and "?" not in segment and "#" not in segment
        assert segment not in (".", "..")


# -- only the trace context goes upstream -------------------------------------------------------------


async def test_baggage_never_reaches_the_upstream(monkeypatch: pytest.MonkeyPatch) -> None:
    """The global propagator also injects W3C baggage: the client's (joined from its request) and
    the host's would have gone to the LLM provider with every call."""
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json=completion())

    monkeypatch.setattr(runtime_module, "upstream_transport", lambda config: httpx.MockTransport(answer))
    gateway = Gateway(
        {"providers": {"openai": {"api_key": "k", "base_url": "http://openai.test/v1"}}},
        tracer_provider=TracerProvider(),
    )
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    headers = {"traceparent": f"00-{trace_id}-b7ad6b7169203331-01", "baggage": "tenant=acme,user=alice"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://gw") as client:
        body = {**CHAT, "model": "openai:gpt-4o-mini"}
        response = await client.post("/v1/chat/completions", json=body, headers=headers)
    assert response.status_code == 200
    assert sent[0].headers["traceparent"].split("-")[1] == trace_id  # the trace continues upstream
    assert "baggage" not in sent[0].headers
    await gateway.aclose()


# -- Vertex access tokens are scrubbed --------------------------------------------------------------


def test_a_google_access_token_in_upstream_text_is_scrubbed() -> None:
    """Vertex sends an OAuth access token, not a configured key, so only a pattern can catch it when
    an upstream (or a proxy in front of it) quotes it back."""
    from rec_llm_gateway.errors import scrub_secrets

    token = "ya29.a0AfB_byC-FAKE_token.value-0123456789"
    scrubbed = scrub_secrets(f"Request had invalid credentials: {token} (expired)")
    assert token not in scrubbed and "ya29" not in scrubbed
    assert scrubbed.endswith("[redacted] (expired)")


# -- the config's repr hides type-specific secrets -----------------------------------------------------


def test_the_gateway_config_repr_hides_type_specific_secrets() -> None:
    """``gateway.config.providers[...]`` holds type-specific settings as plain extras (the provider's
    own settings model makes them SecretStr): ``repr(gateway.config)`` showed the AWS secret key."""
    from rec_llm_gateway import GatewayConfig

    session_token = "FwoGZXIvYXdzSESSIONtokenREPR0123456789"
    config = GatewayConfig.load(
        {
            "providers": {
                "aws": bedrock_support.provider_config("http://b.test", aws_session_token=session_token)
            }
        }
    )
    shown = repr(config) + str(config) + repr(config.providers["aws"])
    for secret in (bedrock_support.SECRET_KEY, session_token, bedrock_support.ACCESS_KEY):
        assert secret not in shown
    assert "us-east-1" in shown  # other type-specific settings still show


# -- botocore's DEBUG log of the canonical request ---------------------------------------------------


def test_botocore_debug_logs_never_show_the_session_token(caplog: pytest.LogCaptureFixture) -> None:
    """With temporary credentials the signed ``x-amz-security-token`` header is part of the canonical
    request, which botocore logs at DEBUG."""
    from rec_llm_gateway.providers.bedrock.auth import AWSSigner

    session_token = "FwoGZXIvYXdzSESSIONtokenLOG0123456789"
    signer = AWSSigner(
        "us-east-1",
        access_key=bedrock_support.ACCESS_KEY,
        secret_key=bedrock_support.SECRET_KEY,
        session_token=session_token,
    )
    caplog.set_level(logging.DEBUG)
    url = "https://bedrock-runtime.us-east-1.amazonaws.com/model/m/converse"
    signed = signer.sign("POST", url, {"content-type": "application/json"}, b"{}", signer._frozen)
    assert signed["x-amz-security-token"] == session_token  # the request itself still carries it
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "CanonicalRequest" in logged
    assert "x-amz-security-token:[redacted]" in logged
    for secret in (session_token, bedrock_support.SECRET_KEY):
        assert secret not in logged


# -- readable 5xx messages -------------------------------------------------------------------------


def test_a_5xx_without_a_json_message_names_the_upstream_once() -> None:
    from rec_llm_gateway.providers.upstream_errors import error_from_openai_body

    html = error_from_openai_body(503, httpx.Headers(), b"<html>Service Unavailable</html>", "p")
    assert html.message == "upstream 'p' returned HTTP 503: <html>Service Unavailable</html>"
    empty = error_from_openai_body(500, httpx.Headers(), b"", "p")
    assert empty.message == "upstream 'p' returned HTTP 500"
    described = error_from_openai_body(500, httpx.Headers(), b'{"error": {"message": "boom"}}', "p")
    assert described.message == "upstream 'p' failed with HTTP 500: boom"


# -- a body cut off has one code, streaming or not ------------------------------------------------


class Broken(httpx.AsyncByteStream):
    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b'{"id": "chatcmpl-1", "choi'
        raise httpx.ReadError("connection reset by peer")


async def test_a_body_cut_off_is_upstream_connection_error_like_a_cut_stream() -> None:
    openai = provider({"type": "openai", "base_url": "http://openai.test/v1"})

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "application/json"}, stream=Broken())

    async with serving(answer) as http:
        with pytest.raises(BadGatewayError) as raised:
            await openai.complete(call_for(http))
    assert (raised.value.status_code, raised.value.code) == (502, "upstream_connection_error")
