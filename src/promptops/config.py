"""Settings from environment variables (prefix ``PROMPTOPS_``); see the table in README.md."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PROMPTOPS_", extra="ignore")

    data_dir: Path = Field(default=Path("./data"), description="Where the embedded database and state live.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default sqlite+aiosqlite:///<data_dir>/promptops.db"
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    secret_key: str | None = Field(
        default=None,
        description="Master secret encrypting stored provider keys; default: generated once in <data_dir>/secret_key.",
    )
    previous_secret_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Earlier master secrets, still accepted for decryption (rotation)."
    )
    provider_allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Hosts, IPs or CIDRs provider base URLs may use even though private/loopback (e.g. a local Ollama).",
    )
    log_level: str = "INFO"
    log_json: bool = True

    bootstrap: bool = True
    bootstrap_admin_email: str = "admin@localhost"
    bootstrap_admin_password: str | None = None
    bootstrap_admin_key: str | None = None
    load_examples: bool = True

    web_dir: Path | None = Field(
        default=None,
        description="The built web UI (index.html + assets) served at /; default: web/dist of a source checkout.",
    )

    session_ttl_hours: int = Field(default=24 * 7, ge=1, le=24 * 90)
    cookie_secure: bool = False

    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    # dataset uploads (POST /api/v1/datasets, .../import, .../versions): files of up to 100,000 cases
    max_upload_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    include_max_depth: int = Field(default=5, ge=1, le=20)
    resolve_cache_ttl_seconds: float = Field(
        default=1.0, ge=0, description="In-process cache of resolved prompts and model lookups; 0 disables."
    )
    experiment_guardrail_interval_seconds: float = Field(
        default=30.0,
        ge=0,
        description="Outcome events trigger an experiment's guardrail check at most this often (per process).",
    )
    database_read_pool_size: int = Field(
        default=20,
        ge=1,
        le=200,
        description="PostgreSQL connections for hot reads (API key lookups, uncached resolves), per process.",
    )
    api_key_cache_ttl_seconds: float = Field(
        default=1.0,
        ge=0,
        le=300,
        description="In-process cache of verified API keys; 0 verifies every request against the database.",
    )

    # Untrusted template work (docs/security.md, "Templates"). The size and work limits are checked inside the
    # engine before anything is allocated; CPU and memory are enforced by the worker processes that run every
    # render and every analysis/lint/diff of a big template, off the server's event loop.
    template_max_output_chars: int = Field(
        default=1_000_000,
        ge=1_000,
        description="Characters a render may output, and the longest string it may build.",
    )
    template_max_items: int = Field(
        default=100_000,
        ge=100,
        description="Items a list, range, slice, batch or repeat in a template may have.",
    )
    template_work_budget: int = Field(
        default=10_000_000,
        ge=10_000,
        description="Work units per render: loop iterations, calls, and characters/items produced.",
    )
    template_cpu_seconds: float = Field(
        default=5.0, gt=0, le=600, description="CPU time one render or template analysis may use in a worker."
    )
    template_memory_mb: int = Field(
        default=512,
        ge=64,
        description="Memory (address space) a template worker may add to its start-up size.",
    )
    template_workers: int = Field(
        default=0,
        ge=0,
        le=64,
        description="Template worker processes; 0: one per CPU, at least 2, at most 8.",
    )
    template_queue_seconds: float = Field(
        default=30.0, gt=0, description="Longest wait for a free template worker before a 503."
    )
    template_inline_ms: float = Field(
        default=20.0,
        ge=0,
        le=1_000,
        description="Time slice for rendering a small, loop-only template in the server process; 0: always a worker.",
    )

    job_backend: Literal["auto", "inprocess", "procrastinate"] = Field(
        default="auto",
        description="Background jobs: procrastinate on PostgreSQL, in-process on SQLite (auto), or forced.",
    )
    search_embeddings: Literal["minilm", "static"] = Field(
        default="minilm",
        description="Search embedding model: all-MiniLM-L6-v2 (minilm, accurate, ~40 ms a prompt) or WordLlama "
        "static subword vectors (static, ~0.2 ms a prompt, less accurate).",
    )
    run_workers: bool = Field(
        default=True, description="This server process also runs job workers (false: API-only replica)."
    )
    password_min_length: int = Field(default=8, ge=8, le=256, description="Shortest password accepted.")
    password_min_score: int = Field(
        default=3, ge=0, le=4, description="Least zxcvbn strength (0-4) a new password needs; 0: length only."
    )
    login_max_failures: int = Field(
        default=5, ge=0, le=1000, description="Failed logins for one email that lock it (0: never locks)."
    )
    login_ip_max_failures: int = Field(
        default=50,
        ge=0,
        le=100_000,
        description="Failed logins from one client address that lock it (0: never).",
    )
    login_lockout_minutes: float = Field(
        default=15,
        gt=0,
        le=7 * 24 * 60,
        description="Window for counting failures, and how long a lock lasts.",
    )
    api_key_max_days: int = Field(
        default=0, ge=0, le=3650, description="> 0: every new API key must expire within this many days."
    )
    scheduler: bool = Field(
        default=True,
        description="This process runs the periodic tasks (alert checks, schedules, retention) when it runs workers.",
    )
    scheduler_tick_seconds: float = Field(
        default=5.0, ge=0.05, le=3600, description="How often the scheduler looks for due periodic tasks."
    )
    job_concurrency: int = Field(default=2, ge=1, le=64, description="Jobs run at once per process.")
    job_max_attempts: int = Field(default=3, ge=1, le=100, description="Tries per job before it fails.")
    job_retry_backoff_seconds: float = Field(
        default=5.0, ge=0, le=3600, description="Wait before the first retry; doubles per attempt."
    )
    job_shutdown_grace_seconds: float = Field(
        default=10.0, ge=0, le=3600, description="On stop, wait this long for running jobs, then cancel them."
    )
    job_stalled_seconds: float = Field(
        default=60.0,
        ge=3,
        le=86_400,
        description="A procrastinate worker silent this long is dead; its running jobs are retried.",
    )

    # The capture gateway (/v1/chat/completions, /v1/messages, ...; docs/api.md "Gateway").
    gateway_outbox_dir: Path | None = Field(
        default=None,
        description="Journal of gateway calls not yet stored (write-behind); default <data_dir>/gateway-outbox.",
    )
    gateway_rate_limit_per_minute: int = Field(
        default=0, ge=0, le=1_000_000, description="Gateway requests a minute per API key; 0: no limit."
    )
    gateway_monthly_budget_usd: float = Field(
        default=0.0,
        ge=0,
        description="Model spend a project may reach in a calendar month (UTC) before the gateway answers 429; 0: no budget.",
    )
    gateway_max_body_bytes: int = Field(
        default=1_048_576,
        ge=1024,
        description="Largest gateway request body (at most PROMPTOPS_MAX_BODY_BYTES, which applies first).",
    )
    gateway_cache_ttl_seconds: int = Field(
        default=0,
        ge=0,
        le=30 * 24 * 3600,
        description="Cache identical non-streaming gateway calls this long unless X-PromptOps-Cache says otherwise; 0: only on request.",
    )
    redis_url: str | None = Field(
        default=None,
        repr=False,
        description="redis://host:6379/0 (or rediss://): gateway rate limits and monthly spend shared by every process using it; unset: per process.",
    )
    redis_key_prefix: str = Field(
        default="promptops:",
        min_length=1,
        max_length=100,
        description="Prefix of every Redis key PromptOps writes (several deployments can share one Redis).",
    )

    # The Slack app (README "Slack"; docs/api.md "Slack"). Unset signing secret: the /slack/* routes answer 404.
    slack_signing_secret: str | None = Field(
        default=None, repr=False, description="The Slack app's signing secret (verifies every Slack request)."
    )
    slack_bot_token: str | None = Field(
        default=None, repr=False, description="The bot token (xoxb-...) for chat.postMessage."
    )
    slack_app_token: str | None = Field(
        default=None,
        repr=False,
        description="App-level token (xapp-..., scope connections:write) for `promptops slack --socket-mode`.",
    )
    slack_api_url: str = Field(
        default="https://slack.com/api/", description="Base URL of Slack's Web API (a stand-in in tests)."
    )
    slack_response_url_prefix: str = Field(
        default="https://hooks.slack.com/",
        description="response_url values the bot answers to must start with this (no other host is called).",
    )
    slack_notify_interval_seconds: float = Field(
        default=10.0, ge=0, le=3600, description="How often project notices are sent to Slack; 0: never."
    )
    slack_web_url: str = Field(
        default="http://127.0.0.1:8000", description="Public URL of the PromptOps web UI, for links in cards."
    )

    @field_validator("previous_secret_keys", "provider_allowed_hosts", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value or None

    @field_validator("log_level")
    @classmethod
    def _upper(cls, v: str) -> str:
        return v.upper()

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return normalize_database_url(self.database_url)
        return f"sqlite+aiosqlite:///{(self.data_dir / 'promptops.db').resolve()}"

    @property
    def effective_job_backend(self) -> str:
        """``procrastinate`` or ``inprocess`` (``auto`` follows the database)."""
        if self.job_backend != "auto":
            return self.job_backend
        return "procrastinate" if self.effective_database_url.startswith("postgresql") else "inprocess"


def normalize_database_url(url: str) -> str:
    """Accept plain ``postgresql://`` / ``sqlite://`` URLs and pick the async drivers we ship."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        return "postgresql+asyncpg://" + url[len("postgresql://") :]
    if url.startswith("sqlite:///") or url == "sqlite://":
        return "sqlite+aiosqlite" + url[len("sqlite") :]
    return url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
