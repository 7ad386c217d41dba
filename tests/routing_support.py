"""Helpers for the routing tests: a controllable clock, loopback upstreams, in-process clients.

Schedules (breakers, windows, cooldowns, backoff) run on ``FakeClock``: tests move time forward
instead of sleeping. ``FakeSleep`` records the waits the router asks for and advances the clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx

from rec_llm_gateway import Gateway

from .support import FakeUpstream, Reply, completion, serve


class FakeClock:
    """A monotonic clock that only moves when told to (thread-safe: upstreams advance it too)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


class FakeSleep:
    """Records each wait and moves the clock by it, without waiting."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.advance(seconds)
        await asyncio.sleep(0)


def control(gateway: Gateway, seed: int = 7) -> tuple[FakeClock, FakeSleep]:
    """Put ``gateway``'s routing (and key limits) on a fake clock, fake sleep and seeded jitter."""
    import random

    clock = FakeClock()
    sleep = FakeSleep(clock)
    gateway.router.clock = clock
    gateway.router.sleep = sleep
    gateway.router.random = random.Random(seed)
    gateway.keys.clock = clock
    return clock, sleep


def provider(upstream: FakeUpstream | str, **extra: Any) -> dict[str, Any]:
    """Settings for an OpenAI-type provider at a fake upstream (or a URL)."""
    url = upstream if isinstance(upstream, str) else upstream.url
    return {"type": "openai", "api_key": "sk-routing-test", "base_url": f"{url}/v1", "timeout": 5, **extra}


def dead_url() -> str:
    """A loopback URL where nothing listens (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def chat(model: str, text: str = "hello routing", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


@contextlib.asynccontextmanager
async def client(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client (no server between it and the gateway); closes the gateway after."""
    transport = httpx.ASGITransport(app=gateway)  # type: ignore[arg-type]
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway", timeout=30) as http:
            yield http
    finally:
        await gateway.aclose()


def served_by(upstreams: list[FakeUpstream]) -> list[int]:
    """How many chat requests each upstream received."""
    return [
        sum(1 for r in upstream.requests if r.path.endswith("/chat/completions")) for upstream in upstreams
    ]


def failing(status: int, message: str = "boom", **json_extra: Any) -> Reply:
    return Reply(status=status, json={"error": {"message": message, "type": "server_error", **json_extra}})


class CountingUpstream(FakeUpstream):
    """A fake upstream that tracks requests in flight, and can hold answers until ``release()``."""

    def __init__(self, delay: float = 0.0, held: bool = False) -> None:
        super().__init__(default=lambda request: Reply(json=completion(model=request.json["model"])))
        self.delay = delay
        self.held = threading.Event()
        if not held:
            self.held.set()
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()

    def release(self) -> None:
        self.held.set()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            while not self.held.is_set():
                await asyncio.sleep(0.002)
            if self.delay:
                await asyncio.sleep(self.delay)
            await super().__call__(scope, receive, send)
        finally:
            with self._lock:
                self.in_flight -= 1


@contextlib.contextmanager
def serving(*upstreams: FakeUpstream) -> Iterator[list[FakeUpstream]]:
    """Serve each upstream on loopback for the duration (sets ``.url``)."""
    with contextlib.ExitStack() as stack:
        for upstream in upstreams:
            upstream.url = stack.enter_context(serve(upstream))
        yield list(upstreams)


def two(upstreams: list[Any], **routing: Any) -> dict[str, Any]:
    a, b, *_ = upstreams
    return {
        "providers": {"a": provider(a), "b": provider(b)},
        "models": {"g": ["a:gpt-4o-mini", "b:gpt-4o-mini"]},
        "routing": routing,
    }


async def wait_until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    """Wait for a state change made by a background task (not a timing assertion)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not become true")
        await asyncio.sleep(0.01)
