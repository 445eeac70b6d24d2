"""Translate a promptfoo config (``promptfooconfig.yaml``) into PromptOps prompts, a dataset and an evaluation.

Pure functions, no database: ``promptops eval run -c promptfooconfig.yaml`` loads the file with
:func:`load_config`, translates it with :func:`translate`, then creates (or adds versions to) the registry
prompts, creates a dataset version from the cases and starts an evaluation run. Everything outside the common
subset is listed in :attr:`TranslatedConfig.unsupported` (one line per element, with its path), never
silently dropped.

**Supported.**

* ``prompts``: raw strings (a JSON chat array counts as chat messages), ``file://`` references relative to the
  config's folder (globs allowed; ``.txt``/``.md``/``.j2`` are text, several prompts in one file separated by
  a ``---`` line; ``.json``/``.yaml`` hold a chat message list; ``.jsonl`` one chat list per line), objects
  ``{raw | id, label}`` and the ``{path: label}`` map form. As in promptfoo, a one-line prompt that looks like
  a path (``prompts.txt``, ``prompts/*.md``) is read as a file reference too; when no such file exists it
  stays prompt text and a warning is reported. promptfoo's Nunjucks ``{{ var }}`` is our Jinja2
  syntax; the ``dump`` filter becomes ``tojson``. Each prompt becomes ``{prefix}/{slug}`` (the label, else the
  file name, else ``prompt-N``).
* ``providers`` (or ``targets``): ``"openai:gpt-4o-mini"``, ``"openai:chat:gpt-4o-mini"``,
  ``"anthropic:messages:claude-..."``, ``"ollama:chat:llama3"`` ..., ``{id, label, config}`` objects and
  ``{id: {config}}`` maps. The part before the first ``:`` is looked up in ``provider_map`` (promptfoo prefix
  -> our connection name; ``openai`` and ``anthropic`` map to themselves by default); ``promptops:local`` or
  ``local`` is the built-in local model, ``promptops:CONNECTION:MODEL`` names one of ours directly.
  ``config`` keys ``temperature``, ``max_tokens``/``maxTokens``, ``top_p``/``topP``, ``stop``, ``seed``,
  ``presence_penalty``, ``frequency_penalty`` become call parameters; base URLs and keys belong to our
  connections and are reported.
* ``tests``: inline tests, ``file://`` CSV (promptfoo columns: ``__expected``/``__expectedN`` assertion
  strings such as ``contains: x`` or plain text for equals, ``__description``, ``__metric``,
  ``__metadata:key``), YAML/JSON/JSONL files of tests, globs; ``vars`` (string lists expand into one case per
  combination, as promptfoo does; ``file://`` values load text, JSON or YAML), ``assert``, ``description``,
  ``metadata``. ``defaultTest``: its ``vars`` are merged under each test's and its ``assert`` applies to every
  case.
* Assertions become :class:`~promptops.evals.schemas.ScorerSpec` dicts of the same type name
  (``promptops.evals.scoring.known_types()``); ``not-`` sets ``negate``; ``value``, ``threshold``,
  ``weight`` and ``metric`` (-> ``name``) carry over; promptfoo's millisecond/dollar/edit-distance
  ``threshold`` of ``latency``/``cost``/``levenshtein`` becomes our ``value``/``value``/``max_distance``;
  ``assert-set`` without a threshold is flattened; ``word-count`` becomes ``min-words``/``max-words``.
  Nunjucks ``{{ var }}`` in assertion values is filled from the case's variables.

**Where assertions go.** Assertions that apply to every case (``defaultTest.assert``) are the run's
``scorers``. A test's own assertions go into its case's ``metadata["scorers"]`` (the engine adds them to the
run's scorers for that case). When every case has the same assertions differing only in a value that is the
case's expected output, they are hoisted into run scorers without a value, so the dataset reads
"review -> expected positive" and the run scores ``icontains`` against ``expected``. A case's ``expected``
is the value of its first comparing assertion (equals, contains, icontains, starts-with, levenshtein,
similar, label). Only the assertions the config asks for are scored: cases that carry their own scorers get
no default ``label`` scorer from the server, and a config without any assertion runs output-only (the body
says ``"scorers": []``; outputs are stored, nothing is scored), as promptfoo does.
"""

from __future__ import annotations

import csv
import glob
import io
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ValidationError

from promptops.errors import ProblemError, ValidationProblem
from promptops.evals.schemas import MAX_SCORERS, EvalRunIn, ScorerSpec
from promptops.evals.scoring import known_types, validate_specs
from promptops.registry.refs import NAME_RE, RESERVED_SEGMENTS
from promptops.templates import engine

__all__ = [
    "DEFAULT_PROVIDER_MAP",
    "PromptDraft",
    "PromptfooConfigError",
    "TranslatedConfig",
    "load_config",
    "translate",
]

MAX_CONFIG_BYTES = 5 * 1024 * 1024
MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_PROMPTS = 10  # EvalRunIn.prompts
MAX_MODELS = 10  # EvalRunIn.models
MAX_CASES = 100_000
MAX_COMBINATIONS = 10_000  # cases one test may expand into

