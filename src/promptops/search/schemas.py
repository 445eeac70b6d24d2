"""Wire shapes of search, find-similar and duplicate reports."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from promptops.schemas import ApiOut


class SegmentOut(ApiOut):
    text: str
    match: bool = Field(description="True where the words match the query")


class PromptRefOut(ApiOut):
    prompt_id: str
    name: str
    project_id: str
    project: str = Field(description="The project's name")
    version: int = Field(description="The version that matched (the latest unless allVersions)")
    version_id: str
    description: str
    tags: list[str]
    labels: list[str] = Field(description="Labels pointing at this version")
    model: str
    updated_at: datetime


class SearchHitOut(PromptRefOut):
    score: float = Field(description="Reciprocal-rank-fusion score; 1.0 = first in one ranking")
    text_rank: int | None = Field(description="Position in the full-text ranking (null: no word matched)")
    semantic_rank: int | None = Field(description="Position in the meaning (vector) ranking")
    similarity: float | None = Field(
        description="Cosine similarity of the query and the prompt's text vector"
    )
    snippet: list[SegmentOut] = Field(description="The passage with most query words; matches marked")


class SearchOut(ApiOut):
    query: str
    mode: str
    corrections: dict[str, str] = Field(
        description="Query words no prompt uses, with the closest word prompts do use (searched as well)"
    )
    total: int = Field(description="Prompts found (up to 100 per ranking)")
    items: list[SearchHitOut]


class SimilarOut(PromptRefOut):
    similarity: float = Field(description="Cosine similarity of the two latest versions' text vectors (0-1)")
    duplicate_score: float = Field(
        description="0.4 x similarity + 0.6 x the share of stemmed words the two texts have in common (0-1)"
    )
    duplicate: bool = Field(description="duplicateScore >= 0.26: probably the same instruction reworded")


class SimilarListOut(ApiOut):
    prompt: PromptRefOut
    items: list[SimilarOut]


class DuplicateClusterOut(ApiOut):
    score: float = Field(description="The lowest duplicate score of the pairs that joined this cluster")
    prompts: list[PromptRefOut]


class DuplicatesOut(ApiOut):
    threshold: float
    clusters: list[DuplicateClusterOut]
