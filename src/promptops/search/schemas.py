"""Wire shapes of search, find-similar and duplicate reports."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from promptops.schemas import ApiModel, ApiOut


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
    warnings: list[str] = Field(
        default_factory=list,
        description="Projects searched by words only, and why (their provider embedding model gave no vector)",
    )


class SimilarOut(PromptRefOut):
    similarity: float = Field(description="Cosine similarity of the two latest versions' text vectors (0-1)")
    duplicate_score: float = Field(
        description="The embedding model's blend of similarity and the share of stemmed words the two texts have "
        "in common (0-1; 0.3 x similarity + 0.7 x shared words for the default model)"
    )
    duplicate: bool = Field(
        description="duplicateScore at or above the model's threshold (0.27 for the default model): probably the "
        "same instruction reworded"
    )


class SimilarListOut(ApiOut):
    prompt: PromptRefOut
    items: list[SimilarOut]


class DuplicateClusterOut(ApiOut):
    score: float = Field(description="The lowest duplicate score of the pairs that joined this cluster")
    prompts: list[PromptRefOut]


class DuplicatesOut(ApiOut):
    threshold: float
    clusters: list[DuplicateClusterOut]


class SearchSettingsIn(ApiModel):
    """Search this project with a provider embedding model instead of the deployment's offline model."""

    connection: str = Field(
        min_length=1,
        max_length=100,
        description="A provider connection of the project that can embed (openai, azure_openai), or 'local'",
    )
    model: str = Field(
        min_length=1, max_length=200, description="The embedding model, e.g. text-embedding-3-small"
    )
    duplicate_score: float | None = Field(
        default=None,
        gt=0.0,
        le=1.0,
        description="Duplicate score from which two prompts are near-duplicates (default 0.55 for provider models)",
    )
    min_similarity: float | None = Field(
        default=None,
        gt=0.0,
        le=1.0,
        description="Lowest cosine reported as similar (default 0.4 for provider models)",
    )


class SearchSettingsOut(ApiOut):
    project_id: str
    source: str = Field(description="'deployment': the server's offline model; 'provider': the project's own")
    connection: str | None
    model: str = Field(description="The embedding model's name")
    duplicate_score: float = Field(description="Duplicate score from which prompts are near-duplicates")
    min_similarity: float = Field(description="Lowest cosine reported as similar")
    dimensions: int | None = Field(default=None, description="The length of the project's vectors")
    documents_waiting: int = Field(description="The project's prompt versions waiting for their vectors")
    updated_by: str | None = None
    updated_at: datetime | None = None
