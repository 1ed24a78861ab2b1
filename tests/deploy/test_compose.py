"""docker-compose.yml and the Dockerfile, checked without a Docker engine."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import uvicorn
import yaml

from activities import registry
from fanout.settings import Settings
from tests.conftest import BIN, REPO

COMPOSE = REPO / "docker-compose.yml"
SECRETS = {
    "POSTGRES_PASSWORD": "example-password",
    "FANOUT_API_KEYS": "ops:example-key-0123456789:admin",
    "FANOUT_SESSION_SECRET": "example-session-secret",
    "MINIO_ROOT_PASSWORD": "example-store-password",
    "GRAFANA_ADMIN_PASSWORD": "example-grafana-password",
}


def compose(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`docker compose` on the file, with only `env` for its variables: never the `.env` of
    whoever runs the tests."""
    return subprocess.run(
        [str(BIN / "docker-compose"), "--env-file", os.devnull, "-f", str(COMPOSE), *args],
        capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", **(env or {})}, check=False,
    )  # fmt: skip


def resolved() -> dict[str, Any]:
    """The file as Compose resolves it (anchors merged, defaults filled in)."""
    result = compose("config", "--format", "json", env=SECRETS)
    assert result.returncode == 0, result.stderr
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return resolved()


def test_config_is_clean_once_env_example_is_filled_in() -> None:
    result = compose("config", "--quiet", env=SECRETS)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    required = set(re.findall(r"^(\w+)=$", (REPO / ".env.example").read_text(), re.M))
    assert required == set(SECRETS)  # what .env.example asks for is what Compose needs


def test_missing_secrets_are_refused_with_what_to_set() -> None:
    result = compose("config", "--quiet")
    assert result.returncode != 0
    assert "set POSTGRES_PASSWORD in .env" in result.stderr


def test_services(config: dict[str, Any]) -> None:
    assert set(config["services"]) == {
        "postgresql", "temporal-schema", "temporal", "temporal-register", "temporal-ui",
        "worker", "worker-http", "web", "prometheus", "minio", "minio-setup",
        "otel-collector", "tempo-init", "tempo", "grafana",
    }  # fmt: skip


def test_postgres_keeps_data_in_a_named_volume(config: dict[str, Any]) -> None:
    (volume,) = config["services"]["postgresql"]["volumes"]
    assert volume["type"] == "volume"
    assert volume["target"] == "/var/lib/postgresql/data"
    assert volume["source"] in config["volumes"]


@pytest.mark.parametrize("service", ["postgresql", "temporal", "web", "minio"])
def test_long_running_services_have_healthchecks(config: dict[str, Any], service: str) -> None:
    assert config["services"][service]["healthcheck"]["test"]


def test_images_are_pinned(config: dict[str, Any]) -> None:
    for name, service in config["services"].items():
        image = service["image"]
        assert re.search(r":[\w.-]+$", image), f"{name}: {image} has no tag"
        assert not image.endswith(":latest"), f"{name}: {image} is not pinned"


def test_startup_order(config: dict[str, Any]) -> None:
    services = config["services"]
    assert services["temporal"]["depends_on"]["temporal-schema"]["condition"] == (
        "service_completed_successfully"
    )
    assert services["temporal-register"]["depends_on"]["temporal"]["condition"] == "service_healthy"
    web = services["web"]["depends_on"]
    assert web["temporal"]["condition"] == "service_healthy"
    assert web["temporal-register"]["condition"] == "service_completed_successfully"
    for worker in ("worker", "worker-http"):
        assert services[worker]["depends_on"]["temporal-register"]["condition"] == (
            "service_completed_successfully"
        )


def test_worker_pools(config: dict[str, Any]) -> None:
    services = config["services"]
    worker, http = services["worker"], services["worker-http"]
    assert worker["deploy"]["replicas"] == 2
    assert worker["command"] == ["python", "worker.py", "--exclude", "http.*"]
    assert http["command"] == ["python", "worker.py", "--actions", "http.*"]
    queues = {
        services[s]["environment"]["FANOUT_TASK_QUEUE"] for s in ("worker", "worker-http", "web")
    }
    assert queues == {"fanout-jobs"}
    fetch = registry.get("http.fetch")
    assert fetch is not None
    assert fetch.task_queue("fanout-jobs") == "fanout-jobs-http"  # the queue only worker-http polls


def published(config: dict[str, Any]) -> dict[str, set[tuple[str, str]]]:
    """Each service's published ports, with the address each is bound to."""
    return {
        name: {(p.get("host_ip", "0.0.0.0"), p["published"]) for p in service.get("ports", [])}
        for name, service in config["services"].items()
    }


def test_every_port_is_published_on_this_machine_only(config: dict[str, Any]) -> None:
    """Temporal's frontend, its Web UI and Prometheus have no authentication here (Grafana has,
    but its admin sees every metric and trace): anyone who
    reaches 7233 reads every job and starts jobs as anyone."""
    ports = published(config)
    assert ports["web"] == {("127.0.0.1", "8000")}
    assert ports["temporal-ui"] == {("127.0.0.1", "8080")}
    assert ports["prometheus"] == {("127.0.0.1", "9090")}
    assert ports["temporal"] == {("127.0.0.1", "7233")}
    assert ports["minio"] == {("127.0.0.1", "9000"), ("127.0.0.1", "9001")}
    assert ports["grafana"] == {("127.0.0.1", "3000")}
    assert {name for name, p in ports.items() if p} == {
        "web",
        "temporal-ui",
        "prometheus",
        "temporal",
        "minio",
        "grafana",
    }


