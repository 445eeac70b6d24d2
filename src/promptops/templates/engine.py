"""Sandboxed Jinja2 prompt templates: analysis, typed variables, registry includes and guarded rendering.

Templates are untrusted input written by project members, so everything runs in Jinja's immutable sandbox
and every failure surfaces as a :class:`~promptops.errors.TemplateProblem` with a stable code. Besides the
sandbox's attribute checks, rendering is bounded: the output size is capped, and loops, calls and generated
text draw on a per-render work budget, so small templates cannot expand into huge strings or endless work.
Sizes are checked from the arguments *before* anything is built (``slice(n)``, ``batch(n)``, ``range(n)``,
``'x' * n``, ``center(n)``, ``join``, ``%``/``format`` widths, printing a nested value), lazy sequences are
counted while they are consumed, and every such refusal names the construct and the limit
(:mod:`promptops.templates.limits`).

Rendering runs off the event loop: in a worker process with CPU and memory limits
(:mod:`promptops.templates.pool`), except templates that can only loop over their inputs, which get a short
in-process time slice first (see :func:`render`). Parsing a big template (analysis, lint) goes to a worker too.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import re
import string
import time
from collections import OrderedDict
from collections.abc import (
    Awaitable,
    Callable,
    Generator,
    ItemsView,
    Iterable,
    Iterator,
    KeysView,
    Mapping,
    Sequence,
    ValuesView,
)
from dataclasses import dataclass, field, replace
from types import CodeType, TracebackType
from typing import Any, NoReturn, cast

from jinja2 import BaseLoader, StrictUndefined, TemplateNotFound, meta, nodes
from jinja2.environment import Template
from jinja2.exceptions import SecurityError, TemplateError, TemplateSyntaxError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace
from jinja2.visitor import NodeTransformer

from promptops.errors import ProblemError, TemplateProblem
from promptops.templates import limits as _limits
from promptops.templates.limits import TemplateLimits

__all__ = [
    "VARIABLE_TYPES",
    "IncludedPrompt",
    "RenderResult",
    "Resolver",
    "TemplateAnalysis",
    "VariableSpec",
    "analyze",
    "analyze_async",
    "coerce_variables",
    "preanalyze",
    "render",
    "sources_of",
]

VARIABLE_TYPES = ("string", "number", "integer", "boolean", "array", "object", "any")
TEMPLATE_KINDS = ("text", "chat")

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_MAX_NAME_LENGTH = 64
_SPEC_KEYS = ("name", "type", "required", "default", "description")
# Names the template language reads as literals, operators or the template itself, never as a variable.
_RESERVED_NAMES = frozenset(
    {"true", "false", "none", "True", "False", "None", "and", "or", "not", "in", "is", "if", "else", "self"}
)

# Work units a single render may spend (TemplateLimits.work_budget, default ten million): one per loop
# iteration (plus the literal text the loop body emits), 25 per call, one per character or item that a
# filter, call or operator takes or produces, and one per element of a nested value that is printed or
# compared. Ten million keeps the worst case to a few seconds of CPU while leaving ample room for realistic
# prompts; the worker's CPU limit is the backstop.
_CALL_COST = 25
# Integers beyond this many bits only come from deliberate blow-ups such as 9 ** 99999999.
_MAX_INT_BITS = 65_536
# Values nested deeper than this are refused when printed or compared (Python's repr would recurse).
_MAX_NESTING = 200

# The in-process attempt of a render (see render()): at most this much work, then it moves to a worker.
_INLINE_WORK = 250_000
# The in-process attempt looks at the clock every this many work charges.
_CLOCK_EVERY = 8

_LOOP_HOOK = "promptops_loop_guard"
_CONCAT_HOOK = "promptops_concat_guard"
_TEXT_HOOK = "promptops_text_guard"
_DEEP_HOOK = "promptops_deep_guard"
_CONTAINERS = (list, tuple, dict, set, frozenset, range, KeysView, ValuesView, ItemsView)
_SIZED = (str, *_CONTAINERS)
_NESTED = (*_CONTAINERS, Namespace)  # values whose text is the text of what they contain
_SCALARS = (int, float, bool)


# --- public data types ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VariableSpec:
    """A declared template variable: its name, JSON type, whether it is required and its default."""

    name: str
    type: str = "string"
    required: bool = True
    default: Any = None
    description: str = ""

    def __post_init__(self) -> None:
        if (
            not isinstance(self.name, str)
            or len(self.name) > _MAX_NAME_LENGTH
            or not _IDENTIFIER.match(self.name)
        ):
            raise _spec_problem(
                f"Variable name {self.name!r} is invalid: use letters, digits and underscores, not starting "
                f"with a digit, at most {_MAX_NAME_LENGTH} characters",
                self.name,
            )
        if self.name in _RESERVED_NAMES:
            raise _spec_problem(
                f"Variable name {self.name!r} is reserved by the template language; choose another name",
                self.name,
            )
        if self.type not in VARIABLE_TYPES:
            raise _spec_problem(
                f"Variable {self.name!r} has unknown type {self.type!r}; expected one of "
                + ", ".join(VARIABLE_TYPES),
                self.name,
            )
        if not isinstance(self.required, bool):
            raise _spec_problem(f"Variable {self.name!r}: 'required' must be true or false", self.name)
        if not isinstance(self.description, str):
            raise _spec_problem(f"Variable {self.name!r}: 'description' must be a string", self.name)
        if self.default is not None and not _matches_type(self.default, self.type):
            raise _spec_problem(
                f"Variable {self.name!r}: default value is {_json_type(self.default)}, not {self.type}",
                self.name,
            )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> VariableSpec:
        """Build a spec from its JSON form: ``name``, ``type``, ``required``, ``default``, ``description``.

        Unknown keys are rejected so a misspelt ``requried`` cannot silently make a variable required.
        """
        if not isinstance(d, Mapping):
            raise _spec_problem("A variable declaration must be an object", None)
        name = d.get("name")
        unknown = sorted(str(key) for key in d if key not in _SPEC_KEYS)
        if unknown:
            raise _spec_problem(
                f"Variable {name!r} has unknown field(s): {', '.join(unknown)}; "
                f"allowed: {', '.join(_SPEC_KEYS)}",
                name if isinstance(name, str) else None,
            )
        if name is None:
            raise _spec_problem("A variable declaration needs a 'name'", None)
        return cls(
            name=name,
            type=_value_or(d, "type", "string"),
            required=_value_or(d, "required", True),
            default=d.get("default"),
            description=_value_or(d, "description", ""),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form accepted by :meth:`from_dict`."""
        return {
            "name": self.name,
            "type": self.type,
            "required": self.required,
            "default": self.default,
            "description": self.description,
        }


@dataclass(frozen=True)
class IncludedPrompt:
    """A registry prompt version that an include reference resolved to."""

    ref: str
    prompt_id: str
    prompt_name: str
    version_id: str
    version: int
    kind: str
    template: str
    variables: tuple[VariableSpec, ...]


Resolver = Callable[[str], Awaitable[IncludedPrompt]]


@dataclass(frozen=True)
class TemplateAnalysis:
    """Variables and includes a version's templates reference, compared with its declarations."""

    used: tuple[str, ...]
    undeclared: tuple[str, ...]
    unused: tuple[str, ...]
    includes: tuple[str, ...]


@dataclass(frozen=True)
class RenderResult:
    """Rendered text (kind ``text``) or messages (kind ``chat``) and the included versions that were used."""

    text: str | None
    messages: list[dict[str, str]] | None
    included: tuple[IncludedPrompt, ...]


# --- public functions -------------------------------------------------------------------------------------


def sources_of(kind: str, template: str | None, messages: list[dict[str, str]] | None) -> list[str]:
    """The template strings of a version: ``[template]`` for text, each message's content for chat."""
    if kind == "text":
        if template is None:
            return [""]
        if not isinstance(template, str):
            raise TemplateProblem("A text prompt's template must be a string", code="invalid_template")
        return [template]
    if kind == "chat":
        if messages is None:
            return []
        if not isinstance(messages, list):
            raise TemplateProblem("A chat prompt's messages must be a list", code="invalid_messages")
        sources = []
        for index, message in enumerate(messages):
            if (
                not isinstance(message, Mapping)
                or not isinstance(message.get("role"), str)
                or not isinstance(message.get("content"), str)
            ):
                raise TemplateProblem(
                    f"Message {index} must be an object with string 'role' and 'content'",
                    code="invalid_messages",
                    messageIndex=index,
                )
            sources.append(message["content"])
        return sources
    raise TemplateProblem(
        f"Unknown prompt kind {kind!r}; expected one of {', '.join(TEMPLATE_KINDS)}",
        code="invalid_kind",
        kind=kind,
    )


