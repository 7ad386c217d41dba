"""Routing costs: the decision per strategy (microbench) and the end-to-end overhead (A/B).

    python -m benchmarks.routing micro [--rounds 9] [--decisions 5000]
    python -m benchmarks.routing overhead --baseline PATH [--rounds 7] [--requests 300]
    python -m benchmarks.routing inproc --baseline PATH [--rounds 9] [--requests 20000]

``micro``: one routing decision for a group of 10 deployments, per strategy: start the request's walk,
order the group, admit the first deployment (breaker, health, cooldown, limits) and release its lease;
"+ outcome" also records the call's success and latency, as a real request does. Also with a
request-per-minute limit on every deployment, and for a plain single-deployment route. Figures are
the median over rounds of the mean per decision, in microseconds.

``overhead``: the previous gateway (a checkout at PATH, e.g. ``git worktree add /tmp/base main``)
against this one, each in its own uvicorn process on loopback in front of the same fast fake
upstream, single-deployment default config, sequential non-streaming requests in interleaved rounds
(the method of ``benchmarks.overhead``; overhead = target minus direct in the same round). A third
target routes a group of three deployments (priority) to show what a group costs.

``inproc``: the same comparison without sockets, where loopback noise cannot hide a few microseconds:
each version serves ``requests`` chat completions straight through its ASGI callable with the
network-free ``echo`` provider (single deployment, default config), in its own process, the two
alternating round by round. Each process reports its best batch of ``requests / 10`` (noise only
ever adds time); figures are the median of those over rounds, per request.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.overhead import Target, free_port, summarise

ROOT = Path(__file__).resolve().parent.parent
STRATEGIES = ("priority", "round_robin", "weighted", "cost", "latency", "least_busy")

# -- micro ----------------------------------------------------------------------------------------


def _gateway(strategy: str, size: int, limits: bool) -> Any:
    from rec_llm_gateway import Gateway

    names = [f"p{index}" for index in range(size)]
    deployments = [
        {"model": f"{name}:m", "weight": index + 1, **({"rpm": 10**9} if limits else {})}
        for index, name in enumerate(names)
    ]
    return Gateway(
        {
            "providers": {name: {"type": "echo"} for name in names},
            "models": {"g": {"strategy": strategy, "deployments": deployments}},
            "pricing": {
                f"{name}:m": {"input": 1 + index, "output": 2 + index} for index, name in enumerate(names)
            },
        }
    )


def _decide(gateway: Any, model: str, decisions: int, outcome: bool) -> float:
    from rec_llm_gateway.schema import ChatCompletionRequest

    router = gateway.router
    request = ChatCompletionRequest.model_validate(
        {"model": model, "messages": [{"role": "user", "content": "Say hello in one short sentence."}]}
    )
    clock = router.clock
    started = time.perf_counter()
    for _ in range(decisions):  # as the pipeline does it (pipeline/attempts.py, run_attempts)
        candidates = router.candidates(request)
        lease = router.fast_lease(candidates)
        if lease is None:
            lease = router.walk(candidates, request).next()
        if outcome:
            lease.succeeded(clock())
        lease.release()
    elapsed = time.perf_counter() - started
    return elapsed / decisions * 1e6


def micro(rounds: int, decisions: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    best: dict[str, Any] = {}
    cases: list[tuple[str, Any, str]] = []
    for strategy in STRATEGIES:
        cases.append((f"{strategy}", _gateway(strategy, 10, limits=False), "g"))
        cases.append((f"{strategy} + rpm limits", _gateway(strategy, 10, limits=True), "g"))
    single = _gateway("priority", 1, limits=False)
    cases.append(("single deployment (p0:m)", single, "p0:m"))
    for name, gateway, model in cases:
        _decide(gateway, model, 500, outcome=True)  # warm: caches, price lookups, latency samples
        for outcome in (False, True):
            label = name + (" + outcome" if outcome else "")
            samples = [_decide(gateway, model, decisions, outcome) for _ in range(rounds)]
            results[label] = round(statistics.median(samples), 3)
            best[label] = round(min(samples), 3)
    return {
        "method": f"median of {rounds} rounds x {decisions} decisions; group of 10 deployments",
        "machine": f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, {sys.platform}",
        "decision_us": results,
        "best_round_us": best,  # this VM has slow phases; the best round shows the cost without them
    }


# -- overhead A/B ---------------------------------------------------------------------------------


@contextlib.contextmanager
def _process(root: Path, *arguments: str) -> Iterator[int]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": f"{root / 'src'}{os.pathsep}{root}"}
    process = subprocess.Popen([sys.executable, "-m", *arguments, "--port", str(port)], cwd=root, env=env)
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


def group_app(upstream: str) -> Any:
    """This gateway in FastAPI with ``gpt-4o-mini`` a group of three deployments on the upstream."""
    import contextlib as ctx

    from fastapi import FastAPI

    from rec_llm_gateway import Gateway

    providers = {
        f"d{index}": {"type": "openai", "api_key": "sk-bench", "base_url": f"{upstream}/v1"}
        for index in range(3)
    }
    gateway = Gateway(
        {"providers": providers, "models": {"gpt-4o-mini": [f"{name}:gpt-4o-mini" for name in providers]}}
    )

    @ctx.asynccontextmanager
    async def lifespan(app: Any) -> Any:
        async with gateway:
            yield

    app = FastAPI(lifespan=lifespan)
    app.mount("/llm", gateway)
    return app


def overhead(baseline: Path, rounds: int, requests: int) -> dict[str, Any]:
    with contextlib.ExitStack() as stack:
        upstream = stack.enter_context(_process(ROOT, "benchmarks.servers", "upstream"))
        url = f"http://127.0.0.1:{upstream}"
        path = "/llm/v1/chat/completions"
        targets = [Target("direct", upstream, "/v1/chat/completions")]
        for name, root in (("previous gateway", baseline), ("routing gateway", ROOT)):
            port = stack.enter_context(_process(root, "benchmarks.servers", "gateway", "--upstream", url))
            targets.append(Target(name, port, path))
        port = stack.enter_context(_process(ROOT, "benchmarks.routing", "serve-group", "--upstream", url))
        targets.append(Target("routing gateway, group of 3", port, path))
        for target in targets:
            for _ in range(200):
                target.request()
        for _ in range(rounds):
            for target in targets:
                target.rounds.append([target.request() for _ in range(requests)])
        results = summarise(targets)
    previous = results["previous gateway"]["overhead_p50_ms"]
    return {
        "method": f"{rounds} rounds x {requests} sequential requests per target, interleaved",
        "machine": f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, {sys.platform}",
        "results": results,
        "overhead_ratio_vs_previous_p50": {
            name: round(row["overhead_p50_ms"] / previous, 3)
            for name, row in results.items()
            if name != "direct"
        },
    }


_INPROC_CHILD = """
import asyncio, json, sys, time
from rec_llm_gateway import Gateway

