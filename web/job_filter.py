"""Which jobs a list shows (`GET /api/jobs`, the dashboard, `fanout list`), as one hashable
value, and the Temporal visibility query it stands for."""

from __future__ import annotations

import re
from dataclasses import dataclass

from web.auth import User
from workflows import search_attributes as sa
from workflows.contract import MAX_LABELS, Status, control_characters

MAX_QUERY = 200
MAX_LABEL_FILTERS = 10
MAX_LABEL_KEY, MAX_LABEL_VALUE = 64, 256
# Refused in any text a query carries: a quote or a backslash could end Temporal's string
# literal early and add conditions of the caller's own (another owner's jobs).
UNQUOTABLE = ('"', "\\")
_PLAIN = r'[^"\\\x00-\x1f\x7f-\x9f\u2028\u2029'  # a character none of the checks refuse
QUERY_PATTERN = f"^{_PLAIN}]*$"
LABEL_PATTERN = f"^{_PLAIN}=]{{1,{MAX_LABEL_KEY}}}={_PLAIN}]{{0,{MAX_LABEL_VALUE}}}$"


class FilterProblem(ValueError):
    """A filter that cannot be searched for; `field` is the query parameter, the message what
    to change."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class JobFilter:
    """Jobs of one status, matching a search text and carrying every one of some labels."""

    status: Status | None = None
    q: str | None = None
    labels: tuple[str, ...] = ()  # "key=value"

    @classmethod
    def parse(
        cls, status: Status | None = None, q: str | None = None, labels: list[str] | None = None
    ) -> JobFilter:
        """The filter a caller asks for; FilterProblem for values that cannot be searched."""
        text = (q or "").strip() or None
        if text is not None:
            _searchable("q", text, MAX_QUERY)
        if len(labels or []) > MAX_LABEL_FILTERS:
            raise FilterProblem(
                "label",
                f"Filter on at most {MAX_LABEL_FILTERS} labels at once (a job has at most "
                f"{MAX_LABELS}); {len(labels or [])} were given.",
            )
        chosen: list[str] = []
        for label in labels or []:
            key, sep, value = label.partition("=")
            if not sep or not key:
                raise FilterProblem(
                    "label", f"label must be key=value, e.g. team=ops; {label[:80]!r} is not."
                )
            if len(key) > MAX_LABEL_KEY or len(value) > MAX_LABEL_VALUE:
                raise FilterProblem(
                    "label",
                    f"A label's key is at most {MAX_LABEL_KEY} characters and its value at "
                    f"most {MAX_LABEL_VALUE}; shorten {label[:80]!r}.",
                )
            _searchable("label", label, MAX_LABEL_KEY + 1 + MAX_LABEL_VALUE)
            if f"{key}={value}" not in chosen:
                chosen.append(f"{key}={value}")
        return cls(status=status, q=text, labels=tuple(chosen))

    def visibility_query(self, user: User) -> str:
        """The list query for Temporal: the user's own jobs (an admin's: everyone's) that match.
        Every value is checked by `parse` (no quote, no backslash), so it stays one literal."""
        clauses = ['WorkflowType = "JobWorkflow"']
        if not user.admin:
            clauses.append(f'{sa.JOB_OWNER.name} = "{user.name}"')
        if self.status is not None:
            clauses.append(f'{sa.JOB_STATUS.name} = "{self.status.value}"')
        if self.q is not None:
            _searchable("q", self.q, MAX_QUERY)
            matches = [
                f'WorkflowId STARTS_WITH "{self.q}"',
                f'{sa.JOB_LABELS.name} = "{self.q}"',
            ]
            # Every word in the title, whatever their order; a word without a letter or digit
            # has nothing to match (and visibility refuses a text with no word at all).
            words = [w for w in self.q.split() if re.search(r"\w", w)]
            if words:
                title = " AND ".join(f'{sa.JOB_TITLE.name} = "{w}"' for w in words)
                matches.insert(0, f"({title})")
            clauses.append(f"({' OR '.join(matches)})")
        for label in self.labels:
            _searchable("label", label, MAX_LABEL_KEY + 1 + MAX_LABEL_VALUE)
            clauses.append(f'{sa.JOB_LABELS.name} = "{label}"')
        return " AND ".join(clauses)


def _searchable(field: str, text: str, longest: int) -> None:
    if len(text) > longest:
        raise FilterProblem(field, f"{field} is at most {longest} characters; shorten it.")
    if any(c in text for c in UNQUOTABLE) or control_characters(text):
        raise FilterProblem(
            field,
            f'{field} cannot contain double quotes ("), backslashes (\\) or control '
            "characters; search without them.",
        )
