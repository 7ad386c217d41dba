"""The state stores: the gateway with ``state.url`` memory, SQLite and Redis, and with two workers.

    python -m benchmarks.stores [--quick] [--json benchmarks/results/stores.json]
    python -m benchmarks --only stores        (the same rows, from the whole suite's entry point)

Each store row is the gateway with a provider rate limit too high to bite, so every request takes
it in the store (the one round trip before the upstream call) and writes its usage there. Redis runs
on loopback, started here (rows marked skipped when ``redis-server`` is not installed). The
sequential overhead p50 of SQLite and Redis is compared with memory's in the same run (goals: +0.5
ms and +0.3 ms), and throughput at c=64 of ``--workers 2`` with one worker on the same store (goal:
2 workers >= 1.7x one).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import suite
from .harness import RESULTS, server

CHAT = "/llm/v1/chat/completions"
STORES = ("memory", "sqlite", "redis")
MULTI = ("sqlite", "redis")
"""The stores measured with two workers (memory is not shared between processes)."""

Goal = tuple[str, "float | None", "float | None", str]


def targets(stack: contextlib.ExitStack[Any], upstream: str, path: str = CHAT) -> list[suite.Target]:
    """A gateway per store, and per shared store one with two workers (``state ...`` names)."""
    urls = {"memory": "memory://", "sqlite": f"sqlite:///{RESULTS}/bench-state.db"}
    for leftover in RESULTS.glob("bench-state.db*"):
        leftover.unlink()
    redis_server = shutil.which("redis-server")
    if redis_server:
        command = [redis_server, "--port", "{port}", "--save", "", "--appendonly", "no"]
        urls["redis"] = f"redis://127.0.0.1:{stack.enter_context(server('redis', command=command)).port}/0"
    else:
        print("redis-server is not installed: the Redis rows are skipped (apt-get install redis-server)")
    found = []
    for name, url in urls.items():
        process = stack.enter_context(
            server(f"state-{name}", "gateway", "--upstream", upstream, "--state", url)
        )
        found.append(suite.Target(f"state {name}", process, path))
    for name in MULTI:
        if name in urls:
            arguments = ("gateway", "--upstream", upstream, "--state", urls[name], "--workers", "2")
            process = stack.enter_context(server(f"state-{name}-2w", *arguments))
            found.append(suite.Target(f"state {name}, 2 workers", process, path))
    return found


def overheads(found: list[suite.Target]) -> None:
    """Each shared store's overhead p50 over the memory store's (same run, same rounds)."""
    by_name = {target.name: target for target in found}
    memory = by_name.get("state memory")
    if memory is None or "sequential" not in memory.results:
        return
    base = memory.results["sequential"]["overhead_p50_ms"]
    for name in MULTI:
        target = by_name.get(f"state {name}")
        if target is not None and "sequential" in target.results:
            target.results["over_memory_p50_ms"] = target.results["sequential"]["overhead_p50_ms"] - base


def goals(get: Callable[..., float | None]) -> list[Goal]:
    """The state issue's targets; ``get(target, *path)`` reads a figure of the report."""

    def scaling(name: str) -> float | None:
        one, two = (
            get(f"state {name}", "throughput", "c64", "rps"),
            get(f"state {name}, 2 workers", "throughput", "c64", "rps"),
        )
        return None if one is None or two is None or one <= 0 else two / one

    return [
        ("state SQLite overhead p50 over memory (ms)", get("state sqlite", "over_memory_p50_ms"), 0.5, "<="),
        ("state Redis overhead p50 over memory (ms)", get("state redis", "over_memory_p50_ms"), 0.3, "<="),
        ("throughput c64, 2 workers / 1, SQLite", scaling("sqlite"), 1.7, ">="),
        ("throughput c64, 2 workers / 1, Redis", scaling("redis"), 1.7, ">="),
    ]


def run(quick: bool) -> dict[str, Any]:
    """Only the store rows (with ``direct``, the baseline of every overhead): a report of their own."""
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        upstream = stack.enter_context(server("upstream", "upstream"))
        direct = suite.Target("direct", upstream, "/v1/chat/completions")
        found = targets(stack, upstream.url)
        print("sequential latency ...", flush=True)
        suite.sequential([direct, *found], rounds=3 if quick else 7, requests=100 if quick else 300)
        overheads(found)
        print("throughput ...", flush=True)
        tool = suite.throughput(found, [64], seconds=2 if quick else 5, rounds=1 if quick else 3)
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "quick": quick,
        "load_generator": tool,
        "targets": {target.name: target.results for target in [direct, *found]},
        "seconds": round(time.monotonic() - started, 1),
    }

    def get(target: str, *path: str) -> float | None:
        value: Any = report["targets"].get(target)
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        return float(value) if isinstance(value, int | float) else None

    report["goals"] = [
        {"goal": name, "value": value if value is None else round(value, 3), "limit": limit, "met": met}
        for name, value, limit, direction in goals(get)
        for met in [_met(value, limit, direction)]
    ]
    return report


def _met(value: float | None, limit: float | None, direction: str) -> bool | None:
    if value is None or limit is None:
        return None
    return value <= limit if direction == "<=" else value >= limit


def print_report(report: dict[str, Any]) -> None:
    print(f"\nstate stores, {report['date']}{' (quick run)' if report['quick'] else ''}")
    head = f"{'target':<26}{'p50 ms':>10}{'over p50':>10}{'vs memory':>10}{'rps c64':>10}"
    print(head + "\n" + "-" * len(head))
    for name, results in report["targets"].items():
        sequential = results.get("sequential", {})
        cells = (
            sequential.get("p50_ms"),
            sequential.get("overhead_p50_ms"),
            results.get("over_memory_p50_ms"),
            results.get("throughput", {}).get("c64", {}).get("rps"),
        )
        print(f"{name:<26}" + "".join(f"{'-':>10}" if cell is None else f"{cell:>10.2f}" for cell in cells))
    print("\ngoals (state issue):")
    for goal in report["goals"]:
        mark = {True: "met", False: "NOT met", None: "n/a"}[goal["met"]]
        print(f"  {goal['goal']:<42} {goal['value']!s:>10}  (limit {goal['limit']})  {mark}")
    print(f"\nload generator: {report['load_generator']}; total {report['seconds']} s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run, not for quoting)")
    parser.add_argument("--json", default=str(RESULTS / "stores.json"))
    args = parser.parse_args(argv)
    report = run(args.quick)
    print_report(report)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=2, default=str))
    print(f"\nwritten to {args.json}")


if __name__ == "__main__":
    main()
