"""Traces and dashboards in docker-compose.yml: the OpenTelemetry Collector, Tempo and Grafana,
and what their files under deploy/ must agree on, checked without a Docker engine."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import temporalio
import yaml

import worker
from fanout.settings import Settings
from tests.conftest import REPO
from tests.deploy.test_compose import COMPOSE, SECRETS, compose, resolved
from web.metrics import Metrics

DEPLOY = REPO / "deploy"
DASHBOARDS = DEPLOY / "grafana" / "dashboards"
GRAFANA_BUILT_INS = {"-- Grafana --", "-- Mixed --", "-- Dashboard --"}


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return resolved()


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def port_of(address: str) -> int:
    """The port of `host:port` or of a URL."""
    if "//" in address:
        port = urlsplit(address).port
        assert port is not None, address
        return port
    return int(address.rsplit(":", 1)[1])


def mounted(service: dict[str, Any], target: str) -> Path:
    """The file or folder of this checkout a service sees at `target`."""
    (mount,) = [v for v in service["volumes"] if v["target"] == target]
    assert mount["type"] == "bind", mount
    assert mount["read_only"], mount
    return Path(mount["source"])


def x_image(alias: str) -> str:
    """The image an x-images alias names, as written (before .env overrides)."""
    match = re.search(rf"&{alias}-image (\S+)", COMPOSE.read_text())
    assert match is not None, alias
    return match.group(1)


@pytest.mark.parametrize(
    ("service", "alias", "repository"),
    [
        ("otel-collector", "otel-collector", "otel/opentelemetry-collector-contrib"),
        ("tempo", "tempo", "grafana/tempo"),
        ("tempo-init", "tempo", "grafana/tempo"),
        ("grafana", "grafana", "grafana/grafana"),
    ],
)
def test_tracing_services_use_pinned_images_from_x_images(
    config: dict[str, Any], service: str, alias: str, repository: str
) -> None:
    written = x_image(alias)
    variable = re.fullmatch(rf"{re.escape(repository)}:\$\{{(\w+_VERSION):-([\w.-]+)\}}", written)
    assert variable is not None, written  # overridable from .env, with a pinned default
    assert config["services"][service]["image"] == f"{repository}:{variable.group(2)}"
    assert f"# {variable.group(1)}={variable.group(2)}" in (REPO / ".env.example").read_text()


def test_grafana_needs_its_admin_password_and_has_no_anonymous_access(
    config: dict[str, Any],
) -> None:
    grafana = config["services"]["grafana"]
    env = grafana["environment"]
    assert env["GF_SECURITY_ADMIN_PASSWORD"] == SECRETS["GRAFANA_ADMIN_PASSWORD"]
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert [(p["host_ip"], p["target"]) for p in grafana["ports"]] == [("127.0.0.1", 3000)]
    result = compose(
        "config",
        "--quiet",
        env={k: v for k, v in SECRETS.items() if k != "GRAFANA_ADMIN_PASSWORD"},
    )
    assert result.returncode != 0
    assert "set GRAFANA_ADMIN_PASSWORD in .env" in result.stderr


def test_tempo_keeps_traces_in_a_volume_its_user_owns(config: dict[str, Any]) -> None:
    services = config["services"]
    tempo = load_yaml(mounted(services["tempo"], "/etc/tempo/tempo.yaml"))
    assert services["tempo"]["command"] == ["-config.file=/etc/tempo/tempo.yaml"]
    assert tempo["storage"]["trace"]["backend"] == "local"
    (volume,) = [v for v in services["tempo"]["volumes"] if v["type"] == "volume"]
    assert volume["source"] in config["volumes"]
    for path in (
        tempo["storage"]["trace"]["local"]["path"],
        tempo["storage"]["trace"]["wal"]["path"],
    ):
        assert Path(path).is_relative_to(volume["target"]), path  # survives a restart
    init = services["tempo-init"]
    assert init["entrypoint"] == ["chown", "10001:10001", volume["target"]]
    assert [v["source"] for v in init["volumes"]] == [volume["source"]]
    assert services["tempo"]["depends_on"]["tempo-init"]["condition"] == (
        "service_completed_successfully"
    )


def test_the_collector_sends_the_traces_it_receives_to_tempo(config: dict[str, Any]) -> None:
    services = config["services"]
    collector = services["otel-collector"]
    path = "/etc/otelcol-contrib/config.yaml"
    assert f"--config={path}" in collector["command"]
    otel = load_yaml(mounted(collector, path))
    pipeline = otel["service"]["pipelines"]["traces"]
    assert pipeline["receivers"] == ["otlp"]
    assert set(pipeline["processors"]) <= set(otel["processors"])
    (exporter,) = pipeline["exporters"]
    assert exporter.split("/")[0] == "otlp"  # OTLP over gRPC
    host, port = otel["exporters"][exporter]["endpoint"].rsplit(":", 1)
    assert host == "tempo"
    tempo = load_yaml(mounted(services["tempo"], "/etc/tempo/tempo.yaml"))
    grpc = tempo["distributor"]["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
    assert grpc == f"0.0.0.0:{port}"  # opened to the network, not only Tempo's own loopback
    protocols = otel["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"] == "0.0.0.0:4317"
    assert protocols["http"]["endpoint"] == "0.0.0.0:4318"


@pytest.mark.parametrize(
    ("service", "name"),
    [("web", "fanout-web"), ("worker", "fanout-worker"), ("worker-http", "fanout-worker-http")],
)
def test_web_and_workers_send_traces_to_the_collector(
    config: dict[str, Any], service: str, name: str
) -> None:
    env = config["services"][service]["environment"]
    assert env["OTEL_SERVICE_NAME"] == name
    endpoint = urlsplit(env["OTEL_EXPORTER_OTLP_ENDPOINT"])
    assert (endpoint.scheme, endpoint.hostname) == ("http", "otel-collector")
    otel = load_yaml(
        mounted(config["services"]["otel-collector"], "/etc/otelcol-contrib/config.yaml")
    )
    http = otel["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    assert endpoint.port == port_of(http)  # OTLP over HTTP, as the web app and workers speak it


def test_an_empty_endpoint_in_env_turns_tracing_off() -> None:
    result = compose(
        "config", "--format", "json", env=SECRETS | {"OTEL_EXPORTER_OTLP_ENDPOINT": ""}
    )
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    for name in ("web", "worker", "worker-http"):
        assert services[name]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "", name


def datasources(config: dict[str, Any]) -> list[dict[str, Any]]:
    grafana = config["services"]["grafana"]
    folder = mounted(grafana, "/etc/grafana/provisioning") / "datasources"
    found: list[dict[str, Any]] = []
    for file in sorted(folder.glob("*.yaml")):
        found += load_yaml(file)["datasources"]
    return found


def test_grafana_reaches_prometheus_and_tempo_by_their_service_names(
    config: dict[str, Any],
) -> None:
    sources = {source["type"]: source for source in datasources(config)}
    assert set(sources) == {"prometheus", "tempo"}
    prometheus = urlsplit(sources["prometheus"]["url"])
    assert prometheus.hostname == "prometheus"
    # The port Prometheus listens on, as the compose file publishes it.
    assert prometheus.port in {p["target"] for p in config["services"]["prometheus"]["ports"]}
    tempo = urlsplit(sources["tempo"]["url"])
    tempo_config = load_yaml(mounted(config["services"]["tempo"], "/etc/tempo/tempo.yaml"))
    assert (tempo.hostname, tempo.port) == ("tempo", tempo_config["server"]["http_listen_port"])
    assert sources["prometheus"]["isDefault"] is True
    # No log store here: a trace's "logs" link would lead nowhere.
    assert "tracesToLogsV2" not in sources["tempo"].get("jsonData", {})
    assert "tracesToLogs" not in sources["tempo"].get("jsonData", {})


def dashboards() -> dict[Path, dict[str, Any]]:
    return {path: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


def test_grafana_loads_every_dashboard_in_deploy(config: dict[str, Any]) -> None:
    grafana = config["services"]["grafana"]
    folder = mounted(grafana, "/etc/grafana/provisioning") / "dashboards"
    (provider,) = [p for f in folder.glob("*.yaml") for p in load_yaml(f)["providers"]]
    assert provider["type"] == "file"
    assert mounted(grafana, provider["options"]["path"]) == DASHBOARDS
    names = {path.stem for path in dashboards()}
    assert {"fanout", "temporal-sdk", "temporal-server"} <= names


def referenced_datasources(node: Any) -> set[str]:
    """The uids of every `datasource` in a dashboard (panels, targets, variables)."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource" and isinstance(value, dict) and "uid" in value:
                found.add(value["uid"])
            elif key == "datasource" and isinstance(value, str):
                found.add(value)
            else:
                found |= referenced_datasources(value)
    elif isinstance(node, list):
        for item in node:
            found |= referenced_datasources(item)
    return found


