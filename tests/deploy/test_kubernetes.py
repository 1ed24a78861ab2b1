"""deploy/kubernetes, checked without a cluster: Kubernetes' own schemas for the built-in kinds,
the fields Fanout relies on for KEDA's, and what must agree with the code and the compose file."""

from __future__ import annotations

import ipaddress
import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml
from packaging.version import Version

from fanout.settings import Settings
from tests.conftest import REPO
from tests.deploy.test_compose import SECRETS, compose
from web.routes.health import router as health_routes
from worker import plan_queues
from workflows.webhooks import webhook_queue

K8S = REPO / "deploy" / "kubernetes"
KEDA = K8S / "keda"
SECRET_EXAMPLE = K8S / "secret.example.yaml"
# Not Fanout settings, but read by what runs in the pods.
OTHER_VARIABLES = {
    "AWS_REGION": "the result store's S3 client",
    "AWS_ACCESS_KEY_ID": "the result store's S3 client",
    "AWS_SECRET_ACCESS_KEY": "the result store's S3 client",
    "FORWARDED_ALLOW_IPS": "uvicorn",
    "NICEGUI_STORAGE_PATH": "NiceGUI",
    "TEMPORAL_ADDRESS": "register.sh in the register Job",
}
TEMPORAL_SCALER_AUTH = {"apiKey", "ca", "cert", "key", "keyPassword"}  # KEDA's temporal scaler


