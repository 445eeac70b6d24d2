"""One way to build and run the service core, shared by ``promptops serve`` (the app's lifespan) and
``promptops worker``: :func:`build_runtime` wires settings, database, secrets, model caller, run recorder and
job queue; :func:`running` starts and stops them (migrating and bootstrapping first when asked)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from promptops import __version__
from promptops.auth import hardening
from promptops.bootstrap import bootstrap, print_credentials
from promptops.config import Settings
from promptops.crypto import SecretBox, load_master_secret
from promptops.db import Database
from promptops.experiments import service as experiments_service
from promptops.experiments.recorder import ExposureRecorder
from promptops.jobs import build_job_queue
from promptops.jobs.periodic import Scheduler
from promptops.logging import log
from promptops.migrate import upgrade
from promptops.personal import vault as personal_vault
from promptops.privacy.legacy import seal_plaintext as seal_plaintext_personal_data
from promptops.providers.calls import ModelCaller
from promptops.providers.factory import preload_adapters
from promptops.providers.service import rotate_secrets
from promptops.registry import service as registry_service
from promptops.runs.recorder import RunRecorder
from promptops.runtime import Runtime
from promptops.search import embed as search_embed
from promptops.search import spaces as search_spaces
from promptops.search.index import refresh_embeddings as search_refresh_embeddings
from promptops.search.index import stale_embeddings as search_stale_embeddings
from promptops.search.vectors import indexes as search_indexes
from promptops.templates import limits as template_limits


def build_runtime(settings: Settings) -> Runtime:
    """Everything a server or worker process holds, configured from ``settings`` (nothing started yet)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.effective_database_url, read_pool_size=settings.database_read_pool_size)
    box = SecretBox(load_master_secret(settings.secret_key, settings.data_dir), settings.previous_secret_keys)
    personal_vault.configure(settings.effective_database_url, box)  # per-subject keys of personal data
    recorder = RunRecorder(db)
    caller = ModelCaller(settings, db, box, recorder, ttl=settings.resolve_cache_ttl_seconds)
    runtime = Runtime(
        settings=settings, db=db, box=box, recorder=recorder, caller=caller, exposures=ExposureRecorder(db)
    )
    runtime.jobs = build_job_queue(runtime)
    registry_service.resolve_cache.ttl = settings.resolve_cache_ttl_seconds
    experiments_service.running_cache.ttl = settings.resolve_cache_ttl_seconds
    runtime.api_key_cache.ttl = settings.api_key_cache_ttl_seconds
    hardening.configure(settings)  # password policy, login lockout, API key expiry policy
    template_limits.configure(settings)  # these settings' PROMPTOPS_TEMPLATE_* values, not the environment's
    search_embed.configure(settings.search_embeddings)  # the search embedding model (minilm or static)
    search_spaces.configure(runtime.caller)  # projects' own provider embedding models are called through it
    search_spaces.forget()
    search_indexes.configure(settings.data_dir / "search-index")  # vector indexes persisted between runs
    return runtime


async def _refresh_search_vectors(db: Database) -> int:
    """Embed again the search documents another model or recipe made (a model change can take minutes for a
    large registry; search meanwhile leaves those documents out of semantic results)."""
    log.info("search_vectors_refresh_started", versions=await search_stale_embeddings(db))
    try:
        done = await search_refresh_embeddings(db)
    except Exception as exc:  # logged; the next start tries again
        log.error("search_vectors_refresh_failed", error_type=type(exc).__name__, error=str(exc))
        raise
    log.info("search_vectors_refreshed", versions=done)
    return done


KEEP_EMBEDDED_SECONDS = 3.0  # how often the background embedding looks for versions other processes saved
FULL_LOOK_EVERY = 100  # every this many looks (about 5 minutes), for vectors of a model their project left
RETRY_SECONDS = (
    10.0,
    600.0,
)  # a project whose provider model failed is tried again after 10 s, doubling to 10 min


