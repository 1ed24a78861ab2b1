"""Fanout worker: runs `JobWorkflow` and the actions' activities on Temporal task queues.

    python worker.py                          # everything: workflows and every action type
    python worker.py --exclude 'http.*'       # workflows and all actions but http.*
    python worker.py --actions 'http.*'       # only http.* actions (on their own task queue)

Stops cleanly on SIGTERM or Ctrl+C: polling stops and running actions get
FANOUT_WORKER_SHUTDOWN_GRACE_S seconds to finish (Temporal retries the rest elsewhere).
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import logging
import signal
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.service import RPCError
from temporalio.worker import (
    PollerBehaviorSimpleMaximum,
    UnsandboxedWorkflowRunner,
    Worker,
    WorkflowRunner,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

import activities  # noqa: F401  (registers every action type)
import workflows
from activities import registry
from activities.registry import ActionDefinition
from activities.webhooks import deliver_activity
from fanout import tracing
from fanout.logs import configure_logging
from fanout.result_sweeper import sweep_forever
from fanout.settings import Settings, settings
from fanout.temporal import connect, exit_process, missing_search_attributes
from workflows.batch import JobBatchWorkflow
from workflows.job import JobWorkflow
from workflows.webhooks import WebhookDeliveryWorkflow, webhook_queue

log = logging.getLogger("fanout.worker")
WORKFLOWS = [JobWorkflow, JobBatchWorkflow, WebhookDeliveryWorkflow]


def workflow_runner(config: Settings) -> WorkflowRunner:
    """How the worker runs Fanout's workflows: outside Temporal's sandbox unless
    FANOUT_WORKER_WORKFLOW_SANDBOX says otherwise.

    The sandbox re-imports the workflow modules for every new run and sends every payload
    through its own serialization context: with jobs of short actions, that was half of the
    worker's CPU (docs/performance.md). What it guards against, a non-deterministic call in
    workflow code, is caught before a release instead: the workflow tests and the replay of
    recorded histories run every workflow in the sandbox.
    """
    if config.worker_workflow_sandbox:
        return SandboxedWorkflowRunner()
    return UnsandboxedWorkflowRunner()


def compile_workflow_modules() -> None:
    """Cache the workflow modules' bytecode.

    The workflow sandbox imports them afresh for every new workflow run; compiling their source
    each time took about 40% of that (profile in docs/performance.md). Python caches bytecode on
    import, unless PYTHONDONTWRITEBYTECODE is set, as in many containers; this does it anyway.
    Read-only code is left alone (the Docker image compiles it when it is built).
    """
    compileall.compile_dir(Path(workflows.__file__).parent, quiet=2)


class ExpectedFailuresWithoutTraceback(logging.Filter):
    """An action's deliberate ApplicationError is logged as one line; bugs keep their traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, ApplicationError) and error.__cause__ is None:
            record.msg = f"{record.msg}: {error.type}: {error.message}"
            record.exc_info = None
        return True


def servable(actions: Sequence[str] = (), exclude: Sequence[str] = ()) -> list[ActionDefinition]:
    """The Python action types matching the globs (catalog types run elsewhere)."""
    return [d for d in registry.select(actions, exclude) if not d.external]


def plan_queues(
    config: Settings,
    *,
    actions: Sequence[str] = (),
    exclude: Sequence[str] = (),
    workflows: bool = True,
) -> dict[str, list[ActionDefinition]]:
    """Which action types this process serves, grouped by task queue (the job queue first).
    Types of the action catalog are served by their own workers: this one never polls their
    queues."""
    queues: dict[str, list[ActionDefinition]] = {config.task_queue: []} if workflows else {}
    for definition in servable(actions, exclude):
        queues.setdefault(definition.task_queue(config.task_queue), []).append(definition)
    if not any(queues.values()) and not workflows:
        raise ValueError(
            "This worker would serve nothing: no action type it can run matches "
            f"--actions {list(actions)} / --exclude {list(exclude)}. "
            f"Known types: {', '.join(d.type for d in servable())}."
        )
    return queues


