"""Helpers for the shared-state tests: real ``redis-server`` processes and real gateway processes.

``redis_server(port)`` starts Redis on 127.0.0.1 (append-only file, so a killed server comes back
with its data); ``GatewayProcess`` runs ``rec-llm-gateway serve`` (optionally ``--workers N``) on a
config file and stops it with SIGTERM or SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

REDIS_SERVER = shutil.which("redis-server") or shutil.which("/usr/bin/redis-server")
ADMIN = {"x-api-key": "admin-key-000001"}
CHAT = "/v1/chat/completions"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One ``redis-server`` on loopback; ``kill()`` and ``start()`` again keep the port and the data."""

    def __init__(self, directory: Path) -> None:
        if REDIS_SERVER is None:
            pytest.skip("redis-server is not installed (apt-get install redis-server)")
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert REDIS_SERVER is not None
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port, self.process)

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None


@contextlib.contextmanager
def redis_server(directory: Path) -> Iterator[RedisServer]:
    server = RedisServer(directory)
    server.start()
    try:
        yield server
    finally:
        server.kill()


def wait_for_port(port: int, process: subprocess.Popen[bytes], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on port {port} (exit code {process.poll()})") from None
            time.sleep(0.05)


class GatewayProcess:
    """``rec-llm-gateway serve --config FILE [--workers N]`` on a free loopback port."""

    def __init__(self, config: Path, workers: int = 1) -> None:
        self.config = config
        self.workers = workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "rec_llm_gateway.cli", "serve", "--config", str(config)]
        command += ["--port", str(self.port), "--log-level", "warning"]
        if workers > 1:
            command += ["--workers", str(workers)]
        # Output to a file: a pipe nobody reads would fill up and block the server.
        self.log = config.parent / f"gateway-{self.port}.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        ready = 0
        while ready < self.workers * 3:  # several answers: with workers, each must be up
            try:
                if httpx.get(f"{self.url}/health", timeout=5).status_code == 200:
                    ready += 1
                    continue
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop(signal.SIGKILL)
                raise RuntimeError(f"the gateway did not start:\n{self.log.read_text()}")
            time.sleep(0.1)

    def stop(self, sig: int = signal.SIGTERM) -> str:
        """Stop it (SIGTERM: a clean shutdown; SIGKILL: ``kill -9``) and return what it printed."""
        if self.process.poll() is None:
            if sig == signal.SIGKILL and self.workers > 1:
                # kill -9 of the whole process group: the supervisor and its workers.
                os.killpg(os.getpgid(self.process.pid), sig)
            else:
                self.process.send_signal(sig)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.log.read_text()


@contextlib.contextmanager
def gateways(config: Path, *workers: int) -> Iterator[list[GatewayProcess]]:
    """Several gateway processes on one config (``gateways(path, 1, 2)``: a plain one, one with 2 workers)."""
    started: list[GatewayProcess] = []
    try:
        for count in workers:
            started.append(GatewayProcess(config, count))
        yield started
    finally:
        for process in started:
            process.stop()


def write_config(path: Path, state_url: str, **extra: Any) -> Path:
    """A gateway config: the echo provider (priced at $0.001 per output token), an admin key, the store."""
    config: dict[str, Any] = {
        "providers": {"echo": {"delay": extra.pop("delay", 0.0)}},
        "pricing": {"echo:m": {"input": 0, "output": 1000}},
        "auth": {"admin_keys": ["admin-key-000001"], "keys": extra.pop("keys", [])},
        "state": {"url": state_url, "flush_seconds": 0.1, "sync_seconds": 0.2, **extra.pop("state", {})},
        **extra,
    }
    path.write_text(json.dumps(config))
    return path


def chat_body(text: str = "hello", max_tokens: int = 1) -> dict[str, Any]:
    return {"model": "echo:m", "messages": [{"role": "user", "content": text}], "max_tokens": max_tokens}


def usage_totals(url: str, **params: str) -> dict[str, Any]:
    response = httpx.get(f"{url}/usage", headers=ADMIN, params=params, timeout=10)
    assert response.status_code == 200, response.text
    totals: dict[str, Any] = response.json()["totals"]
    return totals


def eventually_calls(url: str, calls: int, seconds: float = 10) -> dict[str, Any]:
    """The usage totals once they show ``calls`` (other processes write within their flush window)."""
    deadline = time.monotonic() + seconds
    while True:
        totals = usage_totals(url)
        if totals["calls"] == calls or time.monotonic() > deadline:
            return totals
        time.sleep(0.1)


async def post_all(
    urls: list[str], count: int, headers: dict[str, str], body: dict[str, object]
) -> list[int]:
    """``count`` requests spread round-robin over ``urls``, all at once; their statuses."""
    async with httpx.AsyncClient(timeout=30) as client:
        responses = await asyncio.gather(
            *(client.post(urls[i % len(urls)] + CHAT, json=body, headers=headers) for i in range(count))
        )
    for response in responses:
        if response.status_code != 200:
            assert response.status_code == 429, response.text
            assert "retry-after" in response.headers
    return [response.status_code for response in responses]
