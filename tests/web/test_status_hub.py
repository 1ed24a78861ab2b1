"""How the hub reads Temporal's errors."""

from temporalio.service import RPCError, RPCStatusCode

from web.status_hub import TemporalUnavailable, unavailable_error


def test_an_expired_call_timeout_means_temporal_is_unavailable() -> None:
    # What the SDK raises when a call's rpc_timeout runs out (e.g. no worker answers a query).
    error = unavailable_error(RPCError("Timeout expired", RPCStatusCode.CANCELLED, b""))
    assert isinstance(error, TemporalUnavailable)


def test_a_refusal_is_not_unavailability() -> None:
    assert unavailable_error(RPCError("bad", RPCStatusCode.INVALID_ARGUMENT, b"")) is None
