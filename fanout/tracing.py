"""OpenTelemetry tracing: one trace from the HTTP request through the job's workflow to every
attempt of every action.

Off unless the standard variables ask for it: `OTEL_EXPORTER_OTLP_ENDPOINT` (or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) set, or `OTEL_TRACES_EXPORTER=otlp|console`;
`OTEL_SDK_DISABLED=true` turns it off whatever else is set. Spans go out over OTLP/HTTP
(protobuf, port 4318), batched; `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES` and the
exporter's own `OTEL_EXPORTER_OTLP_*` variables (headers, timeout, certificate) apply as
everywhere else. Off, nothing is installed: no span, no interceptor, not even the SDK's modules.

On, the web app gets FastAPI's instrumentation (one SERVER span per request) and every Temporal
client Temporal's `TracingInterceptor`, whose context rides in the workflow's headers: the
worker adds `RunWorkflow:JobWorkflow`, then `StartActivity:<type>` and one
`RunActivity:<type>` span per attempt. Queries are traced only inside a traced request, so the
status hub's background polling makes no traces of its own.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

from opentelemetry import context as otel_context
from opentelemetry import trace

if TYPE_CHECKING:  # the SDK and Temporal's interceptor are imported once tracing is on
    import temporalio.client
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

log = logging.getLogger("fanout.tracing")

# Requests not worth a trace: probes, scrapes, and the dashboard's own assets and socket.
UNTRACED_URLS = "/healthz,/readyz,/metrics,/_nicegui,/static"

_provider: TracerProvider | None = None


def wanted(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the OTEL_* variables ask for traces."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporters:
        return exporters != "none"
    return bool(
        environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
        or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    )


def exporters(environ: Mapping[str, str] = os.environ) -> list[SpanExporter]:
    """The exporters OTEL_TRACES_EXPORTER names (otlp unless it says otherwise)."""
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    protocol = (
        environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    chosen: list[SpanExporter] = []
    for name in (environ.get("OTEL_TRACES_EXPORTER") or "otlp").lower().split(","):
        match name.strip():
            case "otlp":
                if protocol != "http/protobuf":
                    raise ValueError(
                        f"OTEL_EXPORTER_OTLP_PROTOCOL is {protocol!r}, but Fanout exports "
                        "OTLP over HTTP: set it to http/protobuf (a collector's port 4318), "
                        "or unset it."
                    )
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                    OTLPSpanExporter,
                )

                chosen.append(OTLPSpanExporter())
            case "console":
                chosen.append(ConsoleSpanExporter())
            case "" | "none":
                pass
            case other:
                raise ValueError(
                    f"OTEL_TRACES_EXPORTER names {other!r}: Fanout knows otlp, console and none."
                )
    return chosen


def configure(service_name: str, environ: Mapping[str, str] = os.environ) -> TracerProvider | None:
    """Start tracing for this process if OTEL_* asks for it (see the module's docstring);
    `service_name` unless OTEL_SERVICE_NAME names the service. A value it cannot follow is a
    ValueError that says which."""
    if not wanted(environ):
        return None
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    attributes = {} if environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service_name}
    chosen = exporters(environ)
    try:  # the SDK reads its own OTEL_BSP_*, OTEL_EXPORTER_OTLP_* values as it builds these
        provider = TracerProvider(resource=Resource.create(attributes))
        for exporter in chosen:
            provider.add_span_processor(BatchSpanProcessor(exporter))
    except ValueError as err:
        raise ValueError(f"Tracing cannot start from the OTEL_* variables: {err}.") from None
    trace.set_tracer_provider(provider)
    use(provider)
    log.info(
        "Tracing on: spans of %s go to %s.",
        provider.resource.attributes[SERVICE_NAME],
        environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or environ.get("OTEL_TRACES_EXPORTER")
        or "otlp",
    )
    return provider


def use(provider: TracerProvider | None) -> None:
    """Trace with `provider` from now on (None: stop); `configure` calls it, tests too."""
    global _provider
    _provider = provider


def shutdown() -> None:
    """Send the spans still queued (the worker leaves through os._exit, past atexit)."""
    if _provider is not None:
        _provider.shutdown()


def client_interceptors() -> list[temporalio.client.Interceptor]:
    """What a Temporal client needs to carry the trace (workers inherit it from the client)."""
    if _provider is None:
        return []
    from fanout.temporal_tracing import QueriesInTracesOnly

    return [QueriesInTracesOnly(_provider.get_tracer("fanout"))]


def instrument(app: FastAPI) -> None:
    """A SERVER span for each request to `app` (but probes, scrapes and dashboard assets)."""
    if _provider is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=_provider,
        excluded_urls=os.environ.get("OTEL_PYTHON_FASTAPI_EXCLUDED_URLS", UNTRACED_URLS),
        exclude_spans=["receive", "send"],  # not one span per SSE event or WebSocket message
    )


@contextmanager
def untraced() -> Iterator[None]:
    """Run the block outside any trace: for work that outlives the request that started it
    (a job's follower in the status hub serves every later watcher too)."""
    token = otel_context.attach(otel_context.Context())
    try:
        yield
    finally:
        otel_context.detach(token)


def log_fields() -> dict[str, str]:
    """`trace_id` and `span_id` of the current span, as logs and trace viewers write them."""
    span = trace.get_current_span().get_span_context()
    if not span.is_valid:
        return {}
    return {"trace_id": format(span.trace_id, "032x"), "span_id": format(span.span_id, "016x")}
