"""Connecting to Temporal the same way from the worker, the web app and the tools."""

from __future__ import annotations

import os
import sys
from typing import NoReturn

from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from fanout.settings import Settings
from workflows import search_attributes as sa


async def connect(settings: Settings) -> Client:
    """A client for the configured namespace that speaks the contract's models as plain JSON."""
    return await Client.connect(
        settings.temporal_target,
        namespace=settings.namespace,
        data_converter=pydantic_data_converter,
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
