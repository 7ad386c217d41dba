"""Provider secrets never leak, for every provider type; the client cannot steer the upstream call.

One session per provider type, logging at DEBUG (every logger, libraries included) with the
OpenTelemetry SDK attached (an in-memory span exporter and metric reader passed in as providers):
a completion, a stream, upstream errors that echo the provider's secrets (a 401 in the provider's
error shape, a 5xx in plain text, a 200 with an error body, an error event mid-stream), an
unreachable upstream, and every admin route (health checks included, one of them answered by an
upstream that echoes the secrets). Every response body and header, log record (message and
traceback), exported span and metric (``to_json``) and the ``repr`` of the gateway, its config,
providers, settings, usage records, hook arguments and errors is then searched for every
configured secret: API keys, the AWS secret key and session token, the service account's private
key, the gateway key, and the Vertex access token the upstream saw.

The same sessions check that the client's own headers (credentials, cookies, ``host``,
``x-forwarded-*``, arbitrary ``x-*``, ``baggage``) never reach the upstream; a second test sends
model names built to escape the provider's URL (``/``, ``..``, ``?``, ``#``, ``@``, full URLs,
encoded forms) and headers that name another upstream, and checks the path, query and host of
every request the upstream received.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from rec_llm_gateway import hookimpl

from .. import anthropic_fake, bedrock_support
from ..conftest import GATEWAY_KEY
from ..fault_support import PROVIDER_WIRE, WIRES, wire_of
from ..gemini_support import gemini_upstream, service_account_file
from ..support import FakeUpstream, Recorded, Reply, count_cases, gateway_server, serve

ACCESS_TOKEN = "ya29.fake-access-token"  # what gemini_support's token endpoint hands out
SESSION_TOKEN = "FwoGZXIvYXdzSESSIONtokenFAKE0123456789+/abcdefghijklmnop"
SESSIONS = ("openai", "azure", "openrouter", "anthropic", "gemini", "vertex", "bedrock", "bedrock_api_key")
TYPE_OF = {"bedrock_api_key": "bedrock"}

# Keys in several shapes: some match scrub_secrets' credential patterns, some match nothing (only the
# exact scrub of configured secrets can catch those).
API_KEYS = {
    "openai": "sk-proj-OPENAISECRET-0123456789abcdef",
    "azure": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
    "openrouter": "sk-or-v1-OPENROUTERSECRET-0123456789",
    "anthropic": anthropic_fake.API_KEY,
    "gemini": "AIzaSyGEMINISECRET-0123456789abcdefgh",
    "bedrock_api_key": "ABSKQmVkcm9ja0FQSUtleS0wMTIzNDU2Nzg5",
}
CLIENT_HEADERS = {
    "authorization": f"Bearer {GATEWAY_KEY}",
    "x-api-key": "client-x-api-key-VALUE-1",
    "api-key": "client-api-key-VALUE-2",
    "x-goog-api-key": "client-goog-key-VALUE-3",
    "proxy-authorization": "Basic Y2xpZW50OnByb3h5",
    "cookie": "session=client-cookie-VALUE-4",
    "host": "evil.example",
    "x-forwarded-for": "203.0.113.9",
    "x-forwarded-host": "evil.example",
    "x-forwarded-proto": "gopher",
    "x-real-ip": "203.0.113.10",
    "forwarded": "for=203.0.113.11;host=evil.example",
    "x-custom-thing": "client-custom-VALUE-5",
    "x-upstream-url": "http://evil.example/v1",
    "x-base-url": "http://evil.example/v1",
    "anthropic-beta": "client-beta-VALUE-6",
    "openai-organization": "client-org-VALUE-7",
    "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "baggage": "tenant=client-baggage-VALUE-8",
}
CLIENT_VALUES = [value for name, value in CLIENT_HEADERS.items() if name not in ("traceparent",)]
FORBIDDEN_UPSTREAM_HEADERS = {
    "cookie",
    "proxy-authorization",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
    "forwarded",
    "x-custom-thing",
    "x-upstream-url",
    "x-base-url",
    "baggage",
}


# -- the fake upstream: answers normally, or echoes the secrets it was told about --------------------


class EchoingUpstream:
    """Every wire format; model ``echo_<kind>-0`` (or a base URL under ``/echo``) makes it answer
    with an error that quotes ``secrets``. Records each request's raw path (ASGI ``raw_path``)."""

    def __init__(self) -> None:
        self.secrets: list[str] = []
        self.fake = FakeUpstream(default=self.answer)
        self.raw: list[tuple[bytes, bytes, str]] = []
        """(raw path, query string, host header) of every request."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            host = dict(scope["headers"]).get(b"host", b"").decode()
            self.raw.append((scope.get("raw_path") or scope["path"].encode(), scope["query_string"], host))
        await self.fake(scope, receive, send)

    def answer(self, request: Recorded) -> Reply:
        text = "the key " + " and ".join(self.secrets) + " is not valid"
        if request.path.endswith("/token"):
            return gemini_upstream(request)
        wire = WIRES["bedrock"] if request.path.endswith("/foundation-models") else wire_of(request)
        if request.path.startswith("/echo"):  # a provider whose every answer is a 401 quoting the keys
            return wire.error(401, f"Incorrect API key provided: {text}", {})
        if request.method == "GET" or request.path.endswith((":countTokens", "/foundation-models")):
            return _health(request)
        model = wire.model(request)
        stream = wire.is_stream(request)
        if model == "echo_401-0":
            return wire.error(401, f"Incorrect API key provided: {text}", {})
        if model == "echo_fields-0":  # the secrets in every field of the native error but the message
            return _echo_in_every_field(wire.name, text)
        if model == "echo_500-0":
            return Reply(status=500, body=f"internal error: {text}".encode(), content_type="text/plain")
        if model == "echo_200-0" and not stream:
            return wire.error(200, f"Incorrect API key provided: {text}", {})
        if model == "echo_200-0":
            return Reply(
                sse=[*wire.opening(request), wire.stream_error(text)], content_type=wire.stream_content_type
            )
        return wire.ok(request)


def _echo_in_every_field(wire: str, text: str) -> Reply:
    """A 400 whose message is plain and whose other fields and headers quote ``text`` (an upstream
    that echoed the auth header in ``param`` sent the provider key to the client: issue 16)."""
    headers = {"x-amzn-errortype": f"ValidationException:{text}", "retry-after": "1"}
    body: dict[str, Any] = {
        "openai": {"error": {"message": "bad request", "type": text, "param": text, "code": text}},
        "anthropic": {"type": "error", "error": {"type": text, "message": "bad request"}},
        "gemini": {"error": {"code": 400, "message": "bad request", "status": text}},
        "bedrock": {"message": "bad request", "__type": text},
    }[wire]
    return Reply(status=400, json=body, headers=headers)


def _health(request: Recorded) -> Reply:
    if request.path.endswith("/v1/models"):
        return anthropic_fake.anthropic_upstream(request)
    if request.path.endswith("/foundation-models"):
        return bedrock_support.bedrock_handler(request)
    if request.path.endswith(":countTokens") or "/v1beta/models" in request.path:
        return gemini_upstream(request)
    return Reply(json={"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model"}]})


@pytest.fixture(scope="module")
def echoing() -> Iterator[tuple[EchoingUpstream, str]]:
    upstream = EchoingUpstream()
    with serve(upstream) as url:
        yield upstream, url


@pytest.fixture(scope="module")
def credentials(tmp_path_factory: pytest.TempPathFactory, echoing: tuple[EchoingUpstream, str]) -> Path:
    return service_account_file(Path(tmp_path_factory.mktemp("vertex")), f"{echoing[1]}/token")


def settings(session: str, base: str, credentials: Path) -> tuple[dict[str, Any], list[str]]:
    """A provider of ``session``'s type at ``base``, and the secrets it holds (for Vertex: the
    service account's private key, and the access token it is exchanged for)."""
    kind = TYPE_OF.get(session, session)
    timeout = {"connect": 2, "read": 5, "total": 10}
    if session == "vertex":
        info = json.loads(credentials.read_text())
        key_lines = [line for line in info["private_key"].splitlines() if len(line) > 40]
        return {
            "type": kind,
            "credentials_file": str(credentials),
            "project_id": "test-project",
            "location": "us-central1",
            "base_url": f"{base}/v1beta1",
            "timeout": timeout,
        }, [*key_lines, ACCESS_TOKEN]
    if session == "bedrock":
        return {
            "type": kind,
            "region": bedrock_support.REGION,
            "aws_access_key_id": bedrock_support.ACCESS_KEY,
            "aws_secret_access_key": bedrock_support.SECRET_KEY,
            "aws_session_token": SESSION_TOKEN,
            "base_url": base,
            "control_plane_url": base,
            "timeout": timeout,
        }, [bedrock_support.SECRET_KEY, SESSION_TOKEN, bedrock_support.ACCESS_KEY]
    key = API_KEYS[session]
    extra: dict[str, Any] = {
        "openai": {"base_url": f"{base}/v1"},
        "azure": {"base_url": base, "api_version": "2024-10-21"},
        "openrouter": {"base_url": f"{base}/api/v1"},
        "anthropic": {"base_url": base},
        "gemini": {"base_url": f"{base}/v1beta"},
        "bedrock_api_key": {"region": bedrock_support.REGION, "base_url": base, "control_plane_url": base},
    }[session]
    return {"type": kind, "api_key": key, "timeout": timeout, **extra}, [key]


