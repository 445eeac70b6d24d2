"""Template pack request and response bodies (the pack file itself: :mod:`promptops.packs.format`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from promptops.schemas import ApiModel, ApiOut
from promptops.validation import DbInt, Ref

PACK_NAME_PATTERN = r"^[a-z0-9][a-z0-9._/-]{0,99}$"
PACK_VERSION_PATTERN = r"^[0-9A-Za-z][0-9A-Za-z.+-]{0,39}$"
OnConflict = Literal["skip", "new-version", "fail"]
ItemStatus = Literal["new", "changed", "unchanged", "conflict"]
ItemAction = Literal["create", "newVersion", "skip", "fail", "none"]


class PackPromptRef(ApiModel):
    prompt: Ref = Field(min_length=1, max_length=200, description="Prompt name or id")
    version: DbInt | None = Field(default=None, description="Version number (default: latest)")
    label: str | None = Field(default=None, max_length=63, description="Or the version a label points to")

    @model_validator(mode="after")
    def _one_selector(self) -> PackPromptRef:
        if self.version is not None and self.label is not None:
            raise ValueError("give at most one of 'version' and 'label'")
        return self


class PackDatasetRef(ApiModel):
    dataset: str = Field(min_length=1, max_length=200, description="Dataset name or id")
    version: DbInt | None = Field(default=None, description="Version number (default: latest)")


class PackChangelogEntry(ApiModel):
    version: str = Field(pattern=PACK_VERSION_PATTERN)
    date: str | None = Field(default=None, max_length=40)
    notes: str = Field(default="", max_length=5000)


class PackExportIn(ApiModel):
    name: str = Field(pattern=PACK_NAME_PATTERN, description="Pack name: lowercase, digits, . _ / -")
    version: str = Field(pattern=PACK_VERSION_PATTERN, description="Pack version, e.g. 1.2.0")
    description: str = Field(default="", max_length=2000)
    changelog: list[PackChangelogEntry] = Field(default_factory=list, max_length=100)
    prompts: list[PackPromptRef] = Field(min_length=1, max_length=200)
    datasets: list[PackDatasetRef] = Field(default_factory=list, max_length=20)


class PackInfoOut(ApiOut):
    name: str
    version: str
    content_hash: str
    signer_key_id: str
    trusted: bool = Field(
        description="The signer is one of this organization's keys or a key given as trustKey"
    )


class PackItemOut(ApiOut):
    kind: Literal["prompt", "dataset"]
    name: str
    status: ItemStatus = Field(
        description="new: not in the project; unchanged: same content; changed: last imported from this pack and "
        "not edited since; conflict: the project's own content differs"
    )
    action: ItemAction
    current_version: int | None
    result_version: int | None = Field(description="The version the item has after the import")
    detail: str


class PackImportOut(ApiOut):
    import_id: str | None = Field(description="Null on a dry run")
    dry_run: bool
    on_conflict: OnConflict
    pack: PackInfoOut
    items: list[PackItemOut]
    counts: dict[str, int]


class PackProvenanceOut(ApiOut):
    target_id: str
    kind: str
    item_name: str
    item_hash: str
    pack_name: str
    pack_version: str
    signer_key_id: str
    import_id: str
