"""promptfoo tests as dataset cases: test lists and files, ``vars``, assertions, and the files they name.

Pure functions, no database, no disk: every file a config names is read through a :class:`FileSource`. The
server reads a :class:`BundleFiles` (the config's sibling files, sent as a map ``relative path -> text``),
dataset uploads read :class:`NoFiles` (an upload may not read the server's files), and the CLI reads the
disk to build the bundle (``promptops.evals.promptfoo.bundle``). Paths are relative to the config's folder:
absolute paths and ``..`` are refused, so a bundle can only name files below that folder.

This module is the dataset side of the promptfoo import (a promptfoo test uploaded as a dataset case is
translated here, see :mod:`promptops.datasets.formats`); :mod:`promptops.evals.promptfoo` adds the config
level (prompts, providers, ``defaultTest``, the evaluation). Assertions become scorer spec dicts of the same
type name; which types exist and whether a spec is valid is the evaluation layer's knowledge, so it
registers a :class:`ScorerRules` (:func:`register_scorer_rules`) that the translation consults. Without one
(the datasets layer alone), specs are kept as translated and checked when an evaluation starts.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import yaml

from promptops.errors import ValidationProblem

MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_CASES = 100_000
MAX_COMBINATIONS = 10_000  # cases one test may expand into
MAX_SCORERS = 20  # an evaluation's run scorers (EvalRunIn.scorers)

DEFAULT_PROVIDER_MAP: dict[str, str] = {"openai": "openai", "anthropic": "anthropic"}
LOCAL_TARGET: dict[str, Any] = {"provider": "local", "model": "gemma-3-270m", "params": {}}
ECHO_TARGET: dict[str, Any] = {"provider": "echo", "model": "echo", "params": {}}

# promptfoo provider id parts that name an API flavour rather than the model ("openai:chat:gpt-4o").
_API_KINDS = frozenset(
    {"chat", "completion", "completions", "messages", "responses", "embedding", "embeddings"}
)
_GENERATION_KINDS = frozenset({"chat", "completion", "completions", "messages", "responses"})
# Assertions that compare the output with a reference; their value can stand as the case's expected output.
REFERENCE_TYPES = ("equals", "contains", "icontains", "starts-with", "levenshtein", "similar", "label")
CODE_TYPES = frozenset({"javascript", "python", "ruby", "webhook"})
# promptfoo's assertion type names (for parsing CSV ``__expected`` strings such as "contains: foo").
_PROMPTFOO_TYPES = [
    "agent-rubric", "answer-relevance", "bleu", "classifier", "contains", "contains-all", "contains-any",
    "contains-html", "contains-json", "contains-sql", "contains-xml", "context-faithfulness",
    "context-recall", "context-relevance", "conversation-relevance", "cost", "equals", "factuality",
    "finish-reason", "g-eval", "gleu", "guardrails", "icontains", "icontains-all", "icontains-any",
    "is-html", "is-json", "is-refusal", "is-sql", "is-valid-function-call", "is-valid-openai-function-call",
    "is-valid-openai-tools-call", "is-xml", "javascript", "latency", "levenshtein", "llm-rubric", "pi",
    "meteor", "model-graded-closedqa", "model-graded-factuality", "moderation", "perplexity",
    "perplexity-score", "python", "regex", "rouge-n", "ruby", "similar", "starts-with", "tool-call-f1",
    "skill-used", "trace-error-spans", "trace-span-count", "trace-span-duration", "search-rubric",
    "webhook", "word-count", "select-best", "human", "max-score",
]  # fmt: skip
_ASSERTION_STRING = re.compile(
    r"^(not-)?("
    + "|".join(sorted(map(re.escape, _PROMPTFOO_TYPES), key=len, reverse=True))
    + r")(?:\((\d+(?:\.\d+)?)\))?(?::([\s\S]*))?$"
)
_THRESHOLD_FROM_STRING = frozenset(
    [
        "answer-relevance", "classifier", "context-faithfulness", "context-recall", "context-relevance",
        "cost", "latency", "levenshtein", "perplexity-score", "perplexity", "rouge-n", "similar",
        "starts-with",
    ]
)  # fmt: skip
_ASSERTION_KEYS = frozenset({"type", "value", "threshold", "weight", "metric", "provider", "assert"})
TEST_KEYS = frozenset({"vars", "assert", "description", "metadata", "options"})
_SIMPLE_VAR = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_CODE_FILE = re.compile(r"\.(py|js|ts|mjs|cjs|mts|cts)(:[\w.]+)?$")


class PromptfooConfigError(ValidationProblem):
    """The config cannot be read or translated at all (a missing file, a malformed document, no prompts)."""

    code = "invalid_promptfoo_config"
    title = "The promptfoo config cannot be imported"


@dataclass(frozen=True)
class Finding:
    """One thing the translation left out (or warns about), and where in the config it was."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"

    def to_dict(self) -> dict[str, str]:
        return {"where": self.where, "message": self.message}


