"""OpenTelemetry for the demo: OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set; the SDK's console
exporters (every span and metric in full, ~200 lines per request) only when DEMO_CONSOLE_TELEMETRY=1;
otherwise one compact line per gateway request.

The gateway itself only uses the OpenTelemetry API; the host app (this file) picks the SDK and the
exporters, and hands the providers to ``Gateway(...)``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TextIO

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)


class CompactSpanExporter(SpanExporter):
    """One line per gateway request (its ``gateway ...`` span); attempt spans are summed up in it::

    otel gateway chat echo:echo-1  200 success  1 attempt  echo  $0.000000  trace 4bf92f35
    """

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        for span in spans:
            if not span.name.startswith("gateway "):
                continue
            attributes = dict(span.attributes or {})
            attempts = attributes.get("rec_llm.attempts", 0)
            cost = attributes.get("rec_llm.cost_usd")
            status = attributes.get("http.response.status_code", "-")
            parts = [
                f"otel {span.name}",
                f"{status} {attributes.get('rec_llm.outcome', '-')}",
                f"{attempts} attempt{'' if attempts == 1 else 's'}",
                str(attributes.get("rec_llm.provider", "-")),
                "-" if not isinstance(cost, int | float) else f"${cost:.6f}",
            ]
            if span.start_time is not None and span.end_time is not None:
                parts.append(f"{(span.end_time - span.start_time) / 1e6:.1f} ms")
            if attributes.get("error.type"):
                parts.append(f"error {attributes['error.type']}")
            if span.context is not None:
                parts.append(f"trace {span.context.trace_id:032x}"[:14])
            print("  ".join(parts), file=self.out or sys.stdout, flush=True)
        return SpanExportResult.SUCCESS


def setup() -> tuple[TracerProvider, MeterProvider]:
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "llm-gateway-demo")})
    tracer_provider = TracerProvider(resource=resource)
    metric_exporter: MetricExporter | None = None
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        metric_exporter = OTLPMetricExporter()
    elif os.environ.get("DEMO_CONSOLE_TELEMETRY") == "1":
        tracer_provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        metric_exporter = ConsoleMetricExporter()
    else:
        tracer_provider.add_span_processor(SimpleSpanProcessor(CompactSpanExporter()))
    readers = []
    if metric_exporter is not None:
        interval = int(os.environ.get("OTEL_METRIC_EXPORT_INTERVAL", "60000"))
        readers.append(PeriodicExportingMetricReader(metric_exporter, export_interval_millis=interval))
    return tracer_provider, MeterProvider(resource=resource, metric_readers=readers)