def analyze(
    kind: str,
    template: str | None,
    messages: list[dict[str, str]] | None,
    specs: Sequence[VariableSpec],
) -> TemplateAnalysis:
    """Parse every template of a version and report used, undeclared and unused variables and includes.

    Raises ``template_syntax_error`` (with ``line`` and, for chat, ``messageIndex``) for templates that do
    not parse or compile, and ``dynamic_include`` for includes whose target is not a constant string.

    This parses in the calling thread; from async code use :func:`analyze_async`, which parses big templates
    in a worker process. Results are cached, so analysing a template that :func:`analyze_async` has seen is
    cheap here.
    """
    sources = sources_of(kind, template, messages)
    declared = _declared_names(specs)
    env = _PromptEnvironment()
    parsed = [_scan(env, source, _root_origin(kind, index)) for index, source in enumerate(sources)]
    return _analysis(parsed, declared)


async def analyze_async(
    kind: str,
    template: str | None,
    messages: list[dict[str, str]] | None,
    specs: Sequence[VariableSpec],
) -> TemplateAnalysis:
    """:func:`analyze` for async code: a big template is parsed in a worker process (with its CPU and memory
    limits), never on the event loop; a template that exceeds them is a 422 ``template_too_complex``."""
    sources = sources_of(kind, template, messages)
    declared = _declared_names(specs)
    parsed = await _scan_async([(source, _root_origin(kind, index)) for index, source in enumerate(sources)])
    return _analysis(parsed, declared)


async def preanalyze(kind: str, template: str | None, messages: list[dict[str, str]] | None) -> None:
    """Analyse a version's templates off the event loop (see :func:`analyze_async`) ahead of synchronous
    :func:`analyze` calls on them, which then find the result cached. Problems are left for those calls, and
    for rendering, to report."""
    with contextlib.suppress(ProblemError):
        await analyze_async(kind, template, messages, [])


def _analysis(parsed: Sequence[_Parsed], declared: set[str]) -> TemplateAnalysis:
    used: set[str] = set()
    includes: list[str] = []
    for one in parsed:
        used |= one.used
        includes.extend(one.refs)
    return TemplateAnalysis(
        used=tuple(sorted(used)),
        undeclared=tuple(sorted(used - declared)),
        unused=tuple(sorted(declared - used)),
        includes=tuple(_unique(includes)),
    )


def coerce_variables(specs: Sequence[VariableSpec], values: Mapping[str, Any]) -> dict[str, Any]:
    """Check supplied values against the specs and fill in defaults.

    A value of ``None`` counts as not supplied. Missing optional variables take their default (``None`` when
    there is none, which renders as an empty string). All missing required variables are reported together
    (``missing_variables``), as are all type mismatches (``invalid_variable_type``). Values for undeclared
    names pass through unchanged.
    """
    _declared_names(specs)
    result, missing, errors = _coerce(specs, values)
    _raise_variable_problems(missing, errors)
    return result


async def render(
    kind: str,
    template: str | None,
    messages: list[dict[str, str]] | None,
    specs: Sequence[VariableSpec],
    values: Mapping[str, Any],
    resolver: Resolver | None = None,
    *,
    max_depth: int = 5,
    max_output_chars: int | None = None,
) -> RenderResult:
    """Render a version's template(s) with ``values``; ``{% include "name@label" %}`` goes via ``resolver``.

    Included prompts must be text prompts; they see the same variables and their required variables are
    enforced too. The include graph is resolved before rendering, so cycles (``include_cycle``), excessive
    nesting (``include_depth_exceeded``) and unresolvable references fail before any output is produced.
    Every failure is a :class:`TemplateProblem` (or the resolver's own :class:`ProblemError`).

    Limits come from :func:`promptops.templates.limits.current` (``max_output_chars`` overrides one). The
    template itself never runs on the event loop for long: a template (with its includes) that can only loop
    over its inputs (no ``*``/``%``/``**``, literal lists of variables, container-building filters, or calls
    other than ``range``, its own macros and flat methods; see :class:`_SimpleCheck`) cannot build values
    larger than its inputs, so it gets an in-process attempt of at most ``inline_ms`` with a small work
    budget. Every other template, and one that overruns that attempt, is rendered by a worker process with
    the full budget and the CPU and memory limits (``render_cpu_exceeded``, ``render_memory_exceeded``).
    """
    limits = _limits.current()
    if max_output_chars is not None:
        limits = replace(limits, max_output_chars=max_output_chars)
    sources = sources_of(kind, template, messages)
    _declared_names(specs)
    origins = [_root_origin(kind, index) for index in range(len(sources))]
    roots = await _scan_async(list(zip(sources, origins, strict=True)))

    graph = _IncludeGraph(resolver, max_depth)
    for ref in _unique(ref for parsed in roots for ref in parsed.refs):
        await graph.visit(ref, ())
    context = _prepare_values(specs, values, roots, list(graph.nodes.values()))

    rendered: list[str] | None = None
    used: list[str] = []
    everything = [*roots, *(node.parsed for node in graph.nodes.values())]
    if limits.inline_ms > 0 and all(parsed.simple and parsed.code is not None for parsed in everything):
        env = _PromptEnvironment(limits, inline_seconds=limits.inline_ms / 1000)
        env.include_loader.templates = {
            ref: (cast(CodeType, node.parsed.code), node.prompt) for ref, node in graph.nodes.items()
        }
        try:
            rendered = [
                _render_one(env, parsed, origin, context)
                for parsed, origin in zip(roots, origins, strict=True)
            ]
            used = env.include_loader.used
        except _Escalate:
            rendered = None
    if rendered is None:
        from promptops.templates import pool

        includes = {ref: node.prompt for ref, node in graph.nodes.items()}
        rendered, used = await pool.run("render", (kind, sources, context, includes, limits), limits=limits)

    included = tuple(_unique_versions(graph.nodes[ref].prompt for ref in used))
    if kind == "text":
        return RenderResult(text=rendered[0], messages=None, included=included)
    out_messages = [
        {**message, "content": content} for message, content in zip(messages or [], rendered, strict=True)
    ]
    return RenderResult(text=None, messages=out_messages, included=included)


def render_in_worker(
    kind: str,
    sources: list[str],
    context: dict[str, Any],
    includes: dict[str, IncludedPrompt],
    limits: TemplateLimits,
) -> tuple[list[str], list[str]]:
    """The worker side of :func:`render`: compile and render with the full budget; the rendered sources and
    the include references that were actually loaded, in order."""
    env = _PromptEnvironment(limits)
    origins = [_root_origin(kind, index) for index in range(len(sources))]
    roots = [_parse(env, source, origin) for source, origin in zip(sources, origins, strict=True)]
    env.include_loader.templates = {
        ref: (cast(CodeType, _parse(env, prompt.template, _include_origin(ref)).code), prompt)
        for ref, prompt in includes.items()
    }
    rendered = [
        _render_one(env, parsed, origin, context) for parsed, origin in zip(roots, origins, strict=True)
    ]
    return rendered, env.include_loader.used


def scan_in_worker(pairs: list[tuple[str, _Origin]]) -> list[_Parsed | ProblemError]:
    """The worker side of :func:`analyze_async`: parse each source (without keeping the compiled code);
    stops at the first one that fails, which is returned as the problem."""
    env = _PromptEnvironment()
    results: list[_Parsed | ProblemError] = []
    for source, origin in pairs:
        try:
            results.append(replace(_parse(env, source, origin), code=None))
        except ProblemError as problem:
            results.append(problem)
            break
    return results


# --- variables ----------------------------------------------------------------------------------------------


def _spec_problem(detail: str, name: str | None) -> TemplateProblem:
    extra: dict[str, Any] = {"variable": name} if name is not None else {}
    return TemplateProblem(detail, code="invalid_variable_spec", **extra)


def _value_or(d: Mapping[str, Any], key: str, fallback: Any) -> Any:
    # JSON clients often send explicit nulls for fields they leave at the default.
    value = d.get(key)
    return fallback if value is None else value


