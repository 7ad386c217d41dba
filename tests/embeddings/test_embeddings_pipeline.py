"""An embeddings request goes through the same pipeline as chat: failover inside a model group, a
gateway key's rate limit and monthly budget, usage, ``on_cost``, ``pre_request`` / ``post_response``
and an ``embeddings`` span. Through uvicorn with the openai SDK; the upstream is loopback."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from rec_llm_gateway import hookimpl
from rec_llm_gateway.hooks import CostEvent, RequestContext

from ..conftest import GATEWAY_KEY, PROVIDER_KEY
from ..embedding_fakes import fake_vector
from ..support import FakeUpstream, gateway_server
from ..telemetry_support import Otel

MODEL = "text-embedding-3-small"


def config(wires: FakeUpstream, **extra: Any) -> dict[str, Any]:
    return {
        "providers": {
            "openai": {"api_key": PROVIDER_KEY, "base_url": f"{wires.url}/v1", "models": [MODEL]},
            # the same wire, but every call answers 503
            "primary": {"type": "openai", "api_key": PROVIDER_KEY, "base_url": f"{wires.url}/down/v1"},
        },
        **extra,
    }


def api(url: str, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)


class Recorder:
    def __init__(self) -> None:
        self.costs: list[CostEvent] = []
        self.failovers: list[Any] = []
        self.operations: list[str] = []
        self.responses: list[Any] = []

    @hookimpl
    def pre_request(self, request: Any, context: RequestContext) -> None:
        self.operations.append(context.operation)
        request.user = "set-by-hook"  # mutating in place reaches the upstream

    @hookimpl
    def post_response(self, response: Any, context: RequestContext) -> None:
        self.responses.append(response)

    @hookimpl
    def on_cost(self, event: CostEvent) -> None:
        self.costs.append(event)

    @hookimpl
    def on_failover(self, event: Any) -> None:
        self.failovers.append(event)


def test_failover_usage_cost_hooks_and_spans(wires: FakeUpstream) -> None:
    recorder = Recorder()
    otel = Otel()
    settings = config(
        wires,
        models={"embedder": {"deployments": [{"model": f"primary:{MODEL}"}, {"model": f"openai:{MODEL}"}]}},
        pricing={f"openai:{MODEL}": {"input": 20.0, "output": 0}},
    )
    with gateway_server(settings, plugins=[recorder], **otel.kwargs) as (url, gateway):
        result = api(url).embeddings.create(
            model="embedder", input=["one two", "three"], encoding_format="float"
        )
        assert [item.embedding for item in result.data] == [fake_vector("one two"), fake_vector("three")]
        extension = result.model_extra["x_rec_llm"]  # type: ignore[index]
        assert extension["attempts"] == 2 and extension["provider"] == "openai"
        assert extension["failovers"][0]["from"] == f"primary:{MODEL}"
        assert extension["cost_usd"] == pytest.approx(3 * 20.0 / 1_000_000)
        assert wires.last.json["user"] == "set-by-hook"

        # hooks see the operation, its cost and its answer
        assert recorder.operations == ["embeddings"]
        assert [(event.reason, event.attempt) for event in recorder.failovers] == [("upstream_error", 1)]
        (cost,) = recorder.costs
        assert (cost.provider, cost.model, cost.prompt_tokens, cost.completion_tokens) == (
            "openai",
            MODEL,
            3,
            0,
        )
        assert cost.cost_usd == pytest.approx(6e-5) and cost.operation == "embeddings"
        (response,) = recorder.responses
        assert response.object == "list" and len(response.data) == 2

        # usage: the failed attempt and the answer, per provider
        records = {record.provider: record for record in gateway.usage.get_all()}
        assert (records["openai"].calls, records["openai"].prompt_tokens) == (1, 3)
        assert records["openai"].cost_usd == pytest.approx(6e-5)
        assert records["primary"].errors == 1

    spans = otel.spans()
    attempts = [span for span in spans if span.name == f"embeddings {MODEL}"]
    assert len(attempts) == 2
    ok = attempts[-1].attributes or {}
    assert ok["gen_ai.operation.name"] == "embeddings"
    assert ok["gen_ai.usage.input_tokens"] == 3
    assert ok["gen_ai.request.encoding_formats"] == ("float",)
    assert attempts[0].attributes["error.type"]  # type: ignore[index]
    (request_span,) = [span for span in spans if span.name.startswith("gateway embeddings")]
    assert (request_span.attributes or {})["gen_ai.operation.name"] == "embeddings"
    assert (request_span.attributes or {})["rec_llm.cost_usd"] == pytest.approx(6e-5)
    metrics = otel.metrics()
    points = metrics["gen_ai.client.token.usage"].data.data_points
    assert any(point.attributes["gen_ai.operation.name"] == "embeddings" for point in points)


def test_a_keys_rate_limit_and_budget_count_embeddings(wires: FakeUpstream) -> None:
    settings = config(
        wires,
        auth={
            "keys": [
                {"key": GATEWAY_KEY, "name": "team", "requests_per_minute": 2},
                {"key": "gw-budget-key", "name": "budget", "monthly_budget_usd": 0.00001},
            ]
        },
        pricing={f"openai:{MODEL}": {"input": 10.0, "output": 0}},
    )
    with gateway_server(settings) as (url, gateway):
        limited = api(url, GATEWAY_KEY)
        limited.embeddings.create(model=f"openai:{MODEL}", input="a")
        limited.embeddings.create(model=f"openai:{MODEL}", input="b")
        with pytest.raises(openai.RateLimitError) as caught:
            limited.embeddings.create(model=f"openai:{MODEL}", input="c")
        assert caught.value.body["code"] == "rate_limit_exceeded"  # type: ignore[index]
        assert caught.value.response.headers["retry-after"]
        assert len(wires.requests) == 2

        budget = api(url, "gw-budget-key")
        # 1,000 words at $10 per million tokens: $0.01, far over the key's $0.00001
        budget.embeddings.create(model=f"openai:{MODEL}", input=" ".join(["word"] * 1000))
        with pytest.raises(openai.RateLimitError) as spent:
            budget.embeddings.create(model=f"openai:{MODEL}", input="more")
        assert spent.value.body["code"] == "budget_exceeded"  # type: ignore[index]
        assert gateway.keys.spent("budget") == pytest.approx(0.01)
        with pytest.raises(openai.AuthenticationError):
            api(url, "wrong-key").embeddings.create(model=f"openai:{MODEL}", input="x")


def test_a_pre_request_hook_may_replace_or_refuse_an_embeddings_request(wires: FakeUpstream) -> None:
    from rec_llm_gateway import RequestRejected

    class Policy:
        @hookimpl
        def pre_request(self, request: Any, context: RequestContext) -> Any:
            if "secret" in str(request.input):
                raise RequestRejected("no secrets in embeddings", code="policy")
            return {**request.to_payload(), "dimensions": 4}  # a dict is validated as the request

    with gateway_server(config(wires), plugins=[Policy()]) as (url, _):
        result = api(url).embeddings.create(model=f"openai:{MODEL}", input="x", encoding_format="float")
        assert len(result.data[0].embedding) == 4
        with pytest.raises(openai.PermissionDeniedError) as refused:
            api(url).embeddings.create(model=f"openai:{MODEL}", input="my secret")
        assert refused.value.body["code"] == "policy"  # type: ignore[index]
