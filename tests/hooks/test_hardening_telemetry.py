"""Issue 16 (item 8): client-chosen and upstream-chosen model names never become metric series.

Only configured or catalogued names reach a metric attribute; anything else is ``other``. Spans keep
the exact names (they are per request, not series).
"""

from __future__ import annotations

from typing import Any

from rec_llm_gateway import Gateway
from rec_llm_gateway.metric_labels import OTHER

from ..routing_support import client
from ..telemetry_support import Otel

MODEL_ATTRIBUTES = ("gen_ai.request.model", "gen_ai.response.model")


def metric_models(otel: Otel) -> set[str]:
    seen: set[str] = set()
    for metric in otel.metrics().values():
        for point in metric.data.data_points:
            for name in MODEL_ATTRIBUTES:
                if name in point.attributes:
                    seen.add(str(point.attributes[name]))
    return seen


async def test_metric_model_attributes_are_bounded() -> None:
    otel = Otel()
    config: dict[str, Any] = {
        "providers": {"echo": {"models": ["house-model"]}, "openai": {"type": "echo"}},
        "models": {"team-model": ["echo:house-model"]},
    }
    gateway = Gateway(config, **otel.kwargs)
    async with client(gateway) as http:
        names = [f"openai:made-up-{index}" for index in range(50)]
        names += [
            "house-model",
            "team-model",
            "openai:gpt-4o",
            "openai:gpt-4o-2024-08-06",
            "openai:gpt-4o-x9",
        ]
        for name in names:
            answer = await http.post(
                "/v1/chat/completions", json={"model": name, "messages": [{"role": "user", "content": "hi"}]}
            )
            assert answer.status_code == 200, answer.text
    assert metric_models(otel) == {"house-model", "gpt-4o", OTHER}
    # spans keep the exact name
    assert any(span.name == "chat made-up-7" for span in otel.exporter.get_finished_spans())
    otel.tracer_provider.shutdown()
