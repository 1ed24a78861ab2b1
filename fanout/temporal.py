"""Connecting to Temporal the same way from the worker, the web app and the tools."""

from __future__ import annotations

import os
import sys
from typing import NoReturn

from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import Runtime
from temporalio.service import RetryConfig, TLSConfig

from fanout.settings import Settings
from workflows import search_attributes as sa


async def connect(
    settings: Settings, *, lazy: bool = False, runtime: Runtime | None = None
) -> Client:
    """A client for the configured namespace that speaks the contract's models as plain JSON.

    `lazy` defers connecting to the first call (the web app starts while Temporal is down).
    """
    api_key = settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None
    return await Client.connect(
        settings.temporal_target,
        namespace=settings.namespace,
        data_converter=pydantic_data_converter,
        tls=tls_config(settings),
        api_key=api_key,
        lazy=lazy,
        runtime=runtime,
        retry_config=RetryConfig(max_retries=2) if lazy else None,
    )


def tls_config(settings: Settings) -> TLSConfig | bool:
    """TLS as the settings ask for it: mTLS files, a private CA, or the system's roots."""
    files = (settings.temporal_tls_cert, settings.temporal_tls_key, settings.temporal_tls_ca)
    if not any(files) and not settings.temporal_tls_server_name:
        return settings.temporal_tls or settings.temporal_api_key is not None
    cert, key, ca = (path.read_bytes() if path else None for path in files)
    if (cert is None) != (key is None):
        raise ValueError(
            "Set both FANOUT_TEMPORAL_TLS_CERT and FANOUT_TEMPORAL_TLS_KEY, or neither."
        )
    return TLSConfig(
        client_cert=cert,
        client_private_key=key,
        server_root_ca_cert=ca,
        domain=settings.temporal_tls_server_name,
    )


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
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
