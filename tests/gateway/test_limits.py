"""Gateway limits: a key's own rate limit, the project's rate limit and monthly budget (over the server's
defaults), users signed in with a session, and both limits shared through a real Redis by two app instances
(127.0.0.1:6379, a key prefix per test, removed afterwards), failing open when Redis does not answer."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
import redis
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine
from structlog.testing import capture_logs

from promptops.config import normalize_database_url
from promptops.gateway import service as gateway_service
from promptops.gateway.limits import LocalLimits, LocalRateLimiter, SpendLedger, next_month
from promptops.gateway.service import effective_limits
from promptops.gateway.standalone import create_gateway_app
from promptops.migrate import downgrade, upgrade
from tests.gateway.support import anthropic_client, drained, gateway, gateway_app, openai_client
from tests.support.app import ADMIN_EMAIL, ADMIN_PASSWORD, Api, make_settings, new_database
from tests.support.cli_support import Cli
from tests.support.fake_llm_server import FakeLLMServer
from tests.support.provider_support import fake_fixture, shared_fake_fixture  # noqa: F401 (fixtures)
from tests.support.tenancy import login

REDIS_URL = os.environ.get("PROMPTOPS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
DEAD_REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
MODEL = "fake/gpt-4o-mini"


def chat(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


async def call(client: openai.AsyncOpenAI, text: str = "hello") -> Any:
    return await client.chat.completions.create(model=MODEL, messages=chat(text))


async def limited(client: openai.AsyncOpenAI) -> openai.RateLimitError:
    with pytest.raises(openai.RateLimitError) as caught:
        await call(client)
    return caught.value


async def set_project(api: Api, **settings: Any) -> httpx.Response:
    return await api.patch("/api/v1/projects/current", json={"settings": settings})


# --- effective limits ---------------------------------------------------------------------------------------


def test_the_keys_limit_wins_then_the_projects_then_the_servers() -> None:
    limits = effective_limits(None, {}, 60, 5.0)
    assert (limits.rate.per_minute, limits.rate.source) == (60, "server")
    assert (limits.budget.limit_usd, limits.budget.source) == (5.0, "server")
    project = {"gatewayRateLimitPerMinute": 10, "gatewayMonthlyBudgetUsd": 0}
    limits = effective_limits(None, project, 60, 5.0)
    assert (limits.rate.per_minute, limits.rate.source) == (10, "project")
    assert (limits.budget.limit_usd, limits.budget.source) == (0.0, "project")  # 0: no budget here
    limits = effective_limits(3, project, 60, 5.0)
    assert (limits.rate.per_minute, limits.rate.source) == (3, "api_key")
    assert effective_limits(0, project, 60, 5.0).rate.per_minute == 0  # a key exempt from limits
    # values that are not what the settings API stores are ignored
    odd = {"gatewayRateLimitPerMinute": True, "gatewayMonthlyBudgetUsd": "7"}
    assert effective_limits(None, odd, 60, 5.0).rate.source == "server"
    assert effective_limits(None, odd, 60, 5.0).budget.source == "server"


async def test_local_bucket_refills_at_the_rate_passed() -> None:
    bucket = LocalRateLimiter()
    assert await bucket.take("k", 2) is None and await bucket.take("k", 2) is None
    wait = await bucket.take("k", 2)
    assert wait is not None and 0 < wait <= 30.0
    assert await bucket.take("k", 0) is None  # 0: no limit
    assert await bucket.take("other", 2) is None  # per key


# --- per key, per project, per user -------------------------------------------------------------------------


async def test_key_project_and_user_rate_limits(db_url: str, tmp_path: Path, fake: FakeLLMServer) -> None:
    async with gateway_app(
        db_url, tmp_path, fake, gateway_rate_limit_per_minute=1000, resolve_cache_ttl_seconds=0
    ) as api:
        for bad in (-1, "5", True, 1.5, 2_000_000):
            r = await api.post(
                "/api/v1/api-keys", json={"name": "x", "role": "Viewer", "rateLimitPerMinute": bad}
            )
            assert r.status_code == 422, (bad, r.text)
        made: dict[str, Any] = {}
        for name, limit in (("own", 1), ("project", None), ("exempt", 0)):
            body = {"name": name, "role": "PromptEngineer", "rateLimitPerMinute": limit}
            r = await api.post("/api/v1/api-keys", json=body)
            assert r.status_code == 201, r.text
            assert r.json()["rateLimitPerMinute"] == limit
            made[name] = r.json()
        listed = {k["name"]: k["rateLimitPerMinute"] for k in (await api.get("/api/v1/api-keys")).json()}
        assert listed["own"] == 1 and listed["project"] is None and listed["exempt"] == 0
        audit = await api.get("/api/prompt/audit", params={"eventType": "ApiKeyCreated"})
        created = {e["data"]["name"]: e["data"] for e in audit.json()["events"]}
        assert created["own"]["rateLimitPerMinute"] == 1 and created["project"]["rateLimitPerMinute"] is None

        # the key's own limit (1 a minute) applies over the server's 1000
        own = openai_client(api, made["own"]["key"])
        await call(own)
        error = await limited(own)
        assert error.code == "rate_limit_exceeded" and "key's own rateLimitPerMinute" in error.message
        assert error.body is not None
        assert error.response.json()["rateLimit"] == {
            "limitPerMinute": 1,
            "scope": "api_key",
            "source": "api_key",
            "shared": False,
            "retryAfterSeconds": pytest.approx(60, abs=2),
        }
        assert 58 <= int(error.response.headers["retry-after"]) <= 60

        # the project's setting, validated, then applied to keys without their own and to session users
        for bad in (-1, "2", True, 1.5):
            r = await set_project(api, gatewayRateLimitPerMinute=bad)
            assert r.status_code == 422, (bad, r.text)
        r = await set_project(api, gatewayRateLimitPerMinute=2)
        assert r.status_code == 200 and r.json()["settings"]["gatewayRateLimitPerMinute"] == 2
        audit = await api.get("/api/prompt/audit", params={"eventType": "ProjectUpdated"})
        change = audit.json()["events"][0]["data"]["changes"]["settings"]
        assert change["to"]["gatewayRateLimitPerMinute"] == 2
        by_project = openai_client(api, made["project"]["key"])
        for _ in range(2):
            await call(by_project)
        error = await limited(by_project)
        assert "project setting gatewayRateLimitPerMinute" in error.message
        assert error.response.json()["rateLimit"]["source"] == "project"
        with pytest.raises(
            anthropic.RateLimitError
        ) as a_limited:  # the bucket is the key's, whatever the wire
            await anthropic_client(api, made["project"]["key"]).messages.create(
                model="claude/c", max_tokens=5, messages=[{"role": "user", "content": "x"}]
            )
        assert a_limited.value.body["rateLimit"]["source"] == "project"  # type: ignore[index]
        exempt = openai_client(api, made["exempt"]["key"])
        for _ in range(4):
            await call(exempt)  # rateLimitPerMinute 0: this key has no limit

        # a user signed in with a session is limited per user, by the project's setting
        session = (await login(api, ADMIN_EMAIL, ADMIN_PASSWORD))["token"]
        user = openai_client(api, session)
        for _ in range(2):
            await call(user)
        error = await limited(user)
        assert "for this user" in error.message
        assert error.response.json()["rateLimit"]["scope"] == "user"


async def test_server_default_applies_to_a_session_user(
    db_url: str, tmp_path: Path, fake: FakeLLMServer
) -> None:
    async with gateway_app(db_url, tmp_path, fake, gateway_rate_limit_per_minute=1) as api:
        session = (await login(api, ADMIN_EMAIL, ADMIN_PASSWORD))["token"]
        user = openai_client(api, session)
        await call(user)
        error = await limited(user)
        assert "server default PROMPTOPS_GATEWAY_RATE_LIMIT_PER_MINUTE" in error.message
        await call(openai_client(api))  # the admin key has a bucket of its own


async def test_project_budget_overrides_the_servers(db_url: str, tmp_path: Path, fake: FakeLLMServer) -> None:
    async with gateway_app(
        db_url, tmp_path, fake, gateway_monthly_budget_usd=0.0000001, resolve_cache_ttl_seconds=0
    ) as api:
        client = openai_client(api)
        await call(client, "spend some money")
        await drained(api)
        error = await limited(client)
        assert error.code == "budget_exceeded" and error.type == "insufficient_quota"
        assert "server default PROMPTOPS_GATEWAY_MONTHLY_BUDGET_USD" in error.message
        now = datetime.now(UTC)
        resets = next_month(now).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert f"It resets at {resets}" in error.message
        budget = error.response.json()["budget"]
        assert budget["source"] == "server" and budget["resetsAt"] == resets
        assert (
            budget["limitUsd"] == 0.0000001 and budget["spentUsd"] > 0 and budget["month"] == f"{now:%Y-%m}"
        )
        assert int(error.response.headers["retry-after"]) == pytest.approx(
            (next_month(now) - now).total_seconds(), abs=5
        )

        for bad in (-1, "5", True, None):
            r = await api.patch(
                "/api/v1/projects/current", json={"settings": {"gatewayMonthlyBudgetUsd": bad}}
            )
            assert r.status_code in (200, 422), r.text
            if bad is not None:
                assert r.status_code == 422, (bad, r.text)
        assert (await set_project(api, gatewayMonthlyBudgetUsd=0)).status_code == 200
        await call(client)  # 0 on the project: no budget, whatever the server's
        assert (await set_project(api, gatewayMonthlyBudgetUsd=1000)).status_code == 200
        await call(client)
        assert (await set_project(api, gatewayMonthlyBudgetUsd=0.0000002)).status_code == 200
        error = await limited(client)
        assert "project setting gatewayMonthlyBudgetUsd" in error.message
        assert error.response.json()["budget"]["source"] == "project"
        with pytest.raises(anthropic.RateLimitError) as broke:
            await anthropic_client(api).messages.create(
                model="claude/c", max_tokens=5, messages=[{"role": "user", "content": "x"}]
            )
        assert broke.value.body["code"] == "budget_exceeded"  # type: ignore[index]
        assert broke.value.body["budget"]["resetsAt"] == resets  # type: ignore[index]
        audit = await api.get("/api/prompt/audit", params={"eventType": "ProjectUpdated"})
        assert (
            audit.json()["events"][0]["data"]["changes"]["settings"]["to"]["gatewayMonthlyBudgetUsd"] == 2e-7
        )


async def test_limits_keep_applying_while_the_database_cannot_be_read(
    db_url: str, tmp_path: Path, fake: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with gateway_app(db_url, tmp_path, fake, resolve_cache_ttl_seconds=0) as api:
        assert (await set_project(api, gatewayRateLimitPerMinute=1)).status_code == 200
        client = openai_client(api)
        await call(client)

        async def unreadable(*_args: Any) -> Any:
            raise ConnectionError("database down")

        monkeypatch.setattr(gateway_service.tenancy, "project_settings", unreadable)
        with capture_logs() as logs:
            error = await limited(client)  # the last known limits (the project's 1 a minute)
        assert error.response.json()["rateLimit"]["source"] == "project"
        assert [e["fallback"] for e in logs if e["event"] == "gateway_limits_unreadable"] == ["last known"]

        async def no_spend(*_args: Any) -> Any:
            raise ConnectionError("database down")

        ledger = LocalLimits(SpendLedger(no_spend))
        assert await ledger.spent("prj_x") == 0.0  # nothing known: the budget does not stop calls
        ledger.add("prj_x", 0.5)
        assert await ledger.spent("prj_x") == 0.5


# --- Redis ---------------------------------------------------------------------------------------------------


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own on the real Redis; its keys are deleted afterwards."""
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis not reachable at {REDIS_URL}: {exc} (CI=true: Redis tests must run)")
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {exc}")
    prefix = f"promptops-test:{uuid.uuid4().hex}:"
    try:
        yield prefix
    finally:
        keys = list(client.scan_iter(match=prefix + "*"))
        if keys:
            client.delete(*keys)
        client.close()