DEFAULT_PROVIDER_MAP: dict[str, str] = {"openai": "openai", "anthropic": "anthropic"}
LOCAL_TARGET: dict[str, Any] = {"provider": "local", "model": "gemma-3-270m", "params": {}}

# promptfoo provider id parts that name an API flavour rather than the model ("openai:chat:gpt-4o").
_API_KINDS = frozenset(
    {"chat", "completion", "completions", "messages", "responses", "embedding", "embeddings"}
)
_PARAM_KEYS = {
    "temperature": "temperature",
    "max_tokens": "max_tokens",
    "maxTokens": "max_tokens",
    "top_p": "top_p",
    "topP": "top_p",
    "stop": "stop",
    "seed": "seed",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
}
# Assertions that compare the output with a reference; their value can stand as the case's expected output.
_REFERENCE_TYPES = ("equals", "contains", "icontains", "starts-with", "levenshtein", "similar", "label")
_CODE_TYPES = frozenset({"javascript", "python", "ruby", "webhook"})
# promptfoo's assertion type names (for parsing CSV ``__expected`` strings such as "contains: foo").
_PROMPTFOO_TYPES = [
    "agent-rubric",
    "answer-relevance",
    "bleu",
    "classifier",
    "contains",
    "contains-all",
    "contains-any",
    "contains-html",
    "contains-json",
    "contains-sql",
    "contains-xml",
    "context-faithfulness",
    "context-recall",
    "context-relevance",
    "conversation-relevance",
    "cost",
    "equals",
    "factuality",
    "finish-reason",
    "g-eval",
    "gleu",
    "guardrails",
    "icontains",
    "icontains-all",
    "icontains-any",
    "is-html",
    "is-json",
    "is-refusal",
    "is-sql",
    "is-valid-function-call",
    "is-valid-openai-function-call",
    "is-valid-openai-tools-call",
    "is-xml",
    "javascript",
    "latency",
    "levenshtein",
    "llm-rubric",
    "pi",
    "meteor",
    "model-graded-closedqa",
    "model-graded-factuality",
    "moderation",
    "perplexity",
    "perplexity-score",
    "python",
    "regex",
    "rouge-n",
    "ruby",
    "similar",
    "starts-with",
    "tool-call-f1",
    "skill-used",
    "trace-error-spans",
    "trace-span-count",
    "trace-span-duration",
    "search-rubric",
    "webhook",
    "word-count",
    "select-best",
    "human",
    "max-score",
]
_ASSERTION_STRING = re.compile(
    r"^(not-)?("
    + "|".join(sorted(map(re.escape, _PROMPTFOO_TYPES), key=len, reverse=True))
    + r")(?:\((\d+(?:\.\d+)?)\))?(?::([\s\S]*))?$"
)
_THRESHOLD_FROM_STRING = frozenset(
    [
        "answer-relevance",
        "classifier",
        "context-faithfulness",
        "context-recall",
        "context-relevance",
        "cost",
        "latency",
        "levenshtein",
        "perplexity-score",
        "perplexity",
        "rouge-n",
        "similar",
        "starts-with",
    ]
)
_ASSERTION_KEYS = frozenset({"type", "value", "threshold", "weight", "metric", "provider", "assert"})
_TEST_KEYS = frozenset({"vars", "assert", "description", "metadata", "options"})
_TOP_KEYS = frozenset(
    {"description", "prompts", "providers", "targets", "tests", "defaultTest", "evaluateOptions"}
)
# the file types promptfoo loads prompts from (optionally ``:function``), for bare prompt paths
_FILE_SUFFIX = re.compile(r"\.(txt|md|j2|json|jsonl|ya?ml|csv|py|js|ts|mjs|cjs|mts|cts)(:[\w.]+)?$", re.I)
_FILE_FUNCTION = re.compile(r"(\.(?:py|js|ts|mjs|cjs|mts|cts)):[\w.]+$")  # "fn.py:make" -> "fn.py"
_SIMPLE_VAR = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_SLUG_BAD = re.compile(r"[^a-z0-9._-]+")
_DUMP_FILTER = re.compile(r"\|\s*dump\b")


class PromptfooConfigError(ValidationProblem):
    """The config cannot be read or translated at all (a missing file, a malformed document, no prompts)."""

    code = "invalid_promptfoo_config"


@dataclass
class PromptDraft:
    """A registry prompt to create (or add a version to) for one promptfoo prompt."""

    name: str
    label: str
    kind: Literal["text", "chat"]
    template: str | None = None
    messages: list[dict[str, str]] | None = None
    # VariableIn dicts: {name, type, required}
    variables: list[dict[str, Any]] = field(default_factory=list)
    source: str = ""  # where it came from, e.g. "prompts[0]" or "file://prompts/a.txt"

    def body(self) -> dict[str, Any]:
        """The registry's create-prompt body (``POST /prompts``; without ``name`` it is a new-version body)."""
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "variables": self.variables,
            "description": f"Imported from promptfoo: {self.label}"[:2000],
            "source": "imported",
            "commitMessage": f"imported from promptfoo ({self.source})"[:2000],
        }
        if self.kind == "text":
            out["template"] = self.template
        else:
            out["messages"] = self.messages
        return out


