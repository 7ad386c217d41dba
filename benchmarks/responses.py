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

from typing import Any

from . import messages, suite
from .harness import Server

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
    messages.standalone(targets, "responses", __doc__)


if __name__ == "__main__":
    main()
