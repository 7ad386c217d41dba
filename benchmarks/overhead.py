"""Gateway overhead against a bare pass-through proxy, sequential non-streaming requests, one run.

    python -m benchmarks.overhead [--rounds 7] [--requests 300] [--json benchmarks/results/overhead.json]

Starts, on loopback, a fast fake OpenAI upstream and each system under test as its own uvicorn
process (one worker): direct to the upstream, a bare pass-through (raw ASGI + httpx, no parsing),
the same on aiohttp (when installed), and the gateway mounted in FastAPI (plain, with no-op hooks,
and with the OpenTelemetry SDK and in-memory exporters). The client is a keep-alive
``http.client`` connection per target; rounds interleave the targets so machine noise hits all of
them alike. Every figure is the median over rounds; overhead = target - direct in the same round.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BODY = json.dumps(
    {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Say hello in one short sentence, please."},
        ],
        "temperature": 0.2,
        "max_tokens": 64,
    }
).encode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def server(*arguments: str) -> Iterator[int]:
    """Run ``python -m benchmarks.servers ...`` and yield its port once it answers."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.servers", *arguments, "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"server {arguments} did not start") from None
                time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(10)


@dataclass
class Target:
    name: str
    port: int
    path: str
    rounds: list[list[float]] = field(default_factory=list)
    connection: http.client.HTTPConnection | None = None

    def request(self) -> float:
        if self.connection is None:
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        started = time.perf_counter()
        self.connection.request("POST", self.path, body=BODY, headers={"content-type": "application/json"})
        response = self.connection.getresponse()
        payload = response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200:
            raise RuntimeError(f"{self.name}: HTTP {response.status}: {payload[:200]!r}")
        return elapsed


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summarise(targets: list[Target]) -> dict[str, dict[str, float]]:
    direct = targets[0]
    results: dict[str, dict[str, float]] = {}
    for target in targets:
        row: dict[str, float] = {}
        for label, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
            row[f"{label}_ms"] = statistics.median(percentile(r, q) for r in target.rounds) * 1000
            row[f"overhead_{label}_ms"] = (
                statistics.median(
                    percentile(r, q) - percentile(d, q)
                    for r, d in zip(target.rounds, direct.rounds, strict=True)
                )
                * 1000
            )
        results[target.name] = row
    return results


def run(rounds: int, requests: int, include_aiohttp: bool) -> dict[str, object]:
    with contextlib.ExitStack() as stack:
        upstream = stack.enter_context(server("upstream"))
        url = f"http://127.0.0.1:{upstream}"
        targets = [Target("direct", upstream, "/v1/chat/completions")]
        targets.append(
            Target(
                "bare httpx proxy",
                stack.enter_context(server("bare", "--upstream", url)),
                "/llm/v1/chat/completions",
            )
        )
        if include_aiohttp:
            port = stack.enter_context(server("aiohttp", "--upstream", url))
            targets.append(Target("bare aiohttp proxy", port, "/llm/v1/chat/completions"))
        for variant in ("plain", "hooks", "otel-sdk"):
            port = stack.enter_context(server("gateway", "--upstream", url, "--variant", variant))
            name = "gateway" if variant == "plain" else f"gateway + {variant}"
            targets.append(Target(name, port, "/llm/v1/chat/completions"))
        for target in targets:  # warm up: connections, imports, price table, caches
            for _ in range(200):
                target.request()
        for _ in range(rounds):
            for target in targets:
                target.rounds.append([target.request() for _ in range(requests)])
        results = summarise(targets)
    bare = results["bare httpx proxy"]["overhead_p50_ms"]
    ratios = {
        name: row["overhead_p50_ms"] / bare for name, row in results.items() if name != "direct" and bare > 0
    }
    floor = results.get("bare aiohttp proxy", {}).get("overhead_p50_ms")
    return {
        "method": f"{rounds} rounds x {requests} sequential requests per target, interleaved",
        "machine": f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, {sys.platform}",
        "results": results,
        "overhead_ratio_vs_bare_httpx_p50": ratios,
        "overhead_ratio_vs_aiohttp_p50": (
            {
                name: row["overhead_p50_ms"] / floor
                for name, row in results.items()
                if floor and name != "direct"
            }
            if floor
            else None
        ),
    }


def print_table(report: dict[str, object]) -> None:
    results: dict[str, dict[str, float]] = report["results"]  # type: ignore[assignment]
    ratios: dict[str, float] = report["overhead_ratio_vs_bare_httpx_p50"]  # type: ignore[assignment]
    print(f"\n{report['method']}\n{report['machine']}\n")
    print(
        f"{'target':<24}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'over p50':>10}{'over p99':>10}{'vs bare':>9}"
    )
    for name, row in results.items():
        ratio = f"{ratios[name]:.2f}x" if name in ratios else ""
        print(
            f"{name:<24}{row['p50_ms']:>9.3f}{row['p90_ms']:>9.3f}{row['p99_ms']:>9.3f}"
            f"{row['overhead_p50_ms']:>10.3f}{row['overhead_p99_ms']:>10.3f}{ratio:>9}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "overhead.json"))
    args = parser.parse_args()
    try:
        import aiohttp  # noqa: F401

        include_aiohttp = True
    except ImportError:
        include_aiohttp = False
    report = run(args.rounds, args.requests, include_aiohttp)
    print_table(report)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=2))
    print(f"\nwritten to {args.json}")


if __name__ == "__main__":
    main()
