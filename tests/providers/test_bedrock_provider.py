"""The Bedrock provider: settings, SigV4 and bearer auth, credential resolution, URLs, health, imports."""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from rec_llm_gateway import Gateway
from rec_llm_gateway.config import ProviderConfig
from rec_llm_gateway.errors import ConfigError, GatewayError, ServiceUnavailableError
from rec_llm_gateway.providers.base import UpstreamCall
from rec_llm_gateway.providers.bedrock import BedrockProvider
from rec_llm_gateway.providers.registry import ProviderRegistry
from rec_llm_gateway.schema import ChatCompletionRequest

from ..bedrock_support import (
    ACCESS_KEY,
    API_KEY,
    EVENTSTREAM,
    REGION,
    SECRET_KEY,
    SESSION_TOKEN,
    converse,
    expected_signature,
    isolate_aws,
    text_frames,
)

BASE = "https://bedrock-runtime.us-east-1.amazonaws.com"


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_aws(monkeypatch, tmp_path)


def build(**settings: Any) -> BedrockProvider:
    provider = ProviderRegistry().build(
        "bedrock", ProviderConfig.model_validate({"region": REGION, **settings})
    )
    assert isinstance(provider, BedrockProvider)
    return provider


def keyed(**settings: Any) -> BedrockProvider:
    return build(aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, **settings)


class Capture:
    """An httpx MockTransport that records requests and answers a Converse body."""

    def __init__(self, status: int = 200, json: Any = None) -> None:
        self.requests: list[httpx.Request] = []
        self.status = status
        self.json = json if json is not None else converse([{"text": "ok"}])

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status, json=self.json)


async def complete(
    provider: BedrockProvider, capture: Capture, model: str = "us.amazon.nova-micro-v1:0"
) -> dict[str, Any]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(capture)) as http:
        request = ChatCompletionRequest.model_validate(
            {"model": model, "messages": [{"role": "user", "content": "hi"}]}
        )
        call = UpstreamCall(request=request, model=model, http=http, request_id="req-1")
        result = await provider.complete(call)
    return result.response


def assert_signed(request: httpx.Request, session_token: str | None = None) -> None:
    headers = {name.lower(): value for name, value in request.headers.items()}
    authorization = headers["authorization"]
    assert authorization.startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/")
    assert f"/{REGION}/bedrock/aws4_request" in authorization
    signed = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    assert {"host", "x-amz-date"} <= set(signed)
    assert request.method == "GET" or "content-type" in signed
    signature = authorization.rsplit("Signature=", 1)[1]
    body = request.content
    assert signature == expected_signature(
        request.method, str(request.url), headers, body, session_token=session_token
    )
    assert headers.get("x-amz-security-token") == session_token


