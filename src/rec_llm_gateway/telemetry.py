"""OpenTelemetry spans and metrics, following the GenAI semantic conventions.

Only ``opentelemetry-api`` is imported: the host passes ``tracer_provider`` / ``meter_provider``
(default: the global ones) and decides where data goes. With no SDK configured every call here is a
no-op costing a few microseconds per request.

- One span per gateway request (``gateway chat {model}``; SERVER when it starts a trace, INTERNAL
  under the host's span) carrying routing outcome, cost (``rec_llm.cost_usd``) and attempt count.
  It joins an inbound ``traceparent`` when the host has no active span of its own.
- One CLIENT span per upstream attempt, ``chat {model}``, with the ``gen_ai.*`` attributes; its
  context is propagated to the upstream in ``traceparent`` (W3C trace context only: never the
  ``baggage`` of the host or the client, which is theirs, not the LLM provider's).
- Metrics: ``gen_ai.client.operation.duration``, ``gen_ai.client.token.usage``,
  ``gen_ai.client.operation.time_to_first_chunk`` and the gateway's own ``rec_llm.gateway.cost``,
  ``rec_llm.gateway.requests``, ``rec_llm.gateway.failovers``, ``rec_llm.gateway.overhead``, and
  routing's ``rec_llm.gateway.routing.skips`` and ``rec_llm.gateway.routing.breaker_transitions``.
  Metric attributes are low-cardinality: never a request id or user text.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.trace import NoOpTracerProvider, ProxyTracerProvider, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

if TYPE_CHECKING:
    from .config import GatewayConfig
    from .providers.base import Provider
    from .schema import ChatCompletionRequest
    from .usage import TokenUsage

__all__ = ["Telemetry"]

# Upstreams get the trace context alone. The global propagator also injects W3C baggage (and whatever
# formats the host configured), which would hand the client's and the host's baggage to a third party.
_UPSTREAM_PROPAGATOR = TraceContextTextMapPropagator()

_VERSION = "0.1.0"

# Bucket boundaries recommended by the GenAI metric conventions.
_DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92]
_TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864]
_FIRST_CHUNK_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0]
_FIRST_CHUNK_BUCKETS += [2.5, 5.0, 7.5, 10.0]  # (one line would be too long)
_OVERHEAD_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1]

# OpenAI request parameter -> gen_ai.request.* attribute.
_REQUEST_ATTRIBUTES = {
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "max_tokens": "gen_ai.request.max_tokens",
    "max_completion_tokens": "gen_ai.request.max_tokens",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "seed": "gen_ai.request.seed",
    "n": "gen_ai.request.choice.count",
    "dimensions": "gen_ai.embeddings.dimension.count",
}


class Telemetry:
    """Creates the instruments once; the pipeline calls the methods below per request."""

    def __init__(
        self,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        *,
        capture_content: bool = False,
    ) -> None:
        self.tracer = trace.get_tracer("rec_llm_gateway", _VERSION, tracer_provider=tracer_provider)
        # None: the global provider, which the host may set after the gateway is built.
        self._tracer_provider = None if isinstance(tracer_provider, ProxyTracerProvider) else tracer_provider
        self.model_label: Callable[[str], str] = str
        """A model name as a metric attribute (bounded once ``know_models`` was called)."""
        meter = metrics.get_meter("rec_llm_gateway", _VERSION, meter_provider=meter_provider)
        self.capture_content = capture_content
        self.duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self.tokens = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used",
            explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS,
        )
        self.first_chunk = meter.create_histogram(
            "gen_ai.client.operation.time_to_first_chunk",
            unit="s",
            description="Time from the request until the first chunk of a streamed response",
            explicit_bucket_boundaries_advisory=_FIRST_CHUNK_BUCKETS,
        )
        self.cost = meter.create_counter(
            "rec_llm.gateway.cost", unit="USD", description="Cost of upstream calls"
        )
        self.requests = meter.create_counter(
            "rec_llm.gateway.requests", unit="{request}", description="Gateway requests by outcome"
        )
        self.failovers = meter.create_counter(
            "rec_llm.gateway.failovers", unit="{failover}", description="Moves from one deployment to another"
        )
        self.skips = meter.create_counter(
            "rec_llm.gateway.routing.skips",
            unit="{deployment}",
            description="Deployments passed over by routing (circuit open, rate limited, unhealthy, ...)",
        )
        self.breaker_transitions = meter.create_counter(
            "rec_llm.gateway.routing.breaker_transitions",
            unit="{transition}",
            description="Circuit breaker state changes of deployments",
        )
        self.state_fallbacks = meter.create_counter(
            "rec_llm.gateway.state.fallbacks",
            unit="{operation}",
            description="Operations served by the per-process fallback while the state store was unavailable",
        )
        self.overhead = meter.create_histogram(
            "rec_llm.gateway.overhead",
            unit="s",
            description="Time the gateway itself spent on a request",
            explicit_bucket_boundaries_advisory=_OVERHEAD_BUCKETS,
        )

    def know_models(self, config: GatewayConfig, providers: Mapping[str, Provider]) -> None:
        """Label metrics with configured or catalogued model names only (``metric_labels.py``)."""
        from .metric_labels import ModelLabels

        self.model_label = ModelLabels(config, providers).label

    def can_record(self) -> bool:
        """``False`` with no SDK (no tracer provider set globally or given): no span records."""
        provider = self._tracer_provider or trace.get_tracer_provider()
        return not isinstance(provider, ProxyTracerProvider | NoOpTracerProvider)

    # -- the request span -------------------------------------------------------------------------

    def start_request(
        self, model: str, headers: Mapping[str, str], request_id: str, operation: str = "chat"
    ) -> tuple[Any, object]:
        """Start and activate the gateway span; returns it with the token to ``end_request`` with."""
        current = trace.get_current_span()
        if current.get_span_context().is_valid:
            parent, kind = None, SpanKind.INTERNAL  # under the host app's own span
        elif "traceparent" not in headers and not self.can_record():
            # No span to record and none to join: the no-op tracer's answer (the invalid span, made
            # current where it already is) without asking it (~4% of a request's CPU).
            return trace.INVALID_SPAN, None
        else:
            parent = None
            if "traceparent" in headers:  # imported on use: it loads propagators from entry points
                from opentelemetry import propagate

                parent = propagate.extract(headers)
            kind = SpanKind.SERVER
        span = self.tracer.start_span(
            f"gateway {operation} {model}" if model else f"gateway {operation}",
            context=parent,
            kind=kind,
            attributes={"gen_ai.operation.name": operation, "rec_llm.request_id": request_id},
        )
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        return span, token

    def end_request(
        self,
        span: Any,
        token: object,
        *,
        outcome: str,
        status_code: int,
        provider: str | None,
        model: str | None,
        cost_usd: float | None,
        attempts: int,
        overhead_seconds: float,
        error_type: str | None = None,
    ) -> None:
        try:
            if span.is_recording():
                span.set_attribute("http.response.status_code", status_code)
                span.set_attribute("rec_llm.attempts", attempts)
                span.set_attribute("rec_llm.outcome", outcome)
                if provider:
                    span.set_attribute("rec_llm.provider", provider)
                if model:
                    span.set_attribute("gen_ai.request.model", model)
                if cost_usd is not None:
                    span.set_attribute("rec_llm.cost_usd", cost_usd)
                if error_type:
                    span.set_attribute("error.type", error_type)
                    span.set_status(Status(StatusCode.ERROR))
            span.end()
        finally:
            if token is not None:
                otel_context.detach(token)  # type: ignore[arg-type]
        attributes: dict[str, str | int] = {
            "rec_llm.outcome": outcome,
            "http.response.status_code": status_code,
        }
        if provider:
            attributes["rec_llm.provider"] = provider
        self.requests.add(1, attributes)
        self.overhead.record(overhead_seconds, {"rec_llm.outcome": outcome})

    def set_request_model(self, span: Any, model: str, operation: str = "chat") -> None:
        if span.is_recording():
            span.update_name(f"gateway {operation} {model}")
            span.set_attribute("gen_ai.request.model", model)

    # -- attempt spans ----------------------------------------------------------------------------

    def start_attempt(
        self,
        provider: Provider,
        model: str,
        request: ChatCompletionRequest,
        outbound: dict[str, str],
        operation: str = "chat",
    ) -> Any:
        """Start the CLIENT span of one upstream attempt and put its trace context in ``outbound``."""
        if not self.can_record():
            # (no-op: name, kind and attributes ignored; building them was ~5% of a request's CPU)
            return self.tracer.start_span(operation)
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": operation,
            "gen_ai.provider.name": provider.otel_provider_name or provider.type,
            "gen_ai.request.model": model,
            "gen_ai.request.stream": bool(getattr(request, "stream", False)),
            "rec_llm.provider": provider.name,
        }
        if provider.server_address:
            attributes["server.address"] = provider.server_address
            if provider.server_port:
                attributes["server.port"] = provider.server_port
        for field, attribute in _REQUEST_ATTRIBUTES.items():
            value = getattr(request, field, None)  # an operation's request may not have the field
            if value is not None:
                attributes[attribute] = value
        stop = getattr(request, "stop", None)
        if stop is not None:
            attributes["gen_ai.request.stop_sequences"] = [stop] if isinstance(stop, str) else stop
        encoding = getattr(request, "encoding_format", None)
        if encoding is not None:
            attributes["gen_ai.request.encoding_formats"] = [encoding]
        span = self.tracer.start_span(f"{operation} {model}", kind=SpanKind.CLIENT, attributes=attributes)
        if span.is_recording():
            if self.capture_content:
                span.set_attribute("gen_ai.input.messages", _messages_json(request))
            _UPSTREAM_PROPAGATOR.inject(outbound, context=trace.set_span_in_context(span))
        return span

    def end_attempt(
        self,
        span: Any,
        provider: Provider,
        model: str,
        *,
        seconds: float,
        response: Mapping[str, Any] | None = None,
        usage: TokenUsage | None = None,
        error_type: str | None = None,
        first_chunk_seconds: float | None = None,
        response_model: str | None = None,
        operation: str = "chat",
    ) -> None:
        provider_name = provider.otel_provider_name or provider.type
        metric_attributes: dict[str, Any] = {
            "gen_ai.operation.name": operation,
            "gen_ai.provider.name": provider_name,
            "gen_ai.request.model": self.model_label(model),
        }
        if response_model:
            metric_attributes["gen_ai.response.model"] = self.model_label(response_model)
        if provider.server_address:
            metric_attributes["server.address"] = provider.server_address
            if provider.server_port:
                metric_attributes["server.port"] = provider.server_port
        if error_type:
            metric_attributes["error.type"] = error_type
        if span.is_recording():
            if response_model:
                span.set_attribute("gen_ai.response.model", response_model)
            if response is not None:
                response_id = response.get("id")
                if isinstance(response_id, str) and response_id:
                    span.set_attribute("gen_ai.response.id", response_id)
                reasons = [
                    str(choice.get("finish_reason"))
                    for choice in response.get("choices") or ()
                    if isinstance(choice, dict) and choice.get("finish_reason")
                ]
                if not reasons and response.get("object") == "response" and response.get("status"):
                    reasons = [str(response["status"])]  # /v1/responses: completed, incomplete
                if reasons:
                    span.set_attribute("gen_ai.response.finish_reasons", reasons)
                if self.capture_content:
                    span.set_attribute("gen_ai.output.messages", _choices_json(response))
            if usage is not None:
                span.set_attribute("gen_ai.usage.input_tokens", usage.prompt_tokens)
                span.set_attribute("gen_ai.usage.output_tokens", usage.completion_tokens)
                if usage.estimated:
                    span.set_attribute("rec_llm.usage.estimated", True)
            if error_type:
                span.set_attribute("error.type", error_type)
                span.set_status(Status(StatusCode.ERROR))
        span.end()
        self.duration.record(seconds, metric_attributes)
        if first_chunk_seconds is not None:
            self.first_chunk.record(first_chunk_seconds, metric_attributes)
        if usage is not None and not error_type:
            self.tokens.record(usage.prompt_tokens, {**metric_attributes, "gen_ai.token.type": "input"})
            self.tokens.record(usage.completion_tokens, {**metric_attributes, "gen_ai.token.type": "output"})

    # -- events -----------------------------------------------------------------------------------

    def record_cost(self, provider: str, model: str, cost_usd: float) -> None:
        self.cost.add(
            cost_usd, {"rec_llm.provider": provider, "gen_ai.request.model": self.model_label(model)}
        )

    def record_failover(self, span: Any, source: str, target: str, reason: str, attempt: int) -> None:
        self.failovers.add(
            1,
            {
                "rec_llm.from": source.partition(":")[0],
                "rec_llm.to": target.partition(":")[0],
                "rec_llm.reason": reason,
            },
        )
        if span is not None and span.is_recording():
            span.add_event(
                "rec_llm.failover", {"from": source, "to": target, "reason": reason, "attempt": attempt}
            )

    def record_skips(self, span: Any, skipped: list[tuple[str, str, float]]) -> None:
        """Deployments routing passed over in one request: span events and a counter by reason."""
        recording = span is not None and span.is_recording()
        for deployment, reason, _ in skipped:
            kind = reason.partition(" ")[0]  # "rate_limited (provider x requests_per_minute)" -> rate_limited
            self.skips.add(1, {"rec_llm.provider": deployment.partition(":")[0], "rec_llm.reason": kind})
            if recording:
                span.add_event("rec_llm.skip", {"deployment": deployment, "reason": reason})

    def record_state_fallback(self, operation: str) -> None:
        self.state_fallbacks.add(1, {"rec_llm.operation": operation})

    def record_breaker(self, deployment: str, state: str) -> None:
        self.breaker_transitions.add(
            1, {"rec_llm.provider": deployment.partition(":")[0], "rec_llm.state": state}
        )

    @staticmethod
    def record_hook_failure(span: Any, hook: str, plugin: str, exc: BaseException) -> None:
        """A plugin hook raised: recorded on the span (the request goes on)."""
        if span is None:
            span = trace.get_current_span()
        if span.is_recording():
            span.add_event(
                "rec_llm.hook_error",
                {
                    "rec_llm.hook": hook,
                    "rec_llm.plugin": plugin,
                    "exception.type": type(exc).__name__,
                    "exception.message": str(exc)[:500],
                },
            )


def _messages_json(request: Any) -> str:
    messages = getattr(request, "messages", None)
    if messages is not None:
        return json.dumps([message.model_dump(mode="json", exclude_unset=True) for message in messages])
    # Embeddings' ``input`` and text completions' ``prompt``: the text the model was given.
    text = getattr(request, "input", None) or getattr(request, "prompt", None)
    return json.dumps([{"role": "user", "content": text}])


def _choices_json(response: Mapping[str, Any]) -> str:
    return json.dumps(
        [
            choice.get("message") or {"role": "assistant", "content": choice.get("text")}
            for choice in response.get("choices") or ()
            if isinstance(choice, dict)
        ]
    )
