"""Prompt lint: rules with stable ids that catch risky or broken prompts before they ship.

The module is pure (no database, no network): callers hand in the version's fields, anything that needs the
registry already resolved (include results, the model's context window) and the project's
:class:`LintConfig`. The registry runs it on every version save and stores the findings; the CLI runs it on
local prompt files; ``POST /api/v1/lint`` runs it on a body without saving.

Every rule has an id (``PL001``) and a slug (``syntax-error``); configuration accepts either. The rules are
heuristics except the template ones (syntax, variables, includes), which use the template engine's own
analysis rather than pattern-matching Jinja.
"""

from __future__ import annotations

import bisect
import contextlib
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from jinja2 import nodes
from jinja2.exceptions import TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from promptops.errors import ProblemError
from promptops.templates import engine

__all__ = [
    "RULES",
    "SEVERITIES",
    "LintConfig",
    "LintFinding",
    "Rule",
    "at_or_above",
    "estimate_tokens",
    "lint_prompt",
    "lint_prompt_async",
    "rule_for",
]

Severity = Literal["error", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")
_RANK = {"info": 0, "warning": 1, "error": 2}

CHARS_PER_TOKEN = 4
MAX_FINDINGS_PER_RULE = 20
CONTEXT_WARN_RATIO = 0.5


@dataclass(frozen=True)
class Rule:
    """A lint rule: stable id, slug, default severity, what it catches and how to fix it."""

    id: str
    name: str
    severity: Severity
    catches: str
    fix: str


RULES: tuple[Rule, ...] = (
    Rule(
        "PL001",
        "syntax-error",
        "error",
        "A template that does not parse or compile, a dynamic include, or an invalid variable declaration.",
        "Fix the template at the reported message/line.",
    ),
    Rule(
        "PL002",
        "empty-template",
        "error",
        "An empty or whitespace-only text template, or an empty chat message.",
        "Write the prompt text, or remove the empty message.",
    ),
    Rule(
        "PL003",
        "undeclared-variable",
        "warning",
        "A variable the template uses but the version does not declare (no type check, no default).",
        "Declare it under `variables`.",
    ),
    Rule(
        "PL004",
        "unused-variable",
        "warning",
        "A declared variable that no template uses.",
        "Remove the declaration or use the variable.",
    ),
    Rule(
        "PL005",
        "unresolved-include",
        "error",
        "An `{% include %}` whose prompt or label does not exist in the project, or is not a text prompt.",
        "Create the included prompt/label, or fix the reference.",
    ),
    Rule(
        "PL006",
        "include-unchecked",
        "info",
        "An include that could not be checked (linting a local file without a server).",
        "Lint against the registry (`promptops lint --prompt NAME`) to check it.",
    ),
    Rule(
        "PL007",
        "injection-risk",
        "warning",
        "A user-supplied string variable inside a system/developer message, or before further instructions "
        "in a text prompt, with no delimiters around it.",
        'Wrap it: <review>{{ review }}</review>, a ``` or """ block, a `---` fence, or `| tojson`.',
    ),
    Rule(
        "PL008",
        "secret",
        "error",
        "API keys, tokens, private keys or passwords written into the prompt.",
        "Remove the secret (and rotate it); pass credentials through provider connections, never prompts.",
    ),
    Rule(
        "PL009",
        "personal-data",
        "warning",
        "Email addresses and phone numbers in the prompt text (reserved example domains are ignored).",
        "Replace with placeholders or variables, e.g. user@example.com.",
    ),
    Rule(
        "PL010",
        "context-length",
        "warning",
        "The prompt (about 4 characters per token, plus any max_tokens) uses more than half of the model's "
        "context window.",
        "Shorten the prompt or pick a model with a larger context window.",
    ),
    Rule(
        "PL011",
        "context-overflow",
        "error",
        "The prompt does not fit in the model's context window at all.",
        "Shorten the prompt or pick a model with a larger context window.",
    ),
    Rule(
        "PL012",
        "missing-output-format",
        "warning",
        "Exact output labels are expected (metadata.labels or project expectedLabels) but the prompt neither "
        "names them all nor states an output format.",
        'Name the allowed labels ("Answer with one of: positive, negative") or set a response schema.',
    ),
    Rule(
        "PL013",
        "contradictory-instructions",
        "warning",
        'Instructions that pull against each other: "be concise" vs "explain in detail", "always X" vs '
        '"never X", "respond in JSON" vs "plain text".',
        "Keep one of the two instructions.",
    ),
)

_BY_KEY: dict[str, Rule] = {**{r.id: r for r in RULES}, **{r.name: r for r in RULES}}


def rule_for(key: str) -> Rule | None:
    """The rule with id (``PL003``) or slug (``undeclared-variable``) ``key``, in any case, if there is one."""
    if not isinstance(key, str):
        return None
    return _BY_KEY.get(key.upper()) or _BY_KEY.get(key.lower())


def _rule(key: str) -> Rule:
    rule = rule_for(key)
    assert rule is not None
    return rule


def at_or_above(severity: str, threshold: str) -> bool:
    """Whether ``severity`` is at least as severe as ``threshold`` (info < warning < error)."""
    return _RANK.get(severity, 0) >= _RANK.get(threshold, 2)


@dataclass(frozen=True)
class LintFinding:
    """One problem: which rule, how severe, what and where (message index and/or line), and a fix hint."""

    rule: str
    name: str
    severity: Severity
    message: str
    message_index: int | None = None
    line: int | None = None
    hint: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored on versions and returned by the API (camelCase keys)."""
        return {
            "rule": self.rule,
            "name": self.name,
            "severity": self.severity,
            "message": self.message,
            "messageIndex": self.message_index,
            "line": self.line,
            "hint": self.hint,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LintFinding:
        severity = d.get("severity")
        return cls(
            rule=str(d.get("rule", "")),
            name=str(d.get("name", "")),
            severity=severity if severity in SEVERITIES else "warning",
            message=str(d.get("message", "")),
            message_index=d.get("messageIndex"),
            line=d.get("line"),
            hint=str(d.get("hint", "")),
        )


@dataclass(frozen=True)
class LintConfig:
    """Per-project lint settings: disabled rules, severity overrides, and what blocks label moves.

    Rules are named by id or slug. ``context_tokens`` stands in for the model's context window when the
    caller does not know it; ``expected_labels`` are exact output labels every prompt must name.
    """

    disabled: frozenset[str] = frozenset()
    severity: Mapping[str, Severity] = field(default_factory=dict)
    context_tokens: int | None = None
    expected_labels: tuple[str, ...] | None = None
    block_on_labels: tuple[str, ...] = ()
    block_on: Severity = "error"

    def __post_init__(self) -> None:
        unknown = sorted({k for k in [*self.disabled, *self.severity] if rule_for(k) is None})
        if unknown:
            raise ValueError(unknown_rules_message(unknown))
        bad = sorted({str(v) for v in self.severity.values() if v not in SEVERITIES})
        if bad:
            raise ValueError(f"Unknown lint severity {', '.join(bad)}; use one of: {', '.join(SEVERITIES)}")
        if self.block_on not in SEVERITIES:
            raise ValueError(f"Unknown lint severity {self.block_on}; use one of: {', '.join(SEVERITIES)}")
        # Rules may be named by id or slug in any case; keep them by id.
        object.__setattr__(self, "disabled", frozenset(_rule(k).id for k in self.disabled))
        object.__setattr__(self, "severity", {_rule(k).id: v for k, v in self.severity.items()})

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any] | None) -> LintConfig:
        """The config from a project's ``settings.lint`` object (camelCase keys); tolerant of absent keys."""
        s = settings or {}
        labels = s.get("expectedLabels")
        return cls(
            disabled=frozenset(s.get("disabled") or ()),
            severity=dict(s.get("severity") or {}),
            context_tokens=s.get("contextTokens"),
            expected_labels=tuple(labels) if labels else None,
            block_on_labels=tuple(s.get("blockOnLabels") or ()),
            block_on=s.get("blockOn") or "error",
        )

    def is_disabled(self, rule: Rule) -> bool:
        return rule.id in self.disabled

    def severity_of(self, rule: Rule) -> Severity:
        return self.severity.get(rule.id) or rule.severity

    def blocking(self, findings: Iterable[LintFinding]) -> list[LintFinding]:
        """The findings at or above ``block_on``."""
        return [f for f in findings if at_or_above(f.severity, self.block_on)]


def unknown_rules_message(unknown: Sequence[str]) -> str:
    known = ", ".join(f"{r.id} ({r.name})" for r in RULES)
    return f"Unknown lint rule(s): {', '.join(unknown)}; known rules: {known}"


def estimate_tokens(text: str) -> int:
    """A provider-independent token estimate: about four characters per token."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


# --- entry point ------------------------------------------------------------------------------------------------


def lint_prompt(
    kind: str,
    template: str | None,
    messages: Sequence[Mapping[str, Any]] | None,
    variables: Sequence[engine.VariableSpec | Mapping[str, Any]],
    config: LintConfig | None = None,
    *,
    include_results: Mapping[str, str | None] | None = None,
    context_window: int | None = None,
    output_labels: Sequence[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    model_params: Mapping[str, Any] | None = None,
    response_schema: Mapping[str, Any] | None = None,
    analysis: engine.TemplateAnalysis | None = None,
) -> list[LintFinding]:
    """Run every enabled rule over one prompt version and return its findings (most severe first).

    ``include_results`` maps each include reference to ``None`` (it resolves) or the reason it does not;
    when the mapping itself is ``None`` includes cannot be checked here (an info finding). ``context_window``
    (else ``config.context_tokens``) enables the length rules. Expected output labels come from
    ``output_labels``, else ``config.expected_labels``, else ``metadata.labels``. ``analysis`` lets a caller
    that already ran :func:`engine.analyze` skip a second parse.
    """
    config = config or LintConfig()
    out = _Collector(config)
    message_list = [dict(m) for m in messages] if messages is not None else None

    specs, spec_problem = _specs(variables)
    if spec_problem is not None:
        out.add("PL001", spec_problem.detail, **_location(spec_problem))
    if analysis is None:
        try:
            analysis = engine.analyze(kind, template, message_list, specs)
        except ProblemError as problem:
            out.add("PL001", problem.detail, **_location(problem))
            _lint_text(out, kind, template, message_list, specs)
            return out.sorted()

    sources = engine.sources_of(kind, template, message_list)
    read = [_read(kind, index, source, message_list) for index, source in enumerate(sources)]
    _empty(out, kind, sources, message_list)
    if spec_problem is None:
        for name in analysis.undeclared:
            first = next((r for r in read if name in r.first_use), None)
            out.add(
                "PL003",
                f"Variable {name!r} is used but not declared",
                line=first.first_use[name] if first else None,
                message_index=first.index if first and kind == "chat" else None,
            )
        for name in analysis.unused:
            out.add("PL004", f"Variable {name!r} is declared but never used")
    _includes(out, analysis.includes, include_results)
    _injection(out, kind, read, specs)
    _lint_text(out, kind, template, message_list, specs)
    _context(out, sources, context_window or config.context_tokens, model_params)
    instructions = "\n".join(r.plain for r in read if r.role != "assistant")
    labels = _expected_labels(output_labels, config, metadata)
    if labels:
        _output_format(out, instructions, labels, response_schema)
    _contradictions(out, instructions)
    return out.sorted()


# Linting costs about this many microseconds per character of plain text and per character inside template
# tags (it parses the templates and runs text rules; measured on 5,000-50,000-character prompts).
_LINT_PLAIN_MICROS = 1.5
_LINT_TAG_MICROS = 20.0


async def lint_prompt_async(
    kind: str,
    template: str | None,
    messages: Sequence[Mapping[str, Any]] | None,
    variables: Sequence[engine.VariableSpec | Mapping[str, Any]],
    config: LintConfig | None = None,
    **options: Any,
) -> list[LintFinding]:
    """:func:`lint_prompt` for async code: a big prompt is linted in a worker process (CPU and memory limits,
    422 ``template_too_complex`` beyond them) instead of on the event loop."""
    try:
        sources = engine.sources_of(
            kind, template, [dict(m) for m in messages] if messages is not None else None
        )
    except (ProblemError, TypeError, ValueError):
        sources = [template] if isinstance(template, str) else []
    if not engine.is_costly(sources, plain=_LINT_PLAIN_MICROS, tag=_LINT_TAG_MICROS):
        return lint_prompt(kind, template, messages, variables, config, **options)
    from promptops.templates import pool

    payload = ((kind, template, messages, variables, config), options)
    findings: list[LintFinding] = await pool.run("lint", payload, analysis=True)
    return findings


class _Collector:
    def __init__(self, config: LintConfig) -> None:
        self.config = config
        self.findings: list[LintFinding] = []
        self.counts: dict[str, int] = {}

    def add(
        self, rule_id: str, message: str, *, message_index: int | None = None, line: int | None = None
    ) -> None:
        rule = _BY_KEY[rule_id]
        if self.config.is_disabled(rule):
            return
        self.counts[rule.id] = self.counts.get(rule.id, 0) + 1
        if self.counts[rule.id] > MAX_FINDINGS_PER_RULE:
            return  # summarized in sorted(), so a huge prompt cannot produce a huge finding list
        self.findings.append(
            LintFinding(
                rule=rule.id,
                name=rule.name,
                severity=self.config.severity_of(rule),
                message=message,
                message_index=message_index,
                line=line,
                hint=rule.fix,
            )
        )

    def sorted(self) -> list[LintFinding]:
        for rule_id, count in self.counts.items():
            if count > MAX_FINDINGS_PER_RULE:
                rule = _BY_KEY[rule_id]
                self.findings.append(
                    LintFinding(
                        rule=rule.id,
                        name=rule.name,
                        severity=self.config.severity_of(rule),
                        message=f"... and {count - MAX_FINDINGS_PER_RULE} more {rule.name} finding(s)",
                        hint=rule.fix,
                    )
                )
        return sorted(
            self.findings,
            key=lambda f: (-_RANK[f.severity], f.rule, _last(f.message_index), _last(f.line)),
        )


def _last(value: int | None) -> int:
    """Sort key: findings without a location come after located ones of the same rule."""
    return value if value is not None else 1 << 30


def _specs(
    variables: Sequence[engine.VariableSpec | Mapping[str, Any]],
) -> tuple[list[engine.VariableSpec], ProblemError | None]:
    specs: list[engine.VariableSpec] = []
    try:
        for v in variables:
            specs.append(v if isinstance(v, engine.VariableSpec) else engine.VariableSpec.from_dict(v))
        names = [s.name for s in specs]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise engine.TemplateProblem(
                f"Variables declared more than once: {', '.join(dupes)}", code="invalid_variable_spec"
            )
    except ProblemError as problem:
        return [], problem
    return specs, None


def _location(problem: ProblemError) -> dict[str, Any]:
    index = problem.extra.get("messageIndex")
    line = problem.extra.get("line")
    return {
        "message_index": index if isinstance(index, int) else None,
        "line": line if isinstance(line, int) else None,
    }


def _where(kind: str, index: int) -> dict[str, Any]:
    return {"message_index": index} if kind == "chat" else {}


class _Lines:
    """Line numbers of offsets in one text, by binary search over its newline positions."""

    def __init__(self, text: str) -> None:
        self._breaks = [m.start() for m in re.finditer("\n", text)]

    def of(self, offset: int) -> int:
        return bisect.bisect_left(self._breaks, offset) + 1


# --- PL002 empty ------------------------------------------------------------------------------------------------


def _empty(out: _Collector, kind: str, sources: Sequence[str], messages: list[dict[str, Any]] | None) -> None:
    if kind == "text":
        if not sources or not sources[0].strip():
            out.add("PL002", "The template is empty")
        return
    if not sources or all(not s.strip() for s in sources):
        out.add("PL002", "Every message is empty")
        return
    for index, source in enumerate(sources):
        if not source.strip():
            role = (messages or [{}])[index].get("role", "?")
            out.add("PL002", f"Message {index} ({role}) is empty", message_index=index)


# --- PL005 / PL006 includes ---------------------------------------------------------------------------------------


def _includes(out: _Collector, refs: Sequence[str], results: Mapping[str, str | None] | None) -> None:
    for ref in refs:
        if results is None:
            out.add("PL006", f"Include {ref!r} was not checked: includes resolve only against the registry")
            continue
        if ref not in results:
            out.add("PL006", f"Include {ref!r} was not checked (too many includes to check them all)")
            continue
        problem = results[ref]
        if problem is not None:
            out.add("PL005", f"Include {ref!r} does not resolve: {problem}")


# --- PL007 injection risk -----------------------------------------------------------------------------------------

_PARSER = ImmutableSandboxedEnvironment(keep_trailing_newline=True)
_SAFE_TYPES = frozenset({"number", "integer", "boolean"})
_SENTINEL = "\x00"
_PAIRED = (re.compile(r"`{3,}"), re.compile(r'"""'), re.compile(r"'''"))
_FENCE_LINE = re.compile(r"^[ \t]*(?:-{3,}|={3,}|#{3,})[ \t]*$", re.MULTILINE)
_INLINE_CODE = re.compile(r"`[^`\n]+`")
_TAG = re.compile(r"<(/?)([A-Za-z][\w.:-]{0,63})(?:\s[^<>\n]{0,200})?>")
_WORD = re.compile(r"[A-Za-z]{2,}")
_INSTRUCTION_WORDS = 3


@dataclass
class _Slot:
    """One ``{{ ... }}`` output: the input variables it shows, its line, offset in the text, whether JSON."""

    names: set[str]
    line: int
    offset: int
    encoded: bool


@dataclass
class _Read:
    """One template source as lint sees it: literal text (a sentinel per output), outputs, first uses."""

    index: int
    role: str
    text: str = ""
    slots: list[_Slot] = field(default_factory=list)
    first_use: dict[str, int] = field(default_factory=dict)

    @property
    def plain(self) -> str:
        """The literal text only, outputs blanked."""
        return self.text.replace(_SENTINEL, " ")


def _read(kind: str, index: int, source: str, messages: list[dict[str, Any]] | None) -> _Read:
    role = str((messages or [])[index].get("role", "")) if kind == "chat" and messages else ""
    read = _Read(index=index, role=role)
    # The engine's analysis reports broken templates; here they just have no text.
    with contextlib.suppress(TemplateSyntaxError, RecursionError):
        _linearize(source, read)
    return read


def _linearize(source: str, read: _Read) -> None:
    """Walk the template's AST in source order: literal text, a sentinel where each output goes."""
    ast = _PARSER.parse(source)
    aliases: dict[str, set[str]] = {}
    parts: list[str] = []
    length = 0

    def name_nodes(node: nodes.Node) -> list[nodes.Name]:
        # find_all yields descendants only; a bare {{ name }} is itself the Name node.
        found = list(node.find_all(nodes.Name))
        return [node, *found] if isinstance(node, nodes.Name) else found

    def names_in(node: nodes.Node) -> set[str]:
        found: set[str] = set()
        for name in name_nodes(node):
            if name.ctx == "load":
                read.first_use.setdefault(name.name, name.lineno)
                found |= aliases.get(name.name, {name.name})
        return found

    def bind(target: nodes.Node, value: nodes.Node) -> None:
        sources = names_in(value)
        for name in name_nodes(target):
            aliases[name.name] = sources

    def walk(node: nodes.Node) -> None:
        nonlocal length
        if isinstance(node, nodes.For):
            bind(node.target, node.iter)
        elif isinstance(node, nodes.Assign):
            bind(node.target, node.node)
        elif isinstance(node, nodes.Name) and node.ctx == "load":
            read.first_use.setdefault(node.name, node.lineno)
        if isinstance(node, nodes.Output):
            for child in node.nodes:
                if isinstance(child, nodes.TemplateData):
                    part = child.data.replace(_SENTINEL, "")
                else:
                    encoded = isinstance(child, nodes.Filter) and child.name == "tojson"
                    read.slots.append(_Slot(names_in(child), child.lineno, length, encoded))
                    part = _SENTINEL
                parts.append(part)
                length += len(part)
            return
        for inner in node.iter_child_nodes():
            walk(inner)

    walk(ast)
    read.text = "".join(parts)


def _protected(text: str) -> list[int]:
    """Prefix sums over ``text``: ``covered[i] > 0`` when offset ``i`` lies inside delimiters. Linear time."""
    diff = [0] * (len(text) + 1)

    def cover(start: int, end: int) -> None:
        diff[start] += 1
        diff[end] -= 1

    for pattern in _PAIRED:
        marks = list(pattern.finditer(text))
        for opening, closing in zip(marks[::2], marks[1::2], strict=False):
            cover(opening.end(), closing.start())
    fences = list(_FENCE_LINE.finditer(text))
    for opening, closing in zip(fences[::2], fences[1::2], strict=False):
        cover(opening.end(), closing.start())
    for match in _INLINE_CODE.finditer(text):
        cover(match.start() + 1, match.end() - 1)
    open_tags: list[tuple[str, int]] = []
    for match in _TAG.finditer(text):
        name = match.group(2).lower()
        if not match.group(1):
            open_tags.append((name, match.end()))
            continue
        # Close the innermost open tag of that name; look only a little way down the stack.
        for depth in range(len(open_tags) - 1, max(-1, len(open_tags) - 33), -1):
            if open_tags[depth][0] == name:
                cover(open_tags[depth][1], match.start())
                del open_tags[depth:]
                break
    covered, running = [], 0
    for value in diff:
        running += value
        covered.append(running)
    return covered


def _injection(
    out: _Collector, kind: str, read: Sequence[_Read], specs: Sequence[engine.VariableSpec]
) -> None:
    types = {s.name: s.type for s in specs}
    for source in read:
        if kind == "chat" and source.role not in ("system", "developer"):
            continue
        risky_slots = [
            slot
            for slot in source.slots
            if not slot.encoded and any(types.get(n, "string") not in _SAFE_TYPES for n in slot.names)
        ]
        if not risky_slots:
            continue
        covered = _protected(source.text)
        words = [m.start() for m in _WORD.finditer(source.text)]
        reported: set[str] = set()
        for slot in risky_slots:
            risky = sorted(
                n for n in slot.names if types.get(n, "string") not in _SAFE_TYPES and n not in reported
            )
            if not risky or covered[slot.offset] > 0:
                continue
            if kind == "text":
                if len(words) - bisect.bisect_right(words, slot.offset) < _INSTRUCTION_WORDS:
                    continue  # the trailing data part of a text prompt, after all instructions
                where = "in the instructions of the text prompt (more instructions follow it)"
            else:
                where = f"in the {source.role} message"
            reported.update(risky)
            out.add(
                "PL007",
                f"Variable(s) {', '.join(risky)} rendered {where} without delimiters; a value could carry "
                "instructions the model follows",
                line=slot.line,
                **_where(kind, source.index),
            )


# --- PL008 secrets / PL009 personal data ----------------------------------------------------------------------------

_SECRET_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("private key", re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")),
    ("PromptOps API key", re.compile(r"\bpo_[a-z0-9]{8}_[A-Za-z0-9_-]{32,64}")),
    ("OpenAI/Anthropic-style API key", re.compile(r"\bsk-[A-Za-z0-9_-]{20,}")),
    ("AWS access key id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("GitHub token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})")),
    ("Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b")),
    ("Stripe key", re.compile(r"\b[rs]k_live_[0-9A-Za-z]{16,}")),
)
_ASSIGNED_SECRET = re.compile(
    r"(?i)\b(?:api[_ -]?key|secret|token|passw(?:or)?d|pwd|access[_ -]?key|auth)\b[\"']?\s*(?:[:=]|\bis\b)\s*"
    r"[\"']?([A-Za-z0-9+/_.~!@#$%^&*-]{12,})"
)