@dataclass(frozen=True)
class ScorerRules:
    """What the evaluation layer knows about scorers: the type names, and a check of one spec dict (the
    problem as text, or None)."""

    known: frozenset[str]
    check: Callable[[dict[str, Any]], str | None]


_rules: list[Callable[[], ScorerRules]] = []


def register_scorer_rules(factory: Callable[[], ScorerRules]) -> None:
    """The evaluation layer registers its scorer knowledge here (when it is imported)."""
    _rules[:] = [factory]


def scorer_rules() -> ScorerRules | None:
    return _rules[0]() if _rules else None


# --- files ------------------------------------------------------------------------------------------------------


class FileSource(Protocol):
    """The files next to a promptfoo config, by normalized relative path (see :func:`normalize_path`)."""

    def read(self, path: str, what: str) -> str: ...

    def glob(self, pattern: str) -> list[str]: ...


def normalize_path(ref: str, where: str) -> str:
    """A file reference (``file://`` optional) as a clean relative POSIX path; absolute paths and ``..`` are
    refused (the files of an import are the ones below the config's folder)."""
    target = ref[len("file://") :] if ref.startswith("file://") else ref
    target = target.strip().replace("\\", "/")
    if not target:
        raise PromptfooConfigError(f"{where}: an empty file reference", field=where)
    if target.startswith("/") or re.match(r"^[A-Za-z]:/", target) or target.startswith("~"):
        raise PromptfooConfigError(
            f"{where}: {ref!r} is an absolute path; name files relative to the config's folder", field=where
        )
    clean = posixpath.normpath(target)
    if clean == ".." or clean.startswith("../"):
        raise PromptfooConfigError(
            f"{where}: {ref!r} points outside the config's folder ('..'); only files in that folder and "
            "below can be imported",
            field=where,
        )
    return clean


def is_glob(pattern: str) -> bool:
    return any(ch in pattern for ch in "*?[")


def glob_regex(pattern: str) -> re.Pattern[str]:
    """The regular expression of a glob over relative POSIX paths: ``*`` and ``?`` stay within one folder,
    ``**`` crosses folders (``a/**/b`` matches ``a/b`` too), ``[...]`` is a character class."""
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            end = pattern.find("]", i + 2)
            if end == -1:
                out.append(re.escape(ch))
            else:
                body = pattern[i + 1 : end]
                body = "^" + body[1:] if body.startswith("!") else body.replace("\\", "\\\\")
                out.append(f"[{body}]")
                i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out) + r"\Z")


class BundleFiles:
    """Files sent with the config: ``{relative path: text}`` (paths checked and normalized here)."""

    def __init__(self, files: Mapping[str, str]) -> None:
        self.files: dict[str, str] = {}
        for path, text in files.items():
            clean = normalize_path(path, f"files[{path!r}]")
            self.files[clean] = text
        self.used: set[str] = set()

    def read(self, path: str, what: str) -> str:
        if path not in self.files:
            raise PromptfooConfigError(
                f"{path}: no such {what} was sent with the config (files: "
                f"{', '.join(sorted(self.files)[:10]) or 'none'})",
                field=f"files[{path!r}]",
            )
        self.used.add(path)
        return self.files[path]

    def glob(self, pattern: str) -> list[str]:
        if not is_glob(pattern):
            return [pattern] if pattern in self.files else []
        regex = glob_regex(pattern)
        return sorted(p for p in self.files if regex.match(p))