def _matches_type(value: Any, type_: str) -> bool:
    is_bool = isinstance(value, bool)
    checks: dict[str, bool] = {
        "any": True,
        "string": isinstance(value, str),
        "boolean": is_bool,
        "integer": isinstance(value, int) and not is_bool,
        "number": isinstance(value, int | float) and not is_bool,
        "array": isinstance(value, list | tuple),
        "object": isinstance(value, Mapping),
    }
    return checks.get(type_, False)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _declared_names(specs: Sequence[VariableSpec]) -> set[str]:
    names: set[str] = set()
    for spec in specs:
        if spec.name in names:
            raise _spec_problem(f"Variable {spec.name!r} is declared more than once", spec.name)
        names.add(spec.name)
    return names


def _coerce(
    specs: Iterable[VariableSpec], values: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str], list[dict[str, str]]]:
    result = dict(values)
    missing: list[str] = []
    errors: list[dict[str, str]] = []
    for spec in specs:
        value = values.get(spec.name)
        if value is None:
            if spec.default is not None:
                result[spec.name] = spec.default
            elif spec.required:
                missing.append(spec.name)
            else:
                # Defined-but-empty lets `{% if name %}` work under StrictUndefined.
                result[spec.name] = None
        elif not _matches_type(value, spec.type):
            errors.append({"name": spec.name, "expected": spec.type, "got": _json_type(value)})
    return result, missing, errors


def _raise_variable_problems(missing: list[str], errors: list[dict[str, str]]) -> None:
    if missing:
        noun = "variable" if len(missing) == 1 else "variables"
        raise TemplateProblem(
            f"Missing value for template {noun}: {', '.join(missing)}",
            code="missing_variables",
            missing=missing,
        )
    if errors:
        described = ", ".join(f"{e['name']!r} must be {e['expected']} (got {e['got']})" for e in errors)
        raise TemplateProblem(
            f"Template variable type mismatch: {described}", code="invalid_variable_type", errors=errors
        )


# --- parsing ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Origin:
    """Where a template source came from, for error messages and problem fields."""

    label: str
    filename: str
    name: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _root_origin(kind: str, index: int) -> _Origin:
    if kind == "chat":
        return _Origin(f"message {index}", f"<message:{index}>", extra={"messageIndex": index})
    return _Origin("template", "<template>")


def _include_origin(ref: str) -> _Origin:
    return _Origin(f"included prompt {ref!r}", f"<include:{ref}>", name=ref, extra={"include": ref})


@dataclass(frozen=True)
class _Parsed:
    # None when the source was parsed in a worker process: only its analysis came back
    code: CodeType | None
    used: frozenset[str]
    bound: frozenset[str]
    refs: tuple[str, ...]
    # Only loops over inputs, no calls, macros or container builders: see render() and _SimpleCheck.
    simple: bool = False


# Compiled sources by (source, origin name, filename): an evaluation renders one template for thousands of cases,
# and parsing + compiling costs far more than rendering. Compiling does not depend on the per-render output
# limit, so entries are shared between environments. Only successful compilations are kept.
_PARSE_CACHE: OrderedDict[tuple[str, str | None, str], _Parsed] = OrderedDict()
_PARSE_CACHE_SIZE = 512
_PARSE_CACHE_MAX_SOURCE = 100_000
# Analyses (no code) of sources too costly to parse on the event loop, by a digest of the source: a worker's
# answer (or a syntax error it found) is kept so the same big template is parsed once, not per render.
_SCAN_CACHE: OrderedDict[tuple[bytes, str | None, str], _Parsed | tuple[str, dict[str, Any]]] = OrderedDict()
_SCAN_CACHE_SIZE = 256

# Parsing costs roughly this many microseconds per character of plain text and per character inside
# {{ }}, {% %} and {# #} tags (measured: a 200,000-character template of tags takes seconds). Sources whose
# estimate exceeds _COSTLY_MICROS are parsed in a worker by analyze_async() and render().
_PLAIN_MICROS = 0.05
_TAG_MICROS = 15.0
_COSTLY_MICROS = 50_000
_TAG_CLOSE = {"{": "}}", "%": "%}", "#": "#}"}


def _tag_chars(source: str, cap: int) -> int:
    """Characters inside template tags, counted up to ``cap`` (linear; stops once ``cap`` is passed)."""
    total = 0
    position = 0
    while total <= cap:
        start = source.find("{", position)
        if start < 0:
            break
        close = _TAG_CLOSE.get(source[start + 1 : start + 2])
        if close is None:
            position = start + 1
            continue
        end = source.find(close, start + 2)
        if end < 0:
            return total + len(source) - start
        total += end + 2 - start
        position = end + 2
    return total


def parse_micros(sources: Iterable[str], *, plain: float = _PLAIN_MICROS, tag: float = _TAG_MICROS) -> float:
    """An estimate of the CPU time (microseconds) that parsing ``sources`` takes; capped once it is costly."""
    total = 0.0
    for source in sources:
        total += plain * len(source)
        if total > _COSTLY_MICROS or tag <= 0:
            continue
        total += tag * _tag_chars(source, int((_COSTLY_MICROS - total) / tag) + 1)
        if total > _COSTLY_MICROS:
            return total
    return total


def is_costly(sources: Iterable[str], *, plain: float = _PLAIN_MICROS, tag: float = _TAG_MICROS) -> bool:
    """Whether work of roughly ``plain``/``tag`` microseconds per character is too much for the event loop."""
    return parse_micros(sources, plain=plain, tag=tag) > _COSTLY_MICROS


def _scan_key(source: str, origin: _Origin) -> tuple[bytes, str | None, str]:
    digest = hashlib.blake2b(source.encode("utf-8", "surrogatepass"), digest_size=20).digest()
    return digest, origin.name, origin.filename


def _cached(source: str, origin: _Origin) -> _Parsed | None:
    """A cached analysis of ``source`` (raising the cached problem of one that failed in a worker)."""
    if len(source) <= _PARSE_CACHE_MAX_SOURCE:
        found = _PARSE_CACHE.get((source, origin.name, origin.filename))
        if found is not None:
            _PARSE_CACHE.move_to_end((source, origin.name, origin.filename))
            return found
    if len(source) < 1_000:
        return None
    key = _scan_key(source, origin)
    entry = _SCAN_CACHE.get(key)
    if entry is None:
        return None
    _SCAN_CACHE.move_to_end(key)
    if isinstance(entry, tuple):
        detail, extra = entry
        raise TemplateProblem(detail, **extra)
    return entry


def _remember(source: str, origin: _Origin, entry: _Parsed | ProblemError) -> None:
    stored: _Parsed | tuple[str, dict[str, Any]]
    if isinstance(entry, ProblemError):
        stored = (entry.detail, {"code": entry.code, **entry.extra})
    else:
        stored = replace(entry, code=None)
    _SCAN_CACHE[_scan_key(source, origin)] = stored
    if len(_SCAN_CACHE) > _SCAN_CACHE_SIZE:
        _SCAN_CACHE.popitem(last=False)


def _parse(env: _PromptEnvironment, source: str, origin: _Origin) -> _Parsed:
    """:func:`_compile_source` through a small LRU cache."""
    if len(source) > _PARSE_CACHE_MAX_SOURCE:
        return _compile_source(env, source, origin)
    key = (source, origin.name, origin.filename)
    found = _PARSE_CACHE.get(key)
    if found is not None:
        _PARSE_CACHE.move_to_end(key)
        return found
    parsed = _compile_source(env, source, origin)
    _PARSE_CACHE[key] = parsed
    if len(_PARSE_CACHE) > _PARSE_CACHE_SIZE:
        _PARSE_CACHE.popitem(last=False)
    return parsed


def _scan(env: _PromptEnvironment, source: str, origin: _Origin) -> _Parsed:
    """The analysis of one source, parsed here unless cached (the code may be missing: see :class:`_Parsed`)."""
    found = _cached(source, origin)
    if found is not None:
        return found
    parsed = _parse(env, source, origin)
    if len(source) > _PARSE_CACHE_MAX_SOURCE or is_costly([source]):
        _remember(source, origin, parsed)
    return parsed


async def _scan_async(pairs: list[tuple[str, _Origin]]) -> list[_Parsed]:
    """Analyse sources in order: cached ones from the cache, the others here when cheap to parse, else all of
    them in one worker job. The first source that fails raises its problem."""
    results: list[_Parsed | None] = []
    missing: list[int] = []
    for index, (source, origin) in enumerate(pairs):
        found = _cached(source, origin)
        results.append(found)
        if found is None:
            missing.append(index)
    if missing and is_costly(pairs[index][0] for index in missing):
        from promptops.templates import pool

        try:
            answers = await pool.run("scan", [pairs[index] for index in missing], analysis=True)
        except ProblemError as problem:
            if problem.code == "template_too_complex":
                # Remembered so that a synchronous analyze() of it never parses it on the event loop.
                culprits = [index for index in missing if is_costly([pairs[index][0]])] or missing
                for index in culprits:
                    _remember(*pairs[index], problem)
            raise
        for index, answer in zip(missing, answers, strict=False):
            _remember(*pairs[index], answer)
            if isinstance(answer, ProblemError):
                raise answer
            results[index] = answer
    elif missing:
        env = _PromptEnvironment()
        for index in missing:
            results[index] = _scan(env, *pairs[index])
    return [cast(_Parsed, parsed) for parsed in results]


