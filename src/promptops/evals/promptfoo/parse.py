"""Translate a promptfoo config (``promptfooconfig.yaml``) into an :class:`ImportPlan`: registry prompts, a
dataset of cases, model targets, run scorers, and every feature left out, with where it was.

Pure functions, no database and no disk: the config is text, and the files it names are read through a
:class:`~promptops.datasets.promptfoo_tests.FileSource` (on the server, the bundle the client sent). The plan
is applied by :mod:`promptops.evals.promptfoo.service` (``POST /api/v1/evals/import/promptfoo``). Everything
outside the common subset is listed in :attr:`ImportPlan.skipped` (one entry per element, with its path),
never silently dropped; :attr:`ImportPlan.warnings` lists what was translated but deserves a look.

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
  ``local`` is the built-in local model, ``echo`` the built-in echo provider (answers with the prompt, as
  promptfoo's does), ``promptops:CONNECTION:MODEL`` names one of ours directly. ``config`` keys
  ``temperature``, ``max_tokens``/``maxTokens``, ``top_p``/``topP``, ``stop``, ``seed``,
  ``presence_penalty``, ``frequency_penalty`` become call parameters; base URLs and keys belong to our
  connections and are reported.
* ``tests`` (see :mod:`promptops.datasets.promptfoo_tests`): inline tests, ``file://`` CSV (promptfoo columns:
  ``__expected``/``__expectedN`` assertion strings such as ``contains: x`` or plain text for equals,
  ``__description``, ``__metric``, ``__metadata:key``), YAML/JSON/JSONL files of tests, globs; ``vars`` (string
  lists expand into one case per combination, as promptfoo does; ``file://`` values load text, JSON or YAML),
  ``assert``, ``description``, ``metadata``, ``options.provider`` (the grading models). ``defaultTest``: its
  ``vars`` are merged under each test's, its ``assert`` applies to every case, its ``options.provider``
  grades every test.
* Assertions become :class:`~promptops.evals.schemas.ScorerSpec` dicts of the same type name
  (``promptops.evals.scoring.known_types()``); ``not-`` sets ``negate``; ``value``, ``threshold``,
  ``weight`` and ``metric`` (-> ``name``) carry over; promptfoo's millisecond/dollar/edit-distance
  ``threshold`` of ``latency``/``cost``/``levenshtein`` becomes our ``value``/``value``/``max_distance``;
  ``assert-set`` without a threshold is flattened; ``word-count`` becomes ``min-words``/``max-words``.
  Nunjucks ``{{ var }}`` in assertion values is filled from the case's variables. ``similar`` needs an
  embedding model (the assertion's ``provider`` or ``options.provider.embedding``): without one the import
  is refused, since the evaluation could not score it.

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

import json
import posixpath
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from promptops.datasets.promptfoo_tests import (
    DEFAULT_PROVIDER_MAP,
    MAX_CASES,
    FileSource,
    Finding,
    Grading,
    PromptfooConfigError,
    ScorerRules,
    TestsTranslator,
    mentions_variables,
    parse_data,
    register_scorer_rules,
    unique_names,
)
from promptops.errors import ProblemError
from promptops.evals.schemas import MAX_SCORERS, EvalRunIn, ScorerSpec
from promptops.evals.scoring import known_types, validate_specs
from promptops.registry.refs import NAME_RE, RESERVED_SEGMENTS
from promptops.templates import engine

MAX_CONFIG_BYTES = 5 * 1024 * 1024
MAX_PROMPTS = 10  # EvalRunIn.prompts
MAX_MODELS = 10  # EvalRunIn.models

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
_TOP_KEYS = frozenset(
    {"description", "prompts", "providers", "targets", "tests", "defaultTest", "evaluateOptions"}
)
# the file types promptfoo loads prompts from (optionally ``:function``), for bare prompt paths
_FILE_SUFFIX = re.compile(r"\.(txt|md|j2|json|jsonl|ya?ml|csv|py|js|ts|mjs|cjs|mts|cts)(:[\w.]+)?$", re.I)
_FILE_FUNCTION = re.compile(r"(\.(?:py|js|ts|mjs|cjs|mts|cts)):[\w.]+$")  # "fn.py:make" -> "fn.py"
_CODE_PROMPT = re.compile(r"\.(py|js|ts|mjs|cjs|mts|cts)(:[\w.]+)?$")
_SLUG_BAD = re.compile(r"[^a-z0-9._-]+")
_DUMP_FILTER = re.compile(r"\|\s*dump\b")


def _check_spec(spec: dict[str, Any]) -> str | None:
    try:
        validate_specs([ScorerSpec.model_validate(spec)])
    except ProblemError as exc:
        return exc.detail
    except ValidationError as exc:
        return str(exc.errors()[0].get("msg"))
    return None


def scorer_rules() -> ScorerRules:
    """The evaluation layer's scorer knowledge, for translating assertions (see ``promptfoo_tests``)."""
    return ScorerRules(frozenset(known_types()), _check_spec)


