"""Attack: tell whether another user used a guessable Idempotency-Key. Job ids made from keys
were a plain digest of owner and key, so anyone could compute alice's id for "order-1" and see
from how fast it answered 404 whether that job exists. They are keyed with the server's secret."""

from __future__ import annotations

import hashlib

import pytest

from tests.conftest import unique
from tests.web.conftest import Api
from web.temporal_jobs import keyed_job_id

QUICK = {"type": "text.stats", "params": {"text": "a"}}


def test_an_id_from_a_key_cannot_be_computed_without_the_servers_secret() -> None:
    plain = "job-" + hashlib.sha256(b"alice\0order-1").hexdigest()[:32]
    keyed = keyed_job_id("alice", "order-1", "secret-one")
    assert keyed != plain
    assert keyed != keyed_job_id("alice", "order-1", "secret-two")
    assert keyed != keyed_job_id("bob", "order-1", "secret-one")
    assert keyed == keyed_job_id("alice", "order-1", "secret-one")  # every replica, every restart
    assert keyed_job_id("alice", "order-1", None) == plain  # no secret set: as before


@pytest.mark.integration
async def test_the_api_keys_job_ids_with_its_secret(api: Api) -> None:
    key = unique("order")
    async with api.client() as http:
        accepted = await http.post(
            "/api/jobs", json={"actions": [QUICK]}, headers={"Idempotency-Key": key}
        )
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["job_id"]
    assert job_id == keyed_job_id("alice", key, api.settings.session_secret)
    assert job_id != "job-" + hashlib.sha256(f"alice\0{key}".encode()).hexdigest()[:32]
