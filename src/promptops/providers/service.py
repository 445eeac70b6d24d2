"""Provider connections, the model catalog and prices: the configuration side of the provider layer."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from promptops.auth.principal import Principal, system_principal
from promptops.crypto import SecretBox
from promptops.db import utcnow
from promptops.errors import Conflict, NotFound, ValidationProblem
from promptops.governance import audit
from promptops.ids import new_id
from promptops.providers.base import ConnectionConfig
from promptops.providers.models import ModelPrice, ProviderConnection
from promptops.providers.schemas import ConnectionIn, ConnectionUpdate, PriceIn
from promptops.providers.ssrf import check_base_url
from promptops.tenancy.service import scoped

LOCAL_NAME = "local"
LOCAL_MODEL = "gemma-3-270m"
LOCAL_CONTEXT = 8192  # tokens; the catalog lists the same window


@dataclass(frozen=True)
class ResolvedConnection:
    """A connection ready to call: the decrypted config plus limits. Never serialize ``config.api_key``."""

    id: str | None
    name: str
    type: str
    config: ConnectionConfig
    default_params: dict[str, Any] = field(default_factory=dict)
    allowed_models: tuple[str, ...] = ()
    max_concurrency: int = 2
    version: str = "builtin"  # changes whenever the connection changes, so cached adapters are rebuilt


LOCAL_CONNECTION = ResolvedConnection(
    id=None,
    name=LOCAL_NAME,
    type="local",
    config=ConnectionConfig(
        type="local", timeout_seconds=300.0, max_retries=0, options={"n_ctx": LOCAL_CONTEXT}
    ),
    allowed_models=(LOCAL_MODEL,),
    max_concurrency=64,  # requests queue on the model's single worker thread anyway
)
# Built in too: answers with the prompt it was sent (promptfoo's ``echo`` provider), free, no network.
ECHO_NAME = "echo"
ECHO_CONNECTION = ResolvedConnection(
    id=None, name=ECHO_NAME, type="echo", config=ConnectionConfig(type="echo"), max_concurrency=64
)


def _associated(connection_id: str) -> str:
    return f"provider_connections:{connection_id}:api_key"


def _hint(key: str) -> str:
    return key[-4:] if len(key) >= 12 else ""


async def list_connections(session: AsyncSession, principal: Principal) -> list[ProviderConnection]:
    rows = await session.execute(
        scoped(select(ProviderConnection), ProviderConnection, principal).order_by(ProviderConnection.name)
    )
    return list(rows.scalars())


async def get_connection(session: AsyncSession, principal: Principal, name: str) -> ProviderConnection:
    if name == LOCAL_NAME:
        raise ValidationProblem(
            "'local' is the built-in embedded model; it is configured by the operator, not through the API",
            code="builtin_connection",
        )
    row = (
        await session.execute(
            scoped(select(ProviderConnection), ProviderConnection, principal).where(
                ProviderConnection.name == name
            )
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"Provider connection {name!r} not found", code="connection_not_found")
    return row


async def create_connection(
    session: AsyncSession, principal: Principal, body: ConnectionIn, box: SecretBox, allowed_hosts: list[str]
) -> ProviderConnection:
    """Add a connection; the base URL passes the SSRF guard and the key is stored encrypted only."""
    if body.base_url:
        await check_base_url(body.base_url, allowed_hosts)
    exists = (
        await session.execute(
            scoped(select(ProviderConnection.id), ProviderConnection, principal).where(
                ProviderConnection.name == body.name
            )
        )
    ).first()
    if exists is not None:
        raise Conflict(f"Provider connection {body.name!r} already exists", code="connection_exists")
    now = utcnow()
    row = ProviderConnection(
        id=new_id("connection"),
        project_id=principal.project_id,
        name=body.name,
        type=body.type,
        base_url=body.base_url,
        api_version=body.api_version,
        default_params=body.default_params,
        allowed_models=body.allowed_models,
        options=body.options,
        max_concurrency=body.max_concurrency,
        timeout_seconds=body.timeout_seconds,
        max_retries=body.max_retries,
        created_by=principal.id,
        created_at=now,
        updated_at=now,
    )
    if body.api_key is not None:
        row.api_key_ciphertext = box.encrypt(body.api_key, _associated(row.id))
        row.api_key_hint = _hint(body.api_key)
    session.add(row)
    await session.flush()
    await audit.record(session, principal, "ProviderConnectionCreated", data=_audit_view(row))
    return row


def _audit_view(row: ProviderConnection) -> dict[str, Any]:
    # Deliberately no key material: only whether one is set.
    return {
        "connectionId": row.id,
        "name": row.name,
        "type": row.type,
        "baseUrl": row.base_url,
        "hasApiKey": row.api_key_ciphertext is not None,
        "allowedModels": row.allowed_models,
        "maxConcurrency": row.max_concurrency,
    }


async def update_connection(
    session: AsyncSession,
    principal: Principal,
    name: str,
    body: ConnectionUpdate,
    box: SecretBox,
    allowed_hosts: list[str],
) -> ProviderConnection:
    row = await get_connection(session, principal, name)
    changed: list[str] = []
    if body.base_url is not None and body.base_url != row.base_url:
        await check_base_url(body.base_url, allowed_hosts)
        row.base_url = body.base_url
        changed.append("baseUrl")
    if body.api_key is not None:
        row.api_key_ciphertext = box.encrypt(body.api_key, _associated(row.id))
        row.api_key_hint = _hint(body.api_key)
        changed.append("apiKey")
    for attr, key in (
        ("api_version", "apiVersion"),
        ("default_params", "defaultParams"),
        ("allowed_models", "allowedModels"),
        ("options", "options"),
        ("max_concurrency", "maxConcurrency"),
        ("timeout_seconds", "timeoutSeconds"),
        ("max_retries", "maxRetries"),
    ):
        value = getattr(body, attr)
        if value is not None and value != getattr(row, attr):
            setattr(row, attr, value)
            changed.append(key)
    if changed:
        row.updated_at = utcnow()
        await session.flush()
        await audit.record(
            session, principal, "ProviderConnectionUpdated", data={**_audit_view(row), "changed": changed}
        )
    return row


async def delete_connection(session: AsyncSession, principal: Principal, name: str) -> None:
    row = await get_connection(session, principal, name)
    await session.delete(row)
    await audit.record(session, principal, "ProviderConnectionDeleted", data=_audit_view(row))


def resolved(row: ProviderConnection, box: SecretBox) -> ResolvedConnection:
    key = box.decrypt(row.api_key_ciphertext, _associated(row.id)) if row.api_key_ciphertext else None
    return ResolvedConnection(
        id=row.id,
        name=row.name,
        type=row.type,
        config=ConnectionConfig(
            type=row.type,  # type: ignore[arg-type]
            base_url=row.base_url,
            api_key=key,
            api_version=row.api_version,
            timeout_seconds=row.timeout_seconds,
            max_retries=row.max_retries,
            options=dict(row.options or {}),
        ),
        default_params=dict(row.default_params or {}),
        allowed_models=tuple(row.allowed_models or ()),
        max_concurrency=row.max_concurrency,
        version=f"{row.id}:{row.updated_at.isoformat()}",
    )


async def load_connection(
    session: AsyncSession, principal: Principal, name: str, box: SecretBox
) -> ResolvedConnection:
    """The connection named ``name`` in the principal's project (``local`` is built in)."""
    if name == LOCAL_NAME:
        return LOCAL_CONNECTION
    if name == ECHO_NAME:
        return ECHO_CONNECTION
    return resolved(await get_connection(session, principal, name), box)