class NoFiles:
    """No file can be read (a dataset upload): every reference is an error saying to put content inline."""

    def read(self, path: str, what: str) -> str:
        raise PromptfooConfigError(
            f"file:// references ({path}) cannot be read from an uploaded dataset; put the content inline"
        )

    def glob(self, pattern: str) -> list[str]:
        self.read(pattern, "file")
        return []


def parse_data(path: str, text: str) -> Any:
    """A JSON (``.json``) or YAML document, errors naming the file and line."""
    try:
        return json.loads(text) if path.lower().endswith(".json") else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise PromptfooConfigError(
            f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}", field=path
        )
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise PromptfooConfigError(
            f"{path}: invalid YAML{at}: {getattr(exc, 'problem', None) or exc}", field=path
        )


# --- translation --------------------------------------------------------------------------------------------


@dataclass
class Grading:
    """Who grades: promptfoo's ``options.provider`` of a test (text judge and embedding model)."""

    text: dict[str, Any] | None = None
    embedding: dict[str, Any] | None = None


@dataclass
class TestsTranslator:
    """Translates promptfoo tests into case dicts ``{"id"?, "input", "expected", "tags", "metadata"}``; a
    test's assertions go into ``metadata["scorers"]`` as scorer spec dicts. What cannot be translated is
    reported in :attr:`skipped` (never dropped silently); :attr:`errors` holds what makes the import fail
    (only when ``strict``: an import checks everything an evaluation would refuse later)."""

    files: FileSource
    provider_map: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_PROVIDER_MAP))
    rules: ScorerRules | None = None
    strict: bool = False
    skipped: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
    errors: list[Finding] = field(default_factory=list)

    @property
    def unsupported(self) -> list[str]:
        return [str(f) for f in self.skipped]

    @staticmethod
    def _add(items: list[Finding], path: str, message: str) -> None:
        finding = Finding(path, message)
        if finding not in items:  # expanded and templated tests repeat the same finding
            items.append(finding)

    def report(self, path: str, message: str) -> None:
        self._add(self.skipped, path, message)

    def warn(self, path: str, message: str) -> None:
        self._add(self.warnings, path, message)

    def reject(self, path: str, message: str) -> None:
        self._add(self.errors, path, message)

    # -- files --

    def read(self, where: str, ref: str, what: str) -> tuple[str, str]:
        if isinstance(self.files, NoFiles):  # an upload: say so, whatever the path
            self.files.read(ref, what)
        path = normalize_path(ref, where)
        return path, self.files.read(path, what)

    def glob(self, where: str, ref: str) -> list[str]:
        if isinstance(self.files, NoFiles):
            self.files.read(ref, "file")
        return self.files.glob(normalize_path(ref, where))

    def load_data_file(self, where: str, ref: str) -> Any:
        path, text = self.read(where, ref, "file")
        return parse_data(path, text)

    # -- providers --

    def target(self, provider_id: str, *, embedding: bool = False) -> tuple[dict[str, Any] | None, str]:
        """(our model target, "") for a promptfoo provider id, else (None, why not)."""
        if provider_id in ("local", "promptops:local"):
            return dict(LOCAL_TARGET, params={}), ""
        if provider_id == "echo":
            return dict(ECHO_TARGET, params={}), ""
        if provider_id.startswith(("file://", "exec:", "python:", "http:", "https:", "webhook:")):
            return None, f"provider {provider_id!r} (custom code or an HTTP endpoint) is not supported"
        parts = provider_id.split(":")
        head = parts[0]
        if head == "promptops":
            if len(parts) == 3 and all(parts[1:]):
                return {"provider": parts[1], "model": parts[2], "params": {}}, ""
            return None, f"{provider_id!r}: write promptops:local or promptops:CONNECTION:MODEL"
        connection = self.provider_map.get(head)
        if connection is None:
            return None, (
                f"provider {provider_id!r} has no PromptOps connection; map its prefix {head!r} to one of your "
                f"connections to run it (--provider-map {head}=CONNECTION)"
            )
        rest = parts[1:]
        if rest and rest[0] in _API_KINDS:
            if rest[0] not in _GENERATION_KINDS and not embedding:
                return None, f"{provider_id!r}: only chat and completion models can be evaluated"
            rest = rest[1:]
        model = ":".join(rest)
        if not model:
            return None, f"{provider_id!r} names no model (write e.g. '{head}:chat:MODEL')"
        return {"provider": connection, "model": model, "params": {}}, ""

    def grader(self, path: str, raw: Any, *, embedding: bool = False) -> dict[str, Any] | None:
        item = raw if isinstance(raw, str) else raw.get("id") if isinstance(raw, dict) else None
        if not isinstance(item, str):
            self.report(path, "a grading provider must be an id or {id}; the default judge is used")
            return None
        target, problem = self.target(item, embedding=embedding)
        if target is None:
            self.report(path, f"{problem}; the default judge is used")
            return None
        target.pop("params", None)
        return target

    def test_options(self, path: str, options: Any) -> Grading:
        """A test's ``options``: ``provider`` (a judge id, or ``{text, embedding}``) picks the graders."""
        grading = Grading()
        if options is None:
            return grading
        if not isinstance(options, dict):
            self.report(f"{path}.options", "must be a mapping; ignored")
            return grading
        for key, value in options.items():
            if key != "provider":
                self.report(f"{path}.options.{key}", "not supported; ignored")
            elif isinstance(value, dict) and not {"text", "embedding"}.isdisjoint(value):
                for part in sorted(set(value) - {"text", "embedding"}):
                    self.report(f"{path}.options.provider.{part}", "not supported; ignored")
                if value.get("text") is not None:
                    grading.text = self.grader(f"{path}.options.provider.text", value["text"])
                if value.get("embedding") is not None:
                    grading.embedding = self.grader(
                        f"{path}.options.provider.embedding", value["embedding"], embedding=True
                    )
            else:
                grading.text = self.grader(f"{path}.options.provider", value)
                ident = (
                    value if isinstance(value, str) else value.get("id") if isinstance(value, dict) else ""
                )
                if isinstance(ident, str) and ":embedding" in ident:
                    grading.embedding, grading.text = grading.text, None
        return grading

    # -- tests --

    def tests(self, raw: Any) -> list[tuple[str, Any]]:
        if raw is None:
            return []
        if isinstance(raw, str | dict):
            raw = [raw]
        if not isinstance(raw, list):
            self.report("tests", "must be a list, a file:// reference or a list of them; ignored")
            return []
        out: list[tuple[str, Any]] = []
        for i, item in enumerate(raw):
            path = f"tests[{i}]"
            if isinstance(item, dict) and isinstance(item.get("path"), str) and "vars" not in item:
                item = item["path"]
            if isinstance(item, str):
                out.extend(self.test_file(path, item))
            else:
                out.append((path, item))
        return out

    def test_file(self, path: str, ref: str) -> list[tuple[str, Any]]:
        target = ref[len("file://") :] if ref.startswith("file://") else ref
        if _CODE_FILE.search(target) or "://" in target or target.endswith((".xlsx", ".xls")):
            self.report(
                path, f"test generators and remote or spreadsheet sources ({ref}) are not supported; skipped"
            )
            return []
        files = self.glob(path, target)
        if not files:
            raise PromptfooConfigError(
                f"{path}: no file matches {ref} (relative to the config's folder)", field=path
            )
        out: list[tuple[str, Any]] = []
        for rel in files:
            suffix = posixpath.splitext(rel)[1].lower()
            if suffix not in (".csv", ".jsonl", ".json", ".yaml", ".yml"):
                self.report(
                    path, f"tests file {rel}: only .csv, .json, .jsonl and .yaml are supported; skipped"
                )
                continue
            text = self.files.read(rel, "tests file")
            if suffix == ".csv":
                out.extend(self.csv_tests(rel, text))
            elif suffix == ".jsonl":
                for n, line in enumerate(text.splitlines()):
                    if line.strip():
                        try:
                            out.append((f"{rel} line {n + 1}", json.loads(line)))
                        except json.JSONDecodeError as exc:
                            raise PromptfooConfigError(
                                f"{rel} line {n + 1}: invalid JSON: {exc.msg}", field=rel
                            )
            else:
                data = parse_data(rel, text)
                items = data if isinstance(data, list) else [data]
                out.extend((f"{rel}[{n}]", item) for n, item in enumerate(items))
        return out

    def csv_tests(self, rel: str, text: str) -> list[tuple[str, Any]]:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        out: list[tuple[str, Any]] = []
        try:
            rows = list(reader)
        except csv.Error as exc:
            raise PromptfooConfigError(f"{rel}: invalid CSV: {exc}", field=rel)
        for n, row in enumerate(rows):
            path = f"{rel} row {n + 1}"
            variables: dict[str, Any] = {}
            asserts: list[Any] = []
            metadata: dict[str, Any] = {}
            test: dict[str, Any] = {}
            metric = None
            for key, value in row.items():
                if key is None:
                    self.report(path, "more cells than header columns; extra cells ignored")
                    continue
                key = key.strip()
                value = value or ""
                if key.startswith("__expected"):
                    if value.strip():
                        asserts.append(assertion_from_string(value.strip()))
                elif key == "__description":
                    test["description"] = value
                elif key == "__metric":
                    metric = value or None
                elif key.startswith("__metadata:"):
                    if value.strip():
                        name = key[len("__metadata:") :]
                        if name.endswith("[]"):
                            metadata[name[:-2]] = [v.strip() for v in re.split(r"(?<!\\),", value)]
                        else:
                            metadata[name] = value
                elif key.startswith("__"):
                    if value.strip():
                        self.report(f"{path} column {key}", "not supported; ignored")
                else:
                    variables[key] = value
            if metric:
                for a in asserts:
                    a["metric"] = metric
            test.update({"vars": variables, "assert": asserts, "metadata": metadata})
            out.append((path, test))
        return out

    def test_cases(
        self,
        path: str,
        test: Any,
        default_vars: dict[str, Any],
        templated: list[tuple[str, Any]],
        grading: Grading | None = None,
    ) -> list[dict[str, Any]]:
        if not isinstance(test, dict):
            self.report(path, f"a test must be a mapping, not {type(test).__name__}; skipped")
            return []
        for key in sorted(set(test) - TEST_KEYS):
            self.report(f"{path}.{key}", "not supported; ignored")
        own = self.test_options(path, test.get("options"))
        base = grading or Grading()
        grading = Grading(own.text or base.text, own.embedding or base.embedding)
        own_vars = test.get("vars") or {}
        if isinstance(own_vars, str) and own_vars.startswith("file://"):
            own_vars = self.load_data_file(f"{path}.vars", own_vars)
        if not isinstance(own_vars, dict):
            self.report(f"{path}.vars", "must be a mapping; test skipped")
            return []
        asserts = test.get("assert") or []
        if not isinstance(asserts, list):
            self.report(f"{path}.assert", "must be a list; ignored")
            asserts = []
        description = test.get("description")
        metadata = test.get("metadata") or {}
        if not isinstance(metadata, dict):
            self.report(f"{path}.metadata", "must be a mapping; ignored")
            metadata = {}
        if "scorers" in metadata:
            self.report(f"{path}.metadata.scorers", "reserved for the translated assertions; ignored")
            metadata = {k: v for k, v in metadata.items() if k != "scorers"}

        variables = {**default_vars, **own_vars}
        loaded = {name: self.var_value(f"{path}.vars.{name}", value) for name, value in variables.items()}
        cases: list[dict[str, Any]] = []
        for combo in self.combinations(path, loaded):
            scorers: list[dict[str, Any]] = []
            for i, raw in enumerate(asserts):
                scorers.extend(self.assertion(f"{path}.assert[{i}]", raw, combo, grading))
            for tpath, raw in templated:
                scorers.extend(self.assertion(tpath, raw, combo, grading))
            case_meta: dict[str, Any] = dict(metadata)
            if isinstance(description, str) and description:
                case_meta["description"] = description
            expected = next(
                (
                    s["value"]
                    for s in scorers
                    if s["type"] in REFERENCE_TYPES
                    and not s.get("negate")
                    and isinstance(s.get("value"), str)
                ),
                None,
            )
            if scorers:
                case_meta["scorers"] = unique_names(scorers)
            cases.append({"input": combo, "expected": expected, "tags": [], "metadata": case_meta})
        return cases

    def var_value(self, path: str, value: Any) -> Any:
        if isinstance(value, str) and value.startswith("file://"):
            target = value[len("file://") :]
            suffix = posixpath.splitext(target)[1].lower()
            if suffix in (".txt", ".md", ".json", ".yaml", ".yml", ".csv", ".xml", ".html") and not is_glob(
                target
            ):
                rel, text = self.read(path, target, "variable file")
                return parse_data(rel, text) if suffix in (".json", ".yaml", ".yml") else text
            self.report(
                path,
                f"variable file {value!r} is not supported (text, JSON or YAML only); the reference is kept as text",
            )
        return value

    def combinations(self, path: str, variables: dict[str, Any]) -> list[dict[str, Any]]:
        """promptfoo's expansion: a list of strings runs once per item (a list of anything else is one value)."""
        keys = list(variables)
        choices = [
            v if isinstance(v, list) and v and isinstance(v[0], str) else [v] for v in variables.values()
        ]
        total = 1
        for c in choices:
            total *= len(c)
        if total > MAX_COMBINATIONS:
            self.report(
                path, f"its list variables expand into {total} cases (more than {MAX_COMBINATIONS}); skipped"
            )
            return []
        return [dict(zip(keys, values, strict=True)) for values in itertools.product(*choices)]

    # -- assertions --

    def assertion(
        self, path: str, raw: Any, variables: dict[str, Any], grading: Grading | None = None
    ) -> list[dict[str, Any]]:
        """Scorer spec dicts for one promptfoo assertion (none when it is unsupported, which is reported)."""
        if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
            self.report(path, "an assertion must be a mapping with a 'type'; ignored")
            return []
        grading = grading or Grading()
        ptype: str = raw["type"]
        if ptype == "assert-set":
            return self.assert_set(path, raw, variables, grading)
        for key in sorted(set(raw) - _ASSERTION_KEYS):
            if key in ("transform", "contextTransform"):
                self.report(f"{path}.{key}", "output transforms are not supported; assertion ignored")
                return []
            self.report(f"{path}.{key}", "not supported; ignored")
        negate = ptype.startswith("not-")
        base = ptype[4:] if negate else ptype
        if base in CODE_TYPES:
            self.report(
                path, f"type {ptype!r} is not supported: PromptOps runs no code from evaluation configs"
            )
            return []
        value = raw.get("value")
        if isinstance(value, str) and value.startswith("file://"):
            loaded = self.value_file(path, value)
            if loaded is None:
                return []
            value = loaded
        value, ok = fill(value, variables)
        if not ok:
            self.report(path, "its value uses template syntax beyond {{ variable }}; assertion ignored")
            return []
        threshold = raw.get("threshold")
        spec: dict[str, Any] = {"type": base}
        options: dict[str, Any] = {}
        if base == "word-count":
            return self.word_count(path, raw, value, negate)
        if base in ("latency", "cost"):
            limit = threshold if threshold is not None else value
            if isinstance(limit, bool) or not isinstance(limit, int | float):
                self.report(path, f"type {ptype!r} needs a numeric threshold; assertion ignored")
                return []
            spec["value"] = limit
            threshold = None
        elif base == "levenshtein":
            spec["value"] = value
            options["max_distance"] = int(threshold) if isinstance(threshold, int | float) else 5
            threshold = None
        elif base == "similar":
            spec["value"] = value
            threshold = 0.75 if threshold is None else threshold
        elif base in ("is-json", "contains-json") and value is not None and not isinstance(value, dict):
            self.report(path, f"type {ptype!r}: the value must be a JSON schema object; assertion ignored")
            return []
        elif value is not None:
            spec["value"] = value
        if self.rules is not None and base not in self.rules.known:
            self.report(path, f"type {ptype!r} is not supported")
            return []
        if threshold is not None:
            if (
                isinstance(threshold, bool)
                or not isinstance(threshold, int | float)
                or not 0 <= threshold <= 1
            ):
                self.report(
                    f"{path}.threshold",
                    f"{threshold!r} is not a score between 0 and 1; the scorer's default is used",
                )
            else:
                spec["threshold"] = float(threshold)
        weight = raw.get("weight")
        if weight is not None:
            if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 <= weight <= 1000:
                self.report(f"{path}.weight", f"{weight!r} is not a weight between 0 and 1000; 1 is used")
            else:
                spec["weight"] = float(weight)
        if isinstance(raw.get("metric"), str) and raw["metric"].strip():
            spec["name"] = raw["metric"].strip()[:100]
        judge = self.judge(path, base, raw.get("provider"), grading)
        if judge is not None:
            options["model"] = judge
        if negate:
            spec["negate"] = True
        if options:
            spec["options"] = options
        if self.rules is not None:
            problem = self.rules.check(spec)
            if problem is not None:
                self.report(path, f"type {ptype!r} cannot be translated: {problem}; assertion ignored")
                return []
        if self.strict and base == "similar" and "model" not in options:
            self.reject(
                path,
                "'similar' compares embeddings, and no embedding model is configured: give the assertion a "
                "'provider' (e.g. openai:embedding:text-embedding-3-small) or set "
                "defaultTest.options.provider.embedding",
            )
        return [spec]

    def judge(self, path: str, base: str, raw: Any, grading: Grading) -> dict[str, Any] | None:
        """The grading model of an llm-rubric or similar assertion: its own ``provider``, else the test's."""
        if raw is not None:
            if base in ("llm-rubric", "similar"):
                return self.grader(f"{path}.provider", raw, embedding=base == "similar")
            self.report(f"{path}.provider", "only llm-rubric and similar take a grading provider; ignored")
            return None
        if base == "llm-rubric":
            return grading.text
        if base == "similar":
            return grading.embedding
        return None

    def assert_set(
        self, path: str, raw: dict[str, Any], variables: dict[str, Any], grading: Grading
    ) -> list[dict[str, Any]]:
        if raw.get("threshold") is not None:
            self.report(
                path, "assert-set with a threshold (pass when a share passes) is not supported; ignored"
            )
            return []
        children = raw.get("assert")
        if not isinstance(children, list):
            self.report(path, "assert-set needs an 'assert' list; ignored")
            return []
        weight = raw.get("weight", 1)
        out: list[dict[str, Any]] = []
        for i, child in enumerate(children):
            for spec in self.assertion(f"{path}.assert[{i}]", child, variables, grading):
                if isinstance(weight, int | float) and not isinstance(weight, bool) and weight != 1:
                    spec["weight"] = min(1000.0, float(spec.get("weight", 1.0)) * weight)
                out.append(spec)
        return out

    def word_count(self, path: str, raw: dict[str, Any], value: Any, negate: bool) -> list[dict[str, Any]]:
        if negate:
            self.report(path, "not-word-count is not supported; assertion ignored")
            return []
        bounds: list[tuple[str, Any]] = []
        if isinstance(value, int) and not isinstance(value, bool):
            bounds = [("min-words", value), ("max-words", value)]
        elif isinstance(value, dict):
            if "min" in value:
                bounds.append(("min-words", value["min"]))
            if "max" in value:
                bounds.append(("max-words", value["max"]))
        if not bounds or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for _, v in bounds
        ):
            self.report(path, "word-count needs a whole number or {min, max}; assertion ignored")
            return []
        specs = []
        for kind, limit in bounds:
            spec: dict[str, Any] = {"type": kind, "value": limit}
            if isinstance(raw.get("weight"), int | float) and not isinstance(raw.get("weight"), bool):
                spec["weight"] = float(raw["weight"])
            specs.append(spec)
        return specs

    def value_file(self, path: str, ref: str) -> Any:
        target = ref[len("file://") :]
        suffix = posixpath.splitext(target)[1].lower()
        if suffix not in (".txt", ".md", ".json", ".yaml", ".yml"):
            self.report(
                path,
                f"assertion value {ref!r}: only text, JSON or YAML files are supported; assertion ignored",
            )
            return None
        rel, text = self.read(path, target, "assertion value file")
        return parse_data(rel, text) if suffix in (".json", ".yaml", ".yml") else text


