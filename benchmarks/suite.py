"""The measurements of the benchmark suite. ``python -m benchmarks`` runs them all (see __main__.py).

Every comparison is made in one run: the systems under test share the same fake upstream, machine
and client, rounds interleave the targets, and each figure is a median over rounds.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .harness import ROOT, Server, median, percentile

CHAT = {
    "model": "gpt-4o-mini",
    "messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Say hello in one short sentence, please."},
    ],
    "temperature": 0.2,
    "max_tokens": 64,
}
BODY = json.dumps(CHAT).encode()
EMBED = {
    "model": "text-embedding-3-small",
    # four document chunks, base64 out: what the openai SDK sends for a RAG app's batch
    "input": [f"Chunk {index}: the gateway mounts inside an existing ASGI app." for index in range(4)],
    "encoding_format": "base64",
}


@dataclass
class Target:
    """One system under test: where to send requests, and how to name the model there."""

    name: str
    server: Server
    path: str
    model_prefix: str = ""
    results: dict[str, Any] = field(default_factory=dict)
    request: dict[str, Any] | None = None
    """The request body's template (chat completions, or embeddings on an embeddings path, when None)."""

    def body(self, model: str | None = None, **extra: Any) -> bytes:
        template = self.request or (EMBED if self.path.endswith("/embeddings") else CHAT)
        return json.dumps(
            {**template, "model": self.model_prefix + (model or template["model"]), **extra}
        ).encode()


# -- sequential non-streaming latency -----------------------------------------------------------------


def sequential(targets: list[Target], rounds: int, requests: int) -> None:
    connections = {
        target.name: http.client.HTTPConnection("127.0.0.1", target.server.port, timeout=30)
        for target in targets
    }

    def once(target: Target, body: bytes) -> float:
        connection = connections[target.name]
        started = time.perf_counter()
        try:
            connection.request("POST", target.path, body=body, headers={"content-type": "application/json"})
            response = connection.getresponse()
        except (ConnectionError, http.client.HTTPException):
            # The server closed an idle keep-alive connection (LiteLLM's uvicorn: after 5 s): reconnect.
            connection.close()
            started = time.perf_counter()
            connection.request("POST", target.path, body=body, headers={"content-type": "application/json"})
            response = connection.getresponse()
        payload = response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200:
            raise RuntimeError(f"{target.name}: HTTP {response.status}: {payload[:300]!r}")
        return elapsed

    bodies = {target.name: target.body() for target in targets}
    for target in targets:  # warm up: connections, imports, price table, caches
        for _ in range(200):
            once(target, bodies[target.name])
    samples: dict[str, list[list[float]]] = {target.name: [] for target in targets}
    for _ in range(rounds):
        for target in targets:
            samples[target.name].append([once(target, bodies[target.name]) for _ in range(requests)])
    direct = samples[targets[0].name]
    for target in targets:
        rows = samples[target.name]
        result: dict[str, float] = {}
        for label, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
            result[f"{label}_ms"] = median([percentile(r, q) for r in rows]) * 1000
            result[f"overhead_{label}_ms"] = (
                median([percentile(r, q) - percentile(d, q) for r, d in zip(rows, direct, strict=True)])
                * 1000
            )
        target.results["sequential"] = result
        target.results["rss_after_warmup_mib"] = round(target.server.rss_mib(), 1)


# -- streaming: time to first chunk and per-chunk delay ----------------------------------------------------


def streaming(
    targets: list[Target], rounds: int, streams: int, chunks: int = 20, interval_ms: float = 2.0
) -> None:
    """Time to first chunk, and each chunk's delay from the upstream's send to the client's receipt.

    The fake upstream writes its send time (monotonic ns, shared by processes on one machine) into
    every token; the client subtracts it from the arrival time. Through a proxy minus direct is the
    proxy's own delay per chunk.
    """
    model = f"bench-c{chunks}-i{interval_ms:g}"
    clients = {target.name: httpx.Client(timeout=30) for target in targets}

    def once(target: Target) -> tuple[float, list[float]]:
        delays: list[float] = []
        first: float | None = None
        started = time.perf_counter()
        url = target.server.url + target.path
        with clients[target.name].stream("POST", url, content=target.body(model, stream=True)) as response:
            for line in response.iter_lines():
                if not line.startswith("data: {"):
                    continue
                arrived = time.monotonic_ns()
                data = json.loads(line[6:])
                for text in _texts(data):
                    if text.startswith("t"):
                        if first is None:
                            first = time.perf_counter() - started
                        delays.append((arrived - int(text[1:].split()[0])) / 1e9)
        if first is None or len(delays) != chunks:
            raise RuntimeError(f"{target.name}: stream had {len(delays)} of {chunks} chunks")
        return first, delays

    for target in targets:
        for _ in range(10):
            once(target)
    per_round: dict[str, list[tuple[float, float]]] = {target.name: [] for target in targets}
    for _ in range(rounds):
        for target in targets:
            firsts, delays = [], []
            for _ in range(streams):
                first, chunk_delays = once(target)
                firsts.append(first)
                delays.extend(chunk_delays[1:])  # the first chunk's delay is in time-to-first-chunk
            per_round[target.name].append((statistics.median(firsts), statistics.median(delays)))
    direct = per_round[targets[0].name]
    for target in targets:
        rows = per_round[target.name]
        target.results["streaming"] = {
            "ttfc_ms": median([first for first, _ in rows]) * 1000,
            "ttfc_overhead_ms": median([r[0] - d[0] for r, d in zip(rows, direct, strict=True)]) * 1000,
            "chunk_delay_us": median([delay for _, delay in rows]) * 1e6,
            "chunk_added_delay_us": median([r[1] - d[1] for r, d in zip(rows, direct, strict=True)]) * 1e6,
        }