async def rotate_secrets(session: AsyncSession, box: SecretBox) -> int:
    """Re-encrypt every stored key that uses an older master key (audited per project); returns the count."""
    rows = (
        await session.execute(
            select(ProviderConnection).where(ProviderConnection.api_key_ciphertext.is_not(None))
        )
    ).scalars()
    rotated: dict[str, list[str]] = {}
    for row in rows:
        assert row.api_key_ciphertext is not None
        if box.needs_rotation(row.api_key_ciphertext):
            plain = box.decrypt(row.api_key_ciphertext, _associated(row.id))
            row.api_key_ciphertext = box.encrypt(plain, _associated(row.id))
            rotated.setdefault(row.project_id, []).append(row.name)
    for project_id, names in rotated.items():
        await audit.record(
            session,
            system_principal(project_id, ""),
            "SecretsRotated",
            data={"connections": sorted(names), "keyId": box.current_kid},
        )
    return sum(len(names) for names in rotated.values())


# --- catalog and prices -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Price:
    input_per_1m: float
    output_per_1m: float
    context_window: int | None
    source: str


@lru_cache(maxsize=1)
def catalog() -> dict[tuple[str, str], Price]:
    data = json.loads((resources.files("promptops.providers") / "catalog.json").read_text())
    return {
        (m["provider"], m["model"]): Price(
            m["inputPer1M"], m["outputPer1M"], m.get("contextWindow"), "catalog"
        )
        for m in data["models"]
    }


def _catalog_provider(connection_type: str) -> str:
    return "openai" if connection_type == "azure_openai" else connection_type