register_scorer_rules(scorer_rules)


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
class ImportPlan:
    """What a promptfoo config becomes: prompts, dataset cases, model targets, run scorers, and what was left out.

    ``cases`` are dataset case objects ``{"id"?, "input", "expected", "tags", "metadata"}``; a test's own
    assertions are in ``metadata["scorers"]`` (ScorerSpec dicts the engine adds to the run's ``scorers``).
    ``model_sources`` says which provider entry each model came from (``providers[1]``). ``errors`` are the
    problems that make the import fail (the service refuses a plan that has any).
    """

    description: str
    prefix: str
    prompts: list[PromptDraft]
    cases: list[dict[str, Any]]
    models: list[dict[str, Any]]
    model_sources: list[str]
    scorers: list[dict[str, Any]]
    skipped: list[Finding]
    warnings: list[Finding]
    errors: list[Finding] = field(default_factory=list)
    concurrency: int | None = None

    @property
    def dataset(self) -> str:
        return f"{self.prefix}/tests"

    @property
    def unsupported(self) -> list[str]:
        """Every finding as ``where: message`` (skipped features, then warnings)."""
        return [str(f) for f in self.skipped + self.warnings]

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


def parse_config(text: str, name: str = "promptfooconfig.yaml") -> dict[str, Any]:
    """A promptfoo config document (YAML, or JSON for ``.json`` names); clear errors for malformed ones."""
    if len(text.encode()) > MAX_CONFIG_BYTES:
        raise PromptfooConfigError(
            f"{name}: the config is larger than {MAX_CONFIG_BYTES} bytes", field="config"
        )
    loaded = parse_data(name, text)
    if not isinstance(loaded, dict):
        raise PromptfooConfigError(
            f"{name}: a promptfoo config must be a mapping with 'prompts', 'providers' and 'tests', "
            f"not {type(loaded).__name__ if loaded is not None else 'an empty document'}",
            field="config",
        )
    return loaded


# --- translation ------------------------------------------------------------------------------------------------


def translate(
    config: dict[str, Any],
    *,
    files: FileSource,
    prefix: str,
    provider_map: dict[str, str] | None = None,
    grader: str | None = None,
) -> ImportPlan:
    """Translate a loaded promptfoo config; the files it references are read from ``files``.

    ``prefix`` is the registry path the prompts are created under (``{prefix}/{slug}``); ``provider_map`` maps
    promptfoo provider prefixes to our connection names (added to :data:`DEFAULT_PROVIDER_MAP`); ``grader``
    is a provider id that grades ``llm-rubric`` assertions naming no provider (promptfoo's ``--grader``).
    Raises :class:`PromptfooConfigError` when the config has no usable prompt or a referenced file cannot be
    read.
    """
    if not isinstance(config, dict):
        raise PromptfooConfigError("a promptfoo config must be a mapping", field="config")
    prefix = prefix.strip("/")
    if not NAME_RE.match(prefix) or prefix.count("/") > 6:
        raise PromptfooConfigError(
            f"invalid prompt prefix {prefix!r}: use lowercase path segments of letters, digits, '.', '_' or '-' "
            "(at most 7 segments)",
            field="prefix",
        )
    t = _Translator(
        files, {**DEFAULT_PROVIDER_MAP, **(provider_map or {})}, rules=scorer_rules(), strict=True
    )
    return t.run(config, prefix, grader)


