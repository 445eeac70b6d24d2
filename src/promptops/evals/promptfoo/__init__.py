"""The promptfoo config import: :mod:`.parse` translates a config and its files into an
:class:`~.parse.ImportPlan`, :mod:`.service` applies it in one transaction
(``POST /api/v1/evals/import/promptfoo``), :mod:`.bundle` gathers a config's files on the client."""

from promptops.evals.promptfoo.parse import (
    DEFAULT_PROVIDER_MAP,
    Finding,
    ImportPlan,
    PromptDraft,
    PromptfooConfigError,
    parse_config,
    translate,
)

__all__ = [
    "DEFAULT_PROVIDER_MAP",
    "Finding",
    "ImportPlan",
    "PromptDraft",
    "PromptfooConfigError",
    "parse_config",
    "translate",
]