def _compile_source(env: _PromptEnvironment, source: str, origin: _Origin) -> _Parsed:
    """Parse and compile one source; collect its free variables, locally bound names and include targets."""
    try:
        ast = env.parse(source, name=origin.name, filename=origin.filename)
        used = frozenset(meta.find_undeclared_variables(ast))
        refs = list(meta.find_referenced_templates(ast))
        if None in refs:
            line = _dynamic_reference_line(ast)
            raise TemplateProblem(
                f"{origin.label.capitalize()} includes a template chosen at render time (line {line}); "
                "includes must name a prompt with a constant string, "
                'e.g. {% include "shared/tone@production" %}',
                code="dynamic_include",
                line=line,
                **origin.extra,
            )
        bound = _bound_names(ast)
        simple = _SimpleCheck.of(ast)
        # Compiling now surfaces unknown filters/tests at save time instead of at first render.
        env.compiling = True
        try:
            code = env.compile(ast, name=origin.name, filename=origin.filename)
        finally:
            env.compiling = False
    except (ProblemError, MemoryError):
        raise
    except TemplateSyntaxError as exc:
        message = exc.message or str(exc)
        raise TemplateProblem(
            f"Syntax error in {origin.label} on line {exc.lineno}: {message}",
            code="template_syntax_error",
            line=exc.lineno,
            **origin.extra,
        )
    except RecursionError:
        raise TemplateProblem(
            f"Syntax error in {origin.label}: expressions are nested too deeply",
            code="template_syntax_error",
            **origin.extra,
        )
    except Exception as exc:
        raise TemplateProblem(
            f"{origin.label.capitalize()} could not be compiled: {exc}",
            code="template_syntax_error",
            **origin.extra,
        )
    return _Parsed(
        code=code,
        used=used,
        bound=bound,
        refs=tuple(_unique(r for r in refs if r is not None)),
        simple=simple,
    )


_REFERENCE_NODES = (nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)


def _dynamic_reference_line(ast: nodes.Template) -> int:
    for node in ast.find_all(_REFERENCE_NODES):
        target = node.template  # type: ignore[attr-defined]
        items = target.items if isinstance(target, nodes.Tuple | nodes.List) else [target]
        if not all(isinstance(item, nodes.Const) for item in items):
            return int(node.lineno)
    return 1


def _bound_names(ast: nodes.Template) -> frozenset[str]:
    """Names a template binds itself (loop targets, set, macros, imports)."""
    names: set[str] = set()
    for name_node in ast.find_all(nodes.Name):
        if name_node.ctx in ("store", "param"):
            names.add(name_node.name)
    for macro in ast.find_all(nodes.Macro):
        names.add(macro.name)
    for imported in ast.find_all(nodes.Import):
        names.add(imported.target)
    for from_import in ast.find_all(nodes.FromImport):
        for entry in from_import.names:
            names.add(entry[1] if isinstance(entry, tuple) else entry)
    return frozenset(names)


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


# --- includes -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _IncludeNode:
    ref: str
    prompt: IncludedPrompt
    parsed: _Parsed


class _IncludeGraph:
    """Resolves the include references of a render, depth-first, detecting cycles and excessive depth."""

    def __init__(self, resolver: Resolver | None, max_depth: int) -> None:
        self._resolver = resolver
        self._max_depth = max_depth
        self.nodes: dict[str, _IncludeNode] = {}
        # ref -> (height of its include subtree, prompt ids in it); lets shared sub-includes be checked once
        # instead of once per path, which would grow exponentially with fan-out.
        self._summaries: dict[str, tuple[int, frozenset[str]]] = {}

    async def _node(self, ref: str) -> _IncludeNode:
        node = self.nodes.get(ref)
        if node is not None:
            return node
        if self._resolver is None:
            raise TemplateProblem(
                f"The template includes {ref!r}, but includes cannot be resolved in this context",
                code="include_unavailable",
                include=ref,
            )
        prompt = await self._resolver(ref)
        if prompt.kind != "text":
            raise TemplateProblem(
                f"Cannot include {ref!r}: {prompt.prompt_name} v{prompt.version} is a {prompt.kind} prompt "
                "and only text prompts can be included",
                code="include_not_text",
                include=ref,
                kind=prompt.kind,
            )
        (parsed,) = await _scan_async([(prompt.template, _include_origin(ref))])
        node = _IncludeNode(ref, prompt, parsed)
        self.nodes[ref] = node
        return node

    async def visit(self, ref: str, chain: tuple[_IncludeNode, ...]) -> tuple[int, frozenset[str]]:
        """Resolve ``ref`` (included via ``chain``) and everything it includes; return its subtree summary."""
        names = [link.prompt.prompt_name for link in chain]
        depth = len(chain) + 1
        if depth > self._max_depth:
            raise TemplateProblem(
                f"Includes are nested more than {self._max_depth} levels deep: " + " -> ".join([*names, ref]),
                code="include_depth_exceeded",
                maxDepth=self._max_depth,
                chain=[*names, ref],
            )
        node = await self._node(ref)
        chain_ids = {link.prompt.prompt_id for link in chain}
        if node.prompt.prompt_id in chain_ids:
            cycle = [*names, node.prompt.prompt_name]
            raise TemplateProblem(
                "Include cycle: " + " -> ".join(cycle), code="include_cycle", chain=cycle, include=ref
            )
        summary = self._summaries.get(ref)
        if summary is not None and depth + summary[0] <= self._max_depth and not summary[1] & chain_ids:
            return summary
        height = 0
        ids = {node.prompt.prompt_id}
        for child in node.parsed.refs:
            child_height, child_ids = await self.visit(child, (*chain, node))
            height = max(height, child_height + 1)
            ids |= child_ids
        summary = (height, frozenset(ids))
        self._summaries[ref] = summary
        return summary


class _IncludeLoader(BaseLoader):
    """Serves the precompiled included prompts of one render and records which ones were actually loaded."""

    def __init__(self) -> None:
        self.templates: dict[str, tuple[CodeType, IncludedPrompt]] = {}
        self.used: list[str] = []

    def load(
        self,
        environment: Any,
        name: str,
        globals: Any = None,
    ) -> Template:
        entry = self.templates.get(name)
        if entry is None:
            raise TemplateNotFound(name)
        code, _prompt = entry
        self.used.append(name)
        return environment.template_class.from_code(environment, code, globals or {}, None)


def _unique_versions(prompts: Iterable[IncludedPrompt]) -> list[IncludedPrompt]:
    seen: set[str] = set()
    result = []
    for prompt in prompts:
        if prompt.version_id not in seen:
            seen.add(prompt.version_id)
            result.append(prompt)
    return result


def _prepare_values(
    specs: Sequence[VariableSpec],
    values: Mapping[str, Any],
    roots: Sequence[_Parsed],
    includes: Sequence[_IncludeNode],
) -> dict[str, Any]:
    """Coerce values against the root's and the included prompts' specs; report everything missing at once."""
    merged: dict[str, VariableSpec] = {spec.name: spec for spec in specs}
    for node in includes:
        _declared_names(node.prompt.variables)
        for spec in node.prompt.variables:
            # The including prompt's declaration wins when both declare a name.
            merged.setdefault(spec.name, spec)
    result, missing, errors = _coerce(merged.values(), values)

    used: set[str] = set()
    bound: set[str] = set()
    for parsed in roots:
        used |= parsed.used
        bound |= parsed.bound
    for node in includes:
        bound |= node.parsed.bound
    for node in includes:
        # An included template may use the includer's loop or set variables; those are not inputs.
        used |= node.parsed.used - bound
    for name in sorted(used):
        if name not in merged and name not in values and name not in missing:
            missing.append(name)
    _raise_variable_problems(missing, errors)
    return result


# --- guarded environment ----------------------------------------------------------------------------------


class _Escalate(BaseException):
    """The in-process attempt of a render used up its time slice or its small budget: render in a worker.

    A BaseException so that nothing between the budget check and :func:`render` turns it into a problem.
    """