async def _keep_search_vectors(runtime: Runtime) -> None:
    """Embed, as they come, the search documents saved waiting for their vectors (a project's provider model is
    never called inside a write), woken by writes of this process and every few seconds for other processes'.
    A project whose provider fails is tried again later with a growing delay; the others are not held up."""
    wakeup = search_spaces.wakeup_event()
    if runtime.search_refresh is not None:  # the start-up refresh goes first
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await runtime.search_refresh
    loop = asyncio.get_running_loop()
    retry: dict[str, tuple[float, float]] = {}  # project -> (when, delay)
    looks = 0
    while True:
        looks += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wakeup.wait(), KEEP_EMBEDDED_SECONDS)
        if wakeup.is_set():
            wakeup.clear()
            await asyncio.sleep(0.2)  # the write that woke us commits
        now = loop.time()
        failed: set[str] = set()
        try:
            done = await search_refresh_embeddings(
                runtime.db,
                # now and then every document, not only those waiting: a save in another process that had
                # not yet seen a project's new model (spaces.SETTINGS_TTL) wrote vectors of the old one
                pending_only=looks % FULL_LOOK_EVERY != 0,
                skip={p for p, (when, _) in retry.items() if when > now},
                failed=failed,
            )
        except Exception as exc:  # the database, say: logged, tried again at the next look
            log.error("search_vectors_embedding_failed", error_type=type(exc).__name__, error=str(exc))
            continue
        for project_id in failed:
            delay = min(retry.get(project_id, (0.0, RETRY_SECONDS[0] / 2))[1] * 2, RETRY_SECONDS[1])
            retry[project_id] = (now + delay, delay)
        for project_id in [p for p in retry if p not in failed and retry[p][0] <= now]:
            del retry[project_id]
        if done:
            log.info("search_vectors_embedded", versions=done)


async def _bring_up_to_date(runtime: Runtime, *, migrate: bool) -> None:
    """Start-up writes: migrations, the first admin of a fresh installation, stored secrets re-encrypted with the
    current key, personal data of older versions sealed, versions missing from the search index indexed (each
    finds nothing to do the next time)."""
    settings, db = runtime.settings, runtime.db
    if migrate:
        await asyncio.to_thread(upgrade, settings.effective_database_url)
    if settings.bootstrap:
        created = await bootstrap(runtime)
        if created is not None:
            print_credentials(created, settings)
    async with db.transaction(write=True) as session:
        rotated = await rotate_secrets(session, runtime.box)
    sealed_users, sealed_feedback = await seal_plaintext_personal_data(db)
    if sealed_users or sealed_feedback:
        log.info("personal_data_sealed", users=sealed_users, feedback=sealed_feedback)
    if rotated:
        log.info("secrets_rotated", count=rotated, key_id=runtime.box.current_kid)
    indexed = await registry_service.index_missing_versions(db)
    if indexed:
        log.info("search_index_backfilled", versions=indexed)


async def prepare(settings: Settings) -> None:
    """What one process does before several processes serve the same database (``promptops serve --workers``):
    make the data folder's secret key, migrate the database, bootstrap a fresh installation and do the start-up
    writes, so the workers starting together find it all done instead of racing to do it."""
    runtime = build_runtime(settings)
    try:
        await _bring_up_to_date(runtime, migrate=True)
    finally:
        await runtime.caller.aclose()
        await runtime.db.dispose()


@asynccontextmanager
async def running(runtime: Runtime, *, migrate: bool) -> AsyncIterator[Runtime]:
    """Start the runtime (migrate, bootstrap a fresh installation, rotate secrets, start the run recorder and
    the job queue); stop and close everything on exit."""
    settings, db = runtime.settings, runtime.db
    await _bring_up_to_date(runtime, migrate=migrate)
    if await search_stale_embeddings(db):  # vectors from another model or recipe: embedded again meanwhile
        runtime.search_refresh = asyncio.create_task(_refresh_search_vectors(db))
    if settings.run_workers:  # where background work runs (API-only replicas leave it to those processes)
        runtime.search_keeper = asyncio.create_task(_keep_search_vectors(runtime))
    preload_adapters()
    runtime.recorder.start()
    runtime.exposures.start()
    await runtime.jobs.start()
    if settings.scheduler and settings.run_workers:
        runtime.scheduler = Scheduler(runtime)
        await runtime.scheduler.start()
    log.info("started", database=db.dialect, version=__version__)
    # Move everything built at start-up out of the collector's view: full collections then scan only
    # request garbage, which removes tens-of-milliseconds pauses from the latency tail.
    gc.collect()
    gc.freeze()
    try:
        yield runtime
    finally:
        if runtime.search_keeper is not None:
            runtime.search_keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await runtime.search_keeper
            runtime.search_keeper = None
        if runtime.search_refresh is not None:
            runtime.search_refresh.cancel()
            # cancelled, or failed earlier (logged when it happened): neither stops the shutdown
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await runtime.search_refresh
            runtime.search_refresh = None
        if runtime.scheduler is not None:
            await runtime.scheduler.stop()
            runtime.scheduler = None
        await runtime.jobs.stop()
        await runtime.recorder.stop()
        await runtime.exposures.stop()
        search_indexes.save_all()
        await runtime.caller.aclose()
        await db.dispose()
