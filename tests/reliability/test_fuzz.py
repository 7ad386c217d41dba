"""Bad input, fuzzed, in-process: thousands of generated bodies, headers, methods and paths.

Every answer is a correct 2xx or a 4xx in exactly OpenAI's envelope; never a 5xx, never a hang,
never a traceback or a source path (``fuzz_support.check_response``). Bodies go through
``httpx.ASGITransport`` (the way a client reaches an in-process app); headers, paths and body
chunking go through a raw ASGI driver, since httpx normalises or refuses some of what is sent.
The built-in ``echo`` provider answers, so no network is used. ``test_fuzz_http.py`` repeats a
smaller set through uvicorn on 127.0.0.1. Counts are printed in the "generated cases" summary.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import re
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rec_llm_gateway import Gateway, GatewayMiddleware
from rec_llm_gateway.errors import GatewayError
from rec_llm_gateway.plugins.audit import AuditLogPlugin
from rec_llm_gateway.plugins.pii import PIIRedactionPlugin
from rec_llm_gateway.providers.base import UpstreamCall
from rec_llm_gateway.schema import ChatCompletionRequest

from ..fuzz_support import (
    METHODS,
    TIMEOUT,
    Answer,
    call_asgi,
    chat_requests,
    check_chat_outcome,
    check_response,
    encode,
    fuzz_settings,
    header_lists,
    mutated_requests,
    paths,
    raw_bodies,
    requests_with_numbers,
)
from ..support import count_cases, hello_app

LIMIT = 256 * 1024
KEY = "gw-fuzz-key-0123456789"
ADMIN = "gw-fuzz-admin-9876543210"
OPEN = {"providers": {"echo": {}}, "limits": {"max_body_bytes": LIMIT, "max_messages": 64}}
LOCKED = {
    **OPEN,
    "auth": {"api_keys": [KEY], "admin_keys": [ADMIN]},
    "cors": {"allow_origins": ["https://app.example.com"]},
}
VALID = encode({"model": "echo:echo-1", "messages": [{"role": "user", "content": "hello fuzz"}]})


@dataclass
class Env:
    """Gateways started on one event loop for the whole module (hypothesis runs sync examples)."""

    runner: asyncio.Runner
    open: Gateway
    locked: Gateway
    mounted: GatewayMiddleware
    client: httpx.AsyncClient
    translators: Gateway
    upstream_client: httpx.AsyncClient
    plugged: Gateway
    audit: io.StringIO

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return self.runner.run(asyncio.wait_for(coroutine, TIMEOUT))

    def post(self, body: bytes, headers: dict[str, str] | None = None) -> Answer:
        async def go() -> Answer:
            response = await self.client.post(
                "/v1/chat/completions",
                content=body,
                headers=headers or {"content-type": "application/json"},
            )
            return Answer(response.status_code, dict(response.headers), response.content)

        return self.run(go())


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    runner = asyncio.Runner(loop_factory=asyncio.new_event_loop)
    open_gateway, locked = Gateway(OPEN), Gateway(LOCKED)
    runner.run(open_gateway.start())
    runner.run(locked.start())
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=open_gateway), base_url="http://gateway", timeout=TIMEOUT
    )
    mounted = GatewayMiddleware(hello_app, gateway=open_gateway, path_prefix="/llm")
    upstream_client = httpx.AsyncClient()
    audit = io.StringIO()
    plugged = Gateway(OPEN, plugins=[PIIRedactionPlugin(), AuditLogPlugin(audit, include_content=True)])
    try:
        yield Env(
            runner,
            open_gateway,
            locked,
            mounted,
            client,
            Gateway(TRANSLATORS),
            upstream_client,
            plugged,
            audit,
        )
    finally:
        runner.run(plugged.aclose())
        runner.run(upstream_client.aclose())
        runner.run(client.aclose())
        runner.run(open_gateway.aclose())
        runner.run(locked.aclose())
        runner.close()


# -- bodies -------------------------------------------------------------------------------------------


@fuzz_settings(200)
@given(request=chat_requests)
def test_valid_requests_get_the_echo_answer(env: Env, request: dict[str, Any]) -> None:
    count_cases("fuzz: valid requests")
    body = encode(request)
    check_chat_outcome(env.post(body), body, limit=LIMIT, request=request)


@fuzz_settings(600)
@given(value=mutated_requests(), ascii_only=st.booleans())
def test_mutated_requests_are_answered_or_refused(env: Env, value: Any, ascii_only: bool) -> None:
    count_cases("fuzz: mutated bodies")
    body = encode(value, ascii_only=ascii_only)
    check_chat_outcome(env.post(body), body, limit=LIMIT)


@fuzz_settings(150)
@given(value=requests_with_numbers())
def test_numbers_anywhere(env: Env, value: Any) -> None:
    count_cases("fuzz: numbers")
    body = encode(value)
    check_chat_outcome(env.post(body), body, limit=LIMIT)


@fuzz_settings(400)
@given(body=raw_bodies, content_type=st.sampled_from(["application/json", "text/plain", ""]))
def test_raw_bodies_are_refused(env: Env, body: bytes, content_type: str) -> None:
    count_cases("fuzz: raw bodies")
    check_chat_outcome(env.post(body, {"content-type": content_type}), body, limit=LIMIT)


@fuzz_settings(150)
@given(value=chat_requests | mutated_requests())
def test_shipped_plugins_take_any_body(env: Env, value: Any) -> None:
    """PII redaction and the audit log see every accepted request: neither may break or stall it."""
    count_cases("fuzz: plugins")
    body = encode(value)
    answer = env.run(call_asgi(env.plugged, "POST", "/v1/chat/completions", body_chunks=[body]))
    check_chat_outcome(answer, body, limit=LIMIT)
    for line in env.audit.getvalue().splitlines():
        json.loads(line)


# -- provider translation ------------------------------------------------------------------------

_NOWHERE = "http://127.0.0.1:9"  # never contacted: only the upstream requests are built
TRANSLATORS = {
    "providers": {
        "openai": {"api_key": "sk-fuzz-0123456789", "base_url": f"{_NOWHERE}/v1"},
        "azure": {"type": "azure", "api_key": "k", "base_url": _NOWHERE, "api_version": "2024-06-01"},
        "anthropic": {"api_key": "k", "base_url": _NOWHERE},
        "gemini": {"api_key": "k", "base_url": _NOWHERE},
        "bedrock": {
            "type": "bedrock",
            "region": "us-east-1",
            "aws_access_key_id": "AKIAFUZZFUZZFUZZFUZZ",
            "aws_secret_access_key": "fuzz-secret",
            "base_url": _NOWHERE,
            "control_plane_url": _NOWHERE,
        },
    }
}


@fuzz_settings(150)
@given(value=chat_requests | mutated_requests(), stream=st.booleans())
def test_provider_translation_never_crashes(env: Env, value: Any, stream: bool) -> None:
    """Whatever the gateway accepts, every built-in provider translates or refuses with a 4xx."""
    count_cases("fuzz: provider translation")
    try:
        request = ChatCompletionRequest.from_json(encode(value))
    except GatewayError:
        return
    for name, provider in env.translators.providers.items():
        call = UpstreamCall(
            request=request, model="m-1", http=env.upstream_client, request_id="r", stream=stream
        )
        try:
            built = env.run(provider.build_request_async(call))
        except GatewayError as error:
            refused: GatewayError | None = error
        else:
            refused = None
            if built.content:
                json.loads(built.content)
        assert refused is None or refused.status_code < 500, (name, refused)


# -- headers and body delivery ------------------------------------------------------------------------

_SANE_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    """A body and the chunks it arrives in (empty chunks included)."""
    body = draw(st.sampled_from([VALID, b"{}", b"not json", b""]) | raw_bodies)
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=4)))
    edges = [0, *cuts, len(body)]
    return body, [body[start:end] for start, end in itertools.pairwise(edges)]


@fuzz_settings(400)
@given(
    headers=header_lists(),
    delivery=deliveries(),
    locked=st.booleans(),
    credential=st.sampled_from([None, ("authorization", f"Bearer {KEY}"), ("x-api-key", KEY)]),
    disconnect=st.booleans(),
)
def test_headers_and_body_delivery(
    env: Env,
    headers: list[tuple[bytes, bytes]],
    delivery: tuple[bytes, list[bytes]],
    locked: bool,
    credential: tuple[str, str] | None,
    disconnect: bool,
) -> None:
    count_cases("fuzz: headers")
    body, chunks = delivery
    if credential is not None:
        headers = [*headers, (credential[0].encode(), credential[1].encode())]
    gateway = env.locked if locked else env.open
    answer = env.run(
        call_asgi(
            gateway,
            "POST",
            "/v1/chat/completions",
            headers=headers,
            body_chunks=chunks,
            disconnect_early=disconnect,
        )
    )
    if answer.status == 499:  # the client left first: nothing is sent, nothing breaks
        return
    check_response(answer)
    names = {name.lower() for name, _ in headers}
    sent_id = [value for name, value in headers if name.lower() == b"x-request-id"]
    if len(sent_id) == 1 and _SANE_ID.fullmatch(sent_id[0].decode("latin-1")):
        assert answer.headers["x-request-id"] == sent_id[0].decode()
    else:
        assert answer.headers["x-request-id"].startswith("req_")
    if locked and not names & {b"authorization", b"x-api-key"}:
        assert answer.status == 401, answer.text[:200]
        return
    if answer.status == 401:
        assert locked, answer.text[:200]
        return
    declared = [value for name, value in headers if name.lower() == b"content-length"]
    if len(declared) == 1 and declared[0].isdigit() and int(declared[0]) > LIMIT:
        assert answer.status == 413
    elif not disconnect:
        check_chat_outcome(answer, body, limit=LIMIT)


# -- methods and paths --------------------------------------------------------------------------------

_ADMIN = {"/health", "/v1/models", "/models", "/providers", "/usage", "/openapi.json"}
# The operation routes (POST): chat, embeddings, legacy completions, each with and without /v1.
_CHAT = {
    f"{prefix}/{route}"
    for prefix in ("/v1", "")
    for route in ("chat/completions", "embeddings", "completions")
}


def _route(path: str) -> str:
    return path.rstrip("/") or "/" if len(path) > 1 else path


def _provider_route(route: str) -> bool:
    """``/providers/{name}/health`` or ``/providers/{name}/stats`` (routes.ENDPOINTS)."""
    parts = route.split("/")
    return len(parts) == 4 and parts[1] == "providers" and bool(parts[2]) and parts[3] in ("health", "stats")


def expected_statuses(method: str, path: str, *, locked: bool) -> set[int]:
    """What the route table may answer (a tiny model of it, for the path fuzz)."""
    route = _route(path)
    if route in _CHAT:
        return {400, 401} if method == "POST" else {405}
    known = route in _ADMIN or route.startswith(("/v1/models/", "/models/")) or _provider_route(route)
    if not known:
        return {404}
    if method not in ("GET", "HEAD"):
        return {405}
    ok = {200, 404} if "/models/" in route or route.startswith("/providers/") else {200}
    if locked and route not in ("/health", "/openapi.json"):
        return {401}
    return ok


@fuzz_settings(500)
@given(
    method=METHODS,
    path=paths,
    target=st.sampled_from(["root", "mounted", "locked"]),
    query=st.sampled_from(
        [b"", b"date=2024-01-01", b"date=\xff", b"provider=echo&date=x", b"%%%", b"a=" * 500]
    ),
    origin=st.booleans(),
)
def test_methods_and_paths(env: Env, method: str, path: str, target: str, query: bytes, origin: bool) -> None:
    count_cases("fuzz: methods and paths")
    headers = (
        [(b"origin", b"https://app.example.com"), (b"access-control-request-method", b"POST")]
        if origin
        else []
    )
    if target == "mounted":
        answer = env.run(call_asgi(env.mounted, method, "/llm" + path, headers=headers, query=query))
    else:
        gateway = env.locked if target == "locked" else env.open
        answer = env.run(call_asgi(gateway, method, path, headers=headers, query=query))
    check_response(answer)
    if method == "OPTIONS" and origin and target == "locked":
        assert answer.status in (204, 403)
        return
    expected = expected_statuses(method, path, locked=target == "locked")
    if _route(path) == "/usage" and query:
        expected.add(400)  # a bad date
    assert answer.status in expected, (
        method,
        path,
        answer.status,
        answer.text[:200],
    )
    if answer.status == 405:
        assert answer.headers["allow"] in ("GET", "POST")