class _NotAtCompileTime(Exception):
    """Raised by guarded filters that Jinja tries to evaluate while compiling (constant folding)."""


def _size(value: Any) -> int:
    if not isinstance(value, _SIZED):
        return 0
    try:
        return len(value)
    except OverflowError:  # range(10 ** 20)
        return 2**63


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_lazy(value: Any) -> bool:
    """An iterator or generator: its length is only known by consuming it."""
    return isinstance(value, Iterator) and not isinstance(value, _SIZED)


def _text_size(value: Any, limit: int) -> tuple[int, int]:
    """Roughly (from above) ``len(str(value))``, and how many elements were looked at to find out.

    A sub-value that appears several times counts every time, as it does when printed, but is walked once,
    so ``[[x] * 1000] * 1000`` is measured in a thousand steps, not a million. Counting stops once the
    estimate passes ``limit``.
    """
    if isinstance(value, str):
        return len(value), 0
    memo: dict[int, int] = {}
    visited = 0

    def walk(item: Any, depth: int) -> int:
        nonlocal visited
        if isinstance(item, str):
            return len(item) + 2
        if item is None or isinstance(item, bool | float):
            return 24
        if isinstance(item, int):
            return item.bit_length() // 3 + 2
        if isinstance(item, Namespace):
            item = object.__getattribute__(item, "_Namespace__attrs")
        if not isinstance(item, _CONTAINERS) or isinstance(item, range):
            return 64
        key = id(item)
        known = memo.get(key)
        if known is not None:
            return known
        if depth > _MAX_NESTING:
            raise TemplateProblem(
                f"A value is nested more than {_MAX_NESTING} levels deep to be printed or compared",
                code="template_render_error",
                limit=_MAX_NESTING,
            )
        memo[key] = 8  # a value that contains itself prints as [...]
        total = 2
        if isinstance(item, dict):
            for element_key, element in item.items():
                visited += 1
                total += walk(element_key, depth + 1) + walk(element, depth + 1) + 4
                if total > limit:
                    break
        else:
            for element in item:
                visited += 1
                total += walk(element, depth + 1) + 2
                if total > limit:
                    break
        memo[key] = total
        return total

    return walk(value, 0), visited


