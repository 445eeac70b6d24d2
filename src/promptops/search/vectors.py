"""Approximate-nearest-neighbour indexes (usearch HNSW), one per project, over the latest version of each
prompt that is not archived.

The ``search_documents`` rows are the truth; an index is a cache of their vectors that catches up with them
before every query: rows changed since the index's watermark are added, replaced or removed. The watermark is
the time of the previous read less a look-back (LOOK_BACK, for transactions that commit after they stamped
their rows, and for writers' clocks that differ a little), so a read costs the changes of about that long. So a write made by any process (server, worker, gateway) is visible to
the next search everywhere, and a stale index on disk (saved with its watermark) is brought up to date when it
is loaded instead of being rebuilt. A missing or unreadable file is rebuilt from the rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession
from usearch.index import Index

from promptops.db import utcnow
from promptops.logging import log
from promptops.search.embed import embedder, from_bytes
from promptops.search.models import SearchDocument
from promptops.search.spaces import Space

LOOK_BACK = timedelta(seconds=30)
SAVE_EVERY = 500  # changes applied since the last save


@dataclass
class ProjectIndex:
    project_id: str
    label: str  # the space (model) whose vectors it holds
    index: Index | None  # made with the first vector (a provider model's dimensions are known from it)
    watermark: datetime | None = None
    # changed_at of each version applied within the look-back, so a row is not applied twice
    applied: dict[int, datetime] = field(default_factory=dict)
    unsaved: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def _fits(self, dimensions: int) -> Index | None:
        if self.index is None:
            self.index = _new_index(dimensions)
        if self.index.ndim != dimensions:  # a model that changed its dimensions under the same name
            log.warning("search_vector_dimensions_differ", project_id=self.project_id, dimensions=dimensions)
            return None
        return self.index

    def put(self, key: int, vector: NDArray[np.float32]) -> None:
        index = self._fits(len(vector))
        if index is None:
            return
        if index.contains(key):
            index.remove(key)
        index.add(key, vector)

    def add_many(self, keys: NDArray[np.uint64], matrix: NDArray[np.float32]) -> None:
        index = self._fits(matrix.shape[1])
        if index is not None:
            index.add(keys, matrix, threads=2)

    def drop(self, key: int) -> None:
        if self.index is not None and self.index.contains(key):
            self.index.remove(key)

    def __len__(self) -> int:
        return 0 if self.index is None else len(self.index)

    def search(self, vector: NDArray[np.float32], count: int) -> list[tuple[int, float]]:
        if self.index is None or len(self.index) == 0 or count <= 0 or len(vector) != self.index.ndim:
            return []
        matches = self.index.search(vector, min(count, len(self.index)))
        return [(int(k), float(1.0 - d)) for k, d in zip(matches.keys, matches.distances, strict=True)]


def _new_index(dimensions: int) -> Index:
    return Index(ndim=dimensions, metric="ip", dtype="f16")


class VectorIndexes:
    """Every project's index in this process; ``directory`` (set at start-up) persists them between runs."""

    def __init__(self) -> None:
        self.directory: Path | None = None
        self._projects: dict[tuple[str, str], ProjectIndex] = {}
        self._guard = threading.Lock()

    def configure(self, directory: Path | None) -> None:
        self.directory = directory
        self._projects.clear()

    def _meta(self, project_id: str) -> Path | None:
        return None if self.directory is None else self.directory / f"{project_id}.json"

    def _load(self, project_id: str, space: Space) -> ProjectIndex:
        meta_file = self._meta(project_id)
        if meta_file is not None and meta_file.exists():
            try:
                meta = json.loads(meta_file.read_text())
                # the index file the metadata names (written before it); an older version named it by project
                name = meta.get("file", f"{project_id}.usearch")
                index = Index.restore(str(meta_file.with_name(Path(name).name)))
                if index is not None and meta.get("model") == space.label:
                    return ProjectIndex(
                        project_id, space.label, index, datetime.fromisoformat(meta["watermark"])
                    )
            except (OSError, ValueError, KeyError, RuntimeError) as exc:
                log.warning("search_index_unreadable", project_id=project_id, error_type=type(exc).__name__)
        return ProjectIndex(
            project_id, space.label, _new_index(embedder().dimensions) if space.local else None
        )

    def save(self, project: ProjectIndex) -> None:
        """Write the index under a name of its own, then replace the metadata that names it: processes that
        share the folder (``promptops serve --workers N``) never mix one's index with another's watermark, and
        a reader sees a whole index and its own watermark, or no file (and rebuilds from the rows)."""
        meta_file = self._meta(project.project_id)
        if meta_file is None or project.watermark is None or project.index is None:
            return
        meta_file.parent.mkdir(parents=True, exist_ok=True)
        token = uuid.uuid4().hex
        index_file = meta_file.with_name(f"{project.project_id}.{token}.usearch")
        project.index.save(str(index_file))
        meta = {
            "model": project.label,
            "dimensions": project.index.ndim,
            "watermark": project.watermark.isoformat(),
            "size": len(project.index),
            "file": index_file.name,
        }
        tmp = meta_file.with_name(f"{meta_file.name}.{token}.tmp")
        tmp.write_text(json.dumps(meta))
        tmp.replace(meta_file)
        project.unsaved = 0
        self._clean(project.project_id, keep=index_file)

    def _clean(self, project_id: str, keep: Path) -> None:
        """Remove the project's index files that the metadata no longer names (and metadata a crash left half
        written), once older than a minute: another process may have just written one and be about to name it."""
        meta_file = self._meta(project_id)
        if meta_file is None:
            return
        with contextlib.suppress(OSError, ValueError):
            named = json.loads(meta_file.read_text()).get("file")
            cutoff = time.time() - 60
            leftovers = [
                *meta_file.parent.glob(f"{project_id}.*usearch"),
                *meta_file.parent.glob(f"{meta_file.name}.*.tmp"),
            ]
            for path in leftovers:
                if path.name not in (named, keep.name) and path.stat().st_mtime < cutoff:
                    path.unlink(missing_ok=True)

    def save_all(self) -> None:
        for project in list(self._projects.values()):
            if project.unsaved:
                with contextlib.suppress(OSError):
                    self.save(project)

    async def current(self, session: AsyncSession, project_id: str, space: Space) -> ProjectIndex:
        """The project's index of its space's vectors, caught up with the rows this session can see (another
        space's index, after a model change, is replaced)."""
        key = (str(session.get_bind().engine.url), project_id)
        with self._guard:
            project = self._projects.get(key)
            if project is None or project.label != space.label:
                project = self._projects[key] = self._load(project_id, space)
        async with project.lock:
            await self._catch_up(session, project)
        return project

    async def _catch_up(self, session: AsyncSession, project: ProjectIndex) -> None:
        doc = SearchDocument
        started = utcnow()
        since = project.watermark
        where = [doc.project_id == project.project_id]
        if since is not None:
            where.append(doc.changed_at >= since)
        stmt = select(doc.vector_key, doc.changed_at, doc.latest, doc.archived).where(and_(*where))
        if since is None:  # a build from nothing reads only what goes in
            stmt = stmt.where(doc.latest.is_(True), doc.archived.is_(False))
        rows = (await session.execute(stmt)).all()
        fresh = [r for r in rows if project.applied.get(r.vector_key) != r.changed_at]
        wanted = [r.vector_key for r in fresh if r.latest and not r.archived]
        vectors: dict[int, bytes] = {}
        label = project.label
        for start in range(0, len(wanted), 2000):
            chunk = wanted[start : start + 2000]
            found = await session.execute(  # a vector of another model waits for the refresh (never mixed in)
                select(doc.vector_key, doc.embedding).where(
                    doc.project_id == project.project_id,
                    doc.vector_key.in_(chunk),
                    doc.embedding_model == label,
                )
            )
            vectors.update({k: e for k, e in found})
        if since is None and vectors:
            keys = np.array(list(vectors), dtype=np.uint64)
            matrix = np.stack([from_bytes(v) for v in vectors.values()])
            project.add_many(keys, matrix)
        else:
            for row in fresh:
                if row.latest and not row.archived and row.vector_key in vectors:
                    project.put(row.vector_key, from_bytes(vectors[row.vector_key]))
                else:
                    project.drop(row.vector_key)
        # Every row changed before (this read - LOOK_BACK) was committed by the time of this read, and so has been
        # seen: the next read starts there (a window of recent changes, not the whole history).
        settled = started - LOOK_BACK
        project.watermark = settled if project.watermark is None else max(project.watermark, settled)
        horizon = project.watermark
        project.applied = {
            k: t
            for k, t in {**project.applied, **{r.vector_key: r.changed_at for r in fresh}}.items()
            if t >= horizon
        }
        project.unsaved += len(fresh)
        if since is None or project.unsaved >= SAVE_EVERY:
            with contextlib.suppress(OSError):
                self.save(project)


indexes = VectorIndexes()
