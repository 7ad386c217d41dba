"""Cold start: python -m benchmarks.startup

From process start to the first answer served, in a fresh interpreter each time, against the fake
upstream (started here, on loopback):

- ``library``: ``import rec_llm_gateway``, ``Gateway.from_file`` (a YAML config), and one chat
  completion through the gateway's ASGI app (called in-process, so no web server is counted; the
  upstream call is real HTTP);
- ``serve``: ``rec-llm-gateway serve --config FILE`` (uvicorn included) until a client's first
  chat completion comes back.

Also ``import rec_llm_gateway`` alone, and with httpx's command-line module kept out: httpx imports
it (click, rich, pygments) whenever those are installed, which the gateway cannot prevent.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from .harness import RESULTS, free_port, server

CONFIG = """\
default_provider: openai
providers:
  openai:
    api_key: sk-bench
    base_url: {upstream}/v1
    prices_from: openai
"""
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello"}]}

_LIBRARY = """
import asyncio, json, sys
from rec_llm_gateway import Gateway

async def main():
    gateway = Gateway.from_file(sys.argv[1])
    body = json.dumps({chat!r}).encode()
    sent, asked = [], []
    async def receive():  # the body, then nothing until the answer is out (no disconnect)
        if asked:
            await asyncio.Event().wait()
        asked.append(1)
        return {{"type": "http.request", "body": body, "more_body": False}}
    async def send(message):
        sent.append(message)
    scope = {{"type": "http", "method": "POST", "path": "/v1/chat/completions", "root_path": "",
             "query_string": b"", "headers": [(b"content-type", b"application/json")]}}
    await gateway(scope, receive, send)
    assert sent[0]["status"] == 200, sent
    print("answered", flush=True)
    await gateway.aclose()

asyncio.run(main())
"""


def _library(config: Path) -> float:
    """Seconds from starting the interpreter to the script's "answered" line (its shutdown after
    is not counted)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", _LIBRARY.format(chat=CHAT), str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tempfile.gettempdir(),
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    elapsed = time.perf_counter() - started
    _, errors = process.communicate(timeout=60)
    if "answered" not in line:
        raise RuntimeError(f"the cold-start script failed: {errors[-2000:]}")
    return elapsed


def _serve(config: Path) -> float:
    port = free_port()
    body = json.dumps(CHAT).encode()
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "rec_llm_gateway.cli", "serve", "--config", str(config), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tempfile.gettempdir(),
    )
    try:
        while time.perf_counter() - started < 30:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/v1/chat/completions",
                data=body,
                headers={"content-type": "application/json"},
            )
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    if response.status == 200:
                        return time.perf_counter() - started
            except OSError:  # not listening yet
                time.sleep(0.002)
        raise RuntimeError("rec-llm-gateway serve did not answer within 30 s")
    finally:
        process.terminate()
        process.wait(15)


def import_seconds(hide_httpx_cli: bool = False, repeats: int = 7) -> float:
    """Median seconds of ``import rec_llm_gateway`` in a fresh interpreter."""
    hide = "import sys; sys.modules['httpx._main'] = None; " if hide_httpx_cli else ""
    code = (
        f"{hide}import time; t = time.perf_counter(); import rec_llm_gateway; print(time.perf_counter() - t)"
    )
    times = []
    for _ in range(repeats):
        done = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            cwd=tempfile.gettempdir(),
            check=True,
        )
        times.append(float(done.stdout.strip()))
    return statistics.median(times)


def measure(upstream: str, repeats: int = 7) -> dict[str, float]:
    """Median milliseconds of each cold start (see the module docstring)."""
    config = RESULTS / "cold-start.yaml"
    config.write_text(CONFIG.format(upstream=upstream))
    library, serve = [], []
    for _ in range(repeats):  # alternating, so a busier moment weighs on both alike
        library.append(_library(config))
        serve.append(_serve(config))
    return {
        "library_ms": round(statistics.median(library) * 1000, 1),
        "serve_ms": round(statistics.median(serve) * 1000, 1),
        "import_ms": round(import_seconds() * 1000, 1),
        "import_without_httpx_cli_ms": round(import_seconds(hide_httpx_cli=True) * 1000, 1),
    }


def describe(cold: dict[str, float]) -> str:
    return (
        f"cold start to the first answer: {cold['library_ms']} ms as a library (import, "
        f"Gateway.from_file, one request), {cold['serve_ms']} ms via rec-llm-gateway serve; import "
        f"{cold['import_ms']} ms ({cold['import_without_httpx_cli_ms']} ms without httpx's CLI module)"
    )


def main() -> None:
    with server("upstream", "upstream") as upstream:
        print(json.dumps(measure(upstream.url), indent=2))


if __name__ == "__main__":
    os.chdir(Path(__file__).resolve().parent.parent)
    main()
