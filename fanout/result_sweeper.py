"""Stored results go with their job: a worker removes those whose job Temporal no longer has.

Temporal deletes a closed workflow once the namespace's retention has passed; the result store
keeps nothing of its own about time. Every FANOUT_RESULT_SWEEP_INTERVAL_S the worker lists the
jobs that have stored results and asks Temporal about each (one describe): a job it no longer
knows has its results removed. Any other answer (Temporal unreachable, slow, an unknown
namespace) removes nothing. Several workers may sweep at once: removing twice is harmless.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from fanout.result_store import ResultStore, StoreUnavailable, store_for
from fanout.settings import Settings

log = logging.getLogger("fanout.results")
FIRST_SWEEP_AFTER_S = 60.0  # soon after a start, so workers restarted often still sweep


def job_is_gone(err: RPCError) -> bool:
    """Temporal has no such workflow (an unknown namespace is NOT_FOUND too: not a job gone)."""
    return err.status == RPCStatusCode.NOT_FOUND and not any(
        "NamespaceNotFound" in detail.type_url for detail in err.grpc_status.details
    )


async def sweep(client: Client, store: ResultStore, rpc_timeout_s: float = 5.0) -> list[str]:
    """Remove the stored results of every job Temporal no longer has; the ids of those jobs."""
    timeout = timedelta(seconds=rpc_timeout_s)
    removed: list[str] = []
    for job_id in await store.jobs():
        try:
            await client.get_workflow_handle(job_id).describe(rpc_timeout=timeout)
        except RPCError as err:
            if not job_is_gone(err):
                log.warning("Result sweep stopped: Temporal answered %s.", err.message)
                return removed
            await store.remove(job_id)
            removed.append(job_id)
    return removed


async def sweep_forever(client: Client, settings: Settings) -> None:
    """Sweep now and then until cancelled; a failed sweep is logged and tried again later."""
    store = store_for(settings)
    await asyncio.sleep(min(FIRST_SWEEP_AFTER_S, settings.result_sweep_interval_s))
    while True:
        try:
            removed = await sweep(client, store, settings.temporal_rpc_timeout_s)
        except (StoreUnavailable, OSError) as err:
            log.warning("Result sweep failed, tried again later: %s", err)
        except Exception:  # a sweep must never stop the worker; the next one tries again
            log.exception("Result sweep failed, tried again later")
        else:
            if removed:
                log.info("Removed the stored results of %d deleted job(s).", len(removed))
        await asyncio.sleep(settings.result_sweep_interval_s)
