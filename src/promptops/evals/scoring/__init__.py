"""Evaluation scorers: each scores one model answer in [0, 1] and passes at its threshold; a case's score is
the weighted mean of its scorers (weight 0 = informative only).

Scorer types (``ScorerSpec.type``; names follow promptfoo's assertion types where one exists). ``value``
falls back to the case's expected output where marked *(ref)*; any type may be written ``not-<type>`` (the
same as ``negate: true``). Default threshold 1 unless given.

==================  =============================================================================================
equals (ref)        output == value, surrounding white space ignored (``ignore_case``); JSON values compared as
                    JSON
contains (ref)      output contains value; ``icontains`` ignoring case
contains-any        output contains one of value (list or comma-separated string); ``icontains-any``
contains-all        output contains all of value; ``icontains-all``
starts-with (ref)   output (leading white space ignored) starts with value
regex               output matches the RE2 (linear-time) regex value; ``options.flags`` of ``ims``
is-json             whole output is JSON (one ``` fence allowed); optional value = JSON schema
contains-json       output contains a JSON object/array; optional value = JSON schema
json-schema         output is JSON valid against the Draft 2020-12 schema value
json-path           alias ``jsonpath-equals``: ``options.path`` (RFC 9535 JSONPath) selects value (ref, read as
                    JSON); with neither, the path must match
numeric (ref)       the first (``options.pick: last``) number in the output is within ``options.tolerance`` /
                    ``options.relative_tolerance`` of value
levenshtein (ref)   normalised Levenshtein similarity, threshold 0.8; ``options.max_distance`` = promptfoo's
                    edit-distance limit
similar (ref)       embedding cosine similarity, threshold 0.8; ``options.model`` {provider, model}
llm-rubric          LLM judge on a 1-5 scale, score (n-1)/4, threshold 0.75 (>= 4/5); value or
                    ``options.rubric`` = rubric (default: the QA rubric); ``options.model`` = judge (default local)
max-words/min-words word-count limits (value = integer)
max-length/min-length character-count limits (value = integer)
latency             the call took at most value ms
cost                the call cost at most value USD
label (ref)         normalised classifier label match; ``options.labels`` picks the first known label in the
                    output, ``options.aliases`` maps words to labels
==================  =============================================================================================

Code-running types (``javascript``, ``python``, ``webhook``) are refused: no code is accepted over the API.
Operators add scorers as Python entry points in the group ``promptops.scorers`` (see :class:`Scorer`).
"""

from promptops.evals.scoring.access import DEFAULT_JUDGE, CallerModelAccess
from promptops.evals.scoring.judges import DEFAULT_RUBRIC, pairwise_judge
from promptops.evals.scoring.registry import (
    ENTRY_POINT_GROUP,
    combine,
    default_specs,
    describe_types,
    known_types,
    label_task,
    registry,
    reset_registry,
    score_case,
    scorers_for,
    validate_specs,
)
from promptops.evals.scoring.types import (
    CaseScore,
    ModelAccess,
    Outcome,
    PairwiseVerdict,
    ScoreInput,
    Scorer,
    ScorerResult,
)

__all__ = [
    "DEFAULT_JUDGE",
    "DEFAULT_RUBRIC",
    "ENTRY_POINT_GROUP",
    "CallerModelAccess",
    "CaseScore",
    "ModelAccess",
    "Outcome",
    "PairwiseVerdict",
    "ScoreInput",
    "Scorer",
    "ScorerResult",
    "combine",
    "default_specs",
    "describe_types",
    "known_types",
    "label_task",
    "pairwise_judge",
    "registry",
    "reset_registry",
    "score_case",
    "scorers_for",
    "validate_specs",
]
