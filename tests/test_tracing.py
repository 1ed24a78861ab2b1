"""Tracing: one job is one trace, from the HTTP request through the workflow to every attempt of
every action; OTEL_* alone turns it on and says where spans go."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import AsyncExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from temporalio.testing import WorkflowEnvironment

import worker
from fanout import tracing
from fanout.logs import configure_logging
from fanout.temporal import connect
from tests.conftest import clean_settings, unique
from tests.processes import REPO, WORKDIR, clean_env
from tests.test_logs import records, restore_logging  # noqa: F401  (a fixture)
from tests.web.conftest import api_settings, serve
from web.factory import create_app

KEY = "tracy-key-0123456789"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Every span of this process, kept in memory (the SDK's own test exporter)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: "fanout-tests"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use(provider)
    yield exporter
    tracing.use(None)
    provider.shutdown()


def ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[str]:
    """Names of the span's parents, nearest first (as far as this process saw them)."""
    names = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        names.append(span.name)
    return names


@pytest.mark.integration
@pytest.mark.parametrize("sandbox", [False, True], ids=["unsandboxed", "sandboxed"])
async def test_one_job_is_one_trace_with_a_span_per_attempt(
    dev_env: WorkflowEnvironment, spans: InMemorySpanExporter, sandbox: bool
) -> None:
    config = api_settings(
        dev_env.client.service_client.config.target_host,
        api_keys=f"tracy:{KEY}",
        data_dir=WORKDIR / unique("tracing-data"),
        worker_workflow_sandbox=sandbox,  # FANOUT_WORKER_WORKFLOW_SANDBOX: both must trace
    )
    client = await connect(config)  # traced, as the worker's is: its workers trace too
    app = create_app(config, dashboard=False)
    body = {
        "actions": [
            # Over a second: a remote activity; the other fails once, then succeeds, locally.
            {"type": "demo.sleep", "name": "steady", "params": {"seconds": 1.2}},
            {"type": "demo.sleep", "name": "flaky",
             "params": {"seconds": 0, "fail_first_attempts": 1}},
        ]
    }  # fmt: skip
    async with AsyncExitStack() as stack:
        for w in worker.build_workers(client, config, worker.plan_queues(config), True):
            await stack.enter_async_context(w)
        url = await stack.enter_async_context(serve(app))
        async with httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=30
        ) as http:
            created = await http.post("/api/jobs", json=body)
            assert created.status_code == 202, created.text
            job_id = created.json()["job_id"]
            # Watched as a browser would: the stream's follower polls Temporal in the background.
            async with aconnect_sse(http, "GET", f"/api/jobs/{job_id}/events") as source:
                job: dict[str, Any] = {}
                async for event in source.aiter_sse():
                    job = json.loads(event.data) if event.data else job
            assert job.get("status") == "COMPLETED", job
            assert (await http.get(f"/api/jobs/{job_id}")).json()["status"] == "COMPLETED"

    finished = spans.get_finished_spans()
    (request,) = [
        s
        for s in finished
        if s.kind == SpanKind.SERVER
        and s.attributes is not None
        and s.attributes.get("http.route") == "/api/jobs"
        and s.attributes.get("http.request.method", s.attributes.get("http.method")) == "POST"
    ]
    trace = [s for s in finished if s.context.trace_id == request.context.trace_id]
    by_id = {s.context.span_id: s for s in trace}
    names = sorted(s.name for s in trace)
    for name in ("StartWorkflow:JobWorkflow", "RunWorkflow:JobWorkflow"):
        assert names.count(name) == 1, names
    attempts = {
        action: [
            s
            for s in trace
            if s.name == "RunActivity:demo.sleep"
            and s.attributes is not None
            and s.attributes.get("temporalActivityID") == action
        ]
        for action in ("steady", "flaky")
    }
    assert {a: len(s) for a, s in attempts.items()} == {"steady": 1, "flaky": 2}, names
    for attempt in attempts["steady"] + attempts["flaky"]:
        assert attempt.attributes is not None
        assert attempt.attributes.get("temporalWorkflowID") == job_id
        # Temporal's workflow spans take no time (replay-safe): the workflow's run and its
        # actions' starts are each a child of the job's start, itself the request's child.
        chain = ancestors(attempt, by_id)
        assert chain == ["StartActivity:demo.sleep", "StartWorkflow:JobWorkflow", request.name]
    (run,) = [s for s in trace if s.name == "RunWorkflow:JobWorkflow"]
    assert ancestors(run, by_id) == ["StartWorkflow:JobWorkflow", request.name]
    failed, succeeded = sorted(attempts["flaky"], key=lambda s: s.start_time or 0)
    assert not failed.status.is_ok
    assert succeeded.status.is_ok

    # The status hub polls in the background: that makes no trace of its own, so every trace
    # begins with a request.
    roots = [s for s in finished if s.parent is None]
    assert roots
    assert all(s.kind == SpanKind.SERVER for s in roots), [s.name for s in roots]
    # Nor is it put down to the stream that started it (it serves every later watcher too).
    (stream,) = [s for s in roots if s.name == "GET /api/jobs/{job_id}/events"]
    assert [s.name for s in finished if s.context.trace_id == stream.context.trace_id] == [
        stream.name
    ]


