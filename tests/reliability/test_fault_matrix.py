"""The upstream fault matrix: every fault x every provider type x stream and not x both transports.

Each case sends one request that meets a fault, then a normal request through the same gateway and
provider type (the connection pool must still be healthy). Every case must end with the documented
status (or final SSE error event) within its timeout, count as an error in usage and fire
``on_error`` once with that status. docs/faults.md holds the same table for users.

Provider timeouts are short (connect 1 s, read 1 s, total 2.5 s: a few times the worst latency of a
normal call while the matrix runs, so that only the faults time out) and ``max_response_bytes`` is
64 KiB. All cases of a transport run concurrently against one gateway (a case is told apart by its
model name, which the fake upstream reads its fault from, and by its ``x-request-id``), so the whole
matrix takes about as long as its slowest case; each case is then checked by its own test.

fault                                   non-streaming               streaming                          bound
--------------------------------------  --------------------------  ---------------------------------  -------
connection refused                      503 service_unavailable     503 service_unavailable            at once
DNS failure (a ``.invalid`` host) [1]   503 service_unavailable     503 service_unavailable            connect
TLS handshake stall (server silent)     504 upstream_timeout        504 upstream_timeout               connect
slow first byte (no response head)      504 upstream_timeout        504 upstream_timeout               read
response head, then nothing             504 upstream_timeout        504 upstream_timeout               read
stall mid-body / between chunks         504 upstream_timeout        SSE error upstream_timeout         read
bytes but no answer / first chunk       504 upstream_timeout        504 upstream_timeout               total
reset (TCP RST) mid-body                502 upstream_connection_e.  SSE error upstream_connection_e.   at once
truncated (cut body / early stream end) 502 upstream_connection_e.  SSE error (502, code per provider) at once
malformed JSON                          502 bad_gateway             SSE error bad_gateway              at once
wrong content type (HTML / JSON)        502 bad_gateway             502 bad_gateway                    at once
200 with an error body / error event    502 (code per provider)     502 (code per provider)            at once
429 with ``Retry-After: 7``             429 + retry-after: 7        429 + retry-after: 7               at once
429 without ``Retry-After``             429, no retry-after         429, no retry-after                at once
500 in the provider's error shape       502 upstream_error          502 upstream_error                 at once
503 with an HTML page (a proxy)         502 upstream_error          502 upstream_error                 at once
529 (Anthropic only: overloaded)        503 upstream_overloaded     503 upstream_overloaded            at once
enormous (> max_response_bytes)         502 bad_gateway             SSE error bad_gateway [2]          at once
gzip bomb (> max_response_bytes decoded) 502 bad_gateway            SSE error bad_gateway [2]          at once

[1] 504 upstream_timeout instead when no resolver answers within the connect timeout.
[2] A plain 502 when the cap is reached before the first chunk went out.
"at once": within ``SLACK``; otherwise within that timeout plus ``SLACK``. A "SSE error" is a 200
stream whose last event is ``data: {"error": ...}`` (no ``[DONE]``); ``on_error`` sees its status.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from rec_llm_gateway import Gateway, hookimpl

from ..fault_support import (
    PROVIDER_WIRE,
    PROVIDERS,
    TRANSPORTS,
    FaultUpstream,
    closed_port,
    provider_settings,
    raw_server,
)
from ..gemini_support import service_account_file
from ..support import count_cases, gateway_server, serve

CONNECT, READ, TOTAL = 1.0, 1.0, 2.5
TIMEOUTS = {"connect": CONNECT, "read": READ, "total": TOTAL}
SLACK = 3.0
"""Added to every bound: generous, because the failure this matrix hunts is a hang, not slowness."""
CLIENT_TIMEOUT = 30.0
CONCURRENCY = 32
MAX_RESPONSE_BYTES = 64 * 1024
DNS_HOST = "gateway-fault.invalid"


@dataclass(frozen=True)
class Expect:
    status: int
    sse: bool | None = False
    """The error arrives as the final SSE event of a 200 stream (after the first chunk); ``None``:
    either that or a plain error (a size cap can race the first chunk when the machine is loaded)."""
    code: str | None = None
    bound: float = 0.0
    """Seconds the case may take on top of ``SLACK``."""
    retry_after: str | None = None
    """The ``retry-after`` the client must see (``None``: it must see none)."""


def both(expect: Expect) -> tuple[Expect, Expect]:
    return expect, expect


# With routing, an upstream that cannot be reached at all is "no provider available": 503.
UNREACHABLE = Expect(503, code="service_unavailable", bound=CONNECT)
TIMEOUT_READ = Expect(504, code="upstream_timeout", bound=READ)
CUT = Expect(502, code="upstream_connection_error")
GARBAGE = Expect(502, code="bad_gateway")

# fault -> (non-streaming, streaming); None: not a fault in that mode
EXPECTED: dict[str, tuple[Expect | None, Expect | None]] = {
    "refused": both(UNREACHABLE),
    "dns_failure": both(UNREACHABLE),
    "tls_handshake_stall": both(Expect(504, code="upstream_timeout", bound=CONNECT)),
    "slow_first_byte": both(TIMEOUT_READ),
    "stall_after_headers": both(TIMEOUT_READ),
    "stall_mid_body": (TIMEOUT_READ, Expect(504, sse=True, code="upstream_timeout", bound=READ)),
    "slow_drip": both(Expect(504, code="upstream_timeout", bound=TOTAL)),
    "reset_mid_body": (CUT, Expect(502, sse=True, code="upstream_connection_error")),
    "truncated": (CUT, Expect(502, sse=True)),  # the code of a stream that ends early: per provider
    "malformed_json": (GARBAGE, Expect(502, sse=True, code="bad_gateway")),
    "wrong_content_type": both(GARBAGE),
    "error_200": both(Expect(502)),  # the code: the provider's (upstream_error) or bad_gateway
    "rate_limited_retry_after": both(Expect(429, code="rate_limit_exceeded", retry_after="7")),
    "rate_limited": both(Expect(429, code="rate_limit_exceeded")),
    "status_500": both(Expect(502, code="upstream_error")),
    "status_503_html": both(Expect(502, code="upstream_error")),
    "status_529": both(Expect(503, code="upstream_overloaded")),
    "enormous": (GARBAGE, Expect(502, sse=None, code="bad_gateway")),
    "compressed_bomb": (GARBAGE, Expect(502, sse=None, code="bad_gateway")),
}

# (provider, fault, stream) -> what differs from EXPECTED for that provider
EXCEPTIONS: dict[tuple[str, str, bool], Expect] = {}

ONLY_FOR = {"status_529": {"anthropic"}}
"""Faults that exist for some provider types only."""
BOTH_TRANSPORTS = {
    "refused",
    "dns_failure",
    "tls_handshake_stall",
    "slow_first_byte",
    "stall_after_headers",
    "stall_mid_body",
    "slow_drip",
    "reset_mid_body",
    "truncated",
    "enormous",
    "compressed_bomb",
}
"""Faults where the transport (aiohttp or httpx) does the work: run on both. The others are about
what the bytes say, which the transport does not touch."""

ROUTE_SUFFIX = {
    "refused": "refused",
    "dns_failure": "dns",
    "tls_handshake_stall": "tls",
    "reset_mid_body": "reset",
}
"""Faults that need a provider of their own (pointed at a dead port, a bad host, a raw server)."""


@dataclass(frozen=True)
class Case:
    provider: str
    fault: str
    stream: bool
    transport: str
    index: int
    expect: Expect

    @property
    def id(self) -> str:
        return f"{self.provider}.{'stream' if self.stream else 'json'}.{self.transport}.{self.fault}"

    @property
    def route(self) -> str:
        suffix = ROUTE_SUFFIX.get(self.fault)
        return f"{self.provider}_{suffix}" if suffix else self.provider

    @property
    def model(self) -> str:
        return f"{self.fault}-{self.index}"


def _cases() -> list[Case]:
    cases: list[Case] = []
    for provider in PROVIDERS:
        for fault, modes in EXPECTED.items():
            if provider not in ONLY_FOR.get(fault, {provider}):
                continue
            for stream, expect in zip((False, True), modes, strict=True):
                expect = EXCEPTIONS.get((provider, fault, stream), expect)
                if expect is None:
                    continue
                for transport in TRANSPORTS if fault in BOTH_TRANSPORTS else TRANSPORTS[:1]:
                    cases.append(Case(provider, fault, stream, transport, len(cases), expect))
    return cases


CASES = _cases()


# -- running the matrix -------------------------------------------------------------------------


@dataclass
class Outcome:
    status: int = 0
    retry_after: str | None = None
    error: dict[str, Any] | None = None
    sse: bool = False
    done: bool = False
    elapsed: float = 0.0
    problem: str | None = None
    followup: str | None = None
    """Why the follow-up request failed (``None``: it succeeded)."""


class ErrorRecorder:
    def __init__(self) -> None:
        self.errors: dict[str, list[tuple[int, str | None]]] = {}

    @hookimpl
    def on_error(self, error: Any, context: Any) -> None:
        self.errors.setdefault(context.request_id, []).append((error.status_code, error.code))


@dataclass
class Matrix:
    outcomes: dict[str, Outcome]
    errors: dict[str, dict[str, list[tuple[int, str | None]]]]
    """transport -> request id -> on_error calls."""
    usage: dict[str, dict[tuple[str, str], tuple[int, int]]]
    """transport -> (provider, model) -> (calls, errors)."""
    extra: dict[str, Any] = field(default_factory=dict)


def gateway_config(transport: str, bases: dict[str, str], credentials: str) -> dict[str, Any]:
    providers = {}
    for kind in PROVIDERS:
        for suffix, base in bases.items():
            name = f"{kind}_{suffix}" if suffix else kind
            providers[name] = {**provider_settings(kind, base, credentials), "timeout": TIMEOUTS}
    return {
        "providers": providers,
        "limits": {"max_response_bytes": MAX_RESPONSE_BYTES},
        "http": {"transport": transport},
    }


def _parse(outcome: Outcome, response: httpx.Response, raw: bytes) -> None:
    outcome.status = response.status_code
    outcome.retry_after = response.headers.get("retry-after")
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        events = [block[6:] for block in raw.decode().split("\n\n") if block.startswith("data: ")]
        outcome.done = bool(events) and events[-1] == "[DONE]"
        if events and not outcome.done:
            last = json.loads(events[-1])
            if "error" in last:
                outcome.sse, outcome.error = True, last["error"]
        return
    try:
        data = json.loads(raw)
    except ValueError:
        outcome.problem = f"not JSON: {raw[:200]!r}"
        return
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        outcome.error = data["error"]


async def _send(client: httpx.AsyncClient, url: str, body: dict[str, Any], request_id: str) -> Outcome:
    outcome = Outcome()
    started = time.monotonic()
    try:
        async with client.stream(
            "POST", f"{url}/v1/chat/completions", json=body, headers={"x-request-id": request_id}
        ) as response:
            raw = await response.aread()
        _parse(outcome, response, raw)
    except httpx.HTTPError as exc:
        outcome.problem = f"client error: {exc!r}"
    outcome.elapsed = time.monotonic() - started
    return outcome


def _message(stream: bool, model: str) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hello fault"}], "stream": stream}


async def _run_case(client: httpx.AsyncClient, url: str, case: Case) -> Outcome:
    outcome = await _send(client, url, _message(case.stream, f"{case.route}:{case.model}"), case.id)
    check = await _send(client, url, _message(case.stream, f"{case.provider}:ok"), f"{case.id}.followup")
    if check.problem or check.status != 200 or check.error or (case.stream and not check.done):
        outcome.followup = f"{check.status} {check.error or check.problem}"
    return outcome


async def _run_all(urls: dict[str, str], cases: list[Case]) -> dict[str, Outcome]:
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=1000)
    # Enough cases at once that the waits overlap; few enough that the gateway, the fakes and this
    # client (one process, one GIL, two cores) answer normal calls well within the 1 s timeouts.
    slots = asyncio.Semaphore(CONCURRENCY)

    async def run(case: Case) -> Outcome:
        async with slots:
            return await _run_case(client, urls[case.transport], case)

    async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT, limits=limits) as client:
        outcomes = await asyncio.gather(*(run(case) for case in cases))
    return {case.id: outcome for case, outcome in zip(cases, outcomes, strict=True)}


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Matrix:
    fake = FaultUpstream()
    refused = closed_port()
    with serve(fake) as upstream_url, raw_server("silent") as silent, raw_server("reset") as reset:
        fake.url = upstream_url
        credentials = str(
            service_account_file(Path(tmp_path_factory.mktemp("vertex")), f"{upstream_url}/token")
        )
        bases = {
            "": upstream_url,
            "refused": f"http://127.0.0.1:{refused.getsockname()[1]}",
            "dns": f"http://{DNS_HOST}",
            "tls": f"https://127.0.0.1:{silent.port}",
            "reset": reset.url,
        }
        recorders = {transport: ErrorRecorder() for transport in TRANSPORTS}
        gateways = {
            transport: Gateway(gateway_config(transport, bases, credentials), plugins=[recorders[transport]])
            for transport in TRANSPORTS
        }
        with (
            gateway_server(gateways["aiohttp"], "bare") as (aiohttp_url, _),
            gateway_server(gateways["httpx"], "bare") as (httpx_url, _),
        ):
            outcomes = asyncio.run(_run_all({"aiohttp": aiohttp_url, "httpx": httpx_url}, CASES))
            # on_error and usage for a stream error land just after its final event went out
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and any(
                case.id not in recorders[case.transport].errors for case in CASES
            ):
                time.sleep(0.02)
        usage = {
            transport: {
                (record.provider, record.model): (record.calls, record.errors)
                for record in gateway.usage.get_all()
            }
            for transport, gateway in gateways.items()
        }
        extra = {"silent_accepted": silent.accepted, "silent_closed": silent.closed_by_client}
    refused.close()
    return Matrix(
        outcomes=outcomes,
        errors={transport: recorder.errors for transport, recorder in recorders.items()},
        usage=usage,
        extra=extra,
    )


# -- the checks ---------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_fault(case: Case, matrix: Matrix) -> None:
    count_cases("fault matrix")
    expect = case.expect
    outcome = matrix.outcomes[case.id]
    assert outcome.problem is None, outcome.problem
    assert outcome.error is not None, f"not an error: {outcome}"
    assert set(outcome.error) == {"message", "type", "param", "code"}, outcome.error
    if case.fault == "dns_failure" and outcome.error["code"] == "upstream_timeout":
        expect = Expect(504, code="upstream_timeout", bound=CONNECT)  # no resolver answered in time
    if expect.sse is None:
        assert (outcome.status, outcome.sse) in ((200, True), (expect.status, False)), outcome
    elif expect.sse:
        assert outcome.status == 200 and outcome.sse, f"expected a final SSE error event: {outcome}"
    else:
        assert not outcome.sse, f"expected a plain HTTP error: {outcome}"
        assert outcome.status == expect.status, outcome
    if expect.code is not None:
        assert outcome.error["code"] == expect.code, outcome.error
    assert outcome.retry_after == expect.retry_after, outcome
    assert outcome.elapsed <= expect.bound + SLACK, f"took {outcome.elapsed:.2f}s"
    # on_error fired once, with the status
    assert [status for status, _ in matrix.errors[case.transport].get(case.id, [])] == [expect.status]
    # usage counted the call as an error
    assert matrix.usage[case.transport].get((case.route, case.model)) == (1, 1)
    # and the pool is healthy: the next request through the same gateway and provider type succeeds
    assert outcome.followup is None, f"the follow-up request failed: {outcome.followup}"


def test_matrix_covers_every_provider_fault_and_transport() -> None:
    assert {case.provider for case in CASES} == set(PROVIDERS) == set(PROVIDER_WIRE)
    assert {case.transport for case in CASES} == set(TRANSPORTS)
    assert {case.fault for case in CASES} == set(EXPECTED)
    assert len({case.id for case in CASES}) == len(CASES)


def test_the_silent_server_saw_every_handshake_given_up(matrix: Matrix) -> None:
    """Every TLS handshake the gateway started against the silent server was abandoned (closed)."""
    assert matrix.extra["silent_accepted"] >= 1
    assert matrix.extra["silent_closed"] == matrix.extra["silent_accepted"]