def test_the_web_app_is_published_further_only_when_asked() -> None:
    result = compose(
        "config", "--format", "json", env=SECRETS | {"FANOUT_PUBLISH_ADDRESS": "0.0.0.0"}
    )
    assert result.returncode == 0, result.stderr
    ports = published(json.loads(result.stdout))
    assert ports["web"] == {("0.0.0.0", "8000")}
    assert ports["temporal"] == {("127.0.0.1", "7233")}


def test_prometheus_scrapes_web_and_every_worker(config: dict[str, Any]) -> None:
    scrape = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in scrape["scrape_configs"]}
    assert jobs["fanout-web"]["static_configs"][0]["targets"] == ["web:8000"]
    workers = jobs["fanout-workers"]["dns_sd_configs"][0]
    assert set(workers["names"]) == {"worker", "worker-http"}
    for name in workers["names"]:
        env = config["services"][name]["environment"]
        assert env["FANOUT_METRICS_PORT"] == str(workers["port"])
        assert env["FANOUT_METRICS_HOST"] == "0.0.0.0"


def test_no_secret_is_written_into_the_compose_file() -> None:
    text = COMPOSE.read_text()
    assert "example-password" not in text
    for variable in SECRETS:
        assert re.search(rf"\${{{variable}(:\?[^}}]*)?}}", text), variable
    assert ".env" in (REPO / ".gitignore").read_text().split()


def test_dockerfile_is_slim_non_root_and_caches_dependencies() -> None:
    lines = [line.strip() for line in (REPO / "Dockerfile").read_text().splitlines()]
    base = next(line for line in lines if line.startswith("FROM "))
    assert re.fullmatch(r"FROM python:3\.11\.\d+-slim-\w+", base)
    user = next(line for line in lines if line.startswith("USER "))
    assert user not in ("USER root", "USER 0")
    install = next(i for i, line in enumerate(lines) if "pip install" in line)
    (copy_lock,) = (i for i, line in enumerate(lines) if "runtime.lock" in line and "COPY" in line)
    first_code = next(i for i, line in enumerate(lines) if line.startswith("COPY") and i > install)
    assert copy_lock < install < first_code  # dependencies: a layer of their own, before code
    assert {"--require-hashes", "runtime.lock"} <= set(lines[install].split())  # as tests ran it
    assert "dev" not in " ".join(line for line in lines if "pip install" in line)
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".venv", ".git", "tests", ".env"} <= set(ignored)


def test_shell_scripts_parse() -> None:
    for script in Path(REPO / "deploy").rglob("*.sh"):
        assert subprocess.run(["sh", "-n", str(script)], check=False).returncode == 0, script


def test_the_server_dispatches_each_users_tasks_fairly(config: dict[str, Any]) -> None:
    """Jobs carry their owner as fairness key; the server must have fairness on to honour it
    (the dev server of make run gets the same through its command line)."""
    dynamic = yaml.safe_load(dynamic_config_file(config).read_text())
    assert dynamic["matching.enableFairness"] == [{"value": True}]


def dynamic_config_file(config: dict[str, Any]) -> Path:
    """The file of this checkout the server reads as its dynamic config."""
    server = config["services"]["temporal"]
    # Relative to the image's working directory, /etc/temporal.
    named: str = server["environment"]["DYNAMIC_CONFIG_FILE_PATH"]
    path = PurePosixPath("/etc/temporal") / named
    (mount,) = [v for v in server["volumes"] if path.is_relative_to(v["target"])]
    assert mount["read_only"]
    source: str = mount["source"]
    target: str = mount["target"]
    return Path(source) / path.relative_to(target)


def test_the_dynamic_config_is_the_folder_in_deploy(config: dict[str, Any]) -> None:
    """deploy/temporal/dynamicconfig/ is mounted whole: a file added there reaches the server."""
    file = dynamic_config_file(config)
    assert file.parent == REPO / "deploy" / "temporal" / "dynamicconfig"
    assert file.exists()
    for each in file.parent.glob("*.yaml"):
        assert isinstance(yaml.safe_load(each.read_text()), dict), each


@pytest.mark.parametrize("service", ["worker", "worker-http"])
def test_docker_gives_a_stopping_worker_its_whole_shutdown_grace(
    config: dict[str, Any], service: str
) -> None:
    """Docker SIGKILLs a container stop_grace_period after SIGTERM; the worker needs its
    shutdown grace for running actions, then a few seconds to leave Temporal."""
    worker = config["services"][service]
    grace = float(
        worker["environment"].get(
            "FANOUT_WORKER_SHUTDOWN_GRACE_S",
            Settings.model_fields["worker_shutdown_grace_s"].default,
        )
    )
    assert seconds(worker["stop_grace_period"]) >= grace + 5


