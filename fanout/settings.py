"""Every setting of Fanout, read from `FANOUT_*` environment variables (and `.env`), on top of
Temporal's own connection conventions (`TEMPORAL_*` variables, `temporal.toml` profiles)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, InstanceOf, SecretStr, TypeAdapter, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from temporalio.envconfig import ClientConfigProfile


class Settings(BaseSettings):
    """One place for configuration; nothing else reads `os.environ`."""

    model_config = SettingsConfigDict(env_prefix="FANOUT_", env_file=".env", extra="ignore")

    # Web app
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)

    # Temporal connection: Temporal's TEMPORAL_* variables and temporal.toml profile first
    # (TemporalEnvConfig below), each FANOUT_* one set overriding its part. No address from
    # either: `make run` starts a dev server on DEV_SERVER_PORT.
    temporal_env_config: bool = Field(
        True,
        description="Read Temporal's TEMPORAL_* variables and temporal.toml profile (false: "
        "only FANOUT_* settings, e.g. to keep make run on its dev server).",
    )
    temporal_address: str | None = None
    namespace: str = "default"
    task_queue: str = "fanout-jobs"
    temporal_ui_url: str | None = Field(
        None, description="Temporal Web UI for links; default: the dev server's UI."
    )

    # Remote Temporal (self-hosted with TLS, or Temporal Cloud)
    temporal_tls: bool | None = Field(
        None, description="Use TLS; unset: implied by an API key, a certificate or a CA."
    )
    temporal_tls_cert: Path | None = Field(None, description="Client certificate (mTLS), PEM.")
    temporal_tls_key: Path | None = Field(None, description="Client private key (mTLS), PEM.")
    temporal_tls_ca: Path | None = Field(None, description="CA that signed the server, PEM.")
    temporal_tls_server_name: str | None = Field(None, description="Override the TLS SNI name.")
    temporal_api_key: SecretStr | None = Field(None, description="Temporal Cloud API key.")
    temporal_loaded_profile: InstanceOf[ClientConfigProfile] = Field(
        default_factory=ClientConfigProfile,
        repr=False,
        exclude=True,
        description="What TEMPORAL_* and temporal.toml say, as loaded (TLS material, gRPC "
        "metadata); filled in by TemporalEnvConfig, not by a variable of its own.",
    )

    # Operations
    log_format: Literal["text", "json"] = "text"
    log_level: str = "INFO"
    metrics_port: int | None = Field(
        None, ge=1, le=65535, description="Worker: serve Temporal SDK metrics for Prometheus."
    )
    metrics_host: str = Field("127.0.0.1", description="Where the worker's metrics listen.")

    # Embedded dev server (`make run` only)
    dev_server_port: int = Field(7233, ge=1, le=65535)
    dev_ui_port: int = Field(8233, ge=1, le=65535)
    data_dir: Path = Path(".data")

    # API
    api_keys: str = Field(
        "", description="Comma-separated `user:key` or `user:key:admin` entries.", repr=False
    )
    api_keys_file: Path | None = Field(None, description="One `user:key[:admin]` per line.")
    dev_token: str | None = Field(
        None, description="Key of the admin user `dev` (make run sets one up).", repr=False
    )
    session_secret: str | None = Field(
        None, description="Signs dashboard sessions; default: random per process.", repr=False
    )
    session_max_age_s: float = Field(
        12 * 3600, gt=0, description="How long a dashboard sign-in lasts."
    )
    session_cookie_secure: bool = Field(
        False,
        description="Mark the dashboard's session cookie Secure even when the app itself is "
        "served over plain HTTP (behind a proxy that ends TLS); over HTTPS it always is.",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated origins (`https://app.example.com`) whose pages may call "
        "the API and load /static/fanout.js; empty: none (CORS off).",
    )
    watch_token_ttl_s: float = Field(
        900, ge=10, le=86400, description="How long a job's watch token opens its streams."
    )
    max_actions_per_job: int = Field(10_000, ge=1)
    max_running_jobs_per_user: int = Field(100, ge=1)
    max_running_actions_per_user: int = Field(
        20_000, ge=1, description="Actions in one user's running jobs, in all."
    )
    max_jobs_per_minute_per_user: int = Field(120, ge=1)
    max_failed_keys_per_minute: int = Field(
        20, ge=1, description="Wrong keys from one address before it is refused for a minute."
    )
    max_body_bytes: int = Field(1 << 20, ge=1024)
    temporal_rpc_timeout_s: float = Field(5.0, gt=0)

    # Status hub: one follower per watched job, shared by all viewers
    hub_live_details_s: float = Field(
        1.0, gt=0, description="How often running actions' attempt and progress are refreshed."
    )
    hub_follow_linger_s: float = Field(
        30.0, ge=0, description="How long a job stays followed after its last reader left."
    )
    temporal_slow_wait_s: float = Field(
        30.0,
        ge=0,
        description="While Temporal answers too slowly, how long a new job's start and a job's "
        "first reader keep trying before a 503 (readers who had a state get it, marked stale).",
    )
    hub_max_concurrent_calls: int = Field(32, ge=1)
    hub_finished_cache_size: int = Field(2000, ge=1)

    # Actions
    result_max_bytes: int = Field(
        4096, ge=256, description="Larger JSON results go to the result store, by reference."
    )
    result_store_url: str | None = Field(
        None,
        description="Where results too large to keep in a job go: `s3://bucket/prefix` (any "
        "S3-compatible store; credentials from the standard AWS variables) or `file:///dir`; "
        "default: DATA_DIR/results.",
    )
    result_store_endpoint_url: str | None = Field(
        None, description="The S3 endpoint of a store that is not AWS (MinIO, Ceph, R2...)."
    )
    result_store_max_bytes: int = Field(
        100 * 1024 * 1024, ge=1, description="Larger results fail their action, not retried."
    )
    result_sweep_interval_s: float = Field(
        3600.0, gt=0, description="How often a worker removes the stored results of deleted jobs."
    )
    files_root: Path | None = Field(
        None, description="Directory `file.sha256` may read; default: DATA_DIR/files."
    )
    http_allow_private: bool = Field(
        False, description="Let `http.fetch` reach loopback and private networks."
    )
    http_allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated hosts `http.fetch` may reach, as URLs name them "
        "(checked before resolving); empty: any host the address rules allow.",
    )

    # Webhooks (the web app and the worker need the same secret)
    webhook_secret: SecretStr | None = Field(
        None,
        description="Server key each user's webhook signing secret is derived from; unset: "
        "webhooks are off (`make run` keeps one in DATA_DIR).",
    )
    webhook_deadline_s: float = Field(
        86400.0, ge=1, le=7 * 86400, description="How long a delivery is retried by default."
    )
    webhook_timeout_s: float = Field(10.0, gt=0, le=25, description="Timeout of each POST.")

    # Action types served by workers in other languages (activities/catalog.py)
    actions_catalog: Path | None = Field(
        None,
        description="TOML (or .json) file declaring action types that other workers serve; "
        "default: activities/catalog.toml, which declares text.reverse.",
    )

    # Worker tuning
    worker_max_concurrent_activities: int = Field(200, ge=1)
    worker_max_concurrent_workflow_tasks: int = Field(100, ge=2)
    worker_workflow_pollers: int = Field(4, ge=2)
    worker_activity_pollers: int = Field(4, ge=1)
    worker_max_cached_workflows: int = Field(2000, ge=0)
    worker_workflow_sandbox: bool = Field(
        False,
        description="Run Fanout's workflows in Temporal's sandbox, which stops a non-deterministic "
        "call (clock, random, I/O) as it is made; off, a new job costs the worker about half the "
        "CPU. The tests always run the workflows in it.",
    )
    heartbeat_throttle_s: float = Field(
        1.0, gt=0, description="Longest gap between heartbeats sent to Temporal (live progress)."
    )
    worker_shutdown_grace_s: float = Field(10.0, ge=0)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            dotenv_settings,
            file_secret_settings,
            TemporalEnvConfig(settings_cls),
        )

    @field_validator("webhook_secret", "temporal_tls", mode="before")
    @classmethod
    def _unset_if_empty(cls, value: Any) -> Any:
        return None if value == "" else value  # compose passes unset variables as ""

    @field_validator("http_allowed_hosts", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        hosts = value.split(",") if isinstance(value, str) else value
        if isinstance(hosts, list):  # httpx compares hosts lower-cased
            return [h.strip().lower() for h in hosts if isinstance(h, str) and h.strip()]
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins(cls, value: Any) -> Any:
        origins = value.split(",") if isinstance(value, str) else value
        if not isinstance(origins, list):
            return value
        cleaned = [o.strip().rstrip("/") for o in origins if isinstance(o, str) and o.strip()]
        for origin in (o for o in cleaned if o != "*"):  # "*": any origin (keys still needed)
            scheme, _, rest = origin.partition("://")
            if scheme not in ("http", "https") or not rest or "/" in rest:
                raise ValueError(
                    f"{origin!r} is not an origin: write scheme://host[:port], "
                    "e.g. https://app.example.com"
                )
        return cleaned

    @field_validator("result_store_url")
    @classmethod
    def _store_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        scheme, _, rest = value.partition("://")
        if scheme == "s3" and rest and not rest.startswith("/"):
            return value.rstrip("/")
        if scheme == "file" and rest.startswith("/") and rest != "/":
            return value.rstrip("/")
        raise ValueError(
            f"{value!r} is not a result store: write s3://bucket/prefix or file:///a/directory"
        )

    @property
    def temporal_target(self) -> str:
        """Where clients connect: the configured address or the embedded dev server."""
        return self.temporal_address or f"127.0.0.1:{self.dev_server_port}"

    @property
    def uses_dev_server(self) -> bool:
        return self.temporal_address is None

    @property
    def ui_url(self) -> str | None:
        if self.temporal_ui_url:
            return self.temporal_ui_url.rstrip("/")
        return f"http://127.0.0.1:{self.dev_ui_port}" if self.uses_dev_server else None

    @property
    def resolved_files_root(self) -> Path:
        return (self.files_root or self.data_dir / "files").resolve()

    @property
    def resolved_result_store_url(self) -> str:
        """The result store's URL: the configured one, or `file://` DATA_DIR/results."""
        return self.result_store_url or (self.data_dir / "results").resolve().as_uri()


class TemporalEnvConfig(PydanticBaseSettingsSource):
    """The lowest source: the profile Temporal's CLI and SDKs would connect with (TEMPORAL_PROFILE
    of TEMPORAL_CONFIG_FILE or ~/.config/temporalio/temporal.toml, then TEMPORAL_ADDRESS,
    TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_*...), so a machine set up for
    `temporal` reaches the same server."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads the profile as a whole

    def __call__(self) -> dict[str, Any]:
        enabled = self.current_state.get("temporal_env_config", True)
        if not TypeAdapter(bool).validate_python(enabled):
            return {}
        profile = ClientConfigProfile.load()
        values: dict[str, Any] = {"temporal_loaded_profile": profile}
        if profile.address:
            values["temporal_address"] = profile.address
        if profile.namespace:
            values["namespace"] = profile.namespace
        if profile.api_key:
            values["temporal_api_key"] = profile.api_key
        return values


settings = Settings()
