"""OpenTelemetry for the demo: OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set, else the console.

The gateway itself only uses the OpenTelemetry API; the host app (this file) picks the SDK and the
exporters, and hands the providers to ``Gateway(...)``.
"""

from __future__ import annotations

import os

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter


def setup() -> tuple[TracerProvider, MeterProvider]:
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "llm-gateway-demo")})
    span_exporter: SpanExporter
    metric_exporter: MetricExporter
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        span_exporter, metric_exporter = OTLPSpanExporter(), OTLPMetricExporter()
    else:
        span_exporter, metric_exporter = ConsoleSpanExporter(), ConsoleMetricExporter()
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
    interval = int(os.environ.get("OTEL_METRIC_EXPORT_INTERVAL", "60000"))
    reader = PeriodicExportingMetricReader(metric_exporter, export_interval_millis=interval)
    return tracer_provider, MeterProvider(resource=resource, metric_readers=[reader])