async def main(count):
    gateway = Gateway({"providers": {"echo": {}}})
    body = json.dumps({"model": "echo:echo-1", "temperature": 0.2, "max_tokens": 64, "messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Say hello in one short sentence, please."}]}).encode()
    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "root_path": "",
             "query_string": b"", "headers": [(b"content-type", b"application/json")]}
    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}
    statuses = []
    async def send(message):
        if message["type"] == "http.response.start":
            statuses.append(message["status"])
    await gateway.start()
    for _ in range(2000):
        await gateway(scope, receive, send)
    statuses.clear()
    batches = []
    for _ in range(10):  # the best batch: the machine's noise only ever adds time
        started = time.perf_counter()
        for _ in range(count // 10):
            await gateway(scope, receive, send)
        batches.append((time.perf_counter() - started) / (count // 10) * 1e6)
    assert set(statuses) == {200}, set(statuses)
    await gateway.aclose()
    print(min(batches))

asyncio.run(main(int(sys.argv[1])))
"""


def inproc(baseline: Path, rounds: int, requests: int) -> dict[str, Any]:
    versions = {"previous gateway": baseline, "routing gateway": ROOT}
    samples: dict[str, list[float]] = {name: [] for name in versions}
    for _ in range(rounds):
        for name, root in versions.items():
            env = {**os.environ, "PYTHONPATH": str(root / "src")}
            output = subprocess.run(
                [sys.executable, "-c", _INPROC_CHILD, str(requests)],
                cwd=root,
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            samples[name].append(float(output.strip()))
    medians = {name: round(statistics.median(values), 2) for name, values in samples.items()}
    return {
        "method": f"{rounds} alternating rounds x {requests} requests through the ASGI callable (echo)",
        "machine": f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, {sys.platform}",
        "us_per_request": medians,
        "rounds_us": {name: [round(value, 2) for value in values] for name, values in samples.items()},
        "ratio": round(medians["routing gateway"] / medians["previous gateway"], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    micro_parser = commands.add_parser("micro")
    micro_parser.add_argument("--rounds", type=int, default=9)
    micro_parser.add_argument("--decisions", type=int, default=5000)
    ab = commands.add_parser("overhead")
    ab.add_argument("--baseline", required=True, type=Path, help="a checkout of the previous gateway")
    ab.add_argument("--rounds", type=int, default=7)
    ab.add_argument("--requests", type=int, default=300)
    cpu = commands.add_parser("inproc")
    cpu.add_argument("--baseline", required=True, type=Path, help="a checkout of the previous gateway")
    cpu.add_argument("--rounds", type=int, default=9)
    cpu.add_argument("--requests", type=int, default=20000)
    serve = commands.add_parser("serve-group")
    serve.add_argument("--port", type=int, required=True)
    serve.add_argument("--upstream", required=True)
    for sub in (micro_parser, ab, cpu):
        sub.add_argument("--json", default=None, help="also write the report here")
    args = parser.parse_args()
    if args.command == "serve-group":
        import uvicorn

        uvicorn.run(
            group_app(args.upstream), host="127.0.0.1", port=args.port, log_level="warning", access_log=False
        )
        return
    if args.command == "micro":
        report = micro(args.rounds, args.decisions)
    elif args.command == "inproc":
        report = inproc(args.baseline.resolve(), args.rounds, args.requests)
    else:
        report = overhead(args.baseline.resolve(), args.rounds, args.requests)
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
