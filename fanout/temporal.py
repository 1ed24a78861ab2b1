"""Connecting to Temporal the same way from the worker, the web app and the tools."""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from typing import NoReturn

from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.envconfig import ClientConfigTLS, ClientConnectConfig
from temporalio.runtime import Runtime
from temporalio.service import RetryConfig

from fanout import tracing
from fanout.settings import Settings
from workflows import search_attributes as sa


async def connect(
    settings: Settings, *, lazy: bool = False, runtime: Runtime | None = None
) -> Client:
    """A client for the configured namespace that speaks the contract's models as plain JSON.

    `lazy` defers connecting to the first call (the web app starts while Temporal is down).
    """
    return await Client.connect(
        **connect_config(settings),
        data_converter=pydantic_data_converter,
        interceptors=tracing.client_interceptors(),
        lazy=lazy,
        runtime=runtime,
        retry_config=RetryConfig(max_retries=2) if lazy else None,
    )


def connect_config(settings: Settings) -> ClientConnectConfig:
    """Where and how to connect: Temporal's profile (TEMPORAL_*, temporal.toml) with each FANOUT_*
    setting that is set in its place; the dev server of `make run` in plain gRPC."""
    if settings.uses_dev_server:  # it takes neither TLS nor an API key
        return {"target_host": settings.temporal_target, "namespace": settings.namespace}
    profile = settings.temporal_loaded_profile
    base = profile.tls or ClientConfigTLS()
    tls = ClientConfigTLS(
        disabled=base.disabled if settings.temporal_tls is None else not settings.temporal_tls,
        server_name=settings.temporal_tls_server_name or base.server_name,
        server_root_ca_cert=settings.temporal_tls_ca or base.server_root_ca_cert,
        client_cert=settings.temporal_tls_cert or base.client_cert,
        client_private_key=settings.temporal_tls_key or base.client_private_key,
    )
    if (tls.client_cert is None) != (tls.client_private_key is None):
        raise ValueError(
            "Set both a client certificate and its key (FANOUT_TEMPORAL_TLS_CERT and "
            "FANOUT_TEMPORAL_TLS_KEY, or TEMPORAL_TLS_CLIENT_CERT_PATH and "
            "TEMPORAL_TLS_CLIENT_KEY_PATH), or neither."
        )
    api_key = settings.temporal_api_key
    merged = replace(
        profile,
        address=settings.temporal_target,
        namespace=settings.namespace,
        api_key=api_key.get_secret_value() if api_key else None,
        tls=None if tls == ClientConfigTLS() else tls,  # none: plain, or TLS for an API key
    )
    return merged.to_client_connect_config()


async def missing_search_attributes(client: Client) -> list[str]:
    """Names of Fanout's search attributes the namespace lacks, as `Name=Type` for the CLI."""
    response = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    return [
        f"{key.name}={sa.CLI_TYPE_NAMES[key.indexed_value_type]}"
        for key in sa.ALL
        if key.name not in response.custom_attributes
    ]


def exit_process(code: int) -> NoReturn:
    """Exit without interpreter teardown, which can abort in the SDK's Rust threads.

    Known SDK issue (temporalio/sdk-python#300): a process that used a client may die with
    "Fatal Python error: PyGILState_Release" while finalizing, turning a clean exit into SIGABRT.
    """
    tracing.shutdown()  # os._exit skips atexit, where the SDK would send its last spans
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
