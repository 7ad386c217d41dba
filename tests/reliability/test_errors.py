"""Every row of DESIGN.md's error table: the bad input goes in, the status and OpenAI envelope come out."""

from __future__ import annotations

import json
import socket
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from rec_llm_gateway import Gateway, RequestRejected, hookimpl
from rec_llm_gateway.providers.base import Provider

from ..conftest import GATEWAY_KEY, PROVIDER_KEY
from ..support import Reply, completion, gateway_server

CHAT = {"model": "openai:gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def assert_envelope(
    response: httpx.Response, status: int, *, code: str | None = None, type_: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code
    if type_ is not None:
        assert error["type"] == type_
    assert "Traceback" not in response.text
    return error


@pytest.fixture
def server(openai_config):
    with gateway_server(openai_config) as (url, gateway):
        yield url, gateway


def post(
    url: str, body: Any = None, *, content: bytes | None = None, headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", json=body, content=content, headers=headers, timeout=10)


@pytest.mark.parametrize(
    ("content", "param", "code"),
    [
        (b"{not json", None, "invalid_json"),
        (b"\xff\xfe\x00garbage", None, "invalid_json"),
        (b"[1, 2, 3]", None, "invalid_body"),
        (b"", None, "invalid_json"),
        (
            json.dumps({"messages": [{"role": "user", "content": "x"}]}).encode(),
            "model",
            "missing_required_parameter",
        ),
        (json.dumps({"model": "gpt-4o-mini"}).encode(), "messages", "missing_required_parameter"),
        (json.dumps({"model": "gpt-4o-mini", "messages": []}).encode(), "messages", None),
        (
            json.dumps({"model": 5, "messages": [{"role": "user", "content": "x"}]}).encode(),
            "model",
            "invalid_type",
        ),
        (json.dumps({**CHAT, "temperature": "hot"}).encode(), "temperature", "invalid_type"),
        (json.dumps({**CHAT, "stream": "yes"}).encode(), "stream", "invalid_type"),
        (
            json.dumps({"model": "m", "messages": [{"role": "wizard", "content": "x"}]}).encode(),
            "messages[0]",
            "invalid_value",
        ),
        (json.dumps({"model": "m", "messages": [{"content": "x"}]}).encode(), "messages[0]", None),
        (json.dumps({"model": "m", "messages": "hello"}).encode(), "messages", None),
        (
            json.dumps(
                {"model": "m", "messages": [{"role": "user", "content": [{"type": "video"}]}]}
            ).encode(),
            "messages[0].content[0]",
            None,
        ),
    ],
)
def test_400_for_bad_bodies(server, upstream, content: bytes, param: str | None, code: str | None) -> None:
    url, _ = server
    error = assert_envelope(
        post(url, content=content, headers={"content-type": "application/json"}), 400, code=code
    )
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert not upstream.requests, "a bad request must never reach the upstream"


@pytest.mark.parametrize("model", ["invalid::model", ":gpt-4", "openai:", "", "   ", "openai: gpt-4o"])
def test_400_invalid_model(server, upstream, model: str) -> None:
    url, _ = server
    error = assert_envelope(post(url, {**CHAT, "model": model}), 400, code="invalid_model")
    assert error["param"] == "model"


def test_404_unknown_provider_and_route(server) -> None:
    url, _ = server
    error = assert_envelope(post(url, {**CHAT, "model": "nope:gpt-4o"}), 404, code="model_not_found")
    assert "nope" in error["message"]
    assert_envelope(httpx.get(f"{url}/v1/nothing-here"), 404, code="not_found")
    assert_envelope(httpx.get(f"{url}/v1/models/nope:gpt-4o"), 404, code="model_not_found")
    assert_envelope(httpx.get(f"{url}/v1/models/openai:"), 404, code="model_not_found")


def test_404_when_no_provider_serves_an_unprefixed_model(upstream) -> None:
    config = {
        "providers": {
            "a": {"type": "openai", "base_url": f"{upstream.url}/v1", "models": ["x"]},
            "b": {"type": "openai", "base_url": f"{upstream.url}/v1", "models": ["y"]},
        }
    }
    with gateway_server(config) as (url, _):
        assert_envelope(post(url, {**CHAT, "model": "unknown-model"}), 404, code="model_not_found")
        assert_envelope(httpx.get(f"{url}/v1/models/unknown-model"), 404, code="model_not_found")


def test_405_wrong_method(server) -> None:
    url, _ = server
    response = httpx.get(f"{url}/v1/chat/completions")
    assert_envelope(response, 405, code="method_not_allowed")
    assert response.headers["allow"] == "POST"


def test_401_gateway_key(openai_config, upstream) -> None:
    config = {**openai_config, "auth": {"api_keys": [GATEWAY_KEY]}}
    with gateway_server(config) as (url, _):
        assert_envelope(post(url, CHAT), 401, code="missing_api_key", type_="authentication_error")
        assert_envelope(
            post(url, CHAT, headers={"authorization": "Bearer wrong"}), 401, code="invalid_api_key"
        )
        assert_envelope(post(url, CHAT, headers={"x-api-key": GATEWAY_KEY + "x"}), 401)
        assert post(url, CHAT, headers={"authorization": f"Bearer {GATEWAY_KEY}"}).status_code == 200
        assert post(url, CHAT, headers={"x-api-key": GATEWAY_KEY}).status_code == 200
        # the client's credential is never forwarded upstream
        assert upstream.last.headers["authorization"] == f"Bearer {PROVIDER_KEY}"
        assert "x-api-key" not in upstream.last.headers
        assert_envelope(httpx.get(f"{url}/v1/models"), 401)
        assert httpx.get(f"{url}/health").status_code == 200  # liveness stays open


def test_403_rejected_by_hook(openai_config, upstream) -> None:
    class Policy:
        @hookimpl
        def pre_request(self, request):
            raise RequestRejected("not today", code="policy")

    with gateway_server(openai_config, plugins=[Policy()]) as (url, _):
        error = assert_envelope(post(url, CHAT), 403, code="policy", type_="permission_error")
        assert error["message"] == "not today"
    assert not upstream.requests


def _raw_post(url: str, head_body: bytes, then: bytes = b"", pause: float = 0.0) -> tuple[bytes, float]:
    """Send a request in two parts over a socket; the raw response and seconds until it arrived."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        started = time.monotonic()
        sock.sendall(head_body)
        if then:
            time.sleep(pause)
            sock.sendall(then)
        response = b""
        while b"\r\n\r\n" not in response or not response.endswith(b"}"):
            data = sock.recv(65536)
            if not data:
                break
            response += data
        return response, time.monotonic() - started


def test_408_body_stalls_past_the_timeout(openai_config, upstream) -> None:
    config = {**openai_config, "limits": {"body_timeout_seconds": 0.5}}
    body = json.dumps(CHAT).encode()
    with gateway_server(config) as (url, _):
        path = urlsplit(url).path + "/v1/chat/completions"
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        # half the body, then nothing: answered once the limit passes, not when the client gives up
        response, seconds = _raw_post(url, head + body[:10])
        assert response.startswith(b"HTTP/1.1 408 "), response
        error = json.loads(response.split(b"\r\n\r\n", 1)[1])["error"]
        assert error["code"] == "request_timeout" and error["type"] == "invalid_request_error"
        assert 0.4 < seconds < 5
        # a body that arrives slowly but within the limit is served
        response, _ = _raw_post(url, head + body[:10], body[10:], pause=0.2)
        assert response.startswith(b"HTTP/1.1 200 "), response
    assert len(upstream.requests) == 1


def test_413_body_too_large(openai_config) -> None:
    config = {**openai_config, "limits": {"max_body_bytes": 1000}}
    with gateway_server(config) as (url, _):
        big = {**CHAT, "messages": [{"role": "user", "content": "x" * 2000}]}
        assert_envelope(post(url, big), 413, code="request_too_large")

        # without a content-length (chunked upload) the cap still holds
        def body():
            yield json.dumps(big).encode()

        response = httpx.post(
            f"{url}/v1/chat/completions", content=body(), headers={"content-type": "application/json"}
        )
        assert_envelope(response, 413)


def test_default_body_cap_is_10_mib(upstream, openai_config) -> None:
    assert Gateway(openai_config).config.limits.max_body_bytes == 10 * 1024 * 1024


def test_upstream_4xx_keeps_status_and_message(server, upstream) -> None:
    url, _ = server
    upstream.reply(
        Reply(
            status=404,
            json={
                "error": {
                    "message": "The model `gpt-9` does not exist",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "model_not_found",
                }
            },
        )
    )
    error = assert_envelope(post(url, CHAT), 404, code="model_not_found", type_="invalid_request_error")
    assert error["message"] == "The model `gpt-9` does not exist"


def test_upstream_429_keeps_retry_after(server, upstream) -> None:
    url, _ = server
    upstream.reply(
        Reply(
            status=429,
            json={"error": {"message": "slow down", "type": "requests"}},
            headers={"retry-after": "7"},
        )
    )
    response = post(url, CHAT)
    assert_envelope(response, 429)
    assert response.headers["retry-after"] == "7"


@pytest.mark.parametrize("status", [500, 502, 503])
def test_upstream_5xx_is_502(server, upstream, status: int) -> None:
    url, _ = server
    upstream.reply(Reply(status=status, json={"error": {"message": "boom", "type": "server_error"}}))
    error = assert_envelope(post(url, CHAT), 502, type_="upstream_error")
    assert "boom" in error["message"]


@pytest.mark.parametrize(
    "reply",
    [
        Reply(body=b"<html>oops</html>", content_type="text/html"),
        Reply(json={"unexpected": True}),
        Reply(json=[1, 2]),
        Reply(body=completion().__repr__().encode()[:40], content_type="application/json"),
    ],
    ids=["html", "no-choices", "array", "truncated-json"],
)
def test_upstream_garbage_is_502(server, upstream, reply: Reply) -> None:
    url, _ = server
    upstream.reply(reply)
    assert_envelope(post(url, CHAT), 502)


def test_upstream_200_with_error_body_is_an_error(server, upstream) -> None:
    url, _ = server
    upstream.reply(Reply(json={"error": {"message": "model overloaded", "type": "server_error"}}))
    error = assert_envelope(post(url, CHAT), 502)
    assert "overloaded" in error["message"]


def test_upstream_connection_refused_is_503() -> None:
    """No deployment reachable: 503 (DESIGN: "503 no healthy provider"), naming the cause."""
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    config = {"providers": {"openai": {"base_url": f"http://127.0.0.1:{port}/v1", "api_key": PROVIDER_KEY}}}
    with gateway_server(config) as (url, _):
        error = assert_envelope(post(url, CHAT), 503, code="service_unavailable")
        assert "could not connect to upstream 'openai'" in error["message"]


def test_upstream_timeout_is_504(upstream) -> None:
    config = {"providers": {"openai": {"base_url": f"{upstream.url}/v1", "timeout": 0.3}}}
    with gateway_server(config) as (url, _):
        upstream.reply(Reply(delay=2))
        assert_envelope(post(url, CHAT), 504, code="upstream_timeout")
        upstream.reply(Reply(sse=["data: {}\n\n"], delay=2))
        assert_envelope(post(url, {**CHAT, "stream": True}), 504)
        # the pool is healthy afterwards
        assert post(url, CHAT).status_code == 200


def test_500_for_a_provider_bug(upstream) -> None:
    class Broken(Provider):
        type_name = "broken"

        async def complete(self, call):
            raise ZeroDivisionError("secret internals")

    class Plugin:
        @hookimpl
        def register_providers(self):
            return {"broken": Broken}

    with gateway_server({"providers": {"broken": {}}}, plugins=[Plugin()]) as (url, _):
        error = assert_envelope(post(url, CHAT | {"model": "broken:x"}), 500, code="internal_error")
        assert "secret internals" not in error["message"]


def test_errors_on_admin_routes_use_the_envelope(openai_config) -> None:
    config = {**openai_config, "auth": {"api_keys": [GATEWAY_KEY], "admin_keys": ["admin-key-123"]}}
    with gateway_server(config) as (url, _):
        assert_envelope(httpx.get(f"{url}/providers"), 401)
        assert_envelope(httpx.get(f"{url}/usage", headers={"x-api-key": GATEWAY_KEY}), 403)
        assert_envelope(httpx.get(f"{url}/providers", headers={"x-api-key": GATEWAY_KEY}), 403)
        assert httpx.get(f"{url}/usage", headers={"x-api-key": "admin-key-123"}).status_code == 200
        assert_envelope(
            httpx.get(f"{url}/providers/nope/health", headers={"x-api-key": "admin-key-123"}), 404
        )
        assert_envelope(httpx.post(f"{url}/usage", headers={"x-api-key": "admin-key-123"}), 405)
