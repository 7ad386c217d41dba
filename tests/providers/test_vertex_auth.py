"""Vertex AI credentials: the token cache (controllable clock, no sleeps), google-auth against a
loopback token endpoint, settings and URLs, and the missing-extra message."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rec_llm_gateway import ConfigError, Gateway
from rec_llm_gateway.errors import BadGatewayError
from rec_llm_gateway.providers.base import UpstreamCall
from rec_llm_gateway.providers.gemini import VertexProvider, VertexSettings
from rec_llm_gateway.providers.gemini.auth import GoogleCredentials, Token, TokenCache, read_credentials_file
from rec_llm_gateway.schema import ChatCompletionRequest

from ..gemini_support import gemini_upstream, service_account_file
from ..support import FakeUpstream, serve_fake


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Fetcher:
    """A blocking token source that issues token-1, token-2, ... valid for ``lifetime`` seconds."""

    def __init__(self, clock: Clock, lifetime: float | None = 3600.0) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.calls = 0
        self.threads: set[int] = set()

    def __call__(self) -> Token:
        self.calls += 1
        self.threads.add(threading.get_ident())
        expires = None if self.lifetime is None else self.clock() + self.lifetime
        return Token(f"token-{self.calls}", expires)


async def test_token_is_cached_until_the_margin_before_expiry() -> None:
    clock = Clock()
    fetch = Fetcher(clock)
    cache = TokenCache(fetch, clock=clock, margin=300)
    assert not cache.fresh()
    assert await cache.get() == "token-1"
    clock.now += 3600 - 300 - 1  # one second before the refresh point
    assert await cache.get() == "token-1"
    assert fetch.calls == 1
    clock.now += 1  # at the refresh point: the token still works, but not for long enough
    assert await cache.get() == "token-2"
    assert fetch.calls == 2 and cache.fresh()
    assert threading.get_ident() not in fetch.threads  # refreshed in a worker thread, off the loop


async def test_token_without_expiry_is_kept() -> None:
    clock = Clock()
    fetch = Fetcher(clock, lifetime=None)
    cache = TokenCache(fetch, clock=clock)
    assert await cache.get() == "token-1"
    clock.now += 10**9
    assert await cache.get() == "token-1" and fetch.calls == 1


async def test_concurrent_requests_share_one_refresh() -> None:
    clock = Clock()
    started, release = threading.Event(), threading.Event()
    threads: set[int] = set()

    def slow_fetch() -> Token:
        threads.add(threading.get_ident())
        started.set()
        assert release.wait(10), "never released"
        return Token("shared", clock() + 3600)

    cache = TokenCache(slow_fetch, clock=clock)
    refreshes = []
    refresh = cache._refresh
    cache._refresh = lambda: refreshes.append(1) or refresh()  # type: ignore[method-assign]
    waiting = [asyncio.create_task(cache.get()) for _ in range(8)]
    # The loop stays free while the fetch blocks its worker thread: this await completes first.
    assert await asyncio.to_thread(started.wait, 10)
    waiting[0].cancel()  # one waiter giving up does not cancel the refresh the others wait on
    release.set()
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert isinstance(results[0], asyncio.CancelledError)
    assert results[1:] == ["shared"] * 7
    assert len(threads) == 1 and len(refreshes) == 1  # one exchange, holding one worker thread
    assert await cache.get() == "shared"


async def test_fetch_failures_become_bad_gateway() -> None:
    def broken() -> Token:
        raise OSError("connection refused")

    with pytest.raises(BadGatewayError) as caught:
        await TokenCache(broken).get()
    assert caught.value.code == "upstream_auth_failed" and "connection refused" in caught.value.message
    with pytest.raises(BadGatewayError):
        await TokenCache(lambda: Token("", None)).get()


# -- google-auth against a loopback token endpoint --------------------------------------------------------


@pytest.fixture(scope="module")
def token_server() -> Iterator[FakeUpstream]:
    with serve_fake(gemini_upstream) as fake:
        yield fake


async def test_service_account_token_exchange(token_server: FakeUpstream, tmp_path: Path) -> None:
    path = service_account_file(tmp_path, f"{token_server.url}/token")
    credentials = GoogleCredentials(read_credentials_file(str(path), "here"))
    cache = TokenCache(credentials)
    before = time.time()
    assert await cache.get() == "ya29.fake-access-token"
    assert credentials.project == "test-project"
    token = cache._token
    assert token is not None and token.expires_at is not None
    assert before + 3000 < token.expires_at < time.time() + 3700  # from expires_in: 3599
    assert await cache.get() == "ya29.fake-access-token"
    assert [request.path for request in token_server.requests].count("/token") == 1


def test_credentials_file_checks(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        read_credentials_file(str(tmp_path / "missing.json"), "providers.v.credentials_file")
    odd = tmp_path / "external.json"
    odd.write_text(json.dumps({"type": "external_account"}))
    with pytest.raises(ConfigError, match="GOOGLE_APPLICATION_CREDENTIALS"):
        read_credentials_file(str(odd), "providers.v.credentials_file")


# -- settings, URLs and the missing extra ------------------------------------------------------------------


def vertex(**settings: Any) -> VertexProvider:
    provider = Gateway({"providers": {"v": {"type": "vertex", **settings}}}).providers["v"]
    assert isinstance(provider, VertexProvider)
    return provider


def test_vertex_urls(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    monkeypatch.delenv("GOOGLE_CLOUD_LOCATION", raising=False)
    regional = vertex(project_id="p1", location="europe-west4")
    assert regional.base_url == "https://europe-west4-aiplatform.googleapis.com/v1beta1"
    assert regional.model_url("gemini-2.5-flash") == (
        "https://europe-west4-aiplatform.googleapis.com/v1beta1/projects/p1/locations/europe-west4"
        "/publishers/google/models/gemini-2.5-flash"
    )
    assert (regional.server_address, regional.server_port) == ("europe-west4-aiplatform.googleapis.com", 443)
    default = vertex(project_id="p1", api_version="v1")
    assert default.model_url("models/x") == (
        "https://aiplatform.googleapis.com/v1/projects/p1/locations/global/publishers/google/models/x"
    )
    assert default.describe()["location"] == "global"
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "from-env")
    monkeypatch.setenv("GOOGLE_CLOUD_LOCATION", "us-east5")
    from_env = vertex()
    assert from_env.model_url("m").startswith(
        "https://us-east5-aiplatform.googleapis.com/v1beta1/projects/from-env/"
    )
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT")
    path = service_account_file(tmp_path, "http://127.0.0.1:9/token", project="file-project")
    assert "/projects/file-project/" in vertex(credentials_file=str(path)).model_url("m")
    with pytest.raises(BadGatewayError, match="no project"):
        vertex().model_url("m")  # ADC without a project anywhere


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"location": "evil.example.com/x"}, "not a Google Cloud location"),
        ({"project_id": "bad project"}, "not a Google Cloud project id"),
        ({"api_key": "AIza-something"}, "use type 'gemini'"),
        ({"credentials_file": "/nonexistent/sa.json"}, "cannot read"),
        ({"api_version": "v2"}, "api_version"),
    ],
)
def test_vertex_settings_are_checked(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        vertex(**settings)


def test_missing_google_auth_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "google.auth", None)  # as if it were not installed
    with pytest.raises(ConfigError) as caught:
        vertex(project_id="p")
    assert "pip install 'rec-llm-gateway[vertex]'" in str(caught.value)
    assert "providers.v" in str(caught.value)


def test_import_stays_light() -> None:
    import subprocess

    code = (
        "import sys, rec_llm_gateway; from rec_llm_gateway.providers import gemini; "
        "print(sorted(m for m in sys.modules if m.startswith(('google', 'requests', 'cryptography'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


async def test_vertex_stream_closes_the_upstream_response_when_abandoned() -> None:
    closed = []

    class Body(httpx.AsyncByteStream):
        async def __aiter__(self) -> Any:
            for word in ("a", "b", "c"):
                event = {"candidates": [{"content": {"parts": [{"text": word}]}}]}
                yield b"data: " + json.dumps(event).encode() + b"\r\n\r\n"

        async def aclose(self) -> None:
            closed.append(True)

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Bearer t-1"
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Body())

    provider = vertex(project_id="p")
    provider.tokens = TokenCache(lambda: Token("t-1", None))
    request = ChatCompletionRequest.from_json(
        b'{"model": "m", "messages": [{"role": "user", "content": "x"}]}'
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        call = UpstreamCall(request=request, model="gemini-2.5-flash", http=http, request_id="r", stream=True)
        stream = provider.stream(call)
        first = await anext(stream)
        assert first["choices"][0]["delta"]["role"] == "assistant"
        await stream.aclose()  # type: ignore[attr-defined]
    assert closed == [True]
    assert VertexSettings.model_fields["location"].default is None


def test_provider_types_and_catalog() -> None:
    from rec_llm_gateway.catalog import lookup, models_for
    from rec_llm_gateway.providers.registry import BUILTIN_TYPES

    assert {"gemini", "vertex"} <= set(BUILTIN_TYPES)
    gateway = Gateway({"providers": {"gemini": {"api_key": "k"}, "vertex": {"project_id": "p"}}})
    gemini, vertex = gateway.providers["gemini"], gateway.providers["vertex"]
    assert (gemini.otel_provider_name, vertex.otel_provider_name) == ("gcp.gemini", "gcp.vertex_ai")
    assert (gemini.price_provider, vertex.price_provider) == ("google", "google")
    assert gemini.family_prefixes == ("gemini-",) and vertex.family_prefixes == ()
    assert gemini.base_url == "https://generativelanguage.googleapis.com/v1beta"
    assert "gemini-2.5-flash" in gemini.model_ids() and "gemini-2.5-flash" in vertex.model_ids()
    assert [info.id for info in models_for("gemini")] == [info.id for info in models_for("vertex")]
    info = lookup("gemini-2.5-flash-preview-09-2025", "vertex")
    assert info is not None and (info.context_window, info.max_output, info.provider) == (
        1_048_576,
        65_536,
        "vertex",
    )
