"""``/v1/messages`` overhead: python -m benchmarks.messages [--quick]

Anthropic-shaped requests from the same client, same run, against:

- ``direct``: the fake upstream's own ``/v1/messages`` (the baseline every overhead is measured from);
- ``bare httpx``: the bare pass-through proxy (forwards bytes, parses nothing);
- ``native``: the gateway to Anthropic (``anthropic:`` model): the client's bytes out, Anthropic's back,
  with the usage read on the way;
- ``translated``: the gateway to an OpenAI upstream: the request translated, the answer re-emitted as
  Anthropic's named events.

Sequential JSON latency and streams (time to first chunk, delay added per chunk), reported as
medians over interleaved rounds, with the overhead relative to the bare pass-through.
``python -m benchmarks`` runs the same as part of the full suite.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable
from typing import Any

from . import suite
from .harness import Server, server

MESSAGES = {
    "model": "claude-bench",
    "max_tokens": 64,
    "system": "You are a helpful assistant.",
    "messages": [{"role": "user", "content": "Say hello in one short sentence, please."}],
    "temperature": 0.2,
}
PATH = "/v1/messages"


def targets(upstream: Server, bare: Server, gateway: Server) -> list[suite.Target]:
    return [
        suite.Target("messages: direct", upstream, PATH, request=MESSAGES),
        suite.Target("messages: bare httpx", bare, "/llm" + PATH, request=MESSAGES),
        # "claude-..." routes to Anthropic by its family prefix, as Claude Code's model names do
        suite.Target("messages: native", gateway, "/llm" + PATH, "claude-", request=MESSAGES),
        suite.Target("messages: translated", gateway, "/llm" + PATH, "openai:", request=MESSAGES),
        *chat_pair("messages", upstream, gateway),
    ]


def chat_pair(route: str, upstream: Server, gateway: Server) -> list[suite.Target]:
    """The chat route and its direct baseline, measured in the same interleaved rounds as ``route``:
    ratios to the chat route's overhead measured minutes apart moved by 20-30% on this machine."""
    return [
        suite.Target(f"{route}: chat direct", upstream, "/v1/chat/completions"),
        suite.Target(f"{route}: chat route", gateway, "/llm/v1/chat/completions"),
    ]


def run(messages_targets: list[suite.Target], quick: bool) -> None:
    suite.sequential(messages_targets, rounds=3 if quick else 7, requests=100 if quick else 300)
    suite.streaming(messages_targets, rounds=3 if quick else 5, streams=5 if quick else 20)


def table(messages_targets: list[suite.Target]) -> str:
    """Overheads in ms (JSON p50, time to first chunk) and us (per chunk), and the ratio to bare."""
    bare = messages_targets[1].results
    lines = [f"{'target':<24}{'over p50 ms':>13}{'TTFC +ms':>10}{'chunk +us':>11}{'x bare (p50)':>14}"]
    for target in messages_targets[1:]:
        sequential, streaming = target.results["sequential"], target.results["streaming"]
        ratio = sequential["overhead_p50_ms"] / bare["sequential"]["overhead_p50_ms"]
        lines.append(
            f"{target.name:<24}{sequential['overhead_p50_ms']:>13.3f}{streaming['ttfc_overhead_ms']:>10.3f}"
            f"{streaming['chunk_added_delay_us']:>11.0f}{ratio:>14.2f}"
        )
    return "\n".join(lines)


def overheads(results: dict[str, Any], route: str = "messages") -> dict[str, float]:
    """The overhead p50 (ms) of the native pass-through, the translated route and the chat route
    (over its own direct baseline, same rounds), from the ``messages`` (or ``responses``) part of a
    report (target name -> its results)."""
    found = {}
    for name in ("native", "translated", "chat route", "chat direct"):
        value = (results.get(f"{route}: {name}") or {}).get("sequential", {}).get("overhead_p50_ms")
        if isinstance(value, int | float):
            found[name] = float(value)
    if "chat route" in found and "chat direct" in found:
        found["chat"] = found.pop("chat route") - found.pop("chat direct")
    return found


def standalone(
    make_targets: Callable[[Server, Server, Server], list[suite.Target]], route: str, doc: str | None
) -> None:
    """``python -m benchmarks.<route>``: its targets alone, the table and the ratios to the chat
    route measured in the same rounds."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run, not for quoting)")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        upstream = stack.enter_context(server("upstream", "upstream"))
        bare = stack.enter_context(server("bare", "bare", "--upstream", upstream.url))
        gateway = stack.enter_context(server("gateway", "gateway", "--upstream", upstream.url))
        found_targets = make_targets(upstream, bare, gateway)
        run(found_targets, args.quick)
    print(table(found_targets))
    found = overheads({target.name: target.results for target in found_targets}, route)
    chat = found.pop("chat", None)
    if chat:
        print(
            f"chat route overhead p50 {chat:.3f} ms (same rounds); {route} over chat's: "
            + ", ".join(f"{name} {value / chat:.2f}x" for name, value in found.items())
        )


def main() -> None:
    standalone(targets, "messages", __doc__)


if __name__ == "__main__":
    main()