# --- helpers ----------------------------------------------------------------------------------------------------


def assertion_from_string(expected: str) -> dict[str, Any]:
    """promptfoo's CSV ``__expected`` syntax: ``contains: x``, ``similar(0.8): y``, ``grade: rubric`` ..."""
    for marker, kind in (
        ("javascript:", "javascript"),
        ("fn:", "javascript"),
        ("eval:", "javascript"),
        ("python:", "python"),
    ):
        if expected.startswith(marker):
            return {"type": kind, "value": expected[len(marker) :].strip()}
    for marker in ("grade:", "llm-rubric:"):
        if expected.startswith(marker):
            return {"type": "llm-rubric", "value": expected[len(marker) :]}
    match = _ASSERTION_STRING.match(expected)
    if not match:
        return {"type": "equals", "value": expected}
    negate, kind, threshold, value = match.groups()
    out: dict[str, Any] = {"type": f"not-{kind}" if negate else kind}
    if kind in ("contains-all", "contains-any", "icontains-all", "icontains-any"):
        out["value"] = [v.strip() for v in value.split(",") if v.strip()] if value else value
    elif kind in ("contains-json", "is-json"):
        out["value"] = json.loads(value) if value and value.strip().startswith("{") else (value or None)
    else:
        out["value"] = value.strip() if value is not None else None
    if kind in _THRESHOLD_FROM_STRING:
        out["threshold"] = float(threshold) if threshold else (None if kind != "similar" else 0.75)
    if out.get("value") is None:
        out.pop("value")
    if out.get("threshold") is None:
        out.pop("threshold", None)
    return out