def redis_keys(prefix: str) -> list[str]:
    with redis.Redis.from_url(REDIS_URL, decode_responses=True) as client:
        return sorted(client.scan_iter(match=prefix + "*"))


@asynccontextmanager
async def second_gateway(db_url: str, tmp_path: Path, **settings: Any) -> AsyncIterator[Api]:
    """A ``promptops gateway`` app (another process in production) on the same database and data directory
    (so the same secret key), with an outbox of its own."""
    app = create_gateway_app(
        make_settings(
            db_url,
            tmp_path,
            provider_allowed_hosts=["127.0.0.1"],
            gateway_outbox_dir=tmp_path / "second-outbox",
            **settings,
        ),
        migrate=False,
    )
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
    try:
        yield Api(client, app)
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


async def test_two_instances_share_one_rate_limit_through_redis(
    db_url: str, tmp_path: Path, fake: FakeLLMServer, redis_prefix: str
) -> None:
    shared = {"redis_url": REDIS_URL, "redis_key_prefix": redis_prefix, "gateway_rate_limit_per_minute": 3}
    async with (
        gateway_app(db_url, tmp_path, fake, **shared) as one,
        second_gateway(db_url, tmp_path, **shared) as two,
    ):
        first, second = openai_client(one), openai_client(two)
        await call(first)
        await call(second)
        await call(first)  # three calls in all: the limit, though each instance saw fewer
        error = await limited(second)
        assert error.response.json()["rateLimit"]["shared"] is True
        assert 1 <= int(error.response.headers["retry-after"]) <= 20  # a token every 20 s
        await limited(first)
        assert any(key.startswith(f"{redis_prefix}gateway:rate:api_key:") for key in redis_keys(redis_prefix))


