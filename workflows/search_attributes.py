"""Search attributes a job keeps up to date, so operators and the job list can filter on them."""

from typing import Any

from temporalio.common import SearchAttributeIndexedValueType, SearchAttributeKey

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