def load(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def manifest_files() -> list[Path]:
    return sorted(p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml")


def documents(*, keda: bool = False) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every object of the default kustomization's files (or of keda/), examples included."""
    for path in manifest_files():
        if (path.parent == KEDA) == keda:
            for doc in load(path):
                yield path, doc


def objects(kind: str, *, keda: bool = False) -> dict[str, dict[str, Any]]:
    found = [doc for _, doc in documents(keda=keda) if doc["kind"] == kind]
    named = {doc["metadata"]["name"]: doc for doc in found}
    assert len(named) == len(found), f"two {kind}s of the same name"
    return named


def config_map() -> dict[str, str]:
    data: dict[str, str] = objects("ConfigMap")["fanout"]["data"]
    return data


def example_secret() -> dict[str, str]:
    (secret,) = load(SECRET_EXAMPLE)
    assert secret["kind"] == "Secret"
    data: dict[str, str] = secret["stringData"]
    return data


def containers(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    return found


def container(name: str) -> dict[str, Any]:
    (only,) = containers(objects("Deployment")[name])
    return only


def env_values(c: dict[str, Any]) -> dict[str, str]:
    """A container's environment as the process sees it (ConfigMap first, env over it)."""
    values: dict[str, str] = {}
    for source in c.get("envFrom", []):
        assert source["configMapRef"]["name"] == "fanout"
        values |= config_map()
    for var in c.get("env", []):
        if "value" in var:
            values[var["name"]] = var["value"]
        elif "configMapKeyRef" in var["valueFrom"]:
            values[var["name"]] = config_map()[var["valueFrom"]["configMapKeyRef"]["key"]]
    return values


def secret_refs(c: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        var["name"]: var["valueFrom"]["secretKeyRef"]
        for var in c.get("env", [])
        if "secretKeyRef" in var.get("valueFrom", {})
    }


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    """docker-compose.yml's services as Compose resolves them."""
    result = compose("config", "--format", "json", env=SECRETS)
    assert result.returncode == 0, result.stderr
    resolved: dict[str, Any] = json.loads(result.stdout)["services"]
    return resolved


def test_the_schemas_are_a_recent_kubernetes() -> None:
    assert Version(kubernetes_validate.latest_version()) >= Version("1.37")


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: str(p.relative_to(K8S)))
def test_built_in_kinds_are_valid_kubernetes(path: Path) -> None:
    """Strict: a misspelt or misplaced field (e.g. `readinesProbe`) is an error, not ignored."""
    docs = [doc for doc in load(path) if not doc["apiVersion"].startswith("keda.sh/")]
    errors = []
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)
        except kubernetes_validate.ValidationError as err:
            where = ".".join(str(part) for part in err.path)
            errors.append(f"{doc['kind']} {doc['metadata']['name']}: {err.message} at {where}")
    assert not errors, "\n".join(errors)
    assert docs or path.parent == KEDA, f"{path}: nothing in it"


def test_each_kustomization_lists_every_manifest_of_its_directory() -> None:
    """A manifest left out is silently not applied; the Secret example must never be (it would
    overwrite the real Secret with placeholders), nor keda/ by default."""
    for folder in (K8S, KEDA):
        kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
        listed = set(kustomization["resources"])
        files = {p.name for p in folder.glob("*.yaml") if p.name != "kustomization.yaml"}
        examples = {name for name in files if name.endswith(".example.yaml")}
        assert {name for name in listed if name.endswith(".yaml")} == files - examples, folder
        assert kustomization["namespace"] == "fanout"
    main = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert {name for name in main["resources"] if not name.endswith(".yaml")} == {"../temporal"}
    assert SECRET_EXAMPLE.name not in main["resources"]


def test_the_register_job_runs_the_compose_script_itself(services: dict[str, Any]) -> None:
    """No copy of register.sh: deploy/temporal's kustomization makes it the ConfigMap the Job
    mounts, where compose mounts the folder, and runs it the same way."""
    generator = yaml.safe_load((REPO / "deploy/temporal/kustomization.yaml").read_text())
    (script,) = generator["configMapGenerator"]
    assert script["files"] == ["register.sh"]  # kustomize loads no file outside its folder
    assert (REPO / "deploy/temporal" / script["files"][0]).is_file()
    job = objects("Job")["fanout-register"]["spec"]["template"]["spec"]
    (volume,) = job["volumes"]
    assert volume["configMap"]["name"] == script["name"]
    (register,) = job["containers"]
    (mount,) = register["volumeMounts"]
    assert mount["name"] == volume["name"]
    compose_register = services["temporal-register"]
    (compose_mount,) = compose_register["volumes"]
    assert mount["mountPath"] == compose_mount["target"] == "/fanout"
    assert register["command"] == compose_register["entrypoint"]
    assert register["image"] == compose_register["image"]  # x-images' admin tools
    env = env_values(register)
    assert env["TEMPORAL_ADDRESS"] == config_map()["FANOUT_TEMPORAL_ADDRESS"]
    assert env["FANOUT_NAMESPACE"] == config_map()["FANOUT_NAMESPACE"]
    assert job["restartPolicy"] == "OnFailure"


def test_every_variable_is_a_real_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """A misspelt FANOUT_* name is ignored by Fanout: the setting silently keeps its default."""
    names = set(config_map())
    for _, doc in documents():
        if doc["kind"] in ("Deployment", "Job"):
            names |= {var["name"] for c in containers(doc) for var in c.get("env", [])}
        if doc["kind"] == "Secret":
            names |= set(doc["stringData"])
    fields = set(Settings.model_fields)
    unknown = {
        name
        for name in names
        if name not in OTHER_VARIABLES
        and not (name.startswith("FANOUT_") and name.removeprefix("FANOUT_").lower() in fields)
    }
    assert not unknown, f"not Fanout settings: {sorted(unknown)}"
    # And the values are ones Fanout takes.
    for name, value in config_map().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FANOUT_TEMPORAL_ENV_CONFIG", "false")  # not this machine's profile
    read = Settings(_env_file=None)
    assert read.temporal_address == config_map()["FANOUT_TEMPORAL_ADDRESS"]
    assert read.task_queue == "fanout-jobs"
    assert read.log_format == "json"
    assert read.resolved_result_store_url.startswith("s3://")  # one store for every pod


def test_every_reference_names_a_key_that_exists() -> None:
    """A pod whose required secretKeyRef names a missing key never starts
    (CreateContainerConfigError); the kubectl command in the example creates every one."""
    secret, settings = example_secret(), config_map()
    example = SECRET_EXAMPLE.read_text()
    created = set(re.findall(r"--from-literal=(\w+)=", example))
    for path, doc in documents():
        if doc["kind"] not in ("Deployment", "Job"):
            continue
        for c in containers(doc):
            for var in c.get("env", []):
                source = var.get("valueFrom", {})
                if "secretKeyRef" in source:
                    ref = source["secretKeyRef"]
                    assert ref["name"] == "fanout", var
                    assert ref["key"] in secret, f"{path.name}: {ref['key']} not in the Secret"
                    if not ref.get("optional", False):
                        assert ref["key"] in created, f"the kubectl command omits {ref['key']}"
                if "configMapKeyRef" in source:
                    ref = source["configMapKeyRef"]
                    assert ref["name"] == "fanout", var
                    assert ref["key"] in settings, f"{path.name}: {ref['key']} not in ConfigMap"
            for source in c.get("envFrom", []):
                assert source == {"configMapRef": {"name": "fanout"}}, path.name
    assert created <= set(secret)


def test_the_secret_example_holds_placeholders_only() -> None:
    values = example_secret()
    assert all(
        value.startswith("replace-with-") or ":replace-with-" in value for value in values.values()
    )
    assert "kubectl -n fanout create secret generic fanout" in SECRET_EXAMPLE.read_text()
    assert not [
        path for path, doc in documents() if doc["kind"] == "Secret" and path != SECRET_EXAMPLE
    ]


def test_each_process_gets_the_secrets_it_needs_and_no_others() -> None:
    web, workers = container("web"), [container("worker"), container("worker-http")]
    required = {name for name, ref in secret_refs(web).items() if not ref.get("optional")}
    assert {"FANOUT_API_KEYS", "FANOUT_SESSION_SECRET"} <= required
    for worker in workers:
        refs = secret_refs(worker)
        assert not {"FANOUT_API_KEYS", "FANOUT_SESSION_SECRET"} & set(refs)
        # Web and workers derive users' webhook secrets from the same key, and reach the
        # same result store and Temporal.
        for name in ("FANOUT_WEBHOOK_SECRET", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            assert refs[name] == secret_refs(web)[name], name
        assert refs["FANOUT_TEMPORAL_API_KEY"] == secret_refs(web)["FANOUT_TEMPORAL_API_KEY"]


def test_images_are_compose_versions_and_pinned(services: dict[str, Any]) -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    (fanout,) = kustomization["images"]
    assert fanout["name"] == "fanout"
    assert fanout["newTag"]
    assert fanout["newTag"] != "latest"
    compose_images = {service["image"] for service in services.values()}
    for _, doc in documents():
        if doc["kind"] in ("Deployment", "Job"):
            for c in containers(doc):
                assert c["image"] == "fanout" or c["image"] in compose_images, c["image"]


@pytest.mark.parametrize("name", ["web", "worker", "worker-http"])
def test_commands_are_the_compose_services(services: dict[str, Any], name: str) -> None:
    assert container(name)["command"] == services[name]["command"]


@pytest.mark.parametrize("name", ["worker", "worker-http"])
def test_kubernetes_gives_a_stopping_worker_its_whole_shutdown_grace(name: str) -> None:
    """Kubernetes SIGKILLs a pod terminationGracePeriodSeconds after SIGTERM; the worker needs
    its shutdown grace for running actions, then a few seconds to leave Temporal."""
    grace = float(
        env_values(container(name)).get(
            "FANOUT_WORKER_SHUTDOWN_GRACE_S",
            Settings.model_fields["worker_shutdown_grace_s"].default,
        )
    )
    pod = objects("Deployment")[name]["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] >= grace + 5


@pytest.mark.parametrize("name", ["worker", "worker-http"])
def test_workers_are_probed_on_the_metrics_port_they_serve(name: str) -> None:
    worker = container(name)
    env = env_values(worker)
    probe = worker["livenessProbe"]["httpGet"]
    (port,) = [p for p in worker["ports"] if p["name"] == probe["port"]]
    assert str(port["containerPort"]) == env["FANOUT_METRICS_PORT"]
    assert env["FANOUT_METRICS_HOST"] == "0.0.0.0"  # the kubelet probes the pod's address
    assert probe["path"] == "/metrics"
    assert "readinessProbe" not in worker  # nothing is sent to workers


def test_the_web_app_is_ready_while_it_serves_not_while_temporal_does() -> None:
    """/readyz fails on every pod at once when Temporal or the workers are away: as readiness
    it would empty the Service. /healthz answers while the process serves."""
    web = container("web")
    paths = {route.path for route in health_routes.routes}  # type: ignore[attr-defined]
    command = web["command"]
    port = int(command[command.index("--port") + 1])
    (named,) = [p for p in web["ports"] if p["name"] == "http"]
    assert named["containerPort"] == port
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        check = web[probe]["httpGet"]
        assert check["path"] == "/healthz", probe
        assert check["path"] in paths
        assert check["port"] == "http"


def test_pods_run_as_the_image_user_without_privileges() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    uid = re.search(r"useradd .*--uid (\d+)", dockerfile)
    assert uid is not None
    for path, doc in documents():
        if doc["kind"] not in ("Deployment", "Job"):
            continue
        pod = doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, path.name
        for c in pod["containers"]:
            if c["image"] == "fanout":
                assert pod["securityContext"]["runAsUser"] == int(uid.group(1)), path.name
                assert c["securityContext"]["readOnlyRootFilesystem"] is True
            assert c["securityContext"]["allowPrivilegeEscalation"] is False, path.name
            assert c["securityContext"]["capabilities"]["drop"] == ["ALL"], path.name
            assert {"cpu", "memory"} <= set(c["resources"]["requests"]), path.name
            assert {"cpu", "memory"} <= set(c["resources"]["limits"]), path.name


def mounted_on_empty_dir(deployment: str, path: str) -> bool:
    pod = objects("Deployment")[deployment]["spec"]["template"]["spec"]
    empty = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
    (c,) = pod["containers"]
    return any(
        m["name"] in empty and Path(path).is_relative_to(m["mountPath"]) for m in c["volumeMounts"]
    )


def test_what_the_web_app_writes_is_on_writable_volumes() -> None:
    """The root filesystem is read-only: NiceGUI's storage and the data directory are not."""
    env = env_values(container("web"))
    assert mounted_on_empty_dir("web", env["NICEGUI_STORAGE_PATH"])
    assert mounted_on_empty_dir("web", env["FANOUT_DATA_DIR"])
    for name in ("web", "worker", "worker-http"):
        assert mounted_on_empty_dir(name, "/tmp/x")  # tempfile's default


def test_uvicorn_trusts_forwarded_headers_from_networks_only() -> None:
    trusted = env_values(container("web"))["FORWARDED_ALLOW_IPS"]
    assert "*" not in trusted  # any client could then pose as any address
    for each in trusted.split(","):
        ipaddress.ip_network(each.strip())


def pod_labels(deployment: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    return labels


def selects(selector: dict[str, str], deployment: dict[str, Any]) -> bool:
    return selector.items() <= pod_labels(deployment).items()


def test_dashboard_pages_stay_on_the_pod_that_served_them() -> None:
    """NiceGUI keeps a page's state in the web process that built it: its socket.io connection
    must reach the same pod, through the Service and through the Ingress."""
    service = objects("Service")["web"]
    deployments = objects("Deployment")
    assert [n for n, d in deployments.items() if selects(service["spec"]["selector"], d)] == ["web"]
    assert service["spec"]["sessionAffinity"] == "ClientIP"
    ingress = objects("Ingress")["web"]
    notes = ingress["metadata"]["annotations"]
    assert notes["nginx.ingress.kubernetes.io/affinity"] == "cookie"
    assert notes["nginx.ingress.kubernetes.io/affinity-mode"] == "persistent"
    assert int(notes["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600  # streams
    backends = [
        path["backend"]["service"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    ]
    port_names = {port["name"] for port in service["spec"]["ports"]}
    for backend in backends:
        assert backend["name"] == "web"
        assert backend["port"]["name"] in port_names
    (http,) = service["spec"]["ports"]
    assert http["targetPort"] in {p["name"] for p in container("web")["ports"]}


def test_every_deployment_has_a_disruption_budget() -> None:
    deployments, budgets = objects("Deployment"), objects("PodDisruptionBudget")
    for name, deployment in deployments.items():
        covering = [
            b
            for b, pdb in budgets.items()
            if selects(pdb["spec"]["selector"]["matchLabels"], deployment)
        ]
        assert len(covering) == 1, name
        assert budgets[covering[0]]["spec"]["maxUnavailable"] == 1


def pool_queues(command: list[str]) -> dict[str, bool]:
    """The task queues a worker command polls, and whether it runs workflows on each."""
    actions = [command[i + 1] for i, arg in enumerate(command) if arg == "--actions"]
    exclude = [command[i + 1] for i, arg in enumerate(command) if arg == "--exclude"]
    config = Settings(task_queue=config_map()["FANOUT_TASK_QUEUE"], _env_file=None)
    workflows = not actions
    queues = {
        queue: workflows and queue == config.task_queue
        for queue in plan_queues(config, actions=actions, exclude=exclude, workflows=workflows)
    }
    if workflows:
        queues[webhook_queue(config.task_queue)] = True
    return queues


@pytest.mark.parametrize("name", ["worker", "worker-http"])
def test_keda_scales_each_pool_on_the_queues_it_polls(name: str) -> None:
    scaled = objects("ScaledObject", keda=True)[name]
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["spec"]["scaleTargetRef"]["name"] in objects("Deployment")
    assert scaled["spec"]["scaleTargetRef"].get("kind", "Deployment") == "Deployment"
    assert scaled["spec"]["minReplicaCount"] >= 1  # a backlog shows only once tasks wait
    assert scaled["spec"]["maxReplicaCount"] > scaled["spec"]["minReplicaCount"]
    target = objects("Deployment")[scaled["spec"]["scaleTargetRef"]["name"]]
    (c,) = containers(target)
    polled = pool_queues(c["command"])
    triggers = scaled["spec"]["triggers"]
    assert {t["type"] for t in triggers} == {"temporal"}
    assert {t["metadata"]["taskQueue"] for t in triggers} == set(polled)
    for trigger in triggers:
        meta = trigger["metadata"]
        assert all(isinstance(v, str) for v in meta.values()), meta  # a map of strings
        assert meta["endpoint"] == config_map()["FANOUT_TEMPORAL_ADDRESS"]
        assert meta["namespace"] == config_map()["FANOUT_NAMESPACE"]
        int(meta["targetQueueSize"])
        types = set(meta["queueTypes"].split(","))
        assert types <= {"workflow", "activity", "nexus"}
        # Named, not KEDA's default (which changed between versions): actions are activity
        # tasks, and only a pool that runs workflows has workflow tasks to count.
        assert "activity" in types
        assert ("workflow" in types) == polled[meta["taskQueue"]], meta["taskQueue"]


def test_keda_authenticates_with_the_keys_the_workers_use() -> None:
    (auth,) = load(KEDA / "triggerauthentication.example.yaml")
    assert auth["apiVersion"] == "keda.sh/v1alpha1"
    assert auth["kind"] == "TriggerAuthentication"
    refs = auth["spec"]["secretTargetRef"]
    assert {ref["parameter"] for ref in refs} <= TEMPORAL_SCALER_AUTH
    (api_key,) = [ref for ref in refs if ref["parameter"] == "apiKey"]
    assert api_key["name"] == "fanout"
    assert api_key["key"] in example_secret()
    assert api_key["key"] in secret_refs(container("worker"))


def test_the_docs_apply_what_is_here() -> None:
    docs = (REPO / "docs" / "deploy.md").read_text()
    for command in (
        "kubectl apply -k deploy/kubernetes",
        "kubectl apply -k deploy/kubernetes/keda",
    ):
        assert command in docs
    create = re.search(r"kubectl -n fanout create secret generic fanout[^`]*", docs)
    assert create is not None
    words = shlex.split(create.group(0).replace("\\\n", " "))
    created = {w.split("=", 2)[1] for w in words if w.startswith("--from-literal=")}
    required = {
        ref["key"]
        for c in (container("web"), container("worker"))
        for ref in secret_refs(c).values()
        if not ref.get("optional")
    }
    assert required <= created