def fill(value: Any, variables: dict[str, Any]) -> tuple[Any, bool]:
    """Fill ``{{ var }}`` in string values (recursively); (value, False) when other template syntax remains."""
    if isinstance(value, str):
        if "{{" not in value and "{%" not in value:
            return value, True

        def sub(match: re.Match[str]) -> str:
            got = variables.get(match.group(1), "")
            return got if isinstance(got, str) else json.dumps(got)

        filled = _SIMPLE_VAR.sub(sub, value)
        return filled, "{{" not in filled and "{%" not in filled
    if isinstance(value, list):
        items = [fill(v, variables) for v in value]
        return [v for v, _ in items], all(ok for _, ok in items)
    if isinstance(value, dict):
        pairs = {k: fill(v, variables) for k, v in value.items()}
        return {k: v for k, (v, _) in pairs.items()}, all(ok for _, ok in pairs.values())
    return value, True


def mentions_variables(raw: Any) -> bool:
    if isinstance(raw, dict):
        if raw.get("type") == "assert-set":
            return any(mentions_variables(child) for child in raw.get("assert") or [])
        value = raw.get("value")
        return "{{" in json.dumps(value, default=str) or "{%" in json.dumps(value, default=str)
    return False


def unique_names(specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """promptfoo metrics may repeat; our scorer names may not: later repeats get ``#2``, ``#3`` ..."""
    seen: dict[str, int] = {}
    out = []
    for spec in specs:
        name = spec.get("name")
        if name is not None:
            seen[name] = seen.get(name, 0) + 1
            if seen[name] > 1:
                spec = {**spec, "name": f"{name[:95]} #{seen[name]}"}
        out.append(spec)
    return out