def _entropy(value: str) -> float:
    counts = {c: value.count(c) for c in set(value)}
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def _looks_random(value: str) -> bool:
    classes = sum(bool(re.search(p, value)) for p in (r"[a-z]", r"[A-Z]", r"[0-9]", r"[^A-Za-z0-9]"))
    return classes >= 2 and _entropy(value) >= 3.3 and not value.isalpha()


def _mask(value: str) -> str:
    return value[:4] + "…" if len(value) > 8 else "…"


_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@((?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,})\b")
# RFC 2606 / RFC 6761 names reserved for documentation and tests.
_EXAMPLE_DOMAINS = re.compile(r"(?i)(?:^|\.)(?:example\.(?:com|org|net)|example|test|invalid|localhost)$")
_PHONE = re.compile(r"(?<![\w.+/-])(\+?\(?\d[\d(). \t-]{7,18}\d)(?![\w/-])")
_IP_LIKE = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")
_DATE_LIKE = re.compile(r"^\d{4}[-./]\d{1,2}[-./]\d{1,2}$|^\d{1,2}[-./]\d{1,2}[-./]\d{2,4}$")


def _texts(
    kind: str,
    template: str | None,
    messages: list[dict[str, Any]] | None,
    specs: Sequence[engine.VariableSpec],
) -> Iterator[tuple[str, dict[str, Any]]]:
    if kind == "chat":
        for index, message in enumerate(messages or []):
            content = message.get("content")
            if isinstance(content, str):
                yield content, {"message_index": index}
    elif isinstance(template, str):
        yield template, {}
    for spec in specs:
        if isinstance(spec.default, str):
            yield spec.default, {}


