"""API keys and ownership: who may see, cancel and retry which jobs."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.conftest import clean_settings
from tests.web.conftest import KEYS, Api, closing
from web.auth import ApiKeys, InvalidKeyEntry

pytestmark = pytest.mark.integration

ROUTES = [
    ("GET", "/api/jobs/{id}"),
    ("GET", "/api/jobs/{id}/actions/demo.sleep%231"),
    ("POST", "/api/jobs/{id}/cancel"),
    ("POST", "/api/jobs/{id}/retry"),
    ("GET", "/api/jobs/{id}/events"),
]


@pytest.fixture(scope="module")
async def alices_job(api: Api) -> str:
    async with api.client("alice") as http:
        response = await http.post(
            "/api/jobs", json={"actions": [{"type": "demo.sleep", "params": {"seconds": 2}}]}
        )
    job_id: str = response.json()["job_id"]
    return job_id


async def test_missing_or_wrong_key_is_401_everywhere(api: Api, alices_job: str) -> None:
    routes = [*ROUTES, ("GET", "/api/jobs"), ("POST", "/api/jobs"), ("GET", "/api/actions")]
    for headers in ({}, {"Authorization": "Bearer not-a-key"}, {"Authorization": KEYS["bob"]}):
        async with api.client(None, headers=headers) as http:
            for method, path in routes:
                response = await http.request(method, path.format(id=alices_job), json={})
                assert response.status_code == 401, (headers, method, path)
                assert response.headers["www-authenticate"] == "Bearer"
                assert (
                    "Bearer" in response.json()["detail"]
                    or "not valid" in (response.json()["detail"])
                )


async def test_another_users_job_does_not_exist_for_them(api: Api, alices_job: str) -> None:
    async with api.client("bob") as http:
        for method, path in ROUTES:
            response = await http.request(method, path.format(id=alices_job))
            assert response.status_code == 404, (method, path)
            assert response.json()["detail"] == f"Job {alices_job!r} not found."
        listed = (await http.get("/api/jobs", params={"page_size": 500})).json()["jobs"]
        assert alices_job not in [j["job_id"] for j in listed]
    ws_url = api.url.replace("http", "ws") + f"/api/jobs/{alices_job}/ws"
    assert await closing(ws_url, "bob") == (4404, "Job not found.")


async def test_admin_sees_everyone(api: Api, alices_job: str) -> None:
    async with api.client("root") as http:
        job = (await http.get(f"/api/jobs/{alices_job}")).json()
        assert job["owner"] == "alice"

        async def listed() -> None:
            while alices_job not in [
                j["job_id"]
                for j in (await http.get("/api/jobs", params={"page_size": 500})).json()["jobs"]
            ]:
                await asyncio.sleep(0.2)

        await asyncio.wait_for(listed(), 10)


async def test_websocket_without_key_is_closed_4401(api: Api, alices_job: str) -> None:
    ws_url = api.url.replace("http", "ws") + f"/api/jobs/{alices_job}/ws"
    code, reason = await closing(ws_url, None)
    assert code == 4401
    assert "send 'Authorization: Bearer <key>', or add ?token=" in reason


def test_keys_from_env_file_and_dev_token(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys"
    keys_file.write_text("# team\ncarol:carol-key-0123456789\n\nops:ops-key-0123456789ab:admin\n")
    keys = ApiKeys.from_settings(
        clean_settings(
            api_keys="alice:alice-key-0123456789",
            api_keys_file=keys_file,
            dev_token="dev-token-0123456789",
        )
    )
    assert len(keys) == 4
    alice = keys.user_for("alice-key-0123456789")
    assert alice is not None
    assert (alice.name, alice.admin) == ("alice", False)
    ops = keys.user_for_header("Bearer ops-key-0123456789ab")
    assert ops is not None
    assert ops.admin
    assert keys.user_for("alice-key-012345678") is None
    assert keys.user_for_header("Basic alice-key-0123456789") is None


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("alice", "expected user:key"),
        ("alice:short", "at least 16 characters"),
        ("al ice:alice-key-0123456789", "user names"),
        ("alice:alice-key-0123456789:root", "expected user:key"),
    ],
)
def test_malformed_key_entries_are_refused_without_echoing_the_key(
    entry: str, message: str
) -> None:
    with pytest.raises(InvalidKeyEntry, match=message) as refused:
        ApiKeys.from_settings(clean_settings(api_keys=entry))
    assert "alice-key" not in str(refused.value)
    assert "short" not in str(refused.value)


def test_the_dev_token_follows_the_key_rules() -> None:
    with pytest.raises(InvalidKeyEntry, match=r"FANOUT_DEV_TOKEN.*at least 16 characters"):
        ApiKeys.from_settings(clean_settings(dev_token="short"))
