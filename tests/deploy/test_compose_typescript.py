"""docker-compose.yml's TypeScript worker (profile `typescript`), checked without an engine."""

from __future__ import annotations

import json

from activities import registry
from tests.deploy.test_compose import SECRETS, compose


def test_the_typescript_worker_runs_only_with_its_profile_on_the_catalog_types_queue() -> None:
    plain = json.loads(compose("config", "--format", "json", env=SECRETS).stdout)
    assert "worker-typescript" not in plain["services"]
    result = compose("--profile", "typescript", "config", "--format", "json", env=SECRETS)
    assert result.returncode == 0, result.stderr
    assert compose("--profile", "typescript", "config", "--quiet", env=SECRETS).stderr == ""
    service = json.loads(result.stdout)["services"]["worker-typescript"]
    assert service["build"]["context"].endswith("examples/typescript-worker")
    assert service["image"] == "fanout-worker-typescript:local"
    env = service["environment"]
    assert (env["TEMPORAL_ADDRESS"], env["TEMPORAL_NAMESPACE"]) == ("temporal:7233", "default")
    reverse = registry.get("text.reverse")
    assert reverse is not None
    queue = f"{env['FANOUT_TASK_QUEUE']}-{env['FANOUT_POOL']}"
    assert queue == reverse.task_queue(plain["services"]["web"]["environment"]["FANOUT_TASK_QUEUE"])
    assert service["depends_on"]["temporal-register"]["condition"] == (
        "service_completed_successfully"
    )
