"""Engine and session factory, declarative Base with naming conventions, SQLite pragmas.

Write transactions go through :meth:`Database.transaction` with ``write=True``. On SQLite (one writer at a
time) that takes a process-wide lock first, so concurrent writers queue in Python instead of failing with
``database is locked``; on PostgreSQL writers run concurrently and serialize on row locks where needed.

Hot read paths (API key lookup, resolving a prompt by label on a cache miss) go through
:meth:`Database.read`: a short read-only unit of work written against a synchronous session, run on one of
two reader threads with a synchronous driver (pysqlite, psycopg): one hand-off per unit of work. Through the
async drivers every statement costs more: several thread hand-offs per statement with aiosqlite (measured
~450 us of CPU per statement against ~40 us), and SQLAlchemy's asyncpg adapter plus a pre-ping per checkout on
PostgreSQL (measured 714 against 1,0xx uncached resolves per second; see bench/resolve.py).
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
    """The URL of ``url``'s database for a synchronous driver (pysqlite, psycopg), or None for an in-memory
    SQLite database (which a second engine would not share)."""
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

    def __init__(self, url: str, *, echo: bool = False) -> None:
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
        self._reader: tuple[Engine, sessionmaker[Session], ThreadPoolExecutor] | None = None
        # SQLite reads are CPU work in this process: two threads, so one slow disk read does not hold up the
        # others (more would only contend for the GIL). PostgreSQL reads wait on the network: more threads.
        self.reader_threads = 2 if self.is_sqlite else 8
        reader_url = sync_database_url(url)
        if reader_url is not None:
            reader = create_engine(reader_url, **self._reader_options())
            if self.is_sqlite:
                event.listen(reader, "connect", _sqlite_reader_pragmas)
            self._reader = (
                reader,
                sessionmaker(reader, expire_on_commit=False, autoflush=False),
                ThreadPoolExecutor(self.reader_threads, thread_name_prefix="promptops-read"),
            )

    def _reader_options(self) -> dict[str, Any]:
        # Autocommit: no BEGIN/ROLLBACK round trips; each hot read is one statement, its own snapshot.
        options: dict[str, Any] = {"isolation_level": "AUTOCOMMIT", "pool_size": self.reader_threads}
        if self.is_sqlite:
            options["connect_args"] = {"check_same_thread": False, "timeout": 10}
        else:
            # No pre-ping round trip per checkout: read() retries once on a dropped connection instead.
            options.update(max_overflow=0, pool_recycle=1800)
        return options

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

        For the hot read paths only; see the module docstring. Objects it returns are detached.
        """
        if self._reader is None:
            async with self._session() as session:
                return await session.run_sync(work)
        _, factory, executor = self._reader

        def run() -> T:
            for attempt in (1, 2):
                try:
                    with factory() as session:
                        return work(session)
                except DBAPIError as error:
                    # A read is safe to repeat; a connection the server dropped is replaced by the pool.
                    if attempt == 2 or not error.connection_invalidated:
                        raise
            raise AssertionError("unreachable")

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
        if self._reader is not None:
            engine, _, executor = self._reader
            executor.shutdown(wait=True)
            engine.dispose()
        await self.engine.dispose()
