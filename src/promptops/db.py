"""Engine and session factory, declarative Base with naming conventions, SQLite pragmas.

Write transactions go through :meth:`Database.transaction` with ``write=True``. On SQLite (one writer at a
time) that takes a process-wide lock first, so concurrent writers queue in Python instead of failing with
``database is locked``; on PostgreSQL writers run concurrently and serialize on row locks where needed.

Hot read paths (API key lookup, resolving a prompt by label on a cache miss) go through
:meth:`Database.read`: a short read-only unit of work written against a synchronous session. On a SQLite
file it runs on one of two reader threads with pysqlite: one hand-off per unit of work, where aiosqlite costs
several per statement (measured at 64 concurrent reads: 338 against 941 us of CPU per resolve). On PostgreSQL
it runs through a second asyncpg engine in autocommit without a pre-ping per checkout (381 us, against 492
with BEGIN/ROLLBACK and 724 on psycopg reader threads). See bench/resolve.py for the request-level figures.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import JSON, DateTime, MetaData, create_engine, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")


T = TypeVar("T")


def utcnow() -> datetime:
    return datetime.now(UTC)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


# asyncpg-only URL options that libpq (psycopg) would reject.
_ASYNCPG_ONLY = frozenset(
    {
        "prepared_statement_cache_size",
        "statement_cache_size",
        "command_timeout",
        "max_cacheable_statement_size",
    }
)


def sync_database_url(url: str) -> URL | None:
    """The URL of ``url``'s database for a synchronous driver (pysqlite; psycopg/libpq for the job queue), or
    None for an in-memory SQLite database (which a second engine would not share)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if not database or database == ":memory:" or database.startswith("file:"):
            return None
        return parsed.set(drivername="sqlite")
    query = {k: v for k, v in parsed.query.items() if k not in _ASYNCPG_ONLY}
    if "ssl" in query:
        query.setdefault("sslmode", query.pop("ssl"))
    return parsed.set(drivername="postgresql+psycopg", query=query)


def _sqlite_reader_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA query_only=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


class Database:
    """One engine and session factory for the process, plus the SQLite writer lock."""

    def __init__(self, url: str, *, echo: bool = False, read_pool_size: int = 20) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": 10}
        else:
            kwargs.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        self._write_lock = asyncio.Lock()
        # Database.read: reader threads with pysqlite on a SQLite file; on PostgreSQL a second asyncpg engine in
        # autocommit without pre-ping; on an in-memory SQLite database the main engine.
        self._threads: tuple[Engine, sessionmaker[Session], ThreadPoolExecutor] | None = None
        self._reads: async_sessionmaker[AsyncSession] = self.sessionmaker
        self._read_slots = asyncio.Semaphore(read_pool_size)
        self.read_engine: AsyncEngine | None = None
        if not self.is_sqlite:
            # Autocommit: no BEGIN/ROLLBACK round trips (a hot read is one statement, its own snapshot). No
            # pre-ping round trip per checkout: read() retries once on a dropped connection instead.
            self.read_engine = create_async_engine(
                url,
                echo=echo,
                isolation_level="AUTOCOMMIT",
                pool_size=read_pool_size,
                max_overflow=0,  # overflow connections are opened and closed under load: connect storms
                pool_recycle=1800,
            )
            self._reads = async_sessionmaker(self.read_engine, expire_on_commit=False, autoflush=False)
        elif (reader_url := sync_database_url(url)) is not None:
            # Reads are CPU work in this process: two threads, so one slow disk read does not hold up the
            # others; more would only contend for the GIL.
            reader = create_engine(
                reader_url,
                isolation_level="AUTOCOMMIT",
                pool_size=2,
                connect_args={"check_same_thread": False, "timeout": 10},
            )
            event.listen(reader, "connect", _sqlite_reader_pragmas)
            self._threads = (
                reader,
                sessionmaker(reader, expire_on_commit=False, autoflush=False),
                ThreadPoolExecutor(2, thread_name_prefix="promptops-read"),
            )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def transaction(self, *, write: bool = False) -> AsyncIterator[AsyncSession]:
        """A session in one transaction: committed on success, rolled back on any exception."""
        if write and self.is_sqlite:
            async with self._write_lock, self._session() as session:
                yield session
        else:
            async with self._session() as session:
                yield session

    async def read(self, work: Callable[[Session], T]) -> T:
        """Run ``work(session)``: a short read-only unit of work (a few indexed lookups) on a sync session.

        For the hot read paths only; see the module docstring. Objects it returns are detached. A read is
        safe to repeat, so one whose connection the server had dropped runs once more on a fresh one.
        """
        for attempt in (1, 2):
            try:
                return await self._read_once(work)
            except DBAPIError as error:
                if attempt == 2 or not error.connection_invalidated:
                    raise
        raise AssertionError("unreachable")

    async def _read_once(self, work: Callable[[Session], T]) -> T:
        if self._threads is None:
            # Wait here, in arrival order, rather than in the pool: a request woken there can find its
            # connection taken by a newcomer and go to the back of the queue again (p99 0.8-1.4 s measured).
            async with self._read_slots, self._reads() as session:
                return await session.run_sync(work)
        _, factory, executor = self._threads

        def run() -> T:
            with factory() as session:
                return work(session)

        return await asyncio.get_running_loop().run_in_executor(executor, run)

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessionmaker() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    async def dispose(self) -> None:
        if self._threads is not None:
            engine, _, executor = self._threads
            executor.shutdown(wait=True)
            engine.dispose()
        if self.read_engine is not None:
            await self.read_engine.dispose()
        await self.engine.dispose()
