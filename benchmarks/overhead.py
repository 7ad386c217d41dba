"""Gateway overhead against a bare pass-through proxy, sequential non-streaming requests, one run.

    python -m benchmarks.overhead [--rounds 7] [--requests 300] [--json benchmarks/results/overhead.json]

The quick check from the core issue; ``python -m benchmarks`` runs this and everything else. Starts on
loopback a fast fake OpenAI upstream and each system under test as its own uvicorn process (one
worker): direct to the upstream, a bare pass-through (raw ASGI + httpx, no parsing), the same on
aiohttp (when installed), and the gateway mounted in FastAPI (plain, with no-op hooks, and with the
OpenTelemetry SDK and in-memory exporters). Rounds interleave the targets; every figure is the median
over rounds; overhead = target - direct in the same round.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path

from . import suite
from .harness import RESULTS, server


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--json", default=str(RESULTS / "overhead.json"))
    args = parser.parse_args()
    try:
        import aiohttp  # noqa: F401

        kinds = ["bare", "aiohttp"]
    except ImportError:
        kinds = ["bare"]
    with contextlib.ExitStack() as stack:
        upstream = stack.enter_context(server("upstream", "upstream"))
        path = "/llm/v1/chat/completions"
        targets = [suite.Target("direct", upstream, "/v1/chat/completions")]
        for kind in kinds:
            name = "bare httpx" if kind == "bare" else "bare aiohttp"
            targets.append(
                suite.Target(name, stack.enter_context(server(kind, kind, "--upstream", upstream.url)), path)
            )
        for variant in ("plain", "hooks", "otel-sdk"):
            gateway = stack.enter_context(
                server(variant, "gateway", "--upstream", upstream.url, "--variant", variant)
            )
            targets.append(
                suite.Target("gateway" if variant == "plain" else f"gateway+{variant}", gateway, path)
            )
        suite.sequential(targets, args.rounds, args.requests)
    bare = targets[1].results["sequential"]["overhead_p50_ms"]
    print(f"\n{args.rounds} rounds x {args.requests} sequential requests per target, interleaved")
    print(f"{os.cpu_count()} cores, Python {sys.version.split()[0]}\n")
    print(f"{'target':<20}{'p50 ms':>9}{'p99 ms':>9}{'over p50':>10}{'over p99':>10}{'vs bare':>9}")
    report = {}
    for target in targets:
        row = target.results["sequential"]
        ratio = row["overhead_p50_ms"] / bare if target.name != "direct" and bare > 0 else None
        report[target.name] = {**row, "overhead_ratio_vs_bare_httpx": ratio}
        print(
            f"{target.name:<20}{row['p50_ms']:>9.3f}{row['p99_ms']:>9.3f}{row['overhead_p50_ms']:>10.3f}"
            f"{row['overhead_p99_ms']:>10.3f}{f'{ratio:.2f}x' if ratio is not None else '':>9}"
        )
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=2))
    print(f"\nwritten to {args.json}")


if __name__ == "__main__":
    main()