async def test_two_instances_share_one_budget_through_redis(
    db_url: str, tmp_path: Path, fake: FakeLLMServer, redis_prefix: str
) -> None:
    shared = {"redis_url": REDIS_URL, "redis_key_prefix": redis_prefix, "resolve_cache_ttl_seconds": 0}
    async with (
        gateway_app(db_url, tmp_path, fake, **shared) as one,
        second_gateway(db_url, tmp_path, **shared) as two,
    ):
        assert (await set_project(one, gatewayMonthlyBudgetUsd=0.00001)).status_code == 200
        second = openai_client(two)
        await call(second, "cheap")  # about $0.000002: the second instance has read the database's month now
        await gateway(two).limits.settle()
        await call(openai_client(one), "expensive " * 300)  # about $0.00005 (gpt-4o-mini's catalog price)
        await gateway(one).limits.settle()
        # within the second's database refresh: only the shared counter can know what the first one spent
        error = await limited(second)
        assert error.code == "budget_exceeded"
        assert error.response.json()["budget"]["spentUsd"] > 0
        month = datetime.now(UTC).strftime("%Y-%m")
        spend_keys = [k for k in redis_keys(redis_prefix) if ":gateway:spend:" in k]
        assert len(spend_keys) == 1 and spend_keys[0].endswith(":" + month)