def test_dashboards_have_unique_uids_and_only_provisioned_datasources(
    config: dict[str, Any],
) -> None:
    provisioned = {source["uid"] for source in datasources(config)}
    uids = [board["uid"] for board in dashboards().values()]
    assert all(uids), uids
    assert len(set(uids)) == len(uids), uids
    for path, board in dashboards().items():
        variables = {
            v["name"]: v["current"]["value"]
            for v in board.get("templating", {}).get("list", [])
            if v["type"] == "datasource"
        }
        for uid in referenced_datasources(board) - GRAFANA_BUILT_INS:
            name = re.fullmatch(r"\$\{?(\w+)\}?", uid)
            resolved = variables[name.group(1)] if name else uid
            assert resolved in provisioned, f"{path.name}: data source {uid}"


def promql(board: dict[str, Any]) -> list[str]:
    return [
        target["expr"]
        for panel in board["panels"]
        for target in panel.get("targets", [])
        if "expr" in target
    ]


def test_the_fanout_dashboard_uses_only_metrics_the_web_app_and_workers_export() -> None:
    board = dashboards()[DASHBOARDS / "fanout.json"]
    expressions = promql(board)
    assert expressions
    used = {n for e in expressions for n in re.findall(r"\b(?:fanout|temporal)_\w+", e)}

    web = web_samples()
    prefix = worker_metric_prefix()
    sdk = sdk_core_metric_names()
    unknown = set()
    for name in used:
        if name.startswith("fanout_"):
            ok = name in web
        else:
            base = re.sub(r"_(bucket|count|sum)$", "", name.removeprefix(prefix))
            ok = name.startswith(prefix) and base in sdk
        if not ok:
            unknown.add(name)
    assert not unknown, f"not exported: {sorted(unknown)}"
    for expression in expressions:  # and only labels the web app gives them
        for name, selector in re.findall(r"\b(fanout_\w+)\{([^}]*)\}", expression):
            labels = set(re.findall(r"(\w+)\s*=~?", selector))
            assert labels <= web[name], f"{name}: {labels - web[name]}"
    assert any(n.startswith("fanout_") for n in used)
    assert any(n.startswith(prefix) for n in used)


