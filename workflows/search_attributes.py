"""Search attributes a job keeps up to date, so operators and the job list can filter on them."""

from collections.abc import Mapping
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
# Text, not Keyword: visibility matches any whole word of it, case-insensitively ("report"
# finds "Monthly report for ACME"); a Keyword's STARTS_WITH only matches its first letters.
JOB_TITLE = SearchAttributeKey.for_text("JobTitle")
JOB_LABELS = SearchAttributeKey.for_keyword_list("JobLabels")  # "key=value", one per label

ALL: tuple[SearchAttributeKey[Any], ...] = (
    JOB_STATUS,
    JOB_OWNER,
    JOB_ACTION_COUNT,
    JOB_PROGRESS,
    JOB_TITLE,
    JOB_LABELS,
)

# Names as the Temporal CLI spells the types (`--search-attribute JobStatus=Keyword`).
CLI_TYPE_NAMES = {
    SearchAttributeIndexedValueType.KEYWORD: "Keyword",
    SearchAttributeIndexedValueType.INT: "Int",
    SearchAttributeIndexedValueType.TEXT: "Text",
    SearchAttributeIndexedValueType.KEYWORD_LIST: "KeywordList",
}


def label_terms(labels: Mapping[str, str]) -> list[str]:
    """A job's labels as JobLabels holds them: `key=value`."""
    return [f"{key}={value}" for key, value in labels.items()]


def at_start(
    owner: str,
    action_count: int,
    percent: int = 0,
    title: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> TypedSearchAttributes:
    """A job's attributes when a client starts it, so it is listed before its first task.
    The workflow checks them against what it was started with, and sets what is missing."""
    pairs: list[SearchAttributePair[Any]] = [
        SearchAttributePair(JOB_OWNER, owner),
        SearchAttributePair(JOB_STATUS, "RUNNING"),
        SearchAttributePair(JOB_ACTION_COUNT, action_count),
        SearchAttributePair(JOB_PROGRESS, percent),
    ]
    return TypedSearchAttributes(pairs + naming(title, labels))


def naming(title: str | None, labels: Mapping[str, str] | None) -> list[SearchAttributePair[Any]]:
    """JobTitle and JobLabels of a job with this title and labels (neither if it has none)."""
    pairs: list[SearchAttributePair[Any]] = []
    if title:
        pairs.append(SearchAttributePair(JOB_TITLE, title))
    if labels:
        pairs.append(SearchAttributePair(JOB_LABELS, label_terms(labels)))
    return pairs