def _texts(data: dict[str, Any]) -> list[str]:
    """The text deltas of an OpenAI chunk, an Anthropic ``content_block_delta`` event, or a
    Responses API ``response.output_text.delta`` event."""
    if data.get("type") == "content_block_delta":
        return [data["delta"].get("text") or ""]
    if data.get("type") == "response.output_text.delta":
        return [data["delta"]]
    return [(choice.get("delta") or {}).get("content") or "" for choice in data.get("choices") or ()]


# -- throughput ----------------------------------------------------------------------------------------------

_WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
"""


def load_generator() -> str:
    """wrk (installed with apt-get when missing and this runs as root), else an async client. The
    async client needs most of a core of its own on a 2-core machine, which it takes from the
    servers it measures: two gateway workers scale 1.25-1.35x one with it, 1.6-1.7x with wrk."""
    if shutil.which("wrk") is None and shutil.which("apt-get") and os.geteuid() == 0:
        print("installing wrk (apt-get install wrk) ...", flush=True)
        command = ["apt-get", "install", "-y", "-q", "wrk"]
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            if subprocess.run(command, capture_output=True, timeout=300).returncode != 0:
                subprocess.run(["apt-get", "update", "-q"], capture_output=True, timeout=300)
                subprocess.run(command, capture_output=True, timeout=300)
    return "wrk" if shutil.which("wrk") else "async-client"


def throughput(targets: list[Target], concurrency: list[int], seconds: float, rounds: int) -> str:
    """Requests per second from a separate process (``load_generator()``)."""
    tool = load_generator()
    for concurrent in concurrency:
        per_target: dict[str, list[tuple[float, int]]] = {target.name: [] for target in targets}
        for _ in range(rounds):
            for target in targets:
                per_target[target.name].append(_load(tool, target, concurrent, seconds))
        for target in targets:
            rates = [rate for rate, _ in per_target[target.name]]
            errors = sum(error for _, error in per_target[target.name])
            target.results.setdefault("throughput", {})[f"c{concurrent}"] = {
                "rps": median(rates),
                "errors": errors,
            }
    return tool


def _load(tool: str, target: Target, concurrent: int, seconds: float) -> tuple[float, int]:
    url = target.server.url + target.path
    if tool == "wrk":
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
            script.write(_WRK_SCRIPT.format(body=json.dumps(target.body().decode())))
        output = subprocess.run(
            ["wrk", "-t1", f"-c{concurrent}", f"-d{seconds:g}s", "-s", script.name, url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        Path(script.name).unlink()
        rate = float(output.split("Requests/sec:")[1].split()[0])
        errors = 0
        for line in output.splitlines():
            if "Non-2xx" in line:
                errors += int(line.split(":")[1])
            if "Socket errors" in line:
                errors += sum(
                    int(part.split()[1].rstrip(",")) for part in line.split(":")[1].split(",") if part.strip()
                )
        return rate, errors
    command = [
        sys.executable,
        "-m",
        "benchmarks.loadgen",
        url,
        str(concurrent),
        str(seconds),
        target.body().decode(),
    ]
    result = json.loads(subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout)
    return float(result["rps"]), int(result["errors"])


# -- many concurrent streams ---------------------------------------------------------------------------


def concurrent_streams(target: Target, count: int, chunks: int = 20, interval_ms: float = 50.0) -> None:
    """``count`` streams open at once against one worker: how many complete, memory per open stream."""
    time.sleep(1)
    baseline = target.server.rss_mib()
    peak = baseline
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, target.server.rss_mib())
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    body = target.body(f"bench-c{chunks}-i{interval_ms:g}", stream=True).decode()
    command = [
        sys.executable,
        "-m",
        "benchmarks.loadgen",
        "--streams",
        target.server.url + target.path,
        str(count),
        "120",
        body,
    ]
    try:
        output = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, check=True, timeout=300
        ).stdout
    finally:
        stop.set()
        sampler.join()
    result = json.loads(output)
    target.results["concurrent_streams"] = {
        "streams": count,
        "completed": result["completed"],
        "errors": result["errors"],
        "baseline_rss_mib": round(baseline, 1),
        "peak_rss_mib": round(peak, 1),
        "kib_per_stream": round((peak - baseline) * 1024 / count, 1),
        "wall_s": round(result["seconds"], 2),
    }


# -- footprint ---------------------------------------------------------------------------------------------


def import_time(python: str, module: str, repeats: int = 7) -> float | None:
    """Median seconds to import ``module`` in a fresh interpreter."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    times = []
    for _ in range(repeats):
        result = subprocess.run(
            [python, "-c", code], capture_output=True, text=True, cwd=tempfile.gettempdir()
        )
        if result.returncode != 0:
            return None
        times.append(float(result.stdout.strip()))
    return median(times)


# -- translation cost per chunk ---------------------------------------------------------------------------


def translation_costs(events: int = 20000) -> dict[str, float]:
    """Microseconds per stream event to translate it (provider side) and encode it for the client."""
    from . import translation

    return translation.measure(events)