def _construct(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


def _call_text(name: str, args: Sequence[Any]) -> str:
    shown = ", ".join(repr(arg) if _is_int(arg) and arg.bit_length() < 200 else "…" for arg in args)
    return _construct(f"{name}({shown})")


class _GuardInserter(NodeTransformer):
    """Rewrites the AST so loops, string concatenation, comparisons and dict keys report to the budget."""

    def __init__(self, env: _PromptEnvironment) -> None:
        self._env = env

    def _hook(self, hook: str, args: list[Any], lineno: int) -> nodes.Call:
        call = nodes.Call(nodes.EnvironmentAttribute(hook), args, [], None, None)
        call.set_lineno(lineno)
        call.set_environment(self._env)
        return call

    def _deep(self, expr: nodes.Expr) -> nodes.Expr:
        return expr if isinstance(expr, nodes.Const) else self._hook(_DEEP_HOOK, [expr], expr.lineno)

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        # Literal text in the body is emitted once per iteration without passing through finalize.
        literal = sum(len(data.data) for part in node.body for data in part.find_all(nodes.TemplateData))
        node.iter = self._hook(_LOOP_HOOK, [node.iter, nodes.Const(1 + literal)], node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        # Each part is converted to text before the result can be measured: measure the parts first.
        node.nodes = [
            part
            if isinstance(part, nodes.Const) and isinstance(part.value, str)
            else self._hook(_TEXT_HOOK, [part], node.lineno)
            for part in node.nodes
        ]
        return self._hook(_CONCAT_HOOK, [node], node.lineno)

    def visit_Compare(self, node: nodes.Compare) -> nodes.Node:
        self.generic_visit(node)
        # Comparing (or looking up) nested values walks them in C, where no budget check can interrupt.
        node.expr = self._deep(node.expr)
        for operand in node.ops:
            operand.expr = self._deep(operand.expr)
        return node

    def visit_Dict(self, node: nodes.Dict) -> nodes.Node:
        self.generic_visit(node)
        for pair in node.items:
            pair.key = self._deep(pair.key)  # hashing a nested tuple walks all of it
        return node


class _PromptEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox plus output/work limits; one instance per render so its counters are private.

    ``inline_seconds`` makes it the in-process attempt of a render: a small work budget and a time slice,
    after which :class:`_Escalate` hands the render to a worker.
    """

    # "+", "*" and "%" can build huge strings/lists, "**" huge integers; intercepting them also stops Jinja
    # from constant-folding such expressions at compile time, which would hang the compiler.
    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def __init__(self, limits: TemplateLimits | None = None, *, inline_seconds: float | None = None) -> None:
        limits = limits or TemplateLimits()
        self.include_loader = _IncludeLoader()
        super().__init__(
            undefined=StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
            auto_reload=False,
            finalize=self._finalize,
            loader=self.include_loader,
        )
        self.max_chars = limits.max_output_chars
        self.max_items = limits.max_items
        self.inline = inline_seconds is not None
        self.work_budget = min(limits.work_budget, _INLINE_WORK) if self.inline else limits.work_budget
        self.work_left = self.work_budget
        self._deadline = time.perf_counter() + inline_seconds if inline_seconds is not None else None
        self._clock = _CLOCK_EVERY
        self.output_chars = 0
        # While compiling, Jinja folds filters with constant arguments ('x'|center(999999)) into constants; the
        # guarded filters refuse then, so they always run at render time, under the render's limits.
        self.compiling = False
        # lipsum(n) generates arbitrarily much text and has no use in prompts.
        self.globals.pop("lipsum", None)
        self.globals["range"] = self._range
        self.filters = _GuardedFilters(self, self.filters)
        # Stored once so the compiled templates and call() see the very same objects.
        setattr(self, _LOOP_HOOK, self._loop_guard)
        setattr(self, _CONCAT_HOOK, self._concat_guard)
        setattr(self, _TEXT_HOOK, self._text_guard)
        setattr(self, _DEEP_HOOK, self._deep_guard)
        self._hooks = tuple(
            getattr(self, hook) for hook in (_LOOP_HOOK, _CONCAT_HOOK, _TEXT_HOOK, _DEEP_HOOK)
        )

    # budget bookkeeping

    def spend(self, units: int) -> None:
        """Charge ``units`` of work; fail with ``render_budget_exceeded`` once the budget is used up."""
        self.work_left -= units
        if self.work_left < 0:
            if self.inline:
                raise _Escalate
            raise TemplateProblem(
                f"Rendering exceeded its work budget of {self.work_budget} units (loop iterations, calls and "
                "generated text); simplify the template's loops or recursion",
                code="render_budget_exceeded",
                limit=self.work_budget,
            )
        if self._deadline is not None:
            self._clock -= 1
            if self._clock <= 0:
                self._clock = _CLOCK_EVERY
                if time.perf_counter() > self._deadline:
                    raise _Escalate

    def check_size(self, size: int, construct: str | None = None) -> None:
        """Fail with ``render_output_too_large`` if a text of ``size`` characters exceeds the output limit."""
        if size > self.max_chars:
            subject = f"{construct} would produce" if construct else "Rendering would produce a value of"
            _too_large(f"{subject} {size} characters", self.max_chars, construct)

    def check_items(self, count: int, construct: str) -> None:
        """Fail with ``render_output_too_large`` if a sequence of ``count`` items exceeds the item limit."""
        if count > self.max_items:
            _too_large(f"{construct} would make {count} items", self.max_items, construct)

    def check_value(self, value: Any, construct: str) -> None:
        """Check a value just built: a text against the character limit, a collection against the item limit."""
        if isinstance(value, str):
            self.check_size(len(value), construct)
        elif isinstance(value, _CONTAINERS):
            self.check_items(_size(value), construct)

    def text_size(self, value: Any) -> int:
        """The length ``value`` has as text (estimated for collections; the walk is charged as work)."""
        if isinstance(value, str):
            return len(value)
        size, visited = _text_size(value, self.max_chars)
        self.spend(visited)
        return size

    def check_text(self, value: Any, construct: str) -> None:
        """Refuse to turn ``value`` into text when that text would exceed the output limit."""
        # The estimate stops counting at the limit, so the message gives the limit, not a size.
        if (
            not isinstance(value, _SCALARS)
            and isinstance(value, _NESTED)
            and self.text_size(value) > self.max_chars
        ):
            raise TemplateProblem(
                f"{construct} would produce more than {self.max_chars} characters (the limit) from a "
                "list or mapping",
                code="render_output_too_large",
                limit=self.max_chars,
                construct=construct,
            )

    def add_output(self, chunk: str) -> None:
        """Count a chunk of rendered output against ``max_output_chars``."""
        self.output_chars += len(chunk)
        if self.output_chars > self.max_chars:
            raise TemplateProblem(
                f"Rendered output exceeds the limit of {self.max_chars} characters",
                code="render_output_too_large",
                limit=self.max_chars,
            )

    # hooks called from compiled templates

    def _finalize(self, value: Any) -> Any:
        if value is None:
            return ""
        if isinstance(value, str):
            # Output inside macros and {% set %} blocks is buffered rather than yielded, so size it here too.
            self.check_size(len(value))
            self.spend(len(value))
        elif not isinstance(value, _SCALARS):
            # {{ value }} turns a list or dict into text after this returns: measure it first.
            self.check_text(value, "printing a value")
        return value

    def _loop_guard(self, iterable: Any, cost: int) -> Iterator[Any]:
        for item in iterable:
            self.spend(cost)
            yield item

    def _concat_guard(self, value: Any) -> Any:
        size = _size(value)
        self.check_size(size, "~")
        self.spend(size)
        return value

    def _text_guard(self, value: Any) -> Any:
        self.check_text(value, "~")
        return value

    def _deep_guard(self, value: Any) -> Any:
        if isinstance(value, _CONTAINERS) and not isinstance(value, range) and value:
            size, visited = _text_size(value, 4 * max(self.work_left, 0) + 4)
            self.spend(visited + size // 4)
        return value

    def _bounded(self, iterable: Iterable[Any], construct: str) -> Iterator[Any]:
        """``iterable``, refused once it yields more than ``max_items`` items (one work unit per item)."""
        for count, item in enumerate(iterable, 1):
            if count > self.max_items:
                raise TemplateProblem(
                    f"{construct} got more than {self.max_items} items (the limit) from a generated sequence",
                    code="render_output_too_large",
                    limit=self.max_items,
                    construct=construct,
                )
            self.spend(1)
            yield item

    def _range(self, *args: Any) -> range:
        """``range`` with the item limit checked from its arguments, before anything iterates it."""
        result = range(*args)
        try:
            count = len(result)
        except OverflowError:
            count = 2**63
        self.check_items(count, _call_text("range", args))
        return result

    def _generate(
        self, source: nodes.Template, name: str | None, filename: str | None, defer_init: bool = False
    ) -> str:
        _GuardInserter(self).visit(source)
        return super()._generate(source, name, filename, defer_init=defer_init)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """Apply an intercepted operator after checking the size of its result in advance."""
        if operator == "+":
            if isinstance(left, str) and isinstance(right, str):
                self.check_size(len(left) + len(right), "+")
            elif isinstance(left, list | tuple) and isinstance(right, list | tuple):
                self.check_items(len(left) + len(right), "+")
        elif operator == "*":
            self._check_multiply(left, right)
        elif operator == "**" and _is_int(left) and _is_int(right) and right > 0 and abs(left) > 1:
            if abs(left).bit_length() * right > _MAX_INT_BITS:
                raise TemplateProblem(
                    "Rendering would produce an integer that is too large", code="render_output_too_large"
                )
        elif operator == "%" and isinstance(left, str):
            _check_percent_format(self, left, right)
        result = super().call_binop(context, operator, left, right)
        self.check_value(result, operator)
        self.spend(1 + _size(result))
        return result

    def _check_multiply(self, left: Any, right: Any) -> None:
        if _is_int(left) and _is_int(right):
            if left.bit_length() + right.bit_length() > _MAX_INT_BITS:
                raise TemplateProblem(
                    "Rendering would produce an integer that is too large", code="render_output_too_large"
                )
        elif _is_int(right) and isinstance(left, str | list | tuple):
            self._check_repeat(left, right)
        elif _is_int(left) and isinstance(right, str | list | tuple):
            self._check_repeat(right, left)

    def _check_repeat(self, sequence: str | list[Any] | tuple[Any, ...], times: int) -> None:
        count = len(sequence) * max(times, 0)
        if isinstance(sequence, str):
            self.check_size(count, f"repeating a text (* {times})")
        else:
            self.check_items(count, f"repeating a list (* {times})")

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        """Call from sandboxed code, pre-checking amplifying calls and charging work."""
        if any(__obj is hook for hook in __self._hooks):
            # Context.call strips the compiler's internal keyword arguments (_loop_vars, _block_vars).
            return __context.call(__obj, *args, **kwargs)
        # str.format is handed out by the sandbox as a wrapper around the bound method.
        target = getattr(__obj, "__wrapped__", __obj)
        owner = getattr(target, "__self__", None)
        name = str(getattr(target, "__name__", "call"))
        if any(_is_lazy(arg) for arg in args):
            args = tuple(__self._bounded(arg, f"{name}()") if _is_lazy(arg) else arg for arg in args)
        units = _CALL_COST
        if isinstance(owner, str):
            args = _check_str_method(__self, owner, name, args, kwargs)
            units += len(owner) + sum(_size(arg) for arg in args)
        __self.spend(units)
        result = super().call(__context, __obj, *args, **kwargs)
        __self.check_value(result, f"{name}()")
        __self.spend(_size(result))
        return result

    def _guard_filter(self, name: str, func: Callable[..., Any]) -> Callable[..., Any]:
        precheck = _FILTER_PRECHECKS.get(name)
        signature = _signature(func) if precheck is not None else None
        # Filters marked pass_context/pass_eval_context/pass_environment get that object before the value.
        value_index = 1 if hasattr(func, "jinja_pass_arg") else 0
        # Jinja's async-capable filters (slice, list, sum, ...) are wrappers that take the context while the
        # sync function they wrap, whose signature inspect reports, may not: bind only the arguments it takes.
        wrapped = getattr(func, "__wrapped__", func)
        bind_from = 0 if hasattr(wrapped, "jinja_pass_arg") else value_index
        construct = f"|{name}"
        stringifies = name in _STRINGIFYING_FILTERS
        deep = name in _DEEP_FILTERS

        @functools.wraps(func)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            if self.compiling:
                raise _NotAtCompileTime  # Jinja then leaves the filter for render time
            if len(args) > value_index:
                value = args[value_index]
                if _is_lazy(value):
                    # A generator (map, select, batch, ...) is counted as it is consumed, never materialised
                    # past the item limit.
                    value = self._bounded(value, construct)
                    args = (*args[:value_index], value, *args[value_index + 1 :])
                self.spend(1 + _size(value))
                if deep:
                    self._deep_guard(value)
            if stringifies:
                for argument in (*args[value_index:], *kwargs.values()):
                    self.check_text(argument, construct)
            if signature is not None and precheck is not None:
                bound = signature.bind(*args[bind_from:], **kwargs)
                bound.apply_defaults()
                precheck(self, bound.arguments)
                args, kwargs = (*args[:bind_from], *bound.args), bound.kwargs
            result = func(*args, **kwargs)
            self.check_value(result, construct)
            self.spend(_size(result))
            return result

        return guarded


@functools.lru_cache(maxsize=256)
def _signature(func: Callable[..., Any]) -> inspect.Signature:
    return inspect.signature(func)


class _GuardedFilters(dict[str, Callable[..., Any]]):
    """The environment's filters, each wrapped in its budget guard when first looked up.

    A template uses a handful of the ~50 filters; wrapping all of them for every render cost more than the
    rendering itself.
    """

    def __init__(self, env: _PromptEnvironment, filters: Mapping[str, Callable[..., Any]]) -> None:
        super().__init__(filters)
        self._env = env
        self._guarded: dict[str, Callable[..., Any]] = {}

    def __getitem__(self, name: str) -> Callable[..., Any]:
        guarded = self._guarded.get(name)
        if guarded is None:
            guarded = self._env._guard_filter(name, super().__getitem__(name))
            self._guarded[name] = guarded
        return guarded

    def get(self, name: str, default: Any = None) -> Any:
        # not dict.get: that would bypass __getitem__ and hand out an unguarded filter
        return self[name] if name in self else default  # noqa: SIM401


# Filters that turn their value (and arguments) into text: a nested list is measured before it is printed.
_STRINGIFYING_FILTERS = frozenset(
    {
        "capitalize",
        "center",
        "e",
        "escape",
        "forceescape",
        "format",
        "indent",
        "lower",
        "pprint",
        "replace",
        "safe",
        "string",
        "striptags",
        "title",
        "tojson",
        "trim",
        "truncate",
        "upper",
        "urlencode",
        "urlize",
        "wordcount",
        "wordwrap",
        "xmlattr",
    }
)
# Filters that compare or hash their items, which walks nested items in C: charged by the nested size.
_DEEP_FILTERS = frozenset({"dictsort", "groupby", "max", "min", "sort", "sum", "unique"})


# --- in-process eligibility -----------------------------------------------------------------------------------

# Filters and tests that cannot build nested or repeated values: applied to request values (JSON, so at most
# the request's size) their cost is linear, so a template using only these (and loops over its inputs) can
# run in the server process for a short time slice.
_SIMPLE_FILTERS = frozenset(
    {
        "abs",
        "capitalize",
        "center",
        "count",
        "d",
        "default",
        "dictsort",
        "e",
        "escape",
        "filesizeformat",
        "first",
        "float",
        "forceescape",
        "format",
        "indent",
        "int",
        "items",
        "join",
        "last",
        "length",
        "list",
        "lower",
        "max",
        "min",
        "replace",
        "reverse",
        "round",
        "safe",
        "sort",
        "string",
        "striptags",
        "title",
        "tojson",
        "trim",
        "truncate",
        "unique",
        "upper",
        "urlencode",
        "wordcount",
        "wordwrap",
    }
)
_SIMPLE_TESTS = frozenset(
    {
        "boolean", "defined", "divisibleby", "eq", "equalto", "escaped", "even", "false", "filter", "float",
        "ge", "gt", "in", "integer", "iterable", "le", "lower", "lt", "mapping", "ne", "none", "number", "odd",
        "sameas", "sequence", "string", "test", "true", "undefined", "upper", "==", "!=", "<", "<=", ">", ">=",
    }
)  # fmt: skip
_SIMPLE_NODES = (
    nodes.Template,
    nodes.Output,
    nodes.TemplateData,
    nodes.Const,
    nodes.Name,
    nodes.Getattr,
    nodes.Getitem,
    nodes.Slice,
    nodes.If,
    nodes.CondExpr,
    nodes.And,
    nodes.Or,
    nodes.Not,
    nodes.Neg,
    nodes.Pos,
    nodes.Compare,
    nodes.Operand,
    nodes.Concat,
    nodes.Add,
    nodes.Sub,
    nodes.Div,
    nodes.FloorDiv,
    nodes.Assign,
    nodes.AssignBlock,
    nodes.Keyword,
    nodes.With,
)
_LITERAL_NODES = (nodes.Const, nodes.List, nodes.Tuple, nodes.Dict, nodes.Pair)
# Methods that return text, a flag, a number, one of their arguments or a flat piece of their object (str and
# dict methods, loop.cycle/changed); the amplifying ones among them (ljust, replace, join, format) are
# pre-checked by _check_str_method like any call.
_SIMPLE_METHODS = frozenset(
    {
        "capitalize", "casefold", "center", "changed", "count", "cycle", "endswith", "find", "format", "get",
        "index", "isalnum", "isalpha", "isdigit", "islower", "isspace", "istitle", "isupper", "items", "join",
        "keys", "ljust", "lower", "lstrip", "partition", "removeprefix", "removesuffix", "replace", "rfind",
        "rindex", "rjust", "rpartition", "rsplit", "rstrip", "split", "splitlines", "startswith", "strip",
        "swapcase", "title", "upper", "values", "zfill",
    }
)  # fmt: skip


class _SimpleCheck:
    """Whether a template can only do work proportional to its inputs (see :func:`render`).

    Without ``*``, ``%``, ``**``, literal lists of variables, calls other than ``range``, the template's own
    macros (which return text) and the flat methods in ``_SIMPLE_METHODS``, and without the filters that
    build collections (``batch``, ``slice``, ``map``, ``sum``, ...), a template cannot make a value larger or
    more nested than what it was given; its loops, calls and text are charged to the budget and the
    in-process attempt has a time slice.
    """

    @staticmethod
    def of(ast: nodes.Template) -> bool:
        macros = frozenset(macro.name for macro in ast.find_all(nodes.Macro))
        return all(_SimpleCheck._node(node, macros) for node in ast.find_all(nodes.Node))

    @staticmethod
    def _node(node: nodes.Node, macros: frozenset[str]) -> bool:
        if isinstance(node, nodes.Call):
            if node.dyn_args is not None or node.dyn_kwargs is not None:
                return False
            callee = node.node
            if isinstance(callee, nodes.Getattr):
                return callee.attr in _SIMPLE_METHODS
            return isinstance(callee, nodes.Name) and (callee.name == "range" or callee.name in macros)
        if isinstance(node, nodes.Macro):
            return True
        if isinstance(node, nodes.Tuple) and node.ctx == "store":
            return True  # {% for key, value in pairs %}
        if isinstance(node, nodes.List | nodes.Tuple | nodes.Dict):
            return all(isinstance(child, _LITERAL_NODES) for child in node.find_all(nodes.Node))
        if isinstance(node, nodes.Pair):
            return True  # only inside a literal dict, checked above
        if isinstance(node, nodes.Filter):
            return node.name in _SIMPLE_FILTERS and node.dyn_args is None and node.dyn_kwargs is None
        if isinstance(node, nodes.Test):
            return node.name in _SIMPLE_TESTS and node.dyn_args is None and node.dyn_kwargs is None
        if isinstance(node, nodes.For):
            return not node.recursive
        if isinstance(node, nodes.Include):
            return isinstance(node.template, nodes.Const)
        return isinstance(node, _SIMPLE_NODES)


# --- size pre-checks for amplifying operations --------------------------------------------------------------

_PERCENT_FIELD = re.compile(r"%(?:\([^)]*\))?[#0 +\-]*(\*|\d+)?(?:\.(\*|\d+))?")
_DIGITS = re.compile(r"\d+")


def _too_big_number(digits: str, limit: int) -> bool:
    # Compare lengths first: int() refuses very long digit strings.
    return len(digits) > len(str(limit)) or int(digits) > limit


def _any_int_over(values: Iterable[Any], limit: int) -> bool:
    return any(_is_int(value) and abs(value) > limit for value in values)


def _largest_text(env: _PromptEnvironment, values: Iterable[Any]) -> int:
    return max((env.text_size(value) for value in values), default=0)


def _check_percent_format(env: _PromptEnvironment, fmt: str, args: Any) -> None:
    """Refuse ``%``-formats whose widths/precisions (``"%999999999d"``) or arguments make too much text."""
    star = False
    fields = 0
    for match in _PERCENT_FIELD.finditer(fmt):
        fields += 1
        for group in match.groups():
            if group == "*":
                star = True
            elif group and _too_big_number(group, env.max_chars):
                env.check_size(env.max_chars + 1, "a % format width")
    values = list(args) if isinstance(args, tuple) else [args]
    if star and _any_int_over(values, env.max_chars):
        env.check_size(env.max_chars + 1, "a % format width")
    if isinstance(args, Mapping):
        values = list(args.values())
    env.check_size(len(fmt) + fields * _largest_text(env, values), "% format")


def _check_brace_format(
    env: _PromptEnvironment, fmt: str, args: Sequence[Any], kwargs: Mapping[str, Any]
) -> None:
    """Refuse ``str.format`` field widths larger than the output limit (e.g. ``"{:>999999999}"``) and
    arguments whose text would be too long."""
    try:
        fields = list(string.Formatter().parse(fmt))
    except ValueError:
        return  # the call itself reports the malformed format string
    nested = False
    for _literal, _name, spec, _conversion in fields:
        if not spec:
            continue
        nested = nested or "{" in spec
        if any(_too_big_number(digits, env.max_chars) for digits in _DIGITS.findall(spec)):
            env.check_size(env.max_chars + 1, "a format width")
    mapping_values = [
        v for arg in (*args, *kwargs.values()) if isinstance(arg, Mapping) for v in arg.values()
    ]
    if nested and _any_int_over([*args, *kwargs.values(), *mapping_values], env.max_chars):
        env.check_size(env.max_chars + 1, "a format width")
    used = sum(1 for field_ in fields if field_[1] is not None)
    env.check_size(len(fmt) + used * _largest_text(env, [*args, *kwargs.values()]), "str.format()")


def _replace_size(env: _PromptEnvironment, s: Any, old: Any, new: Any, count: Any) -> int:
    if not (isinstance(s, str) and isinstance(old, str) and isinstance(new, str)):
        # the filter turns them into text first: bound the result by one replacement per character
        text = env.text_size(s)
        return text + (text + 1) * env.text_size(new)
    occurrences = len(s) + 1 if old == "" else s.count(old)
    if _is_int(count) and count >= 0:
        occurrences = min(occurrences, count)
    return len(s) + occurrences * (len(new) - len(old))


def _join_size(env: _PromptEnvironment, separator: Any, items: list[Any]) -> int:
    return env.text_size(separator) * max(len(items) - 1, 0) + sum(env.text_size(item) for item in items)


def _check_str_method(
    env: _PromptEnvironment, owner: str, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, ...]:
    """Pre-check ``str`` methods whose result can be far larger than their inputs; returns the args to use."""

    def arg(index: int, name: str, default: Any = None) -> Any:
        return args[index] if len(args) > index else kwargs.get(name, default)

    if method in ("ljust", "rjust", "center", "zfill"):
        width = arg(0, "width")
        if _is_int(width):
            env.check_size(width, _call_text(f"str.{method}", [width]))
    elif method == "expandtabs":
        tabsize = arg(0, "tabsize", 8)
        if _is_int(tabsize):
            env.check_size(len(owner) + owner.count("\t") * max(tabsize, 0), "str.expandtabs()")
    elif method == "replace":
        env.check_size(
            _replace_size(env, owner, arg(0, "old"), arg(1, "new"), arg(2, "count")), "str.replace()"
        )
    elif method == "translate":
        table = arg(0, "table")
        if isinstance(table, Mapping):
            longest = max((_size(value) for value in table.values()), default=1)
            env.check_size(len(owner) * max(longest, 1), "str.translate()")
    elif method == "join" and args:
        # Materialise once so the size can be known before joining; join would build the list anyway.
        items = list(args[0])
        env.spend(len(items))
        env.check_size(_join_size(env, owner, items), "str.join()")
        return (items, *args[1:])
    elif method in ("format", "format_map"):
        _check_brace_format(env, owner, args, kwargs)
    return args


def _filter_center(env: _PromptEnvironment, a: dict[str, Any]) -> None:
    if _is_int(a["width"]):
        env.check_size(a["width"], _call_text("center", [a["width"]]))


def _filter_indent(env: _PromptEnvironment, a: dict[str, Any]) -> None:
    s, width = a["s"], a["width"]
    if isinstance(s, str):
        step = len(width) if isinstance(width, str) else width if _is_int(width) else 0
        env.check_size(len(s) + max(step, 0) * (s.count("\n") + 1), _call_text("indent", [width]))


def _filter_replace(env: _PromptEnvironment, a: dict[str, Any]) -> None:
    env.check_size(_replace_size(env, a["s"], a["old"], a["new"], a["count"]), "replace")


def _filter_format(env: _PromptEnvironment, a: dict[str, Any]) -> None:
    if isinstance(a["value"], str):
        _check_percent_format(env, a["value"], a["kwargs"] or a["args"])


def _filter_join(env: _PromptEnvironment, a: dict[str, Any]) -> None:
    items = list(a["value"])
    env.spend(len(items))
    attribute = a.get("attribute")
    shown = items
    if attribute is not None:
        from jinja2.filters import make_attrgetter

        getter = make_attrgetter(env, attribute)
        shown = [getter(item) for item in items]
    env.check_size(_join_size(env, a["d"], shown), "join")
    a["value"] = items


def _filter_count(construct: str, parameter: str) -> Callable[[_PromptEnvironment, dict[str, Any]], None]:
    def check(env: _PromptEnvironment, a: dict[str, Any]) -> None:
        if _is_int(a[parameter]):
            env.check_items(a[parameter], _call_text(construct, [a[parameter]]))

    return check


def _filter_wordwrap(env: _PromptEnvironment, a: dict[str, Any]) -> None:
    s, width, wrap = a["s"], a["width"], a["wrapstring"]
    if isinstance(s, str) and isinstance(wrap, str) and _is_int(width):
        breaks = len(s) // max(width, 1) + s.count("\n") + 1
        env.check_size(len(s) + len(wrap) * breaks, _call_text("wordwrap", [width]))


def _filter_sum(env: _PromptEnvironment, a: dict[str, Any]) -> None:
    start = a["start"]
    if isinstance(start, str | list | tuple):
        # sum(start=[]) concatenates: every step copies everything so far.
        items = list(a["iterable"])
        total = len(start) + sum(_size(item) for item in items)
        if isinstance(start, str):
            env.check_size(total, "sum")
        else:
            env.check_items(total, "sum")
        env.spend(total * len(items) // 2)
        a["iterable"] = items


_FILTER_PRECHECKS: dict[str, Callable[[_PromptEnvironment, dict[str, Any]], None]] = {
    "center": _filter_center,
    "indent": _filter_indent,
    "replace": _filter_replace,
    "format": _filter_format,
    "join": _filter_join,
    "batch": _filter_count("batch", "linecount"),
    "slice": _filter_count("slice", "slices"),
    "wordwrap": _filter_wordwrap,
    "sum": _filter_sum,
}


# --- rendering ----------------------------------------------------------------------------------------------


def _locate(exc: BaseException, origin: _Origin) -> dict[str, Any]:
    """Problem fields pointing at the template line where a runtime error happened, when it can be found."""
    location: dict[str, Any] = dict(origin.extra)
    tb: TracebackType | None = exc.__traceback__
    found: tuple[str, int] | None = None
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename == origin.filename or filename.startswith("<include:"):
            found = (filename, tb.tb_lineno)
        tb = tb.tb_next
    if found is not None:
        filename, line = found
        location["line"] = line
        if filename.startswith("<include:"):
            location["include"] = filename[len("<include:") : -1]
    return location


def _where(origin: _Origin, location: Mapping[str, Any]) -> str:
    parts = []
    if "include" in location:
        parts.append(f"in included prompt {location['include']!r}")
    elif origin.extra:
        parts.append(f"in {origin.label}")
    if "line" in location:
        parts.append(f"on line {location['line']}")
    if "include" in location and origin.extra:
        parts.append(f"(from {origin.label})")
    return (" " + " ".join(parts)) if parts else ""


def _render_one(env: _PromptEnvironment, parsed: _Parsed, origin: _Origin, context: Mapping[str, Any]) -> str:
    """Render one compiled source, stopping as soon as the output limit is passed."""
    chunks: list[str] = []
    try:
        code = parsed.code
        assert code is not None, "rendered sources are compiled here"
        compiled = env.template_class.from_code(env, code, env.make_globals(None), None)
        # Template.generate is a generator function; close() releases the render frames on early exit.
        generator = cast(Generator[str, None, None], compiled.generate(context))
        try:
            for chunk in generator:
                env.add_output(chunk)
                chunks.append(chunk)
        finally:
            generator.close()
    except ProblemError:
        raise
    except MemoryError:
        if env.inline:
            raise _Escalate from None  # a worker, with its memory limit, decides
        raise
    except RecursionError as exc:
        if env.inline:
            # The server's own stack is deeper than a worker's: let the worker decide, so both agree.
            raise _Escalate from None
        location = _locate(exc, origin)
        raise TemplateProblem(
            f"Template rendering failed{_where(origin, location)}: macro or include recursion is too deep",
            code="template_render_error",
            **location,
        )
    except SecurityError as exc:
        location = _locate(exc, origin)
        raise TemplateProblem(
            f"Template blocked by the sandbox{_where(origin, location)}: {exc}",
            code="template_security_error",
            **location,
        )
    except TemplateError as exc:
        location = _locate(exc, origin)
        raise TemplateProblem(
            f"Template rendering failed{_where(origin, location)}: {exc.message or exc}",
            code="template_render_error",
            **location,
        )
    except Exception as exc:
        location = _locate(exc, origin)
        raise TemplateProblem(
            f"Template rendering failed{_where(origin, location)}: {type(exc).__name__}: {exc}",
            code="template_render_error",
            **location,
        )
    return "".join(chunks)


def _too_large(what: str, limit: int, construct: str | None) -> NoReturn:
    """``render_output_too_large``: "<what>, more than the limit of <limit>" (naming the construct if any)."""
    detail = f"{what}, more than the limit of {limit}"
    if construct:
        raise TemplateProblem(detail, code="render_output_too_large", limit=limit, construct=construct)
    raise TemplateProblem(detail, code="render_output_too_large", limit=limit)