async def test_without_redis_each_instance_counts_for_itself(
    db_url: str, tmp_path: Path, fake: FakeLLMServer
) -> None:
    """The documented difference: in process, every instance allows the full rate."""
    async with (
        gateway_app(db_url, tmp_path, fake, gateway_rate_limit_per_minute=1) as one,
        second_gateway(db_url, tmp_path, gateway_rate_limit_per_minute=1) as two,
    ):
        await call(openai_client(one))
        await call(openai_client(two))
        await limited(openai_client(one))


async def test_an_unreachable_redis_fails_open(db_url: str, tmp_path: Path, fake: FakeLLMServer) -> None:
    async with gateway_app(
        db_url,
        tmp_path,
        fake,
        redis_url=DEAD_REDIS_URL,
        gateway_rate_limit_per_minute=1,
        resolve_cache_ttl_seconds=0,
    ) as api:
        client = openai_client(api)
        with capture_logs() as logs:
            for _ in range(3):
                await call(client)  # over the limit of 1, but the limit cannot be checked: calls go through
        warnings = [e for e in logs if e["event"] == "gateway_limits_redis_unavailable"]
        assert len(warnings) == 1 and warnings[0]["log_level"] == "warning"  # once, not per call
        assert warnings[0]["operation"] == "rate_limit"
        metrics = (await api.client.get("/metrics")).text
        assert 'promptops_gateway_limits_fail_open_total{operation="rate_limit"} 3.0' in metrics
        # the budget falls back to what this process knows (the database's month plus its own calls)
        await drained(api)
        assert (await set_project(api, gatewayMonthlyBudgetUsd=0.0000001)).status_code == 200
        error = await limited(client)
        assert error.code == "budget_exceeded"
        metrics = (await api.client.get("/metrics")).text
        assert 'promptops_gateway_limits_fail_open_total{operation="budget_check"} 1.0' in metrics


# --- the API key column --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_rate_limit_migration_up_and_down(kind: str, tmp_path: Path, sqlite_template: Path) -> None:
    url = normalize_database_url(new_database(kind, tmp_path, sqlite_template))

    async def columns() -> set[str]:
        engine = create_async_engine(url)
        async with engine.connect() as conn:
            found = await conn.run_sync(lambda c: {col["name"] for col in inspect(c).get_columns("api_keys")})
        await engine.dispose()
        return found

    assert "rate_limit_per_minute" in asyncio.run(columns())
    downgrade(url, "0009")
    assert "rate_limit_per_minute" not in asyncio.run(columns())
    upgrade(url)
    assert "rate_limit_per_minute" in asyncio.run(columns())


def test_cli_creates_and_lists_a_keys_rate_limit(cli: Cli) -> None:
    created = cli.json("keys", "create", "batch", "--role", "PromptEngineer", "--rate-limit-per-minute", "30")
    assert created["rateLimitPerMinute"] == 30
    cli.ok("keys", "create", "free", "--role", "Viewer", "--rate-limit-per-minute", "0")
    listing = cli.ok("keys", "list").stdout
    assert "30/min" in listing and "none" in listing and "project" in listing  # the admin key: the project's
    cli.fails("keys", "create", "bad", "--role", "Viewer", "--rate-limit-per-minute", "-1", code=2)