def _lint_text(
    out: _Collector,
    kind: str,
    template: str | None,
    messages: list[dict[str, Any]] | None,
    specs: Sequence[engine.VariableSpec],
) -> None:
    for text, where in _texts(kind, template, messages, specs):
        lines = _Lines(text)
        seen: set[tuple[int, int]] = set()
        for label, pattern in _SECRET_PATTERNS:
            for match in pattern.finditer(text):
                if any(s <= match.start() < e for s, e in seen):
                    continue
                seen.add(match.span())
                out.add(
                    "PL008",
                    f"Possible {label} in the prompt ({_mask(match.group(0))})",
                    line=lines.of(match.start()),
                    **where,
                )
        for match in _ASSIGNED_SECRET.finditer(text):
            value = match.group(1)
            if any(s <= match.start(1) < e for s, e in seen) or not _looks_random(value):
                continue
            seen.add(match.span(1))
            out.add(
                "PL008",
                f"Possible credential after {match.group(0).split()[0]!r} ({_mask(value)})",
                line=lines.of(match.start()),
                **where,
            )
        for match in _EMAIL.finditer(text):
            if _EXAMPLE_DOMAINS.search(match.group(1)):
                continue
            out.add(
                "PL009",
                f"Email address {match.group(0)!r} in the prompt",
                line=lines.of(match.start()),
                **where,
            )
        for match in _PHONE.finditer(text):
            number = match.group(1).strip()
            digits = re.sub(r"\D", "", number)
            if not 9 <= len(digits) <= 15 or _IP_LIKE.match(number) or _DATE_LIKE.match(number):
                continue
            separators = len(re.findall(r"[(). \t-]+", number))
            if number.count("(") != number.count(")") or (not number.startswith("+") and separators < 2):
                continue
            out.add(
                "PL009",
                f"Phone number {number!r} in the prompt",
                line=lines.of(match.start()),
                **where,
            )