def catalog_context_window(model_config: dict[str, Any]) -> int | None:
    """The context window the built-in catalog gives a model config (``provider`` is a connection type or
    absent; without it the model name must be unambiguous). Works offline: the CLI lints files with it."""
    model, provider = model_config.get("model"), model_config.get("provider")
    if not isinstance(model, str) or not model:
        return None
    prices = catalog()
    if not isinstance(provider, str) or not provider:
        windows = {p.context_window for (_, m), p in prices.items() if m == model and p.context_window}
        return windows.pop() if len(windows) == 1 else None
    price = prices.get((_catalog_provider(provider), model))
    return price.context_window if price else None


async def context_window_for(
    session: AsyncSession, principal: Principal, model_config: dict[str, Any]
) -> int | None:
    """The context window of a version's model: the project's price override (by connection name, then the
    connection's type), else the catalog."""
    model, provider = model_config.get("model"), model_config.get("provider")
    if not isinstance(model, str) or not model or not isinstance(provider, str) or not provider:
        return catalog_context_window(model_config)
    connection_type = provider
    if provider != LOCAL_NAME:
        found = (
            await session.execute(
                scoped(select(ProviderConnection.type), ProviderConnection, principal).where(
                    ProviderConnection.name == provider
                )
            )
        ).scalar_one_or_none()
        connection_type = found or provider
    overrides = {
        row.provider: row.context_window
        for row in (
            await session.execute(
                scoped(select(ModelPrice), ModelPrice, principal).where(
                    ModelPrice.model == model, ModelPrice.provider.in_([provider, connection_type])
                )
            )
        ).scalars()
    }
    window = overrides.get(provider) or overrides.get(connection_type)
    if window:
        return window
    return catalog_context_window({"model": model, "provider": connection_type})


async def price_for(
    session: AsyncSession, project_id: str, connection: ResolvedConnection, model: str
) -> Price | None:
    """The project's override (by connection name, then type), else the catalog price (by type)."""
    overrides = (
        (
            await session.execute(
                select(ModelPrice).where(
                    ModelPrice.project_id == project_id,
                    ModelPrice.model == model,
                    ModelPrice.provider.in_([connection.name, connection.type]),
                )
            )
        )
        .scalars()
        .all()
    )
    by_provider = {o.provider: o for o in overrides}
    override = by_provider.get(connection.name) or by_provider.get(connection.type)
    if override is not None:
        return Price(override.input_per_1m, override.output_per_1m, override.context_window, "project")
    return catalog().get((_catalog_provider(connection.type), model))


def cost_usd(price: Price | None, input_tokens: int, output_tokens: int) -> float:
    if price is None:
        return 0.0
    return round((input_tokens * price.input_per_1m + output_tokens * price.output_per_1m) / 1_000_000, 10)


async def list_models(session: AsyncSession, principal: Principal) -> list[tuple[str, str, Price]]:
    """Catalog models with the project's overrides applied, plus models only the project prices."""
    merged = {key: price for key, price in catalog().items()}
    rows = (await session.execute(scoped(select(ModelPrice), ModelPrice, principal))).scalars()
    for row in rows:
        merged[(row.provider, row.model)] = Price(
            row.input_per_1m, row.output_per_1m, row.context_window, "project"
        )
    return [(p, m, price) for (p, m), price in sorted(merged.items())]


async def set_price(session: AsyncSession, principal: Principal, body: PriceIn) -> ModelPrice:
    context_window = body.context_window
    if context_window is None:
        # Keep the catalog's window when the override only changes prices.
        known = catalog().get((body.provider, body.model))
        context_window = known.context_window if known else None
    row = await session.get(ModelPrice, (principal.project_id, body.provider, body.model))
    previous = None
    if row is None:
        row = ModelPrice(
            project_id=principal.project_id,
            provider=body.provider,
            model=body.model,
            input_per_1m=body.input_per_1m,
            output_per_1m=body.output_per_1m,
            context_window=context_window,
            updated_at=utcnow(),
        )
        session.add(row)
    else:
        previous = {"inputPer1M": row.input_per_1m, "outputPer1M": row.output_per_1m}
        row.input_per_1m, row.output_per_1m = body.input_per_1m, body.output_per_1m
        row.context_window = context_window
        row.updated_at = utcnow()
    await session.flush()
    await audit.record(
        session,
        principal,
        "ModelPriceSet",
        data={
            "provider": body.provider,
            "model": body.model,
            "inputPer1M": body.input_per_1m,
            "outputPer1M": body.output_per_1m,
            "contextWindow": context_window,
            "previous": previous,
        },
    )
    return row
