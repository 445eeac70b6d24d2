"""Dataset files: parse and write CSV, JSONL and JSON test cases, with errors that point at the line.

Pure functions, no database: the server, the CLI and the tests share them.

**The case model.** A case is ``key`` (stable id), ``input`` (an object of template variables, or a text),
``expected`` (text or nothing), ``tags`` (a set of short labels) and ``metadata`` (free JSON object).
Normalization makes equivalent inputs identical, so a round trip through any format gives the same
:func:`content_hash`:

* ``input``: an object of variables is kept; a non-empty string is kept as it is (a *text input*, bound to the
  prompt's only variable when the case runs, see :mod:`promptops.datasets.binding`); a list of chat messages
  (``[{"role": ..., "content": ...}, ...]``) becomes the variable ``messages`` (``{"messages": [...]}``).
* ``expected``: a string is kept; ``null``, a missing value and the empty string mean "no expected output";
  any other JSON value (number, boolean, list, object) is stored as its compact JSON text (``3`` -> ``"3"``).
* ``tags``: a list of strings, or one string split on ``,`` or ``|``; de-duplicated and sorted.
* ``key``: the ``id`` (or ``key``) given by the file, else derived from the input: the first 16 hex digits
  of the SHA-256 of the canonical JSON of ``input``. Keys are unique within a version.

**Case objects** (a JSONL line, an item of a JSON array, a case of a request body) come in these shapes:

* ours: ``{"id": ..., "input": ..., "expected": ..., "tags": [...], "metadata": {...}}``; ``vars`` is accepted
  for ``input``. Without ``input``/``vars`` the object is flat: every key but the reserved ones is a variable
  (``{"review": "...", "expected": "positive"}``).
* OpenAI evals: ``{"input": [chat messages], "ideal": "..." | [...]}``: ``ideal`` is the expected output (the
  first of a list; the whole list is kept as ``metadata["ideal"]``).
* Langfuse: ``{"input": ..., "expected_output": ..., "metadata": {...}}`` (also ``expectedOutput``).
* promptfoo tests: ``{"vars": {...}, "assert": [...], "description": ...}`` (an object with ``vars`` and
  ``assert``, ``description`` or ``options``), translated by :mod:`promptops.datasets.promptfoo_tests`: the
  expected output is the value of the first comparing assertion (equals, contains, icontains, ...), the assertions
  are kept as ``metadata["assert"]`` and their scorers as ``metadata["scorers"]`` (which evaluation runs add
  for that case); assertions that cannot be scored are listed in ``metadata["unsupported"]``.

**CSV.** A header row, then one case per row. Reserved columns: ``id`` / ``key``, ``expected`` (also
``__expected``, promptfoo style), ``tags`` (``a|b`` or ``a,b``), ``metadata`` (a JSON object) and ``__input``
(a text input; a row with an empty ``__input`` takes its variables from the other columns). Any other column
is an input variable; a ``vars.`` prefix is dropped (``vars.question`` -> ``question``), which is how a
variable named like a reserved column is written. Other ``__name`` columns (promptfoo's ``__description``)
go into ``metadata``. CSV cells are text, so every variable read from CSV is a string and an empty cell is
the empty string; non-string values are written as JSON text on export. A :class:`ColumnMap` (the CLI's
``--input-col`` / ``--expected-col``) names the input and expected columns instead: one input column makes
text inputs, several make variables, and the columns it leaves out go into ``metadata``.

**JSONL.** One case object per line. Blank lines are skipped.

**JSON.** An array of case objects, or an object with a ``cases`` array (what the JSON export writes, with
``name``, ``version``, ``description`` and ``contentHash`` alongside, which are ignored on import).

**Storage.** A text input is stored as ``{"input": text}`` with ``"$input": "string"`` in the row's metadata
(:func:`to_row` / :func:`from_row`); everything that reads cases back sees the text again.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from promptops.datasets import promptfoo_tests
from promptops.errors import PayloadTooLarge, ValidationProblem
from promptops.validation import json_problem

Format = Literal["csv", "jsonl", "json"]
FORMATS: tuple[Format, ...] = ("csv", "jsonl", "json")
MEDIA_TYPES: dict[Format, str] = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson",
    "json": "application/json",
}
# Content-Type (without parameters) -> format, for imports that do not say ?format=.
CONTENT_TYPES: dict[str, Format] = {
    "text/csv": "csv",
    "application/csv": "csv",
    "application/x-ndjson": "jsonl",
    "application/ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "application/x-jsonlines": "jsonl",
    "application/jsonlines": "jsonl",
    "application/json": "json",
}

MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_CASES = 100_000
MAX_CASE_BYTES = 256 * 1024
MAX_METADATA_BYTES = 64 * 1024
MAX_VARIABLES = 200
MAX_TAGS = 32
MAX_KEY_LENGTH = 200
MAX_ERRORS = 50

VARIABLE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
TAG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,63}$")
KEY_RE = re.compile(r"^[^\x00-\x1f\x7f]{1,200}$")

KEY_FIELDS = ("id", "key")
INPUT_FIELDS = ("input", "vars")
RESERVED_FIELDS = frozenset({*KEY_FIELDS, *INPUT_FIELDS, "expected", "tags", "metadata", "sourceRunId"})
# Other tools' names for the expected output (OpenAI evals, Langfuse); only next to a nested input.
EXPECTED_ALIASES = ("ideal", "expected_output", "expectedOutput")
# An object with "vars" and one of these is a promptfoo test; the fields of a test the translator reads.
PROMPTFOO_MARKERS = frozenset({"assert", "description", "options"})
PROMPTFOO_TEST = frozenset({"vars", "metadata", *PROMPTFOO_MARKERS})
PROMPTFOO_FIELDS = PROMPTFOO_TEST | {"tags", *KEY_FIELDS}
INPUT_SHAPES = "a string, an object of variables or a list of chat messages"
CHAT_VARIABLE = "messages"  # the variable a list of chat messages becomes
TEXT_VARIABLE = "input"  # where a text input is stored (and what it binds to for a prompt without variables)
TEXT_MARK = "$input"  # metadata key of a stored row whose input is a text
TEXT_COLUMN = "__input"  # the CSV column of a text input
# Keys of the JSON export's envelope object besides "cases"; ignored on import.
ENVELOPE_FIELDS = frozenset({"name", "version", "description", "contentHash", "caseCount", "format"})
CSV_RESERVED = frozenset({"id", "key", "expected", "__expected", "tags", "metadata"})
Input = dict[str, Any] | str


@dataclass(frozen=True)
class Case:
    """One normalized test case (see the module docstring for the rules)."""

    key: str
    input: Input
    expected: str | None = None
    tags: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    source_run_id: str | None = None
    subject_id: str | None = None  # the data subject whose key seals it at rest (promptops.datasets.sealing)

    def canonical(self) -> dict[str, Any]:
        """What the content hash covers (everything but the run a case came from)."""
        return {
            "key": self.key,
            "input": self.input,
            "expected": self.expected,
            "tags": list(self.tags),
            "metadata": self.metadata,
        }

    def to_object(self) -> dict[str, Any]:
        """The JSON/JSONL object of this case (empty fields left out)."""
        obj: dict[str, Any] = {"id": self.key, "input": self.input}
        if self.expected is not None:
            obj["expected"] = self.expected
        if self.tags:
            obj["tags"] = list(self.tags)
        if self.metadata:
            obj["metadata"] = self.metadata
        if self.source_run_id:
            obj["sourceRunId"] = self.source_run_id
        return obj


def content_hash(cases: Iterable[Case]) -> str:
    """SHA-256 over the canonical JSON of the cases in order: equal content, equal hash."""
    digest = hashlib.sha256()
    digest.update(b"[")
    for index, case in enumerate(cases):
        if index:
            digest.update(b",")
        digest.update(orjson.dumps(case.canonical(), option=orjson.OPT_SORT_KEYS))
    digest.update(b"]")
    return digest.hexdigest()


def derived_key(inputs: Input) -> str:
    return hashlib.sha256(orjson.dumps(inputs, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def to_row(case: Case) -> tuple[dict[str, Any], dict[str, Any]]:
    """The (input, metadata) a case is stored with: a text input as ``{"input": text}`` plus a metadata mark,
    so a row's input is always an object of variables."""
    if isinstance(case.input, str):
        return {TEXT_VARIABLE: case.input}, {**case.metadata, TEXT_MARK: "string"}
    return case.input, case.metadata


