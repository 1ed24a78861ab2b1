"""The services one web process shares: Temporal client, status hub, job operations, keys.

The API routes and the dashboard both use them; they start with the app and stop with it.
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio.client import Client

from fanout.settings import Settings
from fanout.temporal import connect
from web.auth import ApiKeys
from web.job_endings import JobEndings
from web.metrics import Metrics
from web.quotas import Quotas
from web.status import StatusHub
from web.status.job_lists import JobLists
from web.status.job_stats import JobStatistics
from web.temporal_jobs import JobOperations

# A shared jobs list is fetched again once this old: the jobs page refreshes every 2 s, so tabs
# whose timers tick at different moments still share one call per refresh.
LIST_MAX_AGE_S = 1.5


@dataclass
class Runtime:
    settings: Settings
    api_keys: ApiKeys
    temporal: Client
    hub: StatusHub
    operations: JobOperations
    quotas: Quotas
    endings: JobEndings
    lists: JobLists
    statistics: JobStatistics

    @classmethod
    async def start(cls, settings: Settings, api_keys: ApiKeys, metrics: Metrics) -> Runtime:
        # Lazy: the app starts (and answers 503) while Temporal is down, and reconnects later.
        client = await connect(settings, lazy=True)
        hub = StatusHub(client, settings, metrics)
        metrics.watch_pollers(lambda: hub.pollers)
        global _current
        quotas = Quotas(client, settings)
        operations = JobOperations(client, hub, settings, quotas)
        endings = JobEndings(client, settings)
        lists = JobLists(operations.list_for, max_age_s=LIST_MAX_AGE_S)
        statistics = JobStatistics(client, hub.reads, settings)
        _current = cls(
            settings, api_keys, client, hub, operations, quotas, endings, lists, statistics
        )
        return _current

    async def stop(self) -> None:
        await self.endings.close()
        await self.hub.close()


_current: Runtime | None = None


def current() -> Runtime:
    """The running app's services (for the dashboard, which has no request object)."""
    if _current is None:
        raise RuntimeError("The web app has not started yet.")
    return _current