def web_samples() -> dict[str, set[str]]:
    """The sample names of web/metrics.py's registry, each with its labels, once every metric
    has been recorded."""
    metrics = Metrics()
    metrics.requests.labels("GET", "/api/jobs", "200").observe(0.1)
    metrics.streams.labels("sse").set(1)
    metrics.pollers.set(1)
    metrics.observe_call("queries", 0.1, failed=True)
    samples: dict[str, set[str]] = {}
    for family in metrics.registry.collect():
        for sample in family.samples:
            samples.setdefault(sample.name, set()).update(sample.labels)
    return samples


def worker_metric_prefix() -> str:
    """The prefix of the worker's SDK metrics, as worker.py configures its runtime."""
    captured: list[Any] = []

    class Capture:
        def __init__(self, *, telemetry: Any) -> None:
            captured.append(telemetry)

    settings = Settings(metrics_port=9000)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(worker, "Runtime", Capture)
        worker.metrics_runtime(settings)
    (telemetry,) = captured
    # Latency panels are in milliseconds: the SDK's unit unless durations_as_seconds is set.
    assert not telemetry.metrics.durations_as_seconds
    prefix: str = telemetry.metric_prefix or "temporal_"  # TelemetryConfig's documented default
    return prefix


def sdk_core_metric_names() -> set[str]:
    """Every metric name the Temporal SDK's core defines (its source ships with the package)."""
    crates = Path(temporalio.__file__).parent / "bridge" / "sdk-core" / "crates"
    text = "\n".join(p.read_text() for p in crates.glob("*/src/**/*.rs"))
    names = set(re.findall(r'name: "([a-z_]+)"\.into\(\)', text))
    names |= set(re.findall(r'[A-Z_]+_NAME: &str =\s*"([a-z_]+)"', text))
    assert {"workflow_completed", "activity_execution_latency", "num_pollers"} <= names
    return names


def test_prometheus_scrapes_the_temporal_server_and_the_collector(config: dict[str, Any]) -> None:
    scrape = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    targets = {
        target
        for job in scrape["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    }
    services = config["services"]
    server = services["temporal"]["environment"]["PROMETHEUS_ENDPOINT"]
    assert server.startswith("0.0.0.0:")  # reachable from the prometheus container
    assert f"temporal:{port_of(server)}" in targets
    otel = load_yaml(mounted(services["otel-collector"], "/etc/otelcol-contrib/config.yaml"))
    (reader,) = otel["service"]["telemetry"]["metrics"]["readers"]
    own = reader["pull"]["exporter"]["prometheus"]
    assert own["host"] == "0.0.0.0"
    assert f"otel-collector:{own['port']}" in targets
    tempo = load_yaml(mounted(services["tempo"], "/etc/tempo/tempo.yaml"))
    assert f"tempo:{tempo['server']['http_listen_port']}" in targets
