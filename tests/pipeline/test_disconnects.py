"""Client disconnects: the upstream call is closed promptly, and nothing is left behind.

A client (raw sockets on loopback, through uvicorn) goes away in one of three moments:

- ``mid_stream``: after the first chunk of a stream, while the upstream stalls before the next;
- ``stream_waiting``: a stream request whose upstream has not answered yet (no first chunk);
- ``mid_request``: a non-streaming request whose upstream is still thinking.

For every provider type and both transports, the fake upstream must see the gateway hang up within
``PROMPT`` seconds, and ``on_error`` must report the client gone (499 ``client_disconnected``).
Then 1,000 such disconnects (every moment, provider type and transport, half closed with FIN and
half reset) must leave no asyncio task on the servers' loops, no file descriptor and no traced
memory behind (tolerances below), and every upstream call closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import json
import os
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from rec_llm_gateway import Gateway, hookimpl

from ..fault_support import PROVIDERS, TRANSPORTS, FaultUpstream, provider_settings
from ..gemini_support import service_account_file
from ..support import count_cases, host_app, note, serve

MOMENTS = ("mid_stream", "stream_waiting", "mid_request")
PROMPT = 2.0
"""Seconds within which the upstream must see the gateway hang up (it takes milliseconds)."""
LOOP_DISCONNECTS = 1000
LOOP_CONCURRENCY = 20
MEMORY_TOLERANCE = 512 * 1024
"""Traced bytes still allocated after the loop that were not before it: 0.5 KiB per disconnect. A
request that leaked its state (tasks, frames, buffers, the upstream response) costs several KiB."""
FD_TOLERANCE = 0
TASK_TOLERANCE = 0


class LoopProbe:
    """An ASGI wrapper that remembers the event loop its server runs on."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.loop = asyncio.get_running_loop()
        await self.app(scope, receive, send)


class Gone:
    def __init__(self) -> None:
        self.errors: dict[str, tuple[int, str | None]] = {}

    @hookimpl
    def on_error(self, error: Any, context: Any) -> None:
        self.errors[context.request_id] = (error.status_code, error.code)


@dataclass
class Server:
    port: int
    probe: LoopProbe
    gateway: Gateway
    gone: Gone


@dataclass
class Setup:
    fake: FaultUpstream
    fake_probe: LoopProbe
    servers: dict[str, Server] = field(default_factory=dict)
    left: dict[str, float] = field(default_factory=dict)
    """tag -> ``time.monotonic()`` when the client closed its connection."""


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    fake = FaultUpstream(keep_requests=False)
    fake_probe = LoopProbe(fake)
    with contextlib.ExitStack() as stack:
        fake.url = stack.enter_context(serve(fake_probe))
        credentials = str(service_account_file(Path(tmp_path_factory.mktemp("vertex")), f"{fake.url}/token"))
        result = Setup(fake, fake_probe)
        timeout = {"connect": 5, "read": 60, "total": 120}  # a close here is the disconnect's doing
        for transport in TRANSPORTS:
            providers = {
                kind: {**provider_settings(kind, fake.url, credentials), "timeout": timeout}
                for kind in PROVIDERS
            }
            gone = Gone()
            gateway = Gateway({"providers": providers, "http": {"transport": transport}}, plugins=[gone])
            probe = LoopProbe(host_app("bare", gateway))
            url = stack.enter_context(serve(probe))
            result.servers[transport] = Server(int(url.rsplit(":", 1)[1]), probe, gateway, gone)
        yield result


# -- one disconnect ---------------------------------------------------------------------------------

_counter = itertools.count()


