"""python -m benchmarks [--quick] [--no-litellm] [--json FILE]

Starts on loopback a fast fake upstream (OpenAI JSON and SSE, Anthropic SSE) and each system under
test as its own server process with one worker: direct to the upstream; a bare pass-through proxy
(raw ASGI + httpx, no parsing); the same on aiohttp (the floor); the gateway mounted in FastAPI
(plain, with no-op hooks, with the OpenTelemetry SDK and in-memory exporters); and LiteLLM's proxy
with an equivalent config (installed into its own virtual environment, benchmarks/.venv-litellm,
on first use; marked "not installed" when that fails). Prints one table and writes JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from . import messages, responses, startup, stores, suite
from .harness import RESULTS, ROOT, server
from .servers import LITELLM_CONFIG

LITELLM_VENV = ROOT / "benchmarks" / ".venv-litellm"
CHAT, EMBED = "/chat/completions", "/embeddings"


def litellm_binary(install: bool) -> Path | None:
    binary = LITELLM_VENV / "bin" / "litellm"
    if binary.exists() or not install:
        return binary if binary.exists() else None
    print("installing LiteLLM's proxy into benchmarks/.venv-litellm (first run only) ...", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
        subprocess.run(
            [str(LITELLM_VENV / "bin" / "pip"), "install", "-q", "litellm[proxy]"], check=True, timeout=900
        )
    except (subprocess.SubprocessError, OSError) as exc:
        print(f"LiteLLM could not be installed ({exc}); its rows are marked 'not installed'")
        return None
    return binary if binary.exists() else None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run, not for quoting)")
    parser.add_argument("--no-litellm", action="store_true", help="do not install or run LiteLLM")
    parser.add_argument("--json", default=str(RESULTS / "benchmarks.json"))
    parser.add_argument(
        "--only", choices=["stores"], help="only these rows (stores: python -m benchmarks.stores)"
    )
    args = parser.parse_args()
    if args.only == "stores":
        stores.main(["--quick"] if args.quick else [])
        return
    quick = args.quick
    litellm = None if args.no_litellm else litellm_binary(install=True)
    try:
        import aiohttp  # noqa: F401

        have_aiohttp = True
    except ImportError:
        have_aiohttp = False
    from rec_llm_gateway.providers.registry import BUILTIN_TYPES

    cpu = platform.processor() or platform.machine()
    report: dict[str, Any] = {
        "machine": f"{os.cpu_count()} cores, {cpu}, Python {sys.version.split()[0]}",
        "date": time.strftime("%Y-%m-%d"),
        "quick": quick,
    }
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        upstream = stack.enter_context(server("upstream", "upstream"))
        url = upstream.url
        proxy_path = "/llm/v1/chat/completions"
        targets = [suite.Target("direct", upstream, "/v1/chat/completions")]
        bare_server = stack.enter_context(server("bare", "bare", "--upstream", url))
        targets.append(suite.Target("bare httpx", bare_server, proxy_path))
        if have_aiohttp:
            aiohttp_server = stack.enter_context(server("aiohttp", "aiohttp", "--upstream", url))
            targets.append(suite.Target("bare aiohttp", aiohttp_server, proxy_path))
        gateway_server = stack.enter_context(server("gateway", "gateway", "--upstream", url))
        gateway = suite.Target("gateway", gateway_server, proxy_path)
        targets.append(gateway)
        for variant in ("hooks", "otel-sdk"):
            variant_server = stack.enter_context(
                server(variant, "gateway", "--upstream", url, "--variant", variant)
            )
            targets.append(suite.Target(f"gateway+{variant}", variant_server, proxy_path))
        targets += stores.targets(stack, url, proxy_path)
        if litellm is not None:
            config = RESULTS / "litellm.yaml"
            config.write_text(LITELLM_CONFIG.format(upstream=url))
            env = {
                "LITELLM_LOCAL_MODEL_COST_MAP": "True",
                "LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY": "true",
                "LITELLM_LOG": "ERROR",
            }
            command = [str(litellm), "--config", str(config), "--port", "{port}", "--num_workers", "1"]
            litellm_server = stack.enter_context(server("litellm", command=command, env=env))
            targets.append(suite.Target("litellm proxy", litellm_server, "/v1/chat/completions"))
        stream_targets = [target for target in targets if not target.name.startswith("state ")]
        if "anthropic" in BUILTIN_TYPES:
            stream_targets.append(
                suite.Target("gateway (anthropic sse)", gateway_server, proxy_path, "anthropic:")
            )

        print("sequential latency ...", flush=True)
        suite.sequential(targets, rounds=3 if quick else 7, requests=100 if quick else 300)
        stores.overheads(targets)
        print("embeddings ...", flush=True)
        embed_targets = [
            suite.Target(f"{target.name} (embeddings)", target.server, target.path.replace(CHAT, EMBED))
            for target in targets
            if target.name in ("direct", "bare httpx", "bare aiohttp", "gateway")
        ]
        embed_targets += messages.chat_pair("embeddings", upstream, gateway_server)
        suite.sequential(embed_targets, rounds=3 if quick else 7, requests=100 if quick else 300)
        print("streaming ...", flush=True)
        suite.streaming(stream_targets, rounds=3 if quick else 5, streams=5 if quick else 20)
        print("/v1/messages (native and translated) ...", flush=True)
        messages_targets = messages.targets(upstream, bare_server, gateway_server)
        messages.run(messages_targets, quick)
        report["messages"] = {target.name: target.results for target in messages_targets}
        report["messages_table"] = messages.table(messages_targets)
        print("/v1/responses (native and translated) ...", flush=True)
        responses_targets = responses.targets(upstream, bare_server, gateway_server)
        messages.run(responses_targets, quick)
        report["responses"] = {target.name: target.results for target in responses_targets}
        report["responses_table"] = messages.table(responses_targets)
        print("throughput ...", flush=True)
        load_targets = [
            t
            for t in targets
            if t.name in ("direct", "bare httpx", "bare aiohttp", "gateway", "litellm proxy")
            or t.name.startswith("state ")
        ]
        report["load_generator"] = suite.throughput(
            load_targets, [16, 64], seconds=2 if quick else 5, rounds=1 if quick else 3
        )
        print("cold start ...", flush=True)
        report["cold_start"] = startup.measure(url, repeats=3 if quick else 7)
        print("1,000 concurrent streams ...", flush=True)
        for target in (t for t in targets if t.name in ("bare httpx", "bare aiohttp", "gateway")):
            suite.concurrent_streams(target, 200 if quick else 1000)
        state_rows = [t for t in targets if t.name.startswith("state ")]
        report["targets"] = {
            target.name: target.results for target in [*stream_targets, *state_rows, *embed_targets]
        }
    print("footprint and translation ...", flush=True)
    report["import_seconds"] = {
        "rec_llm_gateway": suite.import_time(sys.executable, "rec_llm_gateway"),
        "litellm": suite.import_time(str(LITELLM_VENV / "bin" / "python"), "litellm") if litellm else None,
    }
    report["translation_us_per_event"] = suite.translation_costs(5000 if quick else 20000)
    from . import pipeline

    report["gateway_cpu"] = pipeline.measure(rounds=3 if quick else 5)
    report["seconds"] = round(time.monotonic() - started, 1)
    report["goals"] = goals(report)
    print_report(report)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=2, default=str))
    print(f"\nwritten to {args.json}")


def _get(report: dict[str, Any], target: str, *path: str) -> float | None:
    value: Any = report["targets"].get(target)
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return float(value) if isinstance(value, int | float) else None


def goals(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The performance issue's targets, each with its measured value and whether it is met."""

    def ratio(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None or b <= 0 else a / b

    gw = "gateway"

    def seq(target: str) -> float | None:
        return _get(report, target, "sequential", "overhead_p50_ms")

    def rps(target: str) -> float | None:
        return _get(report, target, "throughput", "c64", "rps")

    chunk_over_bare = _diff(
        _get(report, gw, "streaming", "chunk_added_delay_us"),
        _get(report, "bare httpx", "streaming", "chunk_added_delay_us"),
    )
    ttfc = _diff(_get(report, gw, "streaming", "ttfc_ms"), _get(report, "bare httpx", "streaming", "ttfc_ms"))
    imported = report["import_seconds"]["rec_llm_gateway"]
    cold = report.get("cold_start") or {}
    messages_over = messages.overheads(report.get("messages") or {})
    responses_over = responses.overheads(report.get("responses") or {})
    embeddings_over = messages.overheads(report.get("targets") or {}, "embeddings")
    rows: list[tuple[str, float | None, float | None, str]] = [
        ("gateway CPU per request in-process (us)", report["gateway_cpu"]["cpu_per_request_us"], 100.0, "<="),
        ("overhead p50 <= 1.3x bare httpx", ratio(seq(gw), seq("bare httpx")), 1.3, "<="),
        ("overhead p50 <= 1.2x aiohttp", ratio(seq(gw), seq("bare aiohttp")), 1.2, "<="),
        ("overhead p50 <= 0.1x LiteLLM", ratio(seq(gw), seq("litellm proxy")), 0.1, "<="),
        (
            "embeddings overhead p50 <= 1.3x bare httpx",
            ratio(seq("gateway (embeddings)"), seq("bare httpx (embeddings)")),
            1.3,
            "<=",
        ),
        (
            "embeddings overhead p50 <= 1.2x chat's",
            ratio(seq("gateway (embeddings)"), embeddings_over.get("chat", seq(gw))),
            1.2,
            "<=",
        ),
        (
            "messages pass-through p50 <= 1.2x chat's",
            ratio(messages_over.get("native"), messages_over.get("chat", seq(gw))),
            1.2,
            "<=",
        ),
        (
            "(messages translated p50 / chat's)",
            ratio(messages_over.get("translated"), messages_over.get("chat", seq(gw))),
            None,
            "<=",
        ),
        (
            "(responses pass-through p50 / chat's)",
            ratio(responses_over.get("native"), responses_over.get("chat", seq(gw))),
            None,
            "<=",
        ),
        (
            "(responses translated p50 / chat's)",
            ratio(responses_over.get("translated"), responses_over.get("chat", seq(gw))),
            None,
            "<=",
        ),
        ("TTFC within 1 ms of bare httpx (ms)", ttfc, 1.0, "<="),
        ("per-chunk delay over bare httpx p50 (us)", chunk_over_bare, 100.0, "<="),
        (
            "(per-chunk delay over direct, us)",
            _get(report, gw, "streaming", "chunk_added_delay_us"),
            None,
            "<=",
        ),
        ("gateway CPU per stream chunk (us)", report["gateway_cpu"]["cpu_per_stream_chunk_us"], 10.0, "<="),
        ("throughput c64 >= 0.8x bare httpx", ratio(rps(gw), rps("bare httpx")), 0.8, ">="),
        ("throughput c64 >= 0.8x aiohttp", ratio(rps(gw), rps("bare aiohttp")), 0.8, ">="),
        ("throughput c64 >= 5x LiteLLM", ratio(rps(gw), rps("litellm proxy")), 5.0, ">="),
        (
            "1,000 streams: all complete",
            _get(report, gw, "concurrent_streams", "completed"),
            _get(report, gw, "concurrent_streams", "streams"),
            ">=",
        ),
        (
            "memory per open stream (KiB)",
            _get(report, gw, "concurrent_streams", "kib_per_stream"),
            30.0,
            "<=",
        ),
        ("import rec_llm_gateway (ms)", imported * 1000 if imported else None, 150.0, "<="),
        ("(import, httpx's CLI module kept out, ms)", cold.get("import_without_httpx_cli_ms"), None, "<="),
        ("cold start to first answer, library (ms)", cold.get("library_ms"), 400.0, "<="),
        ("(cold start, rec-llm-gateway serve, ms)", cold.get("serve_ms"), None, "<="),
        ("RSS after first requests (MiB)", _get(report, gw, "rss_after_warmup_mib"), 80.0, "<="),
        *stores.goals(lambda target, *path: _get(report, target, *path)),
    ]
    results = []
    for name, value, limit, direction in rows:
        if value is None or math.isnan(value):
            results.append({"goal": name, "value": None, "limit": limit, "met": None})
            continue
        if limit is None:  # shown for context, not a goal
            results.append({"goal": name, "value": round(value, 3), "limit": None, "met": None})
            continue
        met = value <= limit if direction == "<=" else value >= limit
        results.append({"goal": name, "value": round(value, 3), "limit": limit, "met": met})
    return results


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _cell(report: dict[str, Any], name: str, *path: str, digits: int = 2, width: int = 9) -> str:
    value = _get(report, name, *path)
    return f"{value:>{width}.{digits}f}" if value is not None else f"{'-':>{width}}"


def print_report(report: dict[str, Any]) -> None:
    print(f"\n{report['machine']}, {report['date']}{' (quick run)' if report['quick'] else ''}")
    columns = ("p50 ms", "over p50", "over p99", "TTFC ms", "chunk +us", "rps c16", "rps c64", "RSS MiB")
    head = f"{'target':<26}" + "".join(f"{column:>10}" for column in columns)
    print(head)
    print("-" * len(head))
    for name in report["targets"]:
        cells = [
            _cell(report, name, "sequential", "p50_ms", width=10),
            _cell(report, name, "sequential", "overhead_p50_ms", width=10),
            _cell(report, name, "sequential", "overhead_p99_ms", width=10),
            _cell(report, name, "streaming", "ttfc_ms", width=10),
            _cell(report, name, "streaming", "chunk_added_delay_us", digits=0, width=10),
            _cell(report, name, "throughput", "c16", "rps", digits=0, width=10),
            _cell(report, name, "throughput", "c64", "rps", digits=0, width=10),
            _cell(report, name, "rss_after_warmup_mib", digits=1, width=10),
        ]
        print(f"{name:<26}" + "".join(cells))
    if "litellm proxy" not in report["targets"]:
        print(f"{'litellm proxy':<26}not installed")
    bare = _get(report, "bare httpx", "sequential", "overhead_p50_ms")
    if bare:
        ratios = []
        embed_bare = _get(report, "bare httpx (embeddings)", "sequential", "overhead_p50_ms")
        for name in report["targets"]:
            overhead = _get(report, name, "sequential", "overhead_p50_ms")
            base = embed_bare if name.endswith("(embeddings)") else bare
            if not name.startswith("direct") and overhead is not None and base:
                ratios.append(f"{name} {overhead / base:.2f}x")
        print(
            "\noverhead p50 relative to the bare httpx pass-through (of the same route): " + ", ".join(ratios)
        )
    for name in ("bare httpx", "bare aiohttp", "gateway"):
        streams = report["targets"].get(name, {}).get("concurrent_streams")
        if streams:
            print(
                f"{streams['streams']} concurrent streams via {name}: {streams['completed']} completed, "
                f"{streams['errors']} errors, {streams['kib_per_stream']} KiB per open stream "
                f"(RSS {streams['baseline_rss_mib']} -> {streams['peak_rss_mib']} MiB)"
            )
    imports = report["import_seconds"]
    print(
        "import time: " + ", ".join(f"{k} {v * 1000:.0f} ms" if v else f"{k} n/a" for k, v in imports.items())
    )
    cpu = report["gateway_cpu"]
    print(
        f"gateway CPU (in-process, no network): {cpu['cpu_per_request_us']} us per request, "
        f"{cpu['cpu_per_stream_chunk_us']} us per stream chunk; /v1/responses: "
        f"{cpu['responses_native_cpu_per_request_us']} us passed through, "
        f"{cpu['responses_translated_cpu_per_request_us']} us translated, "
        f"{cpu['responses_cpu_per_stream_chunk_us']} us per translated stream chunk"
    )
    if report.get("cold_start"):
        print(startup.describe(report["cold_start"]))
    costs = report["translation_us_per_event"]
    print("translation, us per stream event: " + ", ".join(f"{k} {v}" for k, v in costs.items()))
    if report.get("messages_table"):
        print("\n/v1/messages overhead over direct (same run):\n" + report["messages_table"])
    if report.get("responses_table"):
        print("\n/v1/responses overhead over direct (same run):\n" + report["responses_table"])
    print("\ngoals (performance issue):")
    for goal in report["goals"]:
        mark = {True: "met", False: "NOT met", None: "n/a"}[goal["met"]]
        print(f"  {goal['goal']:<42} {goal['value']!s:>10}  (limit {goal['limit']})  {mark}")
    print(f"\nload generator: {report.get('load_generator')}; total {report['seconds']} s")


if __name__ == "__main__":
    main()