def test_off_unless_otel_variables_ask() -> None:
    assert not tracing.wanted({})
    assert tracing.wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert tracing.wanted({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"})
    assert tracing.wanted({"OTEL_TRACES_EXPORTER": "console"})
    assert not tracing.wanted({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "x"})
    assert not tracing.wanted(
        {"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}
    )
    assert tracing.configure("fanout-tests", {}) is None
    assert tracing.client_interceptors() == []


BAD_VARIABLES = [
    ({"OTEL_TRACES_EXPORTER": "jaeger"}, "Fanout knows otlp, console and none"),
    ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "http/protobuf"),
    (  # the SDK's own variable, with the SDK's own words
        {"OTEL_TRACES_EXPORTER": "console", "OTEL_BSP_SCHEDULE_DELAY": "-1"},
        "Tracing cannot start from the OTEL_* variables: schedule_delay_millis must be positive",
    ),
]


@pytest.mark.parametrize(
    "program", [["worker.py"], ["-c", "import web.app"]], ids=["worker", "web"]
)
@pytest.mark.parametrize(("variables", "message"), BAD_VARIABLES, ids=["exporter", "grpc", "sdk"])
def test_otel_values_it_cannot_follow_stop_the_process_with_one_line(
    program: list[str], variables: dict[str, str], message: str
) -> None:
    program = [str(REPO / program[0])] if program[0] == "worker.py" else program
    done = subprocess.run(
        [sys.executable, *program],
        env=clean_env(**variables, FANOUT_LOG_FORMAT="json"),
        cwd=WORKDIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    (line,) = [line for line in done.stderr.splitlines() if not line.startswith("{")]
    assert message in line, done.stderr
    assert "Traceback" not in done.stderr


def test_an_empty_exporter_list_is_the_default_otlp() -> None:
    """OTEL_TRACES_EXPORTER= (set, empty) with an endpoint: traces go there, as when unset."""
    variables = {"OTEL_TRACES_EXPORTER": "", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}
    assert tracing.wanted(variables)
    assert [type(e).__name__ for e in tracing.exporters(variables)] == ["OTLPSpanExporter"]


def test_json_logs_carry_the_trace(
    restore_logging: None,  # noqa: F811
    spans: InMemorySpanExporter,
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(clean_settings(log_format="json"))
    tracer = TracerProvider().get_tracer("tests")
    with tracer.start_as_current_span("an attempt") as span:
        logging.getLogger("fanout.tests").warning("inside")
    logging.getLogger("fanout.tests").warning("outside")
    inside, outside = records(capsys.readouterr().err)
    context = span.get_span_context()
    assert inside["trace_id"] == format(context.trace_id, "032x")
    assert inside["span_id"] == format(context.span_id, "016x")
    assert "trace_id" not in outside


class Collector(BaseHTTPRequestHandler):
    """An OTLP/HTTP endpoint that keeps what it is sent."""

    received: list[ExportTraceServiceRequest] = []  # noqa: RUF012

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        Collector.received.append(request)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_a_process_sends_its_spans_where_otel_variables_say() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        program = (
            "from fanout import tracing; from fanout.temporal import exit_process; "
            "from opentelemetry import trace; "
            "tracing.configure('fanout-worker'); "
            "trace.get_tracer('t').start_span('RunActivity:demo.sleep').end(); "
            "exit_process(0)"  # as the worker leaves: past atexit, the spans still go out
        )
        env = os.environ | {
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{server.server_port}",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=tests",
        }
        env.pop("OTEL_SERVICE_NAME", None)
        done = subprocess.run(
            [sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
    finally:
        server.shutdown()
        server.server_close()
    (request,) = Collector.received
    (resource_spans,) = request.resource_spans
    resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert resource["service.name"] == "fanout-worker"
    assert resource["deployment.environment"] == "tests"
    names = [s.name for scope in resource_spans.scope_spans for s in scope.spans]
    assert names == ["RunActivity:demo.sleep"]