class Witness:
    """Keeps everything hooks are handed, to search their reprs too."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    @hookimpl
    def on_error(self, error: Any, context: Any) -> None:
        self.seen += [error, context]

    @hookimpl
    def on_cost(self, event: Any) -> None:
        self.seen.append(event)

    @hookimpl
    def post_response(self, request: Any, response: Any, context: Any) -> None:
        self.seen += [request, response, context]


# -- one session per provider type ----------------------------------------------------------------------


@pytest.mark.parametrize("session", SESSIONS)
def test_a_session_never_shows_a_secret(
    session: str,
    echoing: tuple[EchoingUpstream, str],
    credentials: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    count_cases("secrets scan")
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_BEARER_TOKEN_BEDROCK",
    ):
        monkeypatch.delenv(name, raising=False)
    upstream, url = echoing
    name = session.replace("_", "-")
    provider, secrets = settings(session, url, credentials)
    echo_provider, _ = settings(session, f"{url}/echo", credentials)
    dead, _ = settings(session, "http://127.0.0.1:9", credentials)
    # what an upstream could echo: what it was sent (Vertex: the access token, not the private key
    # it never sees; Bedrock: every AWS secret, although the secret key itself never leaves)
    upstream.secrets = [ACCESS_TOKEN] if session == "vertex" else secrets
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    metrics = InMemoryMetricReader()
    witness = Witness()
    config = {
        "auth": {"api_keys": [GATEWAY_KEY]},
        "providers": {name: provider, f"{name}-echo": echo_provider, f"{name}-dead": dead},
    }
    caplog.set_level(logging.DEBUG)  # the root logger: every library's DEBUG records too
    upstream.fake.reset()
    upstream.raw.clear()
    seen: list[str] = []
    with gateway_server(
        config,
        "bare",
        plugins=[witness],
        tracer_provider=tracer_provider,
        meter_provider=MeterProvider(metric_readers=[metrics]),
    ) as (gateway_url, gateway):
        with httpx.Client(base_url=gateway_url, headers=CLIENT_HEADERS, timeout=20) as client:

            def call(method: str, path: str, **kwargs: Any) -> httpx.Response:
                response = client.request(method, path, **kwargs)
                seen.append(response.text)
                seen.extend(f"{key}: {value}" for key, value in response.headers.items())
                return response

            def chat(model: str, *, stream: bool = False) -> httpx.Response:
                body = {"model": model, "messages": [{"role": "user", "content": "hello"}], "stream": stream}
                return call("POST", "/v1/chat/completions", json=body)

            assert chat(f"{name}:m").status_code == 200
            assert chat(f"{name}:m", stream=True).text.rstrip().endswith("data: [DONE]")
            refused = chat(f"{name}:echo_401-0")
            assert refused.status_code == 401
            assert "Incorrect API key provided" in refused.json()["error"]["message"]  # the message arrives
            assert chat(f"{name}:echo_401-0", stream=True).status_code == 401
            assert chat(f"{name}:echo_fields-0").status_code == 400
            assert chat(f"{name}:echo_500-0").status_code == 502
            assert chat(f"{name}:echo_500-0", stream=True).status_code == 502
            assert chat(f"{name}:echo_200-0").status_code == 502
            streamed = chat(f"{name}:echo_200-0", stream=True)
            assert streamed.status_code == 200 and '"error"' in streamed.text
            assert chat(f"{name}-echo:m").status_code == 401
            assert chat(f"{name}-dead:m").status_code == 503  # no deployment could be reached
            for path in (
                "/health",
                "/providers",
                f"/providers/{name}/health",
                f"/providers/{name}-echo/health",
                f"/providers/{name}-dead/health",
                f"/providers/{name}/stats",
                "/usage",
                "/v1/models",
                f"/v1/models/{name}:m",
            ):
                assert call("GET", path).status_code in (200, 404), path
            assert "Incorrect API key provided" in call("GET", f"/providers/{name}-echo/health").text
        seen += [repr(gateway), repr(gateway.config), str(gateway.config)]
        for built in gateway.providers.values():
            seen += [repr(built), repr(built.settings), str(built.settings), json.dumps(built.describe())]
        seen += [repr(record) for record in gateway.usage.get_all()]
        seen += [repr(item) for item in witness.seen]
    tracer_provider.force_flush()
    seen += [span.to_json() for span in spans.get_finished_spans()]
    data = metrics.get_metrics_data()
    assert data is not None
    seen.append(data.to_json())
    formatter = logging.Formatter()
    for record in caplog.records:
        seen.append(record.getMessage())
        if record.exc_info:
            seen.append(formatter.formatException(record.exc_info))
    assert spans.get_finished_spans(), "the SDK saw the session"
    assert any(record.levelno == logging.DEBUG for record in caplog.records), "DEBUG records were captured"
    text = "\n".join(seen)
    for secret in [*secrets, GATEWAY_KEY]:
        assert secret not in text, f"{session}: a secret leaked: {_context(text, secret)}"

    # the client's own headers never reach the upstream
    received = [request for request in upstream.fake.requests if not request.path.endswith("/token")]
    assert received
    host = urlsplit(url).netloc
    for request in received:
        leaked = FORBIDDEN_UPSTREAM_HEADERS & set(request.headers)
        assert not leaked, f"client headers reached the upstream: {leaked}"
        for value in CLIENT_VALUES:
            assert value not in json.dumps(request.headers), f"the client's {value!r} reached the upstream"
    assert {entry[2] for entry in upstream.raw} == {host}


def _context(text: str, secret: str) -> str:
    at = text.index(secret)
    return text[max(0, at - 200) : at + len(secret) + 50]


# -- the client cannot steer the upstream URL --------------------------------------------------------------

HOSTILE_MODELS = [
    "../../admin",
    "..",
    ".",
    "a/../../b",
    "m?key=stolen&api-version=1",
    "m#fragment",
    "user:pass@evil.example",
    "@evil.example",
    "http://evil.example/v1",
    "//evil.example/x",
    "%2e%2e%2fadmin",
    "m%3Fx%3D1",
    "m\r\nx-injected: 1",
    "m/../../../chat/completions",
    "tunedModels/../../x",
    "models/../../x",
    "arn:aws:bedrock:us-east-1::foundation-model/../../x",
]
# (raw path prefix, raw path suffix) the upstream must see for each wire format's chat call
EXPECTED_PATH = {
    "openai": [(b"/v1/chat/completions", b"")],
    "azure": [(b"/openai/deployments/", b"/chat/completions")],
    "openrouter": [(b"/api/v1/chat/completions", b"")],
    "anthropic": [(b"/v1/messages", b"")],
    "gemini": [(b"/v1beta/models/", b":generateContent"), (b"/v1beta/tunedModels/", b":generateContent")],
    "vertex": [
        (
            b"/v1beta1/projects/test-project/locations/us-central1/publishers/google/models/",
            b":generateContent",
        )
    ],
    "bedrock": [(b"/model/", b"/converse")],
}
EXPECTED_QUERY = {"azure": b"api-version=2024-10-21"}


@pytest.mark.parametrize("kind", list(EXPECTED_PATH))
def test_the_client_cannot_steer_the_upstream_url(
    kind: str, echoing: tuple[EchoingUpstream, str], credentials: Path
) -> None:
    count_cases("upstream URL steering", len(HOSTILE_MODELS))
    upstream, url = echoing
    provider, _ = settings(kind, url, credentials)
    upstream.secrets = []
    with gateway_server({"providers": {kind: provider}}, "bare") as (gateway_url, _):
        for model in HOSTILE_MODELS:
            upstream.raw.clear()
            body = {"model": f"{kind}:{model}", "messages": [{"role": "user", "content": "hi"}]}
            headers = {
                "host": "evil.example",
                "x-forwarded-host": "evil.example",
                "x-upstream-url": "http://evil.example/",
            }
            response = httpx.post(
                f"{gateway_url}/v1/chat/completions", json=body, headers=headers, timeout=20
            )
            assert response.status_code in (200, 400, 404), (model, response.text)
            for raw_path, query, host in upstream.raw:
                if raw_path.endswith(b"/token"):
                    continue
                assert host == urlsplit(url).netloc, (model, host)
                assert any(
                    raw_path.startswith(prefix)
                    and raw_path.endswith(suffix)
                    and _one_segment(raw_path, prefix, suffix)
                    for prefix, suffix in EXPECTED_PATH[kind]
                ), (model, raw_path)
                assert query == EXPECTED_QUERY.get(kind, b""), (model, query)


def _one_segment(raw_path: bytes, prefix: bytes, suffix: bytes) -> bool:
    """The path is the prefix alone, or prefix + one non-empty path segment + suffix, and no segment
    is a dot segment (which a client or server may resolve)."""
    if not suffix:
        return raw_path == prefix
    if len(raw_path) <= len(prefix) + len(suffix):
        return False
    middle = raw_path[len(prefix) : len(raw_path) - len(suffix)]
    dots = any(segment in (b".", b"..") for segment in raw_path.split(b"/"))
    return not dots and b"/" not in middle and b"?" not in middle and b"#" not in middle


def test_every_wire_format_and_provider_type_is_covered() -> None:
    assert {TYPE_OF.get(session, session) for session in SESSIONS} == set(PROVIDER_WIRE) == set(EXPECTED_PATH)
    assert set(PROVIDER_WIRE.values()) == set(WIRES)