class _Translator(TestsTranslator):
    prefix: str = ""

    # -- top level --

    def run(self, config: dict[str, Any], prefix: str, grader: str | None = None) -> ImportPlan:
        self.prefix = prefix
        judge = self.grader("grader", grader) if grader is not None else None
        for key in config:
            if key not in _TOP_KEYS and not str(key).startswith("$"):
                self.report(str(key), "this setting is not supported and was ignored")
        description = config.get("description")
        if description is not None and not isinstance(description, str):
            self.report("description", "must be text; ignored")
            description = None
        if "providers" in config and "targets" in config:
            self.warn("targets", "both 'providers' and 'targets' are given; 'providers' was used")
        prompts = self.prompts(config.get("prompts"))
        models, sources = self.providers(config.get("providers", config.get("targets")))
        default_vars, default_asserts, grading = self.default_test(config.get("defaultTest"))
        grading = Grading(grading.text or judge, grading.embedding)
        run_scorers, templated = self.run_scorers(default_asserts, grading)
        cases = self.cases(config.get("tests"), default_vars, templated, grading)
        run_scorers = self.hoist(cases, run_scorers)
        self.declare_variables(prompts, cases)
        return ImportPlan(
            description=description or "promptfoo evaluation",
            prefix=prefix,
            prompts=prompts,
            cases=cases,
            models=models,
            model_sources=sources,
            scorers=run_scorers,
            skipped=self.skipped,
            warnings=self.warnings,
            errors=self.errors,
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
            raise PromptfooConfigError(
                "the config has no 'prompts'; at least one prompt is needed", field="prompts"
            )
        entries: list[tuple[str, Any, str | None]] = []  # (path, spec, label)
        if isinstance(raw, str):
            entries.append(("prompts[0]", raw, None))
        elif isinstance(raw, dict):  # legacy {path: label}
            for key, label in raw.items():
                entries.append((f"prompts[{key!r}]", key, label if isinstance(label, str) else None))
        elif isinstance(raw, list):
            entries.extend((f"prompts[{i}]", item, None) for i, item in enumerate(raw))
        else:
            raise PromptfooConfigError("'prompts' must be a string, a list or a mapping", field="prompts")

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
            raise PromptfooConfigError(
                "no usable prompt in 'prompts': " + "; ".join(map(str, self.skipped[-3:])), field="prompts"
            )
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
            if self.path_exists(path, _FILE_FUNCTION.sub(r"\1", spec.strip())):
                return self.prompt_files(path, "file://" + spec.strip(), label)
            self.warn(
                path,
                f"{spec.strip()!r} looks like a file path, but no such file exists (relative to the config's "
                "folder); it was used as the prompt text",
            )
        draft = self.prompt_from_text(
            path, spec, label or _shorten(spec), label or slug, path, chat_json=True
        )
        return [draft] if draft else []

    def path_exists(self, where: str, ref: str) -> bool:
        try:
            return bool(self.glob(where, ref))
        except PromptfooConfigError:  # an absolute or '..' path in prose: it is text, not a file
            return False

    def prompt_files(self, path: str, ref: str, label: str | None) -> list[PromptDraft]:
        target = ref[len("file://") :]
        if _CODE_PROMPT.search(target):
            self.report(path, f"prompt functions ({ref}) are not supported; skipped")
            return []
        if target.lower().endswith(".csv"):
            self.report(path, f"CSV prompt files ({ref}) are not supported; skipped")
            return []
        files = self.glob(path, target)
        if not files:
            raise PromptfooConfigError(
                f"{path}: no file matches {ref} (relative to the config's folder)", field=path
            )
        drafts: list[PromptDraft] = []
        for rel in files:
            text = self.files.read(rel, "prompt file")
            stem, suffix = posixpath.splitext(posixpath.basename(rel))
            suffix = suffix.lower()
            name_base = label if (label and len(files) == 1) else stem
            shown = label or rel
            if suffix in (".json", ".yaml", ".yml"):
                if suffix == ".json" and "{%" in text:
                    self.report(
                        path,
                        f"{rel} builds its chat JSON with template tags ({{% ... %}}); a chat prompt file must be "
                        "JSON with the template syntax inside the message contents; skipped",
                    )
                    continue
                data = parse_data(rel, text)
                if isinstance(data, dict) and isinstance(data.get("messages"), list):  # {messages: [...]}
                    for key in sorted(set(data) - {"messages"}):
                        self.report(f"{path} ({rel}).{key}", "not supported; ignored")
                    data = data["messages"]
                draft = self.prompt_from_messages(path, data, shown, name_base, f"file://{rel}")
                drafts.extend([draft] if draft else [])
            elif suffix == ".jsonl":
                for n, line in enumerate(text.splitlines()):
                    if not line.strip():
                        continue
                    try:
                        data = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise PromptfooConfigError(f"{rel} line {n + 1}: invalid JSON: {exc.msg}", field=rel)
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
            role = message.get("role") if isinstance(message, dict) else None
            content = self.message_text(f"{path} message {i}", message)
            if content is None or role not in ("system", "user", "assistant", "tool", "developer"):
                self.report(
                    f"{path} message {i}",
                    "only {role: system|user|assistant|developer|tool, content: text} messages are supported; "
                    "prompt skipped",
                )
                return None
            assert isinstance(role, str)
            messages.append({"role": role, "content": _DUMP_FILTER.sub("| tojson", content)})
        if not self.analyzable(path, "chat", None, messages):
            return None
        return PromptDraft(name=slug, label=label, kind="chat", messages=messages, source=source)

    def message_text(self, path: str, message: Any) -> str | None:
        """A message's text: ``content`` as text, or a list of ``{type: text, text}`` parts (Anthropic's
        form; their ``cache_control`` is reported and ignored). None for anything else (images, tools)."""
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            return content
        if not isinstance(content, list) or not content:
            return None
        texts = []
        for n, part in enumerate(content):
            if (
                not isinstance(part, dict)
                or part.get("type") != "text"
                or not isinstance(part.get("text"), str)
            ):
                return None
            for key in sorted(set(part) - {"type", "text"}):
                self.report(f"{path} part {n}.{key}", "not supported; ignored")
            texts.append(part["text"])
        return "\n".join(texts)

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

    def providers(self, raw: Any) -> tuple[list[dict[str, Any]], list[str]]:
        if raw is None:
            self.warn(
                "providers",
                "no providers given; each prompt version's model settings (else the local model) are used",
            )
            return [], []
        if isinstance(raw, str | dict):
            items: list[Any] = [raw]
        elif isinstance(raw, list):
            items = raw
        else:
            self.report("providers", "must be a string, an object or a list; ignored")
            return [], []
        models: list[dict[str, Any]] = []
        sources: list[str] = []
        for i, item in enumerate(items):
            path = f"providers[{i}]"
            if isinstance(item, dict) and _is_provider_map(item):
                ((key, value),) = item.items()
                item = {"id": key, **(value if isinstance(value, dict) else {})}
            target = self.provider(path, item)
            if target is None:
                continue
            if target in models:
                self.warn(path, "the same model is listed twice; kept once")
                continue
            if len(models) >= MAX_MODELS:
                self.report(
                    path, f"more than {MAX_MODELS} providers; an evaluation runs at most {MAX_MODELS}"
                )
                continue
            models.append(target)
            sources.append(path)
        return models, sources

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

    # -- tests --

    def default_test(self, raw: Any) -> tuple[dict[str, Any], list[tuple[str, Any]], Grading]:
        if raw is None:
            return {}, [], Grading()
        if isinstance(raw, str) and raw.startswith("file://"):
            raw = self.load_data_file("defaultTest", raw)
        if not isinstance(raw, dict):
            self.report("defaultTest", "must be a mapping; ignored")
            return {}, [], Grading()
        for key in sorted(set(raw) - {"vars", "assert", "options", "metadata"}):
            self.report(f"defaultTest.{key}", "not supported; ignored")
        grading = self.test_options("defaultTest", raw.get("options"))
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
        return variables, [(f"defaultTest.assert[{i}]", a) for i, a in enumerate(asserts)], grading

    def run_scorers(
        self, asserts: list[tuple[str, Any]], grading: Grading
    ) -> tuple[list[dict[str, Any]], list[tuple[str, Any]]]:
        """(run scorers, assertions whose value uses case variables: translated per case)."""
        scorers: list[dict[str, Any]] = []
        templated: list[tuple[str, Any]] = []
        for path, raw in asserts:
            if mentions_variables(raw):
                templated.append((path, raw))
            else:
                scorers.extend(self.assertion(path, raw, {}, grading))
        return scorers, templated

    def cases(
        self, raw: Any, default_vars: dict[str, Any], templated: list[tuple[str, Any]], grading: Grading
    ) -> list[dict[str, Any]]:
        tests = self.tests(raw)
        if not tests:
            tests = [("tests", {})]
        cases: list[dict[str, Any]] = []
        seen_inputs: set[str] = set()
        for path, test in tests:
            for case in self.test_cases(path, test, default_vars, templated, grading):
                if len(cases) >= MAX_CASES:
                    self.report(path, f"more than {MAX_CASES} cases; the rest were left out")
                    return cases
                fingerprint = json.dumps(case["input"], sort_keys=True, default=str)
                if fingerprint in seen_inputs:
                    case["id"] = f"test-{len(cases) + 1}"
                seen_inputs.add(fingerprint)
                cases.append(case)
        return cases

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
        return unique_names(run_scorers + first)


# --- helpers ----------------------------------------------------------------------------------------------------


def _looks_like_path(text: str) -> bool:
    """A one-line prompt that names a file the way promptfoo reads one: ``prompts.txt``, ``dir/p.md``,
    ``prompts/*.txt``, ``chat.json``, ``fn.py:make`` (a single line without template syntax)."""
    stripped = text.strip()
    if not stripped or stripped[0] in "[{" or "\n" in stripped or "{{" in stripped or "{%" in stripped:
        return False
    if _FILE_SUFFIX.search(stripped):
        return True
    return not any(ch.isspace() for ch in stripped) and any(ch in stripped for ch in "/\\*")


def _is_provider_map(raw: Any) -> bool:
    """``{"openai:gpt-4o": {config: ...}}``: a one-key mapping whose key is a provider id."""
    return isinstance(raw, dict) and len(raw) == 1 and "id" not in raw and ":" in next(iter(raw))


def _shorten(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
