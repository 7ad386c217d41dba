"""Soak: 100,000 mixed requests against one gateway worker, memory sampled as it goes.

    python -m benchmarks.soak [--requests 100000] [--concurrency 16] [--json FILE]

The mix: plain completions, streams, client errors (bad JSON), upstream errors (HTTP 500 -> 502) and
failovers (a model group whose first deployment refuses connections). The gateway's resident memory
is read every 5% of the run; growth is measured from the end of warm-up (the first 20%) to the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from .harness import RESULTS, free_port, rss_mib, server, wait_for_port

MIX = (
    ("plain", 60, {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}),
    ("stream", 25, {"model": "bench-c5-i0", "stream": True, "messages": [{"role": "user", "content": "hi"}]}),
    ("client error", 5, None),
    (
        "upstream error",
        5,
        {"model": "openai:bench-error500", "messages": [{"role": "user", "content": "hi"}]},
    ),
    ("failover", 5, {"model": "soak-failover", "messages": [{"role": "user", "content": "hi"}]}),
)


def gateway_config(upstream: str) -> dict[str, Any]:
    return {
        "default_provider": "openai",
        "providers": {
            "openai": {"api_key": "sk-soak", "base_url": f"{upstream}/v1", "models": ["gpt-4o-mini"]},
            "dead": {
                "type": "openai",
                "api_key": "sk-dead",
                "base_url": f"http://127.0.0.1:{free_port()}/v1",
            },
        },
        "models": {"soak-failover": ["dead:gpt-4o-mini", "openai:gpt-4o-mini"]},
        # Keep the dead deployment in play: the soak is about failing over, not about the breaker.
        "routing": {"breaker": {"enabled": False}},
    }


async def drive(url: str, total: int, concurrency: int, pid: int) -> dict[str, Any]:
    schedule = [name for name, weight, _ in MIX for _ in range(weight)]
    bodies = {name: (json.dumps(body).encode() if body else b"{not json") for name, _, body in MIX}
    counts = {name: {"ok": 0, "unexpected": 0} for name, _, _ in MIX}
    expected = {"plain": 200, "stream": 200, "client error": 400, "upstream error": 502, "failover": 200}
    samples: list[tuple[int, float]] = [(0, rss_mib(pid))]
    done = 0
    next_sample = total // 20
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker(offset: int) -> None:
            nonlocal done, next_sample
            index = offset
            while True:
                if done >= total:
                    return
                done += 1
                name = schedule[index % len(schedule)]
                index += concurrency
                async with session.post(
                    url, data=bodies[name], headers={"content-type": "application/json"}
                ) as response:
                    body = await response.read()
                ok = response.status == expected[name] and (
                    name != "stream" or body.rstrip().endswith(b"[DONE]")
                )
                counts[name]["ok" if ok else "unexpected"] += 1
                if done >= next_sample:
                    next_sample += total // 20
                    samples.append((done, rss_mib(pid)))

        started = time.monotonic()
        await asyncio.gather(*(worker(offset) for offset in range(concurrency)))
        seconds = time.monotonic() - started
    samples.append((done, rss_mib(pid)))
    warm = next(rss for count, rss in samples if count >= total // 5)
    end = samples[-1][1]
    return {
        "requests": done,
        "seconds": round(seconds, 1),
        "requests_per_second": round(done / seconds),
        "counts": counts,
        "rss_mib": [(count, round(rss, 1)) for count, rss in samples],
        "rss_after_warmup_mib": round(warm, 1),
        "rss_end_mib": round(end, 1),
        "growth_after_warmup_percent": round((end - warm) / warm * 100, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--json", default=str(RESULTS / "soak.json"))
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        upstream = stack.enter_context(server("upstream", "upstream"))
        config = RESULTS / "soak-gateway.json"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(json.dumps(gateway_config(upstream.url)))
        command = [
            sys.executable,
            "-m",
            "rec_llm_gateway.cli",
            "serve",
            "--config",
            str(config),
            "--port",
            "{port}",
            "--log-level",
            "error",
        ]
        gateway = stack.enter_context(server("soak-gateway", command=command))
        wait_for_port(gateway.port, gateway.process)
        url = f"{gateway.url}/v1/chat/completions"
        report = asyncio.run(drive(url, args.requests, args.concurrency, gateway.process.pid))
    Path(args.json).write_text(json.dumps(report, indent=2))
    rate = report["requests_per_second"]
    print(f"{report['requests']} requests in {report['seconds']} s ({rate}/s), one gateway worker")
    for name, count in report["counts"].items():
        print(f"  {name:<15} {count['ok']:>7} as expected, {count['unexpected']} not")
    print(
        "  RSS (MiB) by requests done: " + ", ".join(f"{done}: {rss}" for done, rss in report["rss_mib"][::4])
    )
    verdict = "met" if report["growth_after_warmup_percent"] < 5 else "NOT met"
    print(f"memory growth after warm-up: {report['growth_after_warmup_percent']}% (goal < 5%: {verdict})")


if __name__ == "__main__":
    main()