def seconds(duration: str) -> float:
    """A Compose duration (`1m30s`, `20s`) in seconds."""
    parts = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", duration)
    assert duration, "no duration"
    assert parts is not None, duration
    return 60 * int(parts.group(1) or 0) + int(parts.group(2) or 0)


@pytest.mark.parametrize("service", ["worker", "worker-http"])
def test_workers_are_checked_on_the_metrics_port_they_serve(
    config: dict[str, Any], service: str
) -> None:
    worker = config["services"][service]
    check = " ".join(worker["healthcheck"]["test"])
    port = worker["environment"]["FANOUT_METRICS_PORT"]
    assert f"http://localhost:{port}/metrics" in check
    assert worker["environment"]["FANOUT_METRICS_HOST"] == "0.0.0.0"  # localhost reaches it


def test_the_proxies_uvicorn_trusts_are_a_setting(
    config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """By default only loopback's forwarded headers count; FORWARDED_ALLOW_IPS in .env names the
    proxy in front of the web app, and uvicorn reads it (no flag on the command overrides it)."""
    web = config["services"]["web"]
    assert web["environment"]["FORWARDED_ALLOW_IPS"] == "127.0.0.1,::1"
    assert not any("forwarded-allow-ips" in arg for arg in web["command"])
    result = compose(
        "config", "--format", "json", env=SECRETS | {"FORWARDED_ALLOW_IPS": "172.18.0.1"}
    )
    assert result.returncode == 0, result.stderr
    env = json.loads(result.stdout)["services"]["web"]["environment"]
    assert env["FORWARDED_ALLOW_IPS"] == "172.18.0.1"
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", env["FORWARDED_ALLOW_IPS"])
    assert uvicorn.Config("web.app:app").forwarded_allow_ips == "172.18.0.1"


def test_image_versions_are_set_in_one_place_and_overridable(config: dict[str, Any]) -> None:
    text = COMPOSE.read_text()
    services = text[text.index("\nservices:") :]
    images = re.findall(r"^\s+image: (.+)$", services, re.M)
    pulled = [image for image in images if not image.endswith(":local")]  # built here
    assert pulled, "no image pulled"
    assert all(image.startswith("*") for image in pulled), pulled  # an alias of x-images
    result = compose("config", "--format", "json", env=SECRETS | {"TEMPORAL_VERSION": "1.99.0"})
    assert result.returncode == 0, result.stderr
    upgraded = json.loads(result.stdout)["services"]
    for name in ("temporal", "temporal-schema", "temporal-register"):
        assert upgraded[name]["image"].endswith(":1.99.0"), name
    assert upgraded["temporal-ui"]["image"] == config["services"]["temporal-ui"]["image"]
    example = (REPO / ".env.example").read_text()
    for variable in set(re.findall(r"\$\{(\w+_VERSION):-", text)):
        assert f"# {variable}=" in example, variable


def test_workers_and_web_keep_large_results_in_the_compose_store(config: dict[str, Any]) -> None:
    """Every worker and the web app name the same S3 store, MinIO's, whose bucket is made
    before any of them starts; its credentials come from .env, never from the file."""
    services = config["services"]
    setup = services["minio-setup"]
    assert setup["depends_on"]["minio"]["condition"] == "service_healthy"
    made = re.search(r"mc mb --ignore-existing store/([\w.-]+)", " ".join(setup["entrypoint"]))
    assert made is not None
    for name in ("worker", "worker-http", "web"):
        service = services[name]
        env = service["environment"]
        bucket = env["FANOUT_RESULT_STORE_URL"].removeprefix("s3://").split("/")[0]
        assert bucket == made.group(1), name
        assert env["FANOUT_RESULT_STORE_ENDPOINT_URL"] == "http://minio:9000"
        assert env["AWS_SECRET_ACCESS_KEY"] == SECRETS["MINIO_ROOT_PASSWORD"]
        assert env["AWS_ACCESS_KEY_ID"] == services["minio"]["environment"]["MINIO_ROOT_USER"]
        assert service["depends_on"]["minio-setup"]["condition"] == (
            "service_completed_successfully"
        )
    (volume,) = services["minio"]["volumes"]
    assert (volume["type"], volume["target"]) == ("volume", "/data")


def test_the_image_writes_only_to_its_users_data_directory(config: dict[str, Any]) -> None:
    """The code under /app belongs to root; the app's one writable directory (users' default
    webhooks) is FANOUT_DATA_DIR, made for the image's user and kept in a volume by compose."""
    text = (REPO / "Dockerfile").read_text()
    data_dir = re.search(r"FANOUT_DATA_DIR=(\S+)", text)
    assert data_dir, "the image sets no FANOUT_DATA_DIR: .data under /app is root's"
    user = re.search(r"^USER (\S+)", text, re.MULTILINE)
    assert user
    assert re.search(rf"install -d -o {user[1]} -g {user[1]} .*{re.escape(data_dir[1])}", text)
    mounts = [v["target"] for v in config["services"]["web"].get("volumes", [])]
    assert data_dir[1] in mounts
