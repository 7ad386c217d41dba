"""``/v1/responses`` overhead: python -m benchmarks.responses [--quick]

OpenAI Responses API requests from the same client, same run, against:

- ``direct``: the fake upstream's own ``/v1/responses`` (the baseline every overhead is measured from);
- ``bare httpx``: the bare pass-through proxy (forwards bytes, parses nothing);
- ``native``: the gateway to an upstream that speaks the Responses API (``type: openai``): the
  request passed through, the answer read for usage and stored;
- ``translated``: the gateway to a chat-only upstream (``responses_api: false``): the request
  translated to chat completions, the answer re-emitted as a Response (and its typed events), stored.

Sequential JSON latency and streams (time to first chunk, delay added per chunk), medians over
interleaved rounds; ``python -m benchmarks`` runs the same beside the chat route's rows.
"""

from __future__ import annotations

import argparse
import contextlib
from typing import Any

from . import messages, suite
from .harness import Server, server

REQUEST = {
    "model": "gpt-4o-mini",
    "instructions": "You are a helpful assistant.",
    "input": "Say hello in one short sentence, please.",
    "temperature": 0.2,
    "max_output_tokens": 64,
}
PATH = "/v1/responses"


def targets(upstream: Server, bare: Server, gateway: Server) -> list[suite.Target]:
    return [
        suite.Target("responses: direct", upstream, PATH, request=REQUEST),
        suite.Target("responses: bare httpx", bare, "/llm" + PATH, request=REQUEST),
        suite.Target("responses: native", gateway, "/llm" + PATH, request=REQUEST),
        # "compat" (benchmarks/servers.py) is the same upstream with responses_api: false
        suite.Target("responses: translated", gateway, "/llm" + PATH, "compat:", request=REQUEST),
        *messages.chat_pair("responses", upstream, gateway),
    ]


def overheads(results: dict[str, Any]) -> dict[str, float]:
    """The overhead p50 (ms) of the native pass-through and the translated route."""
    return messages.overheads(results, "responses")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run, not for quoting)")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        upstream = stack.enter_context(server("upstream", "upstream"))
        bare = stack.enter_context(server("bare", "bare", "--upstream", upstream.url))
        gateway = stack.enter_context(server("gateway", "gateway", "--upstream", upstream.url))
        responses_targets = targets(upstream, bare, gateway)
        messages.run(responses_targets, args.quick)
        # the chat route through the same gateway, for the ratio (the full suite has it in its rows)
        chat = [
            suite.Target("direct", upstream, "/v1/chat/completions"),
            suite.Target("gateway", gateway, "/llm/v1/chat/completions"),
        ]
        suite.sequential(chat, rounds=3 if args.quick else 7, requests=100 if args.quick else 300)
    print(messages.table(responses_targets))
    chat_p50 = chat[1].results["sequential"]["overhead_p50_ms"]
    found = overheads({target.name: target.results for target in responses_targets})
    print(
        f"chat route overhead p50 {chat_p50:.3f} ms; /v1/responses over chat's: "
        + ", ".join(f"{name} {value / chat_p50:.2f}x" for name, value in found.items())
    )


if __name__ == "__main__":
    main()