def build_workers(
    client: Client, config: Settings, queues: dict[str, list[ActionDefinition]], workflows: bool
) -> list[Worker]:
    """One Temporal worker per task queue.

    The one that runs JobWorkflow also runs, as local activities, every action type outside a
    pool (a job may ask for any of them to run locally), whichever it serves as activities. If
    those differ (`--actions`, `--exclude`), a second worker on the same queue serves the chosen
    ones as activities, and the first takes no activity tasks. Webhook deliveries have a
    queue of their own, `<job queue>-webhooks`, served wherever jobs are.
    """
    throttle = timedelta(seconds=config.heartbeat_throttle_s)
    runner = workflow_runner(config)

    def build(
        queue: str,
        definitions: Sequence[ActionDefinition],
        *,
        jobs: bool,
        local_only: bool,
        webhooks: bool = False,
    ) -> Worker:
        hooks = [deliver_activity(config)] if webhooks else []
        return Worker(
            client,
            task_queue=queue,
            workflows=WORKFLOWS if jobs else [],
            activities=[d.activity(config) for d in definitions] + hooks,
            no_remote_activities=local_only,
            max_concurrent_activities=config.worker_max_concurrent_activities,
            max_concurrent_workflow_tasks=config.worker_max_concurrent_workflow_tasks,
            max_cached_workflows=config.worker_max_cached_workflows,
            workflow_task_poller_behavior=PollerBehaviorSimpleMaximum(
                config.worker_workflow_pollers
            ),
            activity_task_poller_behavior=PollerBehaviorSimpleMaximum(
                config.worker_activity_pollers
            ),
            max_heartbeat_throttle_interval=throttle,
            default_heartbeat_throttle_interval=throttle,
            graceful_shutdown_timeout=timedelta(seconds=config.worker_shutdown_grace_s),
            workflow_runner=runner,
        )

    workers = []
    for queue, definitions in queues.items():
        if not (workflows and queue == config.task_queue):
            workers.append(build(queue, definitions, jobs=False, local_only=False))
            continue
        local = [d for d in registry.all_definitions() if d.pool is None]
        if [d.type for d in definitions] == [d.type for d in local]:
            workers.append(build(queue, definitions, jobs=True, local_only=False))
            continue
        workers.append(build(queue, local, jobs=True, local_only=True))
        if definitions:
            workers.append(build(queue, definitions, jobs=False, local_only=False))
    if workflows:
        hooks = webhook_queue(config.task_queue)
        workers.append(build(hooks, [], jobs=False, local_only=False, webhooks=True))
    return workers


def metrics_runtime(config: Settings) -> Runtime | None:
    """With FANOUT_METRICS_PORT, the SDK serves its metrics (tasks, latencies) for Prometheus."""
    if config.metrics_port is None:
        return None
    address = f"{config.metrics_host}:{config.metrics_port}"
    log.info("Serving Temporal SDK metrics on http://%s/metrics", address)
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=address)))


async def check_search_attributes(client: Client) -> None:
    """Jobs upsert Fanout's search attributes; without them every job would stall."""
    try:
        missing = await missing_search_attributes(client)
    except RPCError as err:
        log.warning("Could not check search attributes (%s); assuming they exist.", err.message)
        return
    if missing:
        flags = " ".join(f"--name {m.split('=')[0]} --type {m.split('=')[1]}" for m in missing)
        raise SystemExit(
            f"Namespace {client.namespace!r} lacks the search attributes {', '.join(missing)}. "
            f"Register each with: temporal operator search-attribute create {flags}"
        )


async def serve(workers: Sequence[Worker], stop: asyncio.Event) -> None:
    runs = [asyncio.create_task(w.run()) for w in workers]
    stopped = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([*runs, stopped], return_when=asyncio.FIRST_COMPLETED)
    await asyncio.gather(*(w.shutdown() for w in workers))
    for task in done - {stopped}:
        task.result()  # a worker that stopped by itself: surface its error


async def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--actions",
        action="append",
        default=[],
        metavar="GLOB",
        help="serve only action types matching GLOB (repeatable), e.g. 'http.*'",
    )
    parser.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help="do not serve action types matching GLOB (repeatable)",
    )
    parser.add_argument(
        "--workflows",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run JobWorkflow too (default: yes unless --actions is given)",
    )
    parser.add_argument(
        "--list-actions",
        action="store_true",
        help="print the action types and their task queues, then exit",
    )
    args = parser.parse_args(argv)
    run_workflows = args.workflows if args.workflows is not None else not args.actions

    if args.list_actions:
        for d in servable(args.actions, args.exclude):
            print(f"{d.type:16} {d.task_queue(settings.task_queue):24} {d.description}")
        return

    configure_logging(settings)
    logging.getLogger("temporalio.activity").addFilter(ExpectedFailuresWithoutTraceback())
    try:
        tracing.configure("fanout-worker")
        queues = plan_queues(
            settings, actions=args.actions, exclude=args.exclude, workflows=run_workflows
        )
    except ValueError as err:
        raise SystemExit(str(err)) from None
    client = await connect(settings, runtime=metrics_runtime(settings))
    if run_workflows:
        if settings.worker_workflow_sandbox:
            compile_workflow_modules()
        await check_search_attributes(client)
    workers = build_workers(client, settings, queues, run_workflows)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    for queue, definitions in queues.items():
        served = (["JobWorkflow"] if run_workflows and queue == settings.task_queue else []) + [
            d.type for d in definitions
        ]
        log.info(
            "Serving task queue %s on %s: %s", queue, settings.temporal_target, ", ".join(served)
        )
    if run_workflows and len(workers) > len(queues):
        log.info("Jobs' local actions run here too, whichever action types are served.")
    # Stored results go with their jobs: swept where jobs run (at least one worker does).
    sweeper = asyncio.create_task(sweep_forever(client, settings)) if run_workflows else None
    await serve(workers, stop)
    if sweeper is not None:
        sweeper.cancel()
    log.info("Worker stopped.")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        exit_process(130)
    except SystemExit as stop:
        if isinstance(stop.code, str):
            print(stop.code, file=sys.stderr)
        exit_process(stop.code if isinstance(stop.code, int) else 1)
    exit_process(0)
