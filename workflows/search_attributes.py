"""Search attributes a job keeps up to date, so operators and the job list can filter on them."""

from typing import Any

from temporalio.common import (
    SearchAttributeIndexedValueType,
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
)

JOB_STATUS = SearchAttributeKey.for_keyword("JobStatus")
JOB_OWNER = SearchAttributeKey.for_keyword("JobOwner")
JOB_ACTION_COUNT = SearchAttributeKey.for_int("JobActionCount")
JOB_PROGRESS = SearchAttributeKey.for_int("JobProgress")

ALL: tuple[SearchAttributeKey[Any], ...] = (JOB_STATUS, JOB_OWNER, JOB_ACTION_COUNT, JOB_PROGRESS)

# Names as the Temporal CLI spells the types (`--search-attribute JobStatus=Keyword`).
CLI_TYPE_NAMES = {
    SearchAttributeIndexedValueType.KEYWORD: "Keyword",
    SearchAttributeIndexedValueType.INT: "Int",
}


def at_start(owner: str, action_count: int, percent: int = 0) -> TypedSearchAttributes:
    """A job's attributes when a client starts it, so it is listed before its first task."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(JOB_OWNER, owner),
            SearchAttributePair(JOB_STATUS, "RUNNING"),
            SearchAttributePair(JOB_ACTION_COUNT, action_count),
            SearchAttributePair(JOB_PROGRESS, percent),
        ]
    )