# -- settings -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "region: required for type 'bedrock'"),
        ({"region": "US East"}, "is not an AWS region name"),
        ({"region": REGION, "aws_access_key_id": ACCESS_KEY}, "must be set together"),
        ({"region": REGION, "aws_session_token": SESSION_TOKEN}, "needs aws_access_key_id"),
        (
            {
                "region": REGION,
                "aws_access_key_id": ACCESS_KEY,
                "aws_secret_access_key": SECRET_KEY,
                "aws_profile": "p",
            },
            "not both",
        ),
        ({"region": REGION, "api_key": API_KEY, "aws_profile": "p"}, "not both"),
        ({"region": REGION, "regoin": "typo"}, "regoin: unknown setting"),
    ],
)
def test_invalid_settings_name_the_path(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        Gateway({"providers": {"bedrock": settings}})
    assert "providers.bedrock" in str(caught.value)
    assert SECRET_KEY not in str(caught.value)


def test_provider_basics() -> None:
    provider = keyed()
    assert provider.type == "bedrock" and provider.otel_provider_name == "aws.bedrock"
    assert provider.price_provider == "aws"
    assert provider.base_url == BASE
    assert (provider.server_address, provider.server_port) == ("bedrock-runtime.us-east-1.amazonaws.com", 443)
    assert SECRET_KEY in provider.secrets and ACCESS_KEY in provider.secrets
    description = provider.describe()
    assert description["region"] == REGION
    assert SECRET_KEY not in repr(description) and SECRET_KEY not in repr(provider.settings)
    models = provider.model_ids()
    assert "us.anthropic.claude-sonnet-4-5-20250929-v1:0" in models  # inference-profile ids in us-*
    assert "amazon.nova-micro-v1:0" in models
    assert (
        "eu.anthropic.claude-sonnet-4-5-20250929-v1:0"
        in build(region="eu-west-1", api_key=API_KEY).model_ids()
    )


def test_urls_encode_the_model_id() -> None:
    provider = keyed()
    assert (
        provider.url("us.amazon.nova-micro-v1:0", False)
        == f"{BASE}/model/us.amazon.nova-micro-v1%3A0/converse"
    )
    arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-haiku-20240307-v1:0"
    assert provider.url(arn, True) == (
        f"{BASE}/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2F"
        "us.anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream"
    )
    assert (
        build(api_key=API_KEY, base_url="http://127.0.0.1:9/").url("m", False)
        == "http://127.0.0.1:9/model/m/converse"
    )


# -- auth ------------------------------------------------------------------------------------------


async def test_explicit_keys_sign_with_sigv4() -> None:
    capture = Capture()
    response = await complete(keyed(headers={"X-Team": "search"}), capture)
    assert response["choices"][0]["message"]["content"] == "ok"
    [request] = capture.requests
    assert request.url.raw_path == b"/model/us.amazon.nova-micro-v1%3A0/converse"
    assert request.headers["x-team"] == "search"
    assert_signed(request)


async def test_session_token_is_sent_and_signed() -> None:
    capture = Capture()
    await complete(keyed(aws_session_token=SESSION_TOKEN), capture)
    assert_signed(capture.requests[0], session_token=SESSION_TOKEN)
    assert "x-amz-security-token" in capture.requests[0].headers["authorization"]


async def test_api_key_is_a_bearer_token_and_needs_no_signing() -> None:
    capture = Capture()
    await complete(build(api_key=API_KEY), capture)
    assert capture.requests[0].headers["authorization"] == f"Bearer {API_KEY}"
    assert "x-amz-date" not in capture.requests[0].headers


async def test_bearer_token_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", API_KEY)
    provider = build()
    capture = Capture()
    await complete(provider, capture)
    assert capture.requests[0].headers["authorization"] == f"Bearer {API_KEY}"
    assert API_KEY in provider.secrets
    # explicit AWS keys win over the environment's bearer token
    capture = Capture()
    await complete(keyed(), capture)
    assert_signed(capture.requests[0])


async def test_credential_chain_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    capture = Capture()
    await complete(build(), capture)
    assert_signed(capture.requests[0])


async def test_named_profile(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text(
        f"[work]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n"
        f"aws_session_token = {SESSION_TOKEN}\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    capture = Capture()
    await complete(build(aws_profile="work"), capture)
    assert_signed(capture.requests[0], session_token=SESSION_TOKEN)


async def test_missing_credentials_are_a_503_without_calling_upstream() -> None:
    capture = Capture()
    with pytest.raises(ServiceUnavailableError) as caught:
        await complete(build(), capture)
    assert caught.value.status_code == 503 and caught.value.code == "aws_credentials_unavailable"
    assert capture.requests == []
    with pytest.raises(ServiceUnavailableError, match="nosuchprofile"):
        await complete(build(aws_profile="nosuchprofile"), capture)


async def test_credentials_are_cached_and_refreshed_off_the_event_loop() -> None:
    from botocore.credentials import RefreshableCredentials

    provider = build(aws_profile="unused")
    refreshed_in: list[threading.Thread] = []

    def refresh() -> dict[str, str]:
        refreshed_in.append(threading.current_thread())
        expiry = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        return {
            "access_key": ACCESS_KEY,
            "secret_key": SECRET_KEY,
            "token": SESSION_TOKEN,
            "expiry_time": expiry.isoformat(),
        }

    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60)  # inside botocore's refresh window
    signer = provider._signer
    signer._source = RefreshableCredentials(ACCESS_KEY, "old-secret", None, soon, refresh, "test")
    signer._frozen = object()  # stale: the next request must refresh
    capture = Capture()
    await complete(provider, capture)
    await complete(provider, capture)
    assert len(refreshed_in) == 1 and refreshed_in[0] is not threading.main_thread()
    for request in capture.requests:
        assert_signed(request, session_token=SESSION_TOKEN)


def test_a_missing_botocore_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "botocore", None)
    with pytest.raises(ConfigError, match=r"pip install 'rec-llm-gateway\[bedrock\]'"):
        Gateway({"providers": {"bedrock": {"region": REGION}}})
    Gateway({"providers": {"bedrock": {"region": REGION, "api_key": API_KEY}}})  # bearer needs no botocore


def test_botocore_is_imported_only_for_a_sigv4_provider(tmp_path: Path) -> None:
    code = (
        "import sys, rec_llm_gateway\n"
        "assert 'botocore' not in sys.modules\n"
        "g = rec_llm_gateway.Gateway({'providers': {'b': {'type': 'bedrock', 'region': 'us-east-1',\n"
        "    'api_key': 'k'}}})\n"
        "assert 'botocore' not in sys.modules, 'bearer provider imported botocore'\n"
        "g = rec_llm_gateway.Gateway({'providers': {'b': {'type': 'bedrock', 'region': 'us-east-1',\n"
        "    'aws_access_key_id': 'AKIDX', 'aws_secret_access_key': 's'}}})\n"
        "assert 'botocore' in sys.modules\n"
    )
    env = {"PATH": "/usr/bin:/bin", "AWS_EC2_METADATA_DISABLED": "true", "HOME": str(tmp_path)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)


# -- health ----------------------------------------------------------------------------------------


async def test_health_check_is_a_signed_control_plane_call() -> None:
    capture = Capture(json={"modelSummaries": []})
    provider = keyed()
    async with httpx.AsyncClient(transport=httpx.MockTransport(capture)) as http:
        await provider.check_health(http)
    [request] = capture.requests
    assert request.method == "GET"
    assert (
        str(request.url) == "https://bedrock.us-east-1.amazonaws.com/foundation-models?byOutputModality=TEXT"
    )
    assert_signed(request)


async def test_health_check_reports_refused_credentials() -> None:
    capture = Capture(
        status=403, json={"message": f"The security token included in the request is invalid. {SECRET_KEY}"}
    )
    provider = keyed(control_plane_url="http://127.0.0.1:1")
    async with httpx.AsyncClient(transport=httpx.MockTransport(capture)) as http:
        with pytest.raises(GatewayError) as caught:
            await provider.check_health(http)
    assert caught.value.status_code == 403
    assert "security token" in caught.value.message and SECRET_KEY not in caught.value.message
    assert str(capture.requests[0].url).startswith("http://127.0.0.1:1/foundation-models")


async def test_health_check_connection_failure() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as http:
        with pytest.raises(GatewayError) as caught:
            await build(api_key=API_KEY).check_health(http)
    assert caught.value.status_code == 502


def test_build_request_alone_explains_itself() -> None:
    provider = build(api_key=API_KEY)
    request = ChatCompletionRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    )
    with pytest.raises(NotImplementedError, match="build_request_async"):
        provider.build_request(UpstreamCall(request=request, model="m", http=None, request_id="r"))  # type: ignore[arg-type]
    assert asyncio.iscoroutinefunction(provider.build_request_async)


class HangingEventStream(httpx.AsyncByteStream):
    """A ConverseStream body that sends a first frame, then waits forever; records its closing."""

    def __init__(self) -> None:
        self.closed = False

    async def __aiter__(self) -> Any:
        yield text_frames(["first"])[0]
        await asyncio.Event().wait()

    async def aclose(self) -> None:
        self.closed = True


async def test_closing_the_stream_closes_the_upstream_response() -> None:
    body = HangingEventStream()

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": EVENTSTREAM}, stream=body)

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        request = ChatCompletionRequest.model_validate(
            {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        )
        call = UpstreamCall(request=request, model="m", http=http, request_id="r", stream=True)
        stream = build(api_key=API_KEY).stream(call)
        first = await anext(stream)
        assert first["choices"][0]["delta"]["role"] == "assistant"
        await stream.aclose()  # type: ignore[attr-defined]
    assert body.closed