# --- PL010 / PL011 context ------------------------------------------------------------------------------------------


def _max_output(params: Mapping[str, Any] | None) -> int:
    for key in ("max_tokens", "maxTokens", "max_output_tokens", "max_completion_tokens"):
        value = (params or {}).get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return 0


def _context(
    out: _Collector, sources: Sequence[str], window: int | None, params: Mapping[str, Any] | None
) -> None:
    if not window or window <= 0:
        return
    prompt_tokens = sum(estimate_tokens(s) for s in sources)
    reserved = _max_output(params)
    total = prompt_tokens + reserved
    detail = f"about {prompt_tokens} prompt tokens"
    if reserved:
        detail += f" + max_tokens {reserved}"
    if total > window:
        out.add(
            "PL011", f"The prompt needs {detail}, more than the model's context window of {window} tokens"
        )
    elif total > window * CONTEXT_WARN_RATIO:
        share = round(100 * total / window)
        out.add("PL010", f"The prompt needs {detail}, {share}% of the model's context window of {window}")


# --- PL012 output format ----------------------------------------------------------------------------------------------

_FORMAT_PHRASES = re.compile(
    r"(?i)\b(?:answer|respond|reply|output|return|classify|label)\b[^.\n]{0,40}\b(?:one|single)\s+(?:word|label|"
    r"of)\b|\b(?:in|as|with)\s+(?:valid\s+)?json\b|\bjson\s+(?:object|format)\b|\bone of\b|\bonly (?:the )?"
    r"(?:label|word|category)\b|\boutput format\b|\bformat:"
)


