"""What a failed call to Temporal means for a reader: no such job, or Temporal unreachable or
too slow right now (the API's 404, 503, and a stale state)."""

from __future__ import annotations

from pydantic import ValidationError
from temporalio.service import RPCError, RPCStatusCode

# CANCELLED is what the SDK reports when a call's rpc_timeout expires.
_UNAVAILABLE = {
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.CANCELLED,
}
# A query while the job's last workflow task failed (timed out, under load): until the next
# one completes. A job whose every task fails (a bug in its workflow) stays so: its readers get
# its last state, marked stale, or a 503.
_TASK_FAILED = "Workflow Task in failed state"


class JobNotFound(Exception):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"Job {job_id!r} not found.")


class InvalidJobInput(Exception):
    """The run's input is not a job request: another Temporal client started JobWorkflow with
    input the contract refuses (the workflow fails as soon as a worker takes it)."""

    def __init__(self, err: Exception) -> None:
        super().__init__(f"The job's input is not a valid job request: {input_problem(err)}")


def input_problem(err: Exception) -> str:
    """What is wrong with a decoded input, as one sentence a person can act on."""
    if isinstance(err, ValidationError):
        problems = err.errors(include_url=False)
        first = problems[0]
        where = ".".join(str(part) for part in first["loc"])
        text = f"{where}: {first['msg']}" if where else str(first["msg"])
        more = len(problems) - 1
        text += f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        return text.rstrip(".") + "."
    return "it is not JSON that Fanout can decode."


class TemporalUnavailable(Exception):
    """Temporal, or the worker that answers for a job, cannot be reached right now.

    `slow`: it is reachable but did not answer within FANOUT_TEMPORAL_RPC_TIMEOUT_S (overload,
    or a job whose worker is busy or gone); readers then get the last state, marked stale.
    """

    def __init__(self, message: str, *, slow: bool = False) -> None:
        super().__init__(message)
        self.slow = slow


def unavailable_error(err: BaseException) -> TemporalUnavailable | None:
    """The TemporalUnavailable that `err` means, if it means Temporal cannot be reached."""
    if isinstance(err, RPCError) and (
        err.status == RPCStatusCode.RESOURCE_EXHAUSTED  # a rate limit, or too many queries
        or (err.status == RPCStatusCode.FAILED_PRECONDITION and _TASK_FAILED in err.message)
    ):
        # Overloaded for now (a workflow task that timed out is tried again).
        return TemporalUnavailable(f"Temporal is busy ({err.message}).", slow=True)
    if isinstance(err, RPCError) and (
        err.status in _UNAVAILABLE
        or (err.status == RPCStatusCode.UNKNOWN and "transport" in err.message)
    ):
        slow = err.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED)
        return TemporalUnavailable(f"Temporal did not answer ({err.message}).", slow=slow)
    if isinstance(err, RuntimeError) and "Failed client connect" in str(err):
        return TemporalUnavailable("Temporal cannot be reached.")
    return None


def workflow_missing(err: RPCError) -> bool:
    """Temporal has no such workflow (NOT_FOUND is also what an unknown namespace gets: that
    is a setting to fix, not a job that does not exist)."""
    return err.status == RPCStatusCode.NOT_FOUND and not any(
        "NamespaceNotFound" in detail.type_url for detail in err.grpc_status.details
    )
