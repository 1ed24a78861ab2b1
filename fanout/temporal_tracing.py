"""Temporal's OpenTelemetry interceptor as Fanout uses it (fanout/tracing.py installs it)."""

from __future__ import annotations

from typing import Any

import temporalio.client
from opentelemetry import trace
from temporalio.contrib.opentelemetry import TracingInterceptor


class QueriesInTracesOnly(TracingInterceptor):
    """Temporal's interceptor, but a query outside a trace stays untraced: the status hub's
    background polling would otherwise start a trace for every query it makes."""

    def intercept_client(
        self, next: temporalio.client.OutboundInterceptor
    ) -> temporalio.client.OutboundInterceptor:
        return _QueryOnlyInATrace(super().intercept_client(next), untraced=next)


class _QueryOnlyInATrace(temporalio.client.OutboundInterceptor):
    def __init__(
        self,
        traced: temporalio.client.OutboundInterceptor,
        *,
        untraced: temporalio.client.OutboundInterceptor,
    ) -> None:
        super().__init__(traced)
        self._untraced = untraced

    async def query_workflow(self, input: temporalio.client.QueryWorkflowInput) -> Any:
        if trace.get_current_span().get_span_context().is_valid:
            return await super().query_workflow(input)
        return await self._untraced.query_workflow(input)