def _request(provider: str, moment: str, tag: str) -> bytes:
    fault = "stall_mid_body" if moment == "mid_stream" else "slow_first_byte"
    # more than 64 characters: pydantic-core caches shorter strings (a bounded cache, but it would
    # blur the memory measurement)
    text = f"please keep this request open for as long as the client is still connected: {tag}"
    message = {"role": "user", "content": text}
    body = json.dumps(
        {"model": f"{provider}:{fault}-0", "messages": [message], "stream": moment != "mid_request"}
    ).encode()
    head = (
        "POST /llm/v1/chat/completions HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\n"
        f"x-request-id: {tag}\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def disconnect(setup: Setup, transport: str, provider: str, moment: str, *, reset: bool) -> str:
    """Send a request, go away at ``moment``; the request's tag (also its ``x-request-id``)."""
    tag = f"tag-{next(_counter)}"
    reader, writer = await asyncio.open_connection("127.0.0.1", setup.servers[transport].port)
    try:
        writer.write(_request(provider, moment, tag))
        await writer.drain()
        async with asyncio.timeout(20):
            if moment == "mid_stream":
                received = b""
                while b"data: " not in received:  # the first chunk has arrived
                    data = await reader.read(65536)
                    assert data, f"{tag}: the gateway closed before the first chunk: {received!r}"
                    received += data
            else:
                while tag not in setup.fake.arrived:  # the upstream is now "thinking"
                    await asyncio.sleep(0.002)
    finally:
        if reset:
            writer.transport.abort()
        else:
            writer.close()
        setup.left[tag] = time.monotonic()
        if not reset:
            with contextlib.suppress(OSError):
                await writer.wait_closed()
    return tag


async def wait_until(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True


# -- the upstream is closed promptly -----------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("moment", MOMENTS)
def test_a_client_that_goes_away_closes_the_upstream(
    setup: Setup, transport: str, provider: str, moment: str
) -> None:
    count_cases("client disconnects")
    gone = setup.servers[transport].gone

    async def scenario() -> tuple[str, float, bool]:
        tag = await disconnect(setup, transport, provider, moment, reset=False)
        closed = await wait_until(lambda: tag in setup.fake.closed, PROMPT)
        await wait_until(lambda: tag in gone.errors, PROMPT)
        return tag, setup.fake.closed.get(tag, float("inf")) - setup.left[tag], closed

    tag, delay, closed = asyncio.run(scenario())
    assert closed, f"the upstream call was still open {PROMPT}s after the client left"
    assert delay < PROMPT
    assert gone.errors.get(tag) == (499, "client_disconnected")


# -- 1,000 disconnects leave nothing behind ------------------------------------------------------------


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _tasks(loop: asyncio.AbstractEventLoop | None) -> int:
    assert loop is not None

    async def count() -> int:
        return len(asyncio.all_tasks()) - 1  # not this one

    return asyncio.run_coroutine_threadsafe(count(), loop).result(10)


def _all_tasks(setup: Setup) -> int:
    return sum(_tasks(server.probe.loop) for server in setup.servers.values()) + _tasks(setup.fake_probe.loop)


async def _loop(setup: Setup, count: int) -> list[str]:
    """``count`` disconnects, ``LOOP_CONCURRENCY`` at a time, cycling through every combination."""
    plan = iter(
        enumerate(itertools.islice(itertools.cycle(itertools.product(TRANSPORTS, PROVIDERS, MOMENTS)), count))
    )
    tags: list[str] = []

    async def worker() -> None:  # a few workers, not a task per disconnect: the client stays small
        for index, (transport, provider, moment) in plan:
            tags.append(await disconnect(setup, transport, provider, moment, reset=index % 2 == 1))

    await asyncio.gather(*(worker() for _ in range(LOOP_CONCURRENCY)))
    return tags


def _settle(setup: Setup, tags: list[str]) -> None:
    errors = {tag for server in setup.servers.values() for tag in server.gone.errors}

    async def settled() -> bool:
        return await wait_until(
            lambda: all(tag in setup.fake.closed for tag in tags), 15
        ) and await wait_until(lambda: all(tag in errors or _seen(setup, tag) for tag in tags), 15)

    assert asyncio.run(settled()), "some upstream calls were never closed"
    missing = [tag for tag in tags if not _seen(setup, tag)]
    assert not missing, f"{len(missing)} disconnects never reached on_error, e.g. {missing[:3]}"


def _seen(setup: Setup, tag: str) -> bool:
    return any(tag in server.gone.errors for server in setup.servers.values())


def _forget(setup: Setup) -> None:
    """Drop what the test itself keeps per request (so that only the gateway's memory is measured)."""
    setup.left.clear()
    setup.fake.arrived.clear()
    setup.fake.closed.clear()
    for server in setup.servers.values():
        server.gone.errors.clear()


def _wait_for(measure: Any, target: int, timeout: float = 5.0) -> int:
    deadline = time.monotonic() + timeout
    value = measure()
    while value > target and time.monotonic() < deadline:
        time.sleep(0.02)
        value = measure()
    return int(value)


def test_a_thousand_disconnects_leave_nothing_behind(setup: Setup) -> None:
    # warm up: every provider, transport and moment once (imports, tokens, pools, caches)
    _settle(setup, asyncio.run(_loop(setup, 3 * len(PROVIDERS) * len(TRANSPORTS) * len(MOMENTS))))
    _forget(setup)
    gc.collect()
    tasks_before, fds_before = _all_tasks(setup), _fds()
    tracemalloc.start()
    try:
        started = time.monotonic()
        tags = asyncio.run(_loop(setup, LOOP_DISCONNECTS))
        elapsed = time.monotonic() - started
        assert len(set(tags)) == LOOP_DISCONNECTS
        _settle(setup, tags)
        delays = sorted(setup.fake.closed[tag] - setup.left[tag] for tag in tags)
        _forget(setup)
        del tags
        tasks_after = _wait_for(lambda: _all_tasks(setup), tasks_before)
        fds_after = _wait_for(_fds, fds_before)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0]
        top = tracemalloc.take_snapshot().statistics("lineno")[:5]
    finally:
        tracemalloc.stop()
    count_cases("client disconnects", LOOP_DISCONNECTS)
    note(
        f"{LOOP_DISCONNECTS} disconnects in {elapsed:.1f}s: server tasks {tasks_before} -> {tasks_after}, "
        f"fds {fds_before} -> {fds_after}, traced memory still held +{grown / 1024:.0f} KiB; upstream "
        f"closed {delays[len(delays) // 2] * 1000:.1f} ms after the client (median), "
        f"{delays[-1] * 1000:.0f} ms at most"
    )
    assert delays[-1] < PROMPT, "an upstream call outlived its client"
    assert tasks_after - tasks_before <= TASK_TOLERANCE
    assert fds_after - fds_before <= FD_TOLERANCE
    assert grown <= MEMORY_TOLERANCE, "\n".join(str(stat) for stat in top)
