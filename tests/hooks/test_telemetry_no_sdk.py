"""Telemetry without an SDK skips building attempt spans; a tracer provider set globally *after* the
gateway was built is still used from the next request on (the check is made per request).

Runs in a child process: the global tracer provider can be set only once per process."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

_SCRIPT = textwrap.dedent(
    """
    import asyncio, json
    import httpx
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from rec_llm_gateway import Gateway

    COMPLETION = {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }
    seen = []

    def upstream(request):
        seen.append("traceparent" in request.headers)
        return httpx.Response(200, json=COMPLETION)

    async def main():
        gateway = Gateway({"providers": {"openai": {"api_key": "k", "base_url": "http://up/v1"}}})
        gateway.runtime().transport = httpx.MockTransport(upstream)
        results = {"can_record": [gateway.telemetry.can_record()]}
        body = {"model": "openai:gpt-4o-mini", "messages": [{"role": "user", "content": "x"}],
                "temperature": 0.5}
        transport = httpx.ASGITransport(app=gateway)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            results["status"] = [(await client.post("/v1/chat/completions", json=body)).status_code]
            exporter = InMemorySpanExporter()
            provider = TracerProvider()
            provider.add_span_processor(SimpleSpanProcessor(exporter))
            trace.set_tracer_provider(provider)
            results["can_record"].append(gateway.telemetry.can_record())
            results["status"].append((await client.post("/v1/chat/completions", json=body)).status_code)
        await gateway.aclose()
        results["spans"] = {span.name: dict(span.attributes or {}) for span in exporter.get_finished_spans()}
        results["traceparent"] = seen
        print(json.dumps(results))

    asyncio.run(main())
    """
)


def test_spans_skipped_without_sdk_and_recorded_once_one_is_set() -> None:
    done = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert results["status"] == [200, 200]
    assert results["can_record"] == [False, True]
    assert results["traceparent"] == [False, True], "trace context goes upstream once an SDK records"
    attempt = results["spans"]["chat gpt-4o-mini"]
    assert attempt["gen_ai.request.temperature"] == 0.5
    assert attempt["gen_ai.provider.name"] == "openai"
    assert "gateway chat openai:gpt-4o-mini" in results["spans"]