def from_row(inputs: Any, metadata: Any) -> tuple[Input, dict[str, Any]]:
    """The (input, metadata) of a case as imported, from a stored row (the inverse of :func:`to_row`)."""
    clean = dict(metadata or {})
    mark = clean.pop(TEXT_MARK, None)
    stored = dict(inputs or {})
    if mark == "string" and isinstance(stored.get(TEXT_VARIABLE), str):
        return stored[TEXT_VARIABLE], clean
    return stored, clean


# --- errors ---------------------------------------------------------------------------------------------------


class CaseError(ValueError):
    """A problem with one value of a case; ``column`` names the field or CSV column when known."""

    def __init__(self, message: str, column: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.column = column


@dataclass
class Where:
    """Where a case came from, for error messages: a line, a CSV row (and its line) or a list index."""

    line: int | None = None
    row: int | None = None
    case: int | None = None

    def __str__(self) -> str:
        if self.row is not None:
            return f"row {self.row} (line {self.line})" if self.line is not None else f"row {self.row}"
        if self.line is not None:
            return f"line {self.line}"
        return f"case {self.case}"

    def to_dict(self) -> dict[str, int]:
        return {
            k: v for k, v in (("line", self.line), ("row", self.row), ("case", self.case)) if v is not None
        }


class Problems:
    """Collects the errors of one file, so one answer lists many (up to :data:`MAX_ERRORS`)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.items: list[dict[str, Any]] = []
        self.total = 0

    def add(self, where: Where | None, message: str, column: str | None = None) -> None:
        self.total += 1
        if len(self.items) >= MAX_ERRORS:
            return
        text = message
        if column is not None:
            # CSV rows name the column; JSON objects name the field
            text = (
                f"{'column' if where is not None and where.row is not None else 'field'} {column!r}: {text}"
            )
        if where is not None:
            text = f"{where}: {text}"
        entry: dict[str, Any] = {**(where.to_dict() if where else {}), "message": text}
        if column is not None:
            entry["column"] = column
        self.items.append(entry)

    def raise_if_any(self) -> None:
        if not self.total:
            return
        detail = f"{self.source}: {self.items[0]['message']}"
        if self.total > 1:
            detail += f" (and {self.total - 1} more error{'s' if self.total > 2 else ''}; see 'errors')"
        raise ValidationProblem(detail, code="invalid_dataset", errors=self.items, errorCount=self.total)


# --- normalizing one case -------------------------------------------------------------------------------------


def _json_value(value: Any, what: str) -> Any:
    """``value`` as it reads back from a JSON column (and how it is hashed); unencodable values fail."""
    try:
        return orjson.loads(orjson.dumps(value))
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise CaseError(f"{what} cannot be stored as JSON: {exc}")


def normalize_expected(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise CaseError(f"cannot be stored: {exc}", "expected")


def normalize_tags(value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        items = [t.strip() for t in re.split(r"[|,]", value)]
    elif isinstance(value, list):
        items = []
        for item in value:
            if not isinstance(item, str):
                raise CaseError(f"tags must be strings, got {type(item).__name__}", "tags")
            items.append(item.strip())
    else:
        raise CaseError("must be a list of strings or a '|' / ',' separated string", "tags")
    clean = sorted({t for t in items if t})
    for tag in clean:
        if not TAG_RE.match(tag):
            raise CaseError(
                f"invalid tag {tag!r}: 1-64 letters, digits, '_', '.', ':', '/' or '-', starting with a "
                "letter or digit",
                "tags",
            )
    if len(clean) > MAX_TAGS:
        raise CaseError(f"at most {MAX_TAGS} tags per case, got {len(clean)}", "tags")
    return tuple(clean)


def normalize_metadata(value: Any) -> dict[str, Any]:
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise CaseError(f"must be a JSON object, got {_json_type(value)}", "metadata")
    if TEXT_MARK in value:
        raise CaseError(f"the key {TEXT_MARK!r} is reserved", "metadata")
    clean = _json_value(value, "metadata")
    if len(orjson.dumps(clean)) > MAX_METADATA_BYTES:
        raise CaseError(f"must encode to at most {MAX_METADATA_BYTES} bytes of JSON", "metadata")
    result: dict[str, Any] = clean
    return result


def normalize_input(value: Any, column: str = "input") -> Input:
    if isinstance(value, str):
        if not value:
            raise CaseError("must not be empty", column)
        return value
    if isinstance(value, list):
        return {CHAT_VARIABLE: _chat_messages(value, column)}
    if not isinstance(value, dict):
        raise CaseError(f"must be {INPUT_SHAPES}, got {_json_type(value)}", column)
    if len(value) > MAX_VARIABLES:
        raise CaseError(f"at most {MAX_VARIABLES} variables per case, got {len(value)}", column)
    for name in value:
        if not isinstance(name, str) or not VARIABLE_RE.match(name):
            raise CaseError(
                f"invalid variable name {name!r}: letters, digits and '_' (at most 64), not starting with a "
                "digit",
                column,
            )
    result: dict[str, Any] = _json_value(value, "input")
    return result


def _chat_messages(value: list[Any], column: str) -> list[Any]:
    if not value:
        raise CaseError(f"must be {INPUT_SHAPES}; the list is empty", column)
    for index, message in enumerate(value):
        if not (
            isinstance(message, dict)
            and isinstance(message.get("role"), str)
            and message["role"]
            and isinstance(message.get("content", ""), str | list | None)
        ):
            raise CaseError(
                f"must be {INPUT_SHAPES}; item {index + 1} of the list is not a chat message "
                '{"role": "...", "content": "..."}',
                column,
            )
    result: list[Any] = _json_value(value, "input")
    return result


def normalize_key(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise CaseError(f"must be a string or an integer, got {_json_type(value)}", "id")
    key = str(value).strip()
    if not key:
        return None
    if not KEY_RE.match(key):
        raise CaseError(f"must be 1-{MAX_KEY_LENGTH} characters without control characters", "id")
    return key


def make_case(
    *,
    key: Any = None,
    inputs: Any,
    expected: Any = None,
    tags: Any = None,
    metadata: Any = None,
    source_run_id: str | None = None,
    subject_id: str | None = None,
    input_column: str = "input",
) -> Case:
    """A normalized :class:`Case`; raises :class:`CaseError` naming the bad field."""
    clean_input = normalize_input(inputs, input_column)
    case = Case(
        key=normalize_key(key) or derived_key(clean_input),
        input=clean_input,
        expected=normalize_expected(expected),
        tags=normalize_tags(tags),
        metadata=normalize_metadata(metadata),
        source_run_id=source_run_id,
        subject_id=subject_id,
    )
    size = len(orjson.dumps(case.canonical()))
    if size > MAX_CASE_BYTES:
        raise CaseError(f"the case encodes to {size} bytes of JSON; at most {MAX_CASE_BYTES} are allowed")
    return case


def cases_from_object(obj: Any) -> list[Case]:
    """The cases of one case object: one, or several for a promptfoo test whose list variables expand."""
    if isinstance(obj, dict) and "vars" in obj and not PROMPTFOO_MARKERS.isdisjoint(obj):
        return _promptfoo_cases(obj)
    return [case_from_object(obj)]


def case_from_object(obj: Any) -> Case:
    """A case from a JSON object in our, the OpenAI evals or the Langfuse shape (see the module docstring)."""
    if not isinstance(obj, dict):
        raise CaseError(f"expected a JSON object, got {_json_type(obj)}")
    key = _given_key(obj)
    nested = [k for k in INPUT_FIELDS if k in obj]
    if len(nested) == 2:
        raise CaseError("give 'input' or 'vars', not both", "input")
    expected, metadata = obj.get("expected"), obj.get("metadata")
    if nested:
        unknown = sorted(k for k in obj if k not in RESERVED_FIELDS and k not in EXPECTED_ALIASES)
        if unknown:
            raise CaseError(
                f"unknown field(s) {', '.join(map(repr, unknown))}: put variables under '{nested[0]}', or "
                "leave out 'input' to use flat objects",
                unknown[0],
            )
        inputs = obj[nested[0]]
        input_column = nested[0]
        expected, metadata = _expected_of(obj)
    else:
        inputs = {k: v for k, v in obj.items() if k not in RESERVED_FIELDS}
        input_column = "input"
    run_id = obj.get("sourceRunId")
    if run_id is not None and (not isinstance(run_id, str) or len(run_id) > 40):
        raise CaseError("must be a run id", "sourceRunId")
    return make_case(
        key=key,
        inputs=inputs,
        expected=expected,
        tags=obj.get("tags"),
        metadata=metadata,
        source_run_id=run_id,
        input_column=input_column,
    )


def _given_key(obj: dict[str, Any]) -> Any:
    given_keys = [k for k in KEY_FIELDS if k in obj]
    if len(given_keys) == 2 and obj["id"] != obj["key"]:
        raise CaseError("give 'id' or 'key', not two different values", "id")
    return obj.get(given_keys[0]) if given_keys else None


def _expected_of(obj: dict[str, Any]) -> tuple[Any, Any]:
    """(expected, metadata) of a nested object: ``expected``, OpenAI's ``ideal`` or Langfuse's
    ``expected_output``; a list of ideal answers gives its first, and goes whole into ``metadata["ideal"]``."""
    given = [k for k in ("expected", *EXPECTED_ALIASES) if k in obj]
    metadata = obj.get("metadata")
    if len(given) > 1:
        raise CaseError(f"give one of {' or '.join(map(repr, given))}, not several", given[1])
    if not given:
        return None, metadata
    value = obj[given[0]]
    if given[0] == "ideal" and isinstance(value, list):
        metadata = normalize_metadata(metadata)
        if "ideal" in metadata:
            raise CaseError("'ideal' is a list, which goes into metadata.ideal; metadata has one", "metadata")
        metadata = {**metadata, "ideal": value}
        value = value[0] if value else None
    return value, metadata


def _promptfoo_cases(test: dict[str, Any]) -> list[Case]:
    """The cases of a promptfoo test, translated by :mod:`promptops.datasets.promptfoo_tests` (never reading
    files)."""
    unknown = sorted(k for k in test if k not in PROMPTFOO_FIELDS)
    if unknown:
        raise CaseError(
            f"unknown field(s) {', '.join(map(repr, unknown))} in a promptfoo test (vars, assert, description, "
            "metadata, options, id, tags)",
            unknown[0],
        )
    if test.get("vars") is not None and not isinstance(test["vars"], dict):
        raise CaseError(f"must be an object of variables, got {_json_type(test['vars'])}", "vars")
    asserts = test.get("assert") or []
    if not isinstance(asserts, list) or not all(
        isinstance(a, dict) and isinstance(a.get("type"), str) for a in asserts
    ):
        raise CaseError("must be a list of assertions, each an object with a 'type'", "assert")
    translator = promptfoo_tests.TestsTranslator(
        promptfoo_tests.NoFiles(), rules=promptfoo_tests.scorer_rules()
    )
    try:
        made = translator.test_cases("test", {k: v for k, v in test.items() if k in PROMPTFOO_TEST}, {}, [])
    except promptfoo_tests.PromptfooConfigError as exc:
        raise CaseError(exc.detail)
    notes = [note.removeprefix("test.") for note in translator.unsupported]
    if not made:
        raise CaseError("; ".join(notes) or "the test makes no case", "vars")
    key = _given_key(test)
    if key is not None and len(made) > 1:
        raise CaseError(
            f"its list variables expand into {len(made)} cases, which cannot share one id; leave out 'id'",
            "id",
        )
    cases = []
    for item in made:
        metadata = {**item["metadata"], **({"assert": asserts} if asserts else {})}
        if notes:
            metadata["unsupported"] = notes
        cases.append(
            make_case(
                key=key,
                inputs=item["input"],
                expected=item["expected"],
                tags=test.get("tags"),
                metadata=metadata,
                input_column="vars",
            )
        )
    return cases


def check_unique(cases: Sequence[tuple[Case, Where]], problems: Problems, given: set[int]) -> None:
    """Duplicate keys are an error naming every place; ``given`` = indexes whose key the file chose."""
    seen: dict[str, list[int]] = {}
    for index, (case, _) in enumerate(cases):
        seen.setdefault(case.key, []).append(index)
    for key, indexes in seen.items():
        if len(indexes) < 2:
            continue
        named = [str(cases[i][1]) for i in indexes[:10]]
        if len(indexes) > 10:
            named.append(f"{len(indexes) - 10} more")
        places = ", ".join(named[:-1]) + " and " + named[-1]
        if any(i in given for i in indexes):
            problems.add(None, f"duplicate id {key!r} at {places}; ids must be unique")
        else:
            problems.add(
                None,
                f"{places} have the same input (derived id {key}); give them distinct 'id' values "
                "or remove the duplicates",
            )


def normalize_cases(objects: Sequence[Any], source: str = "cases") -> list[Case]:
    """Cases from a list of JSON objects (the REST create body), errors as ``case N: ...``."""
    problems = Problems(source)
    _check_count(len(objects))
    parsed: list[tuple[Case, Where]] = []
    given: set[int] = set()
    for index, obj in enumerate(objects):
        _add_object(obj, Where(case=index + 1), parsed, given, problems)
    return _finish(parsed, given, problems)


def _add_object(
    obj: Any, where: Where, parsed: list[tuple[Case, Where]], given: set[int], problems: Problems
) -> None:
    """Append the cases of one case object (or its problem); ``given`` collects those whose id it names."""
    try:
        cases = cases_from_object(obj)
    except CaseError as exc:
        problems.add(where, exc.message, exc.column)
        return
    named = isinstance(obj, dict) and any(obj.get(k) not in (None, "") for k in KEY_FIELDS)
    for case in cases:
        if named:
            given.add(len(parsed))
        parsed.append((case, where))


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _check_count(count: int) -> None:
    if count > MAX_CASES:
        raise ValidationProblem(
            f"A dataset version holds at most {MAX_CASES} cases; this one has {count}",
            code="too_many_cases",
            limit=MAX_CASES,
        )


# --- parsing files --------------------------------------------------------------------------------------------


def detect_format(explicit: str | None, content_type: str | None, filename: str | None = None) -> Format:
    """The format named by ``?format=``, else the Content-Type, else the file name's extension."""
    if explicit:
        value = explicit.lower().lstrip(".")
        if value == "ndjson":
            value = "jsonl"
        if value not in FORMATS:
            raise ValidationProblem(
                f"Unknown format {explicit!r}; expected one of: csv, jsonl, json", code="unknown_format"
            )
        return value
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media in CONTENT_TYPES:
        return CONTENT_TYPES[media]
    if filename:
        suffix = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
        if suffix in ("csv", "jsonl", "json", "ndjson"):
            return "jsonl" if suffix == "ndjson" else suffix  # type: ignore[return-value]
    raise ValidationProblem(
        "Cannot tell the file format: pass ?format=csv|jsonl|json or a Content-Type of text/csv, "
        "application/x-ndjson or application/json",
        code="unknown_format",
    )


def decode(data: bytes, limit: int = MAX_FILE_BYTES) -> str:
    """UTF-8 text of an uploaded file (a BOM is dropped); too large or not UTF-8 is a clear error."""
    if len(data) > limit:
        raise PayloadTooLarge(
            f"The dataset file has {len(data)} bytes; at most {limit} are accepted",
            code="dataset_too_large",
            limit=limit,
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ValidationProblem(
            f"The file is not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start} (line {line}) "
            "cannot be decoded; save the file as UTF-8",
            code="invalid_encoding",
            line=line,
        )


@dataclass(frozen=True)
class ColumnMap:
    """The CSV columns holding the input and the expected output (CLI ``--input-col`` / ``--expected-col``,
    REST ``inputCol`` / ``expectedCol``). One input column makes text inputs, several make variables."""

    inputs: tuple[str, ...] = ()
    expected: str | None = None

    @classmethod
    def of(cls, inputs: Sequence[str] | None, expected: str | None) -> ColumnMap | None:
        """The mapping (None when nothing is mapped); blank, repeated or overlapping names are a 422."""
        names = tuple(n.strip() for n in inputs or ())
        chosen = expected.strip() if expected is not None else None
        if not names and chosen is None:
            return None
        problem = None
        if "" in names or chosen == "":
            problem = "a column name is empty"
        elif len(set(names)) != len(names):
            problem = f"input columns repeat: {', '.join(names)}"
        elif chosen in names:
            problem = f"column {chosen!r} cannot be both an input and the expected output"
        if problem:
            raise ValidationProblem(f"Invalid column mapping: {problem}", code="invalid_column_map")
        return cls(names, chosen)


def parse(
    data: bytes | str, fmt: Format, *, source: str = "file", columns: ColumnMap | None = None
) -> list[Case]:
    """Every case of a file in ``fmt``; all problems found are reported together as one 422.

    ``columns`` maps CSV columns (for other formats it is a 422: their fields have names)."""
    if columns is not None and fmt != "csv":
        raise ValidationProblem(
            f"Input and expected columns can only be chosen for CSV files; in {fmt.upper()} the fields name them",
            code="invalid_column_map",
        )
    text = decode(data) if isinstance(data, bytes) else data
    if isinstance(data, str) and len(data.encode()) > MAX_FILE_BYTES:
        decode(data.encode())
    if fmt == "csv":
        return _parse_csv(text, source, columns)
    if fmt == "jsonl":
        return _parse_jsonl(text, source)
    return _parse_json(text, source)


def _finish(parsed: list[tuple[Case, Where]], given: set[int], problems: Problems) -> list[Case]:
    _check_count(len(parsed))
    for case, where in parsed:
        # what no database can store (NUL, lone surrogates) or JSON cannot carry (huge or non-finite numbers)
        stored = {
            "input": case.input,
            "expected": case.expected,
            "metadata": case.metadata,
            "tags": case.tags,
        }
        unstorable = json_problem(stored)
        if unstorable is not None:
            at, why = unstorable
            problems.add(where, f"{at}: {why}" if at else why)
    check_unique(parsed, problems, given)
    problems.raise_if_any()
    return [c for c, _ in parsed]


def _parse_jsonl(text: str, source: str) -> list[Case]:
    problems = Problems(source)
    parsed: list[tuple[Case, Where]] = []
    given: set[int] = set()
    # Only "\n" ends a line: JSON strings may hold U+2028 and other characters str.splitlines() splits on.
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.removesuffix("\r")
        if not line.strip():
            continue
        where = Where(line=number)
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            problems.add(where, f"invalid JSON at column {exc.colno}: {_json_error(exc)}")
            continue
        _add_object(obj, where, parsed, given, problems)
        if len(parsed) > MAX_CASES:
            break
    return _finish(parsed, given, problems)


def _parse_json(text: str, source: str) -> list[Case]:
    if not text.strip():
        raise ValidationProblem(f"{source}: the file is empty; expected a JSON array", code="invalid_dataset")
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ValidationProblem(
            f"{source}: line {exc.lineno}, column {exc.colno}: invalid JSON: {_json_error(exc)}",
            code="invalid_dataset",
            errors=[{"line": exc.lineno, "message": f"invalid JSON: {_json_error(exc)}"}],
        )
    if isinstance(doc, dict):
        unknown = sorted(k for k in doc if k != "cases" and k not in ENVELOPE_FIELDS)
        if "cases" not in doc or unknown:
            raise ValidationProblem(
                f"{source}: expected an array of cases or an object with a 'cases' array"
                + (f" (unknown field(s): {', '.join(unknown)})" if unknown else ""),
                code="invalid_dataset",
            )
        doc = doc["cases"]
    if not isinstance(doc, list):
        raise ValidationProblem(
            f"{source}: expected an array of cases or an object with a 'cases' array, got {_json_type(doc)}",
            code="invalid_dataset",
        )
    return normalize_cases(doc, source)


def _json_error(exc: orjson.JSONDecodeError) -> str:
    return exc.msg if hasattr(exc, "msg") else str(exc)


@dataclass(frozen=True)
class _Column:
    index: int
    header: str
    role: str  # key | expected | tags | metadata | text | var | meta
    name: str  # the variable or metadata key


def _csv_role(name: str, columns: ColumnMap | None) -> tuple[str, str]:
    """(role, variable or metadata key) of a header name."""
    lowered = name.lower()
    if columns is not None and name in columns.inputs:
        if len(columns.inputs) == 1:
            return "text", name
        return "var", name[5:] if lowered.startswith("vars.") else name
    if columns is not None and name == columns.expected:
        return "expected", name
    if lowered in ("id", "key"):
        role, target = "key", name
    elif lowered in ("expected", "__expected"):
        role, target = "expected", name
    elif lowered in ("tags", "__tags"):
        role, target = "tags", name
    elif lowered in ("metadata", "__metadata"):
        role, target = "metadata", name
    elif lowered == TEXT_COLUMN:
        role, target = "text", name
    elif lowered.startswith("vars."):
        role, target = "var", name[5:]
    elif name.startswith("__"):
        role, target = "meta", name[2:]
    else:
        role, target = "var", name
    if columns is not None and columns.inputs and role in ("text", "var"):
        return "meta", name.removeprefix("__")  # the mapping names the inputs: other columns are metadata
    return role, target


def _csv_columns(
    header: list[str], line: int, problems: Problems, columns: ColumnMap | None
) -> list[_Column]:
    result: list[_Column] = []
    seen: dict[str, int] = {}
    where = Where(line=line)
    for index, raw in enumerate(header):
        name = raw.strip()
        if not name:
            problems.add(where, f"column {index + 1} of the header is empty; every column needs a name")
            continue
        role, target = _csv_role(name, columns)
        if role == "var" and not VARIABLE_RE.match(target):
            problems.add(
                where,
                f"header column {index + 1} ({name!r}) is not a valid variable name: letters, digits and "
                "'_' (at most 64), not starting with a digit",
            )
            continue
        slot = f"{role}:{target}" if role in ("var", "meta") else role
        if slot in seen:
            problems.add(
                where,
                f"columns {seen[slot] + 1} and {index + 1} both give the {_slot_name(role, target)}",
            )
            continue
        seen[slot] = index
        result.append(_Column(index, name, role, target))
    if columns is not None:
        present = {raw.strip() for raw in header}
        wanted = [(n, "an input") for n in columns.inputs]
        if columns.expected is not None:
            wanted.append((columns.expected, "the expected"))
        for wanted_name, what in wanted:
            if wanted_name not in present:
                problems.add(
                    where,
                    f"the header has no column {wanted_name!r} ({what} column); it has: {', '.join(header)}",
                )
    return result


def _slot_name(role: str, target: str) -> str:
    if role == "var":
        return f"variable {target!r}"
    if role == "meta":
        return f"metadata field {target!r}"
    return {"key": "case id", "expected": "expected output", "text": "input text"}.get(role, role)


def _parse_csv(text: str, source: str, mapping: ColumnMap | None = None) -> list[Case]:
    problems = Problems(source)
    csv.field_size_limit(MAX_CASE_BYTES * 4)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows = _csv_rows(reader, problems)
    try:
        header_line, header = next(rows)
    except StopIteration:
        problems.raise_if_any()
        raise ValidationProblem(
            f"{source}: the file is empty; expected a header row naming the columns", code="invalid_dataset"
        )
    columns = _csv_columns(header, header_line, problems, mapping)
    problems.raise_if_any()
    # an empty __input cell means "the variables give the input"; an empty mapped input column is an error
    text_required = mapping is not None and len(mapping.inputs) == 1
    parsed: list[tuple[Case, Where]] = []
    given: set[int] = set()
    row_number = 0
    for line, values in rows:
        row_number += 1
        where = Where(row=row_number, line=line)
        if len(values) != len(header):
            problems.add(where, f"column count {len(values)}, header has {len(header)}")
            continue
        inputs: dict[str, Any] = {}
        metadata: dict[str, Any] = {}
        fields: dict[str, Any] = {}
        bad = False
        for column in columns:
            value = values[column.index]
            if column.role == "var":
                inputs[column.name] = value
            elif column.role == "meta":
                if value != "":
                    metadata[column.name] = value
            elif column.role == "metadata":
                if value.strip():
                    try:
                        decoded = orjson.loads(value)
                    except orjson.JSONDecodeError as exc:
                        problems.add(where, f"invalid JSON: {_json_error(exc)}", column.header)
                        bad = True
                        continue
                    if not isinstance(decoded, dict):
                        problems.add(
                            where, f"must be a JSON object, got {_json_type(decoded)}", column.header
                        )
                        bad = True
                        continue
                    metadata = {**decoded, **metadata}
            else:
                fields[column.role] = value
        if bad:
            continue
        text_input = fields.get("text")
        if text_input and any(inputs.values()):
            problems.add(where, f"give the input as text ({TEXT_COLUMN}) or as variables, not both")
            continue
        try:
            case = make_case(
                key=fields.get("key"),
                inputs=text_input if text_input or (text_input is not None and text_required) else inputs,
                expected=fields.get("expected"),
                tags=fields.get("tags"),
                metadata=metadata,
            )
        except CaseError as exc:
            column_name = _header_of(columns, exc.column)
            problems.add(where, exc.message, column_name)
            continue
        if str(fields.get("key") or "").strip():
            given.add(len(parsed))
        parsed.append((case, where))
        if len(parsed) > MAX_CASES:
            break
    return _finish(parsed, given, problems)


def _header_of(columns: list[_Column], field_name: str | None) -> str | None:
    """The CSV header of the column a :class:`CaseError` names (variables and sizes: no single column)."""
    role = {"id": "key", "input": "text"}.get(field_name or "", field_name)
    for column in columns:
        if column.role == role and role in ("key", "expected", "tags", "metadata", "text"):
            return column.header
    return None


def _csv_rows(reader: Any, problems: Problems) -> Iterator[tuple[int, list[str]]]:
    """(line the row starts on, cells) for every non-blank row; a malformed row ends the file."""
    start = 1
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            problems.add(Where(line=reader.line_num), f"malformed CSV: {exc}")
            return
        line = start
        start = reader.line_num + 1
        if not values or (len(values) == 1 and not values[0].strip()):
            continue
        yield line, values


# --- writing files --------------------------------------------------------------------------------------------


def _csv_cell(value: Any) -> str:
    if isinstance(value, str):
        return value
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _variable_header(name: str) -> str:
    if name.lower() in CSV_RESERVED or name.startswith("__") or name.lower().startswith("vars."):
        return f"vars.{name}"
    return name


def to_csv(cases: Sequence[Case]) -> str:
    """CSV with ``id``, ``__input`` when a case has a text input, one column per variable (first-seen
    order), ``expected``, then ``tags`` and ``metadata`` when any case has them."""
    variables: dict[str, None] = {}
    for case in cases:
        if isinstance(case.input, dict):
            for name in case.input:
                variables.setdefault(name, None)
    with_text = any(isinstance(c.input, str) for c in cases)
    with_tags = any(c.tags for c in cases)
    with_metadata = any(c.metadata for c in cases)
    header = [
        "id",
        *([TEXT_COLUMN] if with_text else []),
        *(_variable_header(v) for v in variables),
        "expected",
    ]
    if with_tags:
        header.append("tags")
    if with_metadata:
        header.append("metadata")
    buffer = io.StringIO(newline="")
    # "\r\n" (RFC 4180) also makes the writer quote values holding a lone "\r".
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    for case in cases:
        given = case.input if isinstance(case.input, dict) else {}
        row = [case.key]
        if with_text:
            row.append(case.input if isinstance(case.input, str) else "")
        row.extend(_csv_cell(given[v]) if v in given else "" for v in variables)
        row.append(case.expected or "")
        if with_tags:
            row.append("|".join(case.tags))
        if with_metadata:
            row.append(_csv_cell(case.metadata) if case.metadata else "")
        writer.writerow(row)
    return buffer.getvalue()


def to_jsonl(cases: Sequence[Case]) -> str:
    return "".join(orjson.dumps(c.to_object()).decode() + "\n" for c in cases)


def to_json(cases: Sequence[Case], envelope: dict[str, Any] | None = None) -> str:
    doc = {**(envelope or {}), "cases": [c.to_object() for c in cases]}
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n"


def write(cases: Sequence[Case], fmt: Format, envelope: dict[str, Any] | None = None) -> str:
    """``cases`` as a file in ``fmt`` (``envelope`` adds name/version fields to the JSON export)."""
    if fmt == "csv":
        return to_csv(cases)
    if fmt == "jsonl":
        return to_jsonl(cases)
    return to_json(cases, envelope)