def _expected_labels(
    output_labels: Sequence[str] | None, config: LintConfig, metadata: Mapping[str, Any] | None
) -> list[str]:
    for candidate in (output_labels, config.expected_labels, (metadata or {}).get("labels")):
        if isinstance(candidate, list | tuple) and candidate:
            return [str(c) for c in candidate if isinstance(c, str | int)]
    return []


def _output_format(
    out: _Collector, text: str, labels: Sequence[str], response_schema: Mapping[str, Any] | None
) -> None:
    if response_schema:
        return
    missing = [label for label in labels if not re.search(rf"(?i)(?<!\w){re.escape(label)}(?!\w)", text)]
    if not missing or _FORMAT_PHRASES.search(text) is not None:
        return
    named = "names none of them" if len(missing) == len(labels) else f"never names {', '.join(missing)}"
    out.add(
        "PL012",
        f"A scorer expects exact labels ({', '.join(labels)}) but the prompt {named} and states no output "
        "format",
    )


# --- PL013 contradictions ----------------------------------------------------------------------------------------------

_BRIEF = (
    "be concise",
    "be brief",
    "briefly",
    "in one word",
    "a single word",
    "in one sentence",
    "keep it short",
    "as short as possible",
    "no explanation",
    "do not explain",
    "don't explain",
    "without explanation",
    "without explaining",
)
_DETAILED = (
    "explain in detail",
    "in great detail",
    "in detail",
    "step by step",
    "step-by-step",
    "elaborate",
    "be thorough",
    "explain your reasoning",
    "show your reasoning",
    "show your work",
    "comprehensive",
    "at length",
)
_JSON = (
    "respond in json",
    "answer in json",
    "reply in json",
    "output json",
    "return json",
    "as json",
    "in json format",
    "json object",
    "valid json",
)
_PLAIN = (
    "plain text",
    "plaintext",
    "no json",
    "not json",
    "do not use json",
    "don't use json",
    "without json",
    "prose only",
)
_NEGATION = re.compile(r"(?:\bnot|\bnever|n't|\bno|\bwithout)\s+(?:\w+\s+){0,2}$")
_ALWAYS = re.compile(
    r"\b(always|never|must not|must never|do not|don't|must)\s+([a-z][a-z' -]{1,60}?)(?=[.,;:!?\n]|$)"
)
_FILLER = frozenset({"a", "an", "the", "any", "your", "you", "to", "be", "always", "please"})