@dataclass
class TranslatedConfig:
    """What a promptfoo config becomes: prompts, dataset cases, model targets, run scorers, and what was left out.

    ``cases`` are dataset case objects ``{"id"?, "input", "expected", "tags", "metadata"}``; a test's own
    assertions are in ``metadata["scorers"]`` (ScorerSpec dicts the engine adds to the run's ``scorers``).
    """

    description: str
    prompts: list[PromptDraft]
    cases: list[dict[str, Any]]
    models: list[dict[str, Any]]
    scorers: list[dict[str, Any]]
    unsupported: list[str]
    concurrency: int | None = None

    def eval_run_body(
        self, prompt_refs: list[str], dataset: str, *, name: str | None = None
    ) -> dict[str, Any]:
        """The ``POST /evals`` body for the created prompt versions and dataset version (validated)."""
        body: dict[str, Any] = {
            "name": (name if name is not None else self.description)[:200],
            "prompts": prompt_refs,
            "dataset": dataset,
            "models": self.models,
            "scorers": self.scorers,
        }
        if self.concurrency is not None:
            body["concurrency"] = self.concurrency
        EvalRunIn.model_validate(body)
        return body


# --- loading ----------------------------------------------------------------------------------------------------


def load_config(path: Path) -> dict[str, Any]:
    """Read a promptfoo config file (YAML, or JSON for ``.json``); clear errors for missing or malformed files."""
    data = _read_bytes(path, MAX_CONFIG_BYTES, "config file")
    text = _decode(data, path)
    try:
        loaded = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise PromptfooConfigError(
            f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        )
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise PromptfooConfigError(f"{path}: invalid YAML{where}: {problem}")
    if not isinstance(loaded, dict):
        raise PromptfooConfigError(
            f"{path}: a promptfoo config must be a mapping with 'prompts', 'providers' and 'tests', "
            f"not {type(loaded).__name__ if loaded is not None else 'an empty document'}"
        )
    return loaded


# --- translation ------------------------------------------------------------------------------------------------


def translate(
    config: dict[str, Any],
    *,
    base_dir: Path,
    prefix: str,
    provider_map: dict[str, str] | None = None,
) -> TranslatedConfig:
    """Translate a loaded promptfoo config; files it references are read relative to ``base_dir``.

    ``prefix`` is the registry path the prompts are created under (``{prefix}/{slug}``); ``provider_map`` maps
    promptfoo provider prefixes to our connection names (added to :data:`DEFAULT_PROVIDER_MAP`). Raises
    :class:`PromptfooConfigError` when the config has no usable prompt or a referenced file cannot be read.
    """
    if not isinstance(config, dict):
        raise PromptfooConfigError("a promptfoo config must be a mapping")
    prefix = prefix.strip("/")
    if not NAME_RE.match(prefix) or prefix.count("/") > 6:
        raise PromptfooConfigError(
            f"invalid prompt prefix {prefix!r}: use lowercase path segments of letters, digits, '.', '_' or '-' "
            "(at most 7 segments)"
        )
    t = _Translator(base_dir, prefix, {**DEFAULT_PROVIDER_MAP, **(provider_map or {})})
    return t.run(config)


class _Translator:
    def __init__(self, base_dir: Path, prefix: str, provider_map: dict[str, str]) -> None:
        self.base_dir = base_dir
        self.prefix = prefix
        self.provider_map = provider_map
        self.unsupported: list[str] = []
        self.known = set(known_types())

    def report(self, path: str, message: str) -> None:
        line = f"{path}: {message}"
        if line not in self.unsupported:  # expanded and templated tests repeat the same finding
            self.unsupported.append(line)

    # -- top level --

    def run(self, config: dict[str, Any]) -> TranslatedConfig:
        for key in config:
            if key not in _TOP_KEYS and not str(key).startswith("$"):
                self.report(str(key), "this setting is not supported and was ignored")
        description = config.get("description")
        if description is not None and not isinstance(description, str):
            self.report("description", "must be text; ignored")
            description = None
        if "providers" in config and "targets" in config:
            self.report("targets", "both 'providers' and 'targets' are given; 'providers' was used")
        prompts = self.prompts(config.get("prompts"))
        models = self.providers(config.get("providers", config.get("targets")))
        default_vars, default_asserts = self.default_test(config.get("defaultTest"))
        run_scorers, templated = self.run_scorers(default_asserts)
        cases = self.cases(config.get("tests"), default_vars, templated)
        run_scorers = self.hoist(cases, run_scorers)
        self.declare_variables(prompts, cases)
        return TranslatedConfig(
            description=description or "promptfoo evaluation",
            prompts=prompts,
            cases=cases,
            models=models,
            scorers=run_scorers,
            unsupported=self.unsupported,
            concurrency=self.concurrency(config.get("evaluateOptions")),
        )

    def concurrency(self, options: Any) -> int | None:
        if options is None:
            return None
        if not isinstance(options, dict):
            self.report("evaluateOptions", "must be a mapping; ignored")
            return None
        result = None
        for key, value in options.items():
            if (
                key == "maxConcurrency"
                and isinstance(value, int)
                and not isinstance(value, bool)
                and value >= 1
            ):
                result = min(value, 64)
            else:
                self.report(f"evaluateOptions.{key}", "not supported; ignored")
        return result

    # -- prompts --

    def prompts(self, raw: Any) -> list[PromptDraft]:
        if raw is None:
            raise PromptfooConfigError("the config has no 'prompts'; at least one prompt is needed")
        entries: list[tuple[str, Any, str | None]] = []  # (path, spec, label)
        if isinstance(raw, str):
            entries.append(("prompts[0]", raw, None))
        elif isinstance(raw, dict):  # legacy {path: label}
            for key, label in raw.items():
                entries.append((f"prompts[{key!r}]", key, label if isinstance(label, str) else None))
        elif isinstance(raw, list):
            entries.extend((f"prompts[{i}]", item, None) for i, item in enumerate(raw))
        else:
            raise PromptfooConfigError("'prompts' must be a string, a list or a mapping")

        drafts: list[PromptDraft] = []
        taken: set[str] = set()
        for index, (path, spec, label) in enumerate(entries):
            for draft in self.prompt_entry(path, spec, label, f"prompt-{index + 1}"):
                if len(drafts) >= MAX_PROMPTS:
                    self.report(
                        path, f"more than {MAX_PROMPTS} prompts; an evaluation runs at most {MAX_PROMPTS}"
                    )
                    break
                draft.name = self.unique_name(draft.name, taken)
                drafts.append(draft)
        if not drafts:
            raise PromptfooConfigError("no usable prompt in 'prompts': " + "; ".join(self.unsupported[-3:]))
        return drafts

    def unique_name(self, slug: str, taken: set[str]) -> str:
        slug = _SLUG_BAD.sub("-", slug.lower()).strip("-._")[:56] or "prompt"
        if not slug[0].isalnum():
            slug = "p" + slug
        if slug in RESERVED_SEGMENTS:
            slug += "-prompt"
        name, n = f"{self.prefix}/{slug}", 1
        while name in taken:
            n += 1
            name = f"{self.prefix}/{slug}-{n}"
        taken.add(name)
        return name

    def prompt_entry(self, path: str, spec: Any, label: str | None, slug: str) -> list[PromptDraft]:
        if isinstance(spec, dict):
            extra = sorted(set(spec) - {"raw", "id", "label"})
            for key in extra:
                self.report(f"{path}.{key}", "not supported; ignored")
            label = spec.get("label") if isinstance(spec.get("label"), str) else label
            source = spec.get("raw", spec.get("id"))
            if not isinstance(source, str):
                self.report(path, "a prompt object needs 'raw' or 'id' text; skipped")
                return []
            spec = source
        if not isinstance(spec, str):
            self.report(path, f"a prompt must be text or an object, not {type(spec).__name__}; skipped")
            return []
        if spec.startswith("file://"):
            return self.prompt_files(path, spec, label)
        if _looks_like_path(spec):  # promptfoo reads a bare "prompts.txt" (or "prompts/*.md") as a file too
            if self.glob(_FILE_FUNCTION.sub(r"\1", spec.strip())):
                return self.prompt_files(path, "file://" + spec.strip(), label)
            self.report(
                path,
                f"{spec.strip()!r} looks like a file path, but no such file exists (relative to "
                f"{self.base_dir}); it was used as the prompt text",
            )
        draft = self.prompt_from_text(
            path, spec, label or _shorten(spec), label or slug, path, chat_json=True
        )
        return [draft] if draft else []

    def prompt_files(self, path: str, ref: str, label: str | None) -> list[PromptDraft]:
        target = ref[len("file://") :]
        if re.search(r"\.(py|js|ts|mjs|cjs|mts|cts)(:[\w.]+)?$", target):
            self.report(path, f"prompt functions ({ref}) are not supported; skipped")
            return []
        if target.lower().endswith(".csv"):
            self.report(path, f"CSV prompt files ({ref}) are not supported; skipped")
            return []
        files = self.glob(target)
        if not files:
            raise PromptfooConfigError(f"{path}: no file matches {ref} (relative to {self.base_dir})")
        drafts: list[PromptDraft] = []
        for file in files:
            rel = _rel(file, self.base_dir)
            text = _decode(_read_bytes(file, MAX_FILE_BYTES, "prompt file"), file)
            suffix = file.suffix.lower()
            name_base = label if (label and len(files) == 1) else file.stem
            shown = label or rel
            if suffix in (".json", ".yaml", ".yml"):
                data = self.parse_file(file, text)
                draft = self.prompt_from_messages(path, data, shown, name_base, f"file://{rel}")
                drafts.extend([draft] if draft else [])
            elif suffix == ".jsonl":
                for n, line in enumerate(text.splitlines()):
                    if not line.strip():
                        continue
                    try:
                        data = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise PromptfooConfigError(f"{rel} line {n + 1}: invalid JSON: {exc.msg}")
                    draft = self.prompt_from_messages(
                        f"{path} ({rel} line {n + 1})", data, f"{shown}:{n + 1}", f"{name_base}-{n + 1}", rel
                    )
                    drafts.extend([draft] if draft else [])
            else:
                parts = [p.strip() for p in re.split(r"^---\s*$", text, flags=re.M)]
                parts = [p for p in parts if p]
                for n, part in enumerate(parts):
                    many = len(parts) > 1
                    draft = self.prompt_from_text(
                        path,
                        part,
                        f"{shown}:{n + 1}" if many else shown,
                        f"{name_base}-{n + 1}" if many else name_base,
                        f"file://{rel}",
                        chat_json=False,
                    )
                    drafts.extend([draft] if draft else [])
        return drafts

    def prompt_from_text(
        self, path: str, text: str, label: str, slug: str, source: str, *, chat_json: bool
    ) -> PromptDraft | None:
        stripped = text.strip()
        if chat_json and stripped.startswith("["):
            try:
                data = json.loads(stripped)
            except json.JSONDecodeError:
                data = None
            if isinstance(data, list):
                return self.prompt_from_messages(path, data, label, slug, source)
        template = _DUMP_FILTER.sub("| tojson", text)
        if not self.analyzable(path, "text", template, None):
            return None
        return PromptDraft(name=slug, label=label, kind="text", template=template, source=source)

    def prompt_from_messages(
        self, path: str, data: Any, label: str, slug: str, source: str
    ) -> PromptDraft | None:
        if not isinstance(data, list) or not data:
            self.report(
                path, "a chat prompt file must hold a non-empty list of {role, content} messages; skipped"
            )
            return None
        messages: list[dict[str, str]] = []
        for i, message in enumerate(data):
            ok = isinstance(message, dict) and isinstance(message.get("content"), str)
            role = message.get("role") if isinstance(message, dict) else None
            if not ok or role not in ("system", "user", "assistant", "tool", "developer"):
                self.report(
                    f"{path} message {i}",
                    "only {role: system|user|assistant|developer|tool, content: text} messages are supported; "
                    "prompt skipped",
                )
                return None
            assert isinstance(role, str)
            messages.append({"role": role, "content": _DUMP_FILTER.sub("| tojson", message["content"])})
        if not self.analyzable(path, "chat", None, messages):
            return None
        return PromptDraft(name=slug, label=label, kind="chat", messages=messages, source=source)

    def analyzable(
        self, path: str, kind: str, template: str | None, messages: list[dict[str, str]] | None
    ) -> bool:
        try:
            analysis = engine.analyze(kind, template, messages, [])
        except ProblemError as exc:
            self.report(path, f"the template is not valid for PromptOps (Jinja2): {exc.detail}; skipped")
            return False
        if analysis.includes:
            self.report(path, "includes of registry prompts are not expected in a promptfoo prompt; skipped")
            return False
        return True

    def declare_variables(self, prompts: list[PromptDraft], cases: list[dict[str, Any]]) -> None:
        """Declare each prompt's variables: required when every case supplies it, string when all are text."""
        for draft in prompts:
            used = engine.analyze(draft.kind, draft.template, draft.messages, []).used
            specs = []
            for name in used:
                values = [case["input"][name] for case in cases if name in case["input"]]
                specs.append(
                    {
                        "name": name,
                        "type": "string" if all(isinstance(v, str) for v in values) else "any",
                        "required": bool(cases) and len(values) == len(cases),
                    }
                )
            draft.variables = specs

    # -- providers --

    def providers(self, raw: Any) -> list[dict[str, Any]]:
        if raw is None:
            self.report(
                "providers",
                "no providers given; each prompt version's model settings (else the local model) are used",
            )
            return []
        if isinstance(raw, str | dict):
            items: list[Any] = [raw]
        elif isinstance(raw, list):
            items = raw
        else:
            self.report("providers", "must be a string, an object or a list; ignored")
            return []
        models: list[dict[str, Any]] = []
        for i, item in enumerate(items):
            path = f"providers[{i}]"
            if isinstance(item, dict) and _is_provider_map(item):
                ((key, value),) = item.items()
                item = {"id": key, **(value if isinstance(value, dict) else {})}
            target = self.provider(path, item)
            if target is None:
                continue
            if target in models:
                self.report(path, "the same model is listed twice; kept once")
                continue
            if len(models) >= MAX_MODELS:
                self.report(
                    path, f"more than {MAX_MODELS} providers; an evaluation runs at most {MAX_MODELS}"
                )
                continue
            models.append(target)
        return models

    def provider(self, path: str, item: Any) -> dict[str, Any] | None:
        config: dict[str, Any] = {}
        if isinstance(item, dict):
            for key in sorted(set(item) - {"id", "label", "config"}):
                self.report(f"{path}.{key}", "not supported; ignored")
            provider_id = item.get("id")
            if isinstance(item.get("config"), dict):
                config = item["config"]
            elif item.get("config") is not None:
                self.report(f"{path}.config", "must be a mapping; ignored")
        else:
            provider_id = item
        if not isinstance(provider_id, str) or not provider_id.strip():
            self.report(path, "a provider needs an 'id' such as 'openai:gpt-4o-mini'; skipped")
            return None
        target, problem = self.target(provider_id.strip())
        if target is None:
            self.report(path, f"{problem}; skipped")
            return None
        params: dict[str, Any] = {}
        for key, value in config.items():
            if key in _PARAM_KEYS:
                params[_PARAM_KEYS[key]] = value
            elif key in ("apiBaseUrl", "apiHost", "apiKey", "apiKeyEnvar", "organization", "headers"):
                self.report(
                    f"{path}.config.{key}",
                    "endpoints and credentials belong to a PromptOps provider connection; create one and map "
                    f"the provider prefix to it (--provider-map {provider_id.split(':')[0]}=CONNECTION); ignored",
                )
            else:
                self.report(f"{path}.config.{key}", "not supported; ignored")
        target["params"] = params
        return target

    def target(self, provider_id: str) -> tuple[dict[str, Any] | None, str]:
        """(our model target, "") for a promptfoo provider id, else (None, why not)."""
        if provider_id in ("local", "promptops:local"):
            return dict(LOCAL_TARGET, params={}), ""
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
            if rest[0] not in ("chat", "completion", "completions", "messages", "responses"):
                return None, f"{provider_id!r}: only chat and completion models can be evaluated"
            rest = rest[1:]
        model = ":".join(rest)
        if not model:
            return None, f"{provider_id!r} names no model (write e.g. '{head}:chat:MODEL')"
        return {"provider": connection, "model": model, "params": {}}, ""

    # -- tests --

    def default_test(self, raw: Any) -> tuple[dict[str, Any], list[tuple[str, Any]]]:
        if raw is None:
            return {}, []
        if isinstance(raw, str) and raw.startswith("file://"):
            raw = self.load_data_file("defaultTest", raw)
        if not isinstance(raw, dict):
            self.report("defaultTest", "must be a mapping; ignored")
            return {}, []
        for key in sorted(set(raw) - {"vars", "assert", "options", "metadata"}):
            self.report(f"defaultTest.{key}", "not supported; ignored")
        self.test_options("defaultTest", raw.get("options"))
        if raw.get("metadata") is not None:
            self.report("defaultTest.metadata", "not supported; ignored")
        variables = raw.get("vars") or {}
        if not isinstance(variables, dict):
            self.report("defaultTest.vars", "must be a mapping; ignored")
            variables = {}
        asserts = raw.get("assert") or []
        if not isinstance(asserts, list):
            self.report("defaultTest.assert", "must be a list; ignored")
            asserts = []
        return variables, [(f"defaultTest.assert[{i}]", a) for i, a in enumerate(asserts)]

    def run_scorers(
        self, asserts: list[tuple[str, Any]]
    ) -> tuple[list[dict[str, Any]], list[tuple[str, Any]]]:
        """(run scorers, assertions whose value uses case variables: translated per case)."""
        scorers: list[dict[str, Any]] = []
        templated: list[tuple[str, Any]] = []
        for path, raw in asserts:
            if _mentions_variables(raw):
                templated.append((path, raw))
            else:
                scorers.extend(self.assertion(path, raw, {}))
        return scorers, templated

    def test_options(self, path: str, options: Any) -> None:
        if options is None:
            return
        if not isinstance(options, dict):
            self.report(f"{path}.options", "must be a mapping; ignored")
            return
        for key in options:
            self.report(f"{path}.options.{key}", "not supported; ignored")

    def cases(
        self, raw: Any, default_vars: dict[str, Any], templated: list[tuple[str, Any]]
    ) -> list[dict[str, Any]]:
        tests = self.tests(raw)
        if not tests:
            tests = [("tests", {})]
        cases: list[dict[str, Any]] = []
        seen_inputs: set[str] = set()
        for path, test in tests:
            for case in self.test_cases(path, test, default_vars, templated):
                if len(cases) >= MAX_CASES:
                    self.report(path, f"more than {MAX_CASES} cases; the rest were left out")
                    return cases
                fingerprint = json.dumps(case["input"], sort_keys=True, default=str)
                if fingerprint in seen_inputs:
                    case["id"] = f"test-{len(cases) + 1}"
                seen_inputs.add(fingerprint)
                cases.append(case)
        return cases

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
        if (
            re.search(r"\.(py|js|ts|mjs|cjs)(:[\w.]+)?$", target)
            or "://" in target
            or target.endswith((".xlsx", ".xls"))
        ):
            self.report(
                path, f"test generators and remote or spreadsheet sources ({ref}) are not supported; skipped"
            )
            return []
        files = self.glob(target)
        if not files:
            raise PromptfooConfigError(f"{path}: no file matches {ref} (relative to {self.base_dir})")
        out: list[tuple[str, Any]] = []
        for file in files:
            rel = _rel(file, self.base_dir)
            text = _decode(_read_bytes(file, MAX_FILE_BYTES, "tests file"), file)
            suffix = file.suffix.lower()
            if suffix == ".csv":
                out.extend(self.csv_tests(rel, text))
            elif suffix == ".jsonl":
                for n, line in enumerate(text.splitlines()):
                    if line.strip():
                        try:
                            out.append((f"{rel} line {n + 1}", json.loads(line)))
                        except json.JSONDecodeError as exc:
                            raise PromptfooConfigError(f"{rel} line {n + 1}: invalid JSON: {exc.msg}")
            elif suffix in (".json", ".yaml", ".yml"):
                data = self.parse_file(file, text)
                items = data if isinstance(data, list) else [data]
                out.extend((f"{rel}[{n}]", item) for n, item in enumerate(items))
            else:
                self.report(
                    path, f"tests file {rel}: only .csv, .json, .jsonl and .yaml are supported; skipped"
                )
        return out

    def csv_tests(self, rel: str, text: str) -> list[tuple[str, Any]]:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        out: list[tuple[str, Any]] = []
        try:
            rows = list(reader)
        except csv.Error as exc:
            raise PromptfooConfigError(f"{rel}: invalid CSV: {exc}")
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
                        asserts.append(_assertion_from_string(value.strip()))
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
        self, path: str, test: Any, default_vars: dict[str, Any], templated: list[tuple[str, Any]]
    ) -> list[dict[str, Any]]:
        if not isinstance(test, dict):
            self.report(path, f"a test must be a mapping, not {type(test).__name__}; skipped")
            return []
        for key in sorted(set(test) - _TEST_KEYS):
            self.report(f"{path}.{key}", "not supported; ignored")
        self.test_options(path, test.get("options"))
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
        combos = self.combinations(path, loaded)
        cases: list[dict[str, Any]] = []
        for combo in combos:
            scorers: list[dict[str, Any]] = []
            for i, raw in enumerate(asserts):
                scorers.extend(self.assertion(f"{path}.assert[{i}]", raw, combo))
            for tpath, raw in templated:
                scorers.extend(self.assertion(tpath, raw, combo))
            case_meta: dict[str, Any] = dict(metadata)
            if isinstance(description, str) and description:
                case_meta["description"] = description
            expected = next(
                (
                    s["value"]
                    for s in scorers
                    if s["type"] in _REFERENCE_TYPES
                    and not s.get("negate")
                    and isinstance(s.get("value"), str)
                ),
                None,
            )
            if scorers:
                case_meta["scorers"] = _unique_names(scorers)
            cases.append({"input": combo, "expected": expected, "tags": [], "metadata": case_meta})
        return cases

    def var_value(self, path: str, value: Any) -> Any:
        if isinstance(value, str) and value.startswith("file://"):
            target = value[len("file://") :]
            suffix = Path(target).suffix.lower()
            if (
                suffix in (".txt", ".md", ".json", ".yaml", ".yml", ".csv", ".xml", ".html")
                and "*" not in target
            ):
                file = self.resolve(target)
                text = _decode(_read_bytes(file, MAX_FILE_BYTES, "variable file"), file)
                return self.parse_file(file, text) if suffix in (".json", ".yaml", ".yml") else text
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

    def assertion(self, path: str, raw: Any, variables: dict[str, Any]) -> list[dict[str, Any]]:
        """ScorerSpec dicts for one promptfoo assertion (none when it is unsupported, which is reported)."""
        if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
            self.report(path, "an assertion must be a mapping with a 'type'; ignored")
            return []
        ptype: str = raw["type"]
        if ptype == "assert-set":
            return self.assert_set(path, raw, variables)
        for key in sorted(set(raw) - _ASSERTION_KEYS):
            if key in ("transform", "contextTransform"):
                self.report(f"{path}.{key}", "output transforms are not supported; assertion ignored")
                return []
            self.report(f"{path}.{key}", "not supported; ignored")
        negate = ptype.startswith("not-")
        base = ptype[4:] if negate else ptype
        if base in _CODE_TYPES:
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
        value, ok = _fill(value, variables)
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
        if base not in self.known:
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
        if raw.get("provider") is not None:
            if base in ("llm-rubric", "similar"):
                judge = self.grader(f"{path}.provider", raw["provider"])
                if judge is not None:
                    options["model"] = judge
            else:
                self.report(
                    f"{path}.provider", "only llm-rubric and similar take a grading provider; ignored"
                )
        if negate:
            spec["negate"] = True
        if options:
            spec["options"] = options
        try:
            validate_specs([ScorerSpec.model_validate(spec)])
        except (ProblemError, ValidationError) as exc:
            detail = exc.detail if isinstance(exc, ProblemError) else str(exc.errors()[0].get("msg"))
            self.report(path, f"type {ptype!r} cannot be translated: {detail}; assertion ignored")
            return []
        return [spec]

    def assert_set(self, path: str, raw: dict[str, Any], variables: dict[str, Any]) -> list[dict[str, Any]]:
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
            for spec in self.assertion(f"{path}.assert[{i}]", child, variables):
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

    def grader(self, path: str, raw: Any) -> dict[str, Any] | None:
        item = raw if isinstance(raw, str) else raw.get("id") if isinstance(raw, dict) else None
        if not isinstance(item, str):
            self.report(path, "a grading provider must be an id or {id}; the default judge is used")
            return None
        target, problem = self.target(item)
        if target is None:
            self.report(path, f"{problem}; the default judge is used")
            return None
        target.pop("params", None)
        return target

    def value_file(self, path: str, ref: str) -> Any:
        target = ref[len("file://") :]
        suffix = Path(target).suffix.lower()
        if suffix not in (".txt", ".md", ".json", ".yaml", ".yml"):
            self.report(
                path,
                f"assertion value {ref!r}: only text, JSON or YAML files are supported; assertion ignored",
            )
            return None
        file = self.resolve(target)
        text = _decode(_read_bytes(file, MAX_FILE_BYTES, "assertion value file"), file)
        return self.parse_file(file, text) if suffix in (".json", ".yaml", ".yml") else text

    # -- hoisting --

    def hoist(self, cases: list[dict[str, Any]], run_scorers: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Move per-case scorers shared by every case (up to a value equal to the case's expected) to the run."""
        if not cases:
            return run_scorers
        shapes = []
        for case in cases:
            specs = case["metadata"].get("scorers")
            if not specs:
                return run_scorers
            shape = []
            for spec in specs:
                spec = dict(spec)
                if case["expected"] is not None and spec.get("value") == case["expected"]:
                    spec.pop("value")
                shape.append(spec)
            shapes.append(shape)
        first = shapes[0]
        if any(shape != first for shape in shapes[1:]) or len(run_scorers) + len(first) > MAX_SCORERS:
            return run_scorers
        for case in cases:
            del case["metadata"]["scorers"]
        return _unique_names(run_scorers + first)

    # -- files --

    def glob(self, pattern: str) -> list[Path]:
        if any(ch in pattern for ch in "*?["):
            root = pattern if Path(pattern).is_absolute() else str(self.base_dir / pattern)
            return sorted(Path(p) for p in glob.glob(root, recursive=True) if Path(p).is_file())
        file = self.resolve(pattern)
        return [file] if file.is_file() else []

    def resolve(self, target: str) -> Path:
        path = Path(target)
        return path if path.is_absolute() else self.base_dir / path

    def load_data_file(self, path: str, ref: str) -> Any:
        file = self.resolve(ref[len("file://") :])
        if not file.is_file():
            raise PromptfooConfigError(f"{path}: no file {ref} (relative to {self.base_dir})")
        return self.parse_file(file, _decode(_read_bytes(file, MAX_FILE_BYTES, "file"), file))

    def parse_file(self, file: Path, text: str) -> Any:
        try:
            return json.loads(text) if file.suffix.lower() == ".json" else yaml.safe_load(text)
        except json.JSONDecodeError as exc:
            raise PromptfooConfigError(f"{file}: invalid JSON at line {exc.lineno}: {exc.msg}")
        except yaml.YAMLError as exc:
            raise PromptfooConfigError(f"{file}: invalid YAML: {getattr(exc, 'problem', None) or exc}")


# --- helpers ----------------------------------------------------------------------------------------------------


def _assertion_from_string(expected: str) -> dict[str, Any]:
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


def _fill(value: Any, variables: dict[str, Any]) -> tuple[Any, bool]:
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
        items = [_fill(v, variables) for v in value]
        return [v for v, _ in items], all(ok for _, ok in items)
    if isinstance(value, dict):
        pairs = {k: _fill(v, variables) for k, v in value.items()}
        return {k: v for k, (v, _) in pairs.items()}, all(ok for _, ok in pairs.values())
    return value, True


def _looks_like_path(text: str) -> bool:
    """A one-line prompt that names a file the way promptfoo reads one: ``prompts.txt``, ``dir/p.md``,
    ``prompts/*.txt``, ``chat.json``, ``fn.py:make`` (a single line without template syntax)."""
    stripped = text.strip()
    if not stripped or stripped[0] in "[{" or "\n" in stripped or "{{" in stripped or "{%" in stripped:
        return False
    if _FILE_SUFFIX.search(stripped):
        return True
    return not any(ch.isspace() for ch in stripped) and any(ch in stripped for ch in "/\\*")


def _mentions_variables(raw: Any) -> bool:
    if isinstance(raw, dict):
        if raw.get("type") == "assert-set":
            return any(_mentions_variables(child) for child in raw.get("assert") or [])
        value = raw.get("value")
        return "{{" in json.dumps(value, default=str) or "{%" in json.dumps(value, default=str)
    return False


def _unique_names(specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
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


def _is_provider_map(raw: Any) -> bool:
    """``{"openai:gpt-4o": {config: ...}}``: a one-key mapping whose key is a provider id."""
    return isinstance(raw, dict) and len(raw) == 1 and "id" not in raw and ":" in next(iter(raw))


def _read_bytes(path: Path, limit: int, what: str) -> bytes:
    try:
        size = path.stat().st_size
        if size > limit:
            raise PromptfooConfigError(f"{path}: the {what} is {size} bytes; at most {limit} are read")
        return path.read_bytes()
    except FileNotFoundError:
        raise PromptfooConfigError(f"{path}: no such {what}")
    except IsADirectoryError:
        raise PromptfooConfigError(f"{path}: is a directory, not a {what}")
    except OSError as exc:
        raise PromptfooConfigError(f"{path}: cannot read the {what}: {exc.strerror or exc}")


def _decode(data: bytes, path: Path) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PromptfooConfigError(f"{path}: not UTF-8 text (byte {exc.start})")


def _rel(file: Path, base: Path) -> str:
    try:
        return file.relative_to(base).as_posix()
    except ValueError:
        return file.as_posix()


def _shorten(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