def _phrase_hits(text: str, phrases: Sequence[str]) -> list[str]:
    hits = []
    for phrase in phrases:
        for match in re.finditer(rf"(?<!\w){re.escape(phrase)}(?!\w)", text):
            if _NEGATION.search(text[max(0, match.start() - 30) : match.start()]):
                continue
            hits.append(phrase)
            break
    return hits


def _normalize(action: str) -> tuple[str, ...]:
    return tuple(w for w in re.findall(r"[a-z']+", action) if w not in _FILLER)[:4]


def _contradictions(out: _Collector, instructions: str) -> None:
    text = instructions.lower()
    for left, right, what in (
        (_BRIEF, _DETAILED, "brevity vs detail"),
        (_JSON, _PLAIN, "output format"),
    ):
        a, b = _phrase_hits(text, left), _phrase_hits(text, right)
        if a and b:
            out.add("PL013", f"Contradictory instructions ({what}): {a[0]!r} vs {b[0]!r}")
    positive: dict[tuple[str, ...], str] = {}
    negative: dict[tuple[str, ...], str] = {}
    for match in _ALWAYS.finditer(text):
        key = _normalize(match.group(2))
        if not key:
            continue
        target = positive if match.group(1) in ("always", "must") else negative
        target.setdefault(key, match.group(0).strip())
    for key, said in positive.items():
        denied = negative.get(key)
        if denied is not None and not (len(key) == 1 and len(key[0]) <= 3):
            out.add("PL013", f"Contradictory instructions: {said!r} vs {denied!r}")
