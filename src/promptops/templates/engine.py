"""Sandboxed Jinja2 prompt templates: analysis, typed variables, registry includes and guarded rendering.

Templates are untrusted input written by project members, so everything runs in Jinja's immutable sandbox
and every failure surfaces as a :class:`~promptops.errors.TemplateProblem` with a stable code. Besides the
sandbox's attribute checks, rendering is bounded: the output size is capped, and loops, calls and generated
text draw on a per-render work budget, so small templates cannot expand into huge strings or endless work.
"""

from __future__ import annotations

import functools
import inspect
import re
import string
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import CodeType, TracebackType
from typing import Any, cast

from jinja2 import BaseLoader, StrictUndefined, TemplateNotFound, meta, nodes
from jinja2.environment import Template
from jinja2.exceptions import SecurityError, TemplateError, TemplateSyntaxError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

from promptops.errors import ProblemError, TemplateProblem

__all__ = [
    "VARIABLE_TYPES",
    "IncludedPrompt",
    "RenderResult",
    "Resolver",
    "TemplateAnalysis",
    "VariableSpec",
    "analyze",
    "coerce_variables",
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

# Work units a single render may spend: one per loop iteration (plus the literal text the loop body emits),
# 25 per call, and one per character of generated or transformed text. Ten million keeps the worst case
# around a second of CPU while leaving ample room for realistic prompts.
_WORK_BUDGET = 10_000_000
_CALL_COST = 25
# Integers beyond this many bits only come from deliberate blow-ups such as 9 ** 99999999.
_MAX_INT_BITS = 65_536

_LOOP_HOOK = "promptops_loop_guard"
_CONCAT_HOOK = "promptops_concat_guard"
_SIZED = (str, list, tuple, dict, range, set, frozenset)


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
    """
    sources = sources_of(kind, template, messages)
    declared = _declared_names(specs)
    env = _PromptEnvironment()
    used: set[str] = set()
    includes: list[str] = []
    for index, source in enumerate(sources):
        parsed = _parse(env, source, _root_origin(kind, index))
        used |= parsed.used
        includes.extend(parsed.refs)
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
    max_output_chars: int = 1_000_000,
) -> RenderResult:
    """Render a version's template(s) with ``values``; ``{% include "name@label" %}`` goes via ``resolver``.

    Included prompts must be text prompts; they see the same variables and their required variables are
    enforced too. The include graph is resolved before rendering, so cycles (``include_cycle``), excessive
    nesting (``include_depth_exceeded``) and unresolvable references fail before any output is produced.
    Every failure is a :class:`TemplateProblem` (or the resolver's own :class:`ProblemError`).
    """
    sources = sources_of(kind, template, messages)
    _declared_names(specs)
    env = _PromptEnvironment(max_output_chars)
    origins = [_root_origin(kind, index) for index in range(len(sources))]
    roots = [_parse(env, source, origin) for source, origin in zip(sources, origins, strict=True)]

    graph = _IncludeGraph(env, resolver, max_depth)
    for ref in _unique(ref for parsed in roots for ref in parsed.refs):
        await graph.visit(ref, ())
    context = _prepare_values(specs, values, roots, list(graph.nodes.values()))
    env.include_loader.templates = {ref: (node.parsed.code, node.prompt) for ref, node in graph.nodes.items()}

    rendered = [
        _render_one(env, parsed, origin, context) for parsed, origin in zip(roots, origins, strict=True)
    ]
    included = tuple(_unique_versions(env.include_loader.used))
    if kind == "text":
        return RenderResult(text=rendered[0], messages=None, included=included)
    out_messages = [
        {**message, "content": content} for message, content in zip(messages or [], rendered, strict=True)
    ]
    return RenderResult(text=None, messages=out_messages, included=included)


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
    code: CodeType
    used: frozenset[str]
    bound: frozenset[str]
    refs: tuple[str, ...]


# Compiled sources by (source, origin name, filename): an evaluation renders one template for thousands of cases,
# and parsing + compiling costs far more than rendering. Compiling does not depend on the per-render output
# limit, so entries are shared between environments. Only successful compilations are kept.
_PARSE_CACHE: OrderedDict[tuple[str, str | None, str], _Parsed] = OrderedDict()
_PARSE_CACHE_SIZE = 512
_PARSE_CACHE_MAX_SOURCE = 100_000


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
        # Compiling now surfaces unknown filters/tests at save time instead of at first render.
        code = env.compile(ast, name=origin.name, filename=origin.filename)
    except ProblemError:
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
    return _Parsed(code=code, used=used, bound=bound, refs=tuple(_unique(r for r in refs if r is not None)))


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

    def __init__(self, env: _PromptEnvironment, resolver: Resolver | None, max_depth: int) -> None:
        self._env = env
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
        node = _IncludeNode(ref, prompt, _parse(self._env, prompt.template, _include_origin(ref)))
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
        self.used: list[IncludedPrompt] = []

    def load(
        self,
        environment: Any,
        name: str,
        globals: Any = None,
    ) -> Template:
        entry = self.templates.get(name)
        if entry is None:
            raise TemplateNotFound(name)
        code, prompt = entry
        self.used.append(prompt)
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


def _size(value: Any) -> int:
    return len(value) if isinstance(value, _SIZED) else 0


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _GuardInserter(NodeTransformer):
    """Rewrites the AST so loops and string concatenation report to the environment's budget."""

    def __init__(self, env: _PromptEnvironment) -> None:
        self._env = env

    def _hook(self, hook: str, args: list[Any], lineno: int) -> nodes.Call:
        call = nodes.Call(nodes.EnvironmentAttribute(hook), args, [], None, None)
        call.set_lineno(lineno)
        call.set_environment(self._env)
        return call

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        # Literal text in the body is emitted once per iteration without passing through finalize.
        literal = sum(len(data.data) for part in node.body for data in part.find_all(nodes.TemplateData))
        node.iter = self._hook(_LOOP_HOOK, [node.iter, nodes.Const(1 + literal)], node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return self._hook(_CONCAT_HOOK, [node], node.lineno)


class _PromptEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox plus output/work limits; one instance per render so its counters are private."""

    # "+", "*" and "%" can build huge strings/lists, "**" huge integers; intercepting them also stops Jinja
    # from constant-folding such expressions at compile time, which would hang the compiler.
    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def __init__(self, max_output_chars: int = 1_000_000) -> None:
        self.include_loader = _IncludeLoader()
        super().__init__(
            undefined=StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
            auto_reload=False,
            finalize=self._finalize,
            loader=self.include_loader,
        )
        self.max_chars = max_output_chars
        self.work_left = _WORK_BUDGET
        self.output_chars = 0
        # lipsum(n) generates arbitrarily much text and has no use in prompts.
        self.globals.pop("lipsum", None)
        self.filters = _GuardedFilters(self, self.filters)
        # Stored once so the compiled templates and call() see the very same objects.
        setattr(self, _LOOP_HOOK, self._loop_guard)
        setattr(self, _CONCAT_HOOK, self._concat_guard)
        self._hooks = (getattr(self, _LOOP_HOOK), getattr(self, _CONCAT_HOOK))

    # budget bookkeeping

    def spend(self, units: int) -> None:
        """Charge ``units`` of work; fail with ``render_budget_exceeded`` once the budget is used up."""
        self.work_left -= units
        if self.work_left < 0:
            raise TemplateProblem(
                "Rendering exceeded its work budget (loop iterations, calls and generated text); "
                "simplify the template's loops or recursion",
                code="render_budget_exceeded",
                limit=_WORK_BUDGET,
            )

    def check_size(self, size: int) -> None:
        """Fail with ``render_output_too_large`` if a value of ``size`` items exceeds the output limit."""
        if size > self.max_chars:
            raise TemplateProblem(
                f"Rendering would produce a value of {size} characters/items, more than the limit of "
                f"{self.max_chars}",
                code="render_output_too_large",
                limit=self.max_chars,
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
        return value

    def _loop_guard(self, iterable: Any, cost: int) -> Iterator[Any]:
        for item in iterable:
            self.spend(cost)
            yield item

    def _concat_guard(self, value: Any) -> Any:
        size = _size(value)
        self.check_size(size)
        self.spend(size)
        return value

    def _generate(
        self, source: nodes.Template, name: str | None, filename: str | None, defer_init: bool = False
    ) -> str:
        _GuardInserter(self).visit(source)
        return super()._generate(source, name, filename, defer_init=defer_init)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """Apply an intercepted operator after checking the size of its result in advance."""
        if operator == "+" and isinstance(left, _SIZED) and isinstance(right, _SIZED):
            self.check_size(_size(left) + _size(right))
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
        size = _size(result)
        self.check_size(size)
        self.spend(1 + size)
        return result

    def _check_multiply(self, left: Any, right: Any) -> None:
        if _is_int(left) and _is_int(right):
            if left.bit_length() + right.bit_length() > _MAX_INT_BITS:
                raise TemplateProblem(
                    "Rendering would produce an integer that is too large", code="render_output_too_large"
                )
        elif _is_int(right) and isinstance(left, str | list | tuple):
            self.check_size(len(left) * right)
        elif _is_int(left) and isinstance(right, str | list | tuple):
            self.check_size(len(right) * left)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        """Call from sandboxed code, pre-checking amplifying ``str`` methods and charging work."""
        if any(__obj is hook for hook in __self._hooks):
            # Context.call strips the compiler's internal keyword arguments (_loop_vars, _block_vars).
            return __context.call(__obj, *args, **kwargs)
        # str.format is handed out by the sandbox as a wrapper around the bound method.
        target = getattr(__obj, "__wrapped__", __obj)
        owner = getattr(target, "__self__", None)
        units = _CALL_COST
        if isinstance(owner, str):
            args = _check_str_method(__self, owner, getattr(target, "__name__", ""), args, kwargs)
            units += len(owner) + sum(_size(arg) for arg in args)
        __self.spend(units)
        result = super().call(__context, __obj, *args, **kwargs)
        __self.check_size(_size(result))
        return result

    def _guard_filter(self, name: str, func: Callable[..., Any]) -> Callable[..., Any]:
        precheck = _FILTER_PRECHECKS.get(name)
        signature = _signature(func) if precheck is not None else None
        # Filters marked pass_context/pass_eval_context/pass_environment get that object before the value.
        value_index = 1 if hasattr(func, "jinja_pass_arg") else 0

        @functools.wraps(func)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            value = args[value_index] if len(args) > value_index else None
            self.spend(1 + _size(value))
            if signature is not None and precheck is not None:
                bound = signature.bind(*args, **kwargs)
                bound.apply_defaults()
                precheck(self, bound.arguments)
                args, kwargs = bound.args, bound.kwargs
            result = func(*args, **kwargs)
            self.check_size(_size(result))
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


# --- size pre-checks for amplifying operations --------------------------------------------------------------

_PERCENT_FIELD = re.compile(r"%(?:\([^)]*\))?[#0 +\-]*(\*|\d+)?(?:\.(\*|\d+))?")
_DIGITS = re.compile(r"\d+")


def _too_big_number(digits: str, limit: int) -> bool:
    # Compare lengths first: int() refuses very long digit strings.
    return len(digits) > len(str(limit)) or int(digits) > limit


def _any_int_over(values: Iterable[Any], limit: int) -> bool:
    return any(_is_int(value) and abs(value) > limit for value in values)


def _check_percent_format(env: _PromptEnvironment, fmt: str, args: Any) -> None:
    """Refuse ``%``-format widths/precisions larger than the output limit (e.g. ``"%999999999d"``)."""
    star = False
    for match in _PERCENT_FIELD.finditer(fmt):
        for group in match.groups():
            if group == "*":
                star = True
            elif group and _too_big_number(group, env.max_chars):
                env.check_size(env.max_chars + 1)
    if star:
        values = args if isinstance(args, tuple) else (args,)
        if _any_int_over(values, env.max_chars):
            env.check_size(env.max_chars + 1)


def _check_brace_format(
    env: _PromptEnvironment, fmt: str, args: Sequence[Any], kwargs: Mapping[str, Any]
) -> None:
    """Refuse ``str.format`` field widths larger than the output limit (e.g. ``"{:>999999999}"``)."""
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
            env.check_size(env.max_chars + 1)
    if nested:
        mapping_values = [v for arg in args if isinstance(arg, Mapping) for v in arg.values()]
        if _any_int_over([*args, *kwargs.values(), *mapping_values], env.max_chars):
            env.check_size(env.max_chars + 1)


def _replace_size(s: Any, old: Any, new: Any, count: Any) -> int:
    if not (isinstance(s, str) and isinstance(old, str) and isinstance(new, str)):
        return _size(s)
    occurrences = len(s) + 1 if old == "" else s.count(old)
    if _is_int(count) and count >= 0:
        occurrences = min(occurrences, count)
    return len(s) + occurrences * (len(new) - len(old))


def _join_size(separator: Any, items: list[Any]) -> int:
    return _size(separator) * max(len(items) - 1, 0) + sum(_size(item) for item in items)


def _check_str_method(
    env: _PromptEnvironment, owner: str, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, ...]:
    """Pre-check ``str`` methods whose result can be far larger than their inputs; returns the args to use."""

    def arg(index: int, name: str, default: Any = None) -> Any:
        return args[index] if len(args) > index else kwargs.get(name, default)

    if method in ("ljust", "rjust", "center", "zfill"):
        width = arg(0, "width")
        if _is_int(width):
            env.check_size(width)
    elif method == "expandtabs":
        tabsize = arg(0, "tabsize", 8)
        if _is_int(tabsize):
            env.check_size(len(owner) + owner.count("\t") * max(tabsize, 0))
    elif method == "replace":
        env.check_size(_replace_size(owner, arg(0, "old"), arg(1, "new"), arg(2, "count")))
    elif method == "join" and args:
        # Materialise once so the size can be known before joining; join would build the list anyway.
        items = list(args[0])
        env.spend(len(items))
        env.check_size(_join_size(owner, items))
        return (items, *args[1:])
    elif method in ("format", "format_map"):
        _check_brace_format(env, owner, args, kwargs)
    return args


def _filter_center(env: _PromptEnvironment, a: dict[str, Any]) -> None:
    if _is_int(a["width"]):
        env.check_size(a["width"])


def _filter_indent(env: _PromptEnvironment, a: dict[str, Any]) -> None:
    s, width = a["s"], a["width"]
    if isinstance(s, str):
        step = len(width) if isinstance(width, str) else width if _is_int(width) else 0
        env.check_size(len(s) + max(step, 0) * (s.count("\n") + 1))


def _filter_replace(env: _PromptEnvironment, a: dict[str, Any]) -> None:
    env.check_size(_replace_size(a["s"], a["old"], a["new"], a["count"]))


def _filter_format(env: _PromptEnvironment, a: dict[str, Any]) -> None:
    if isinstance(a["value"], str):
        _check_percent_format(env, a["value"], a["kwargs"] or a["args"])


def _filter_join(env: _PromptEnvironment, a: dict[str, Any]) -> None:
    items = list(a["value"])
    env.spend(len(items))
    env.check_size(_join_size(a["d"], items))
    a["value"] = items


def _filter_count(parameter: str) -> Callable[[_PromptEnvironment, dict[str, Any]], None]:
    def check(env: _PromptEnvironment, a: dict[str, Any]) -> None:
        if _is_int(a[parameter]):
            env.check_size(a[parameter])

    return check


def _filter_wordwrap(env: _PromptEnvironment, a: dict[str, Any]) -> None:
    s, width, wrap = a["s"], a["width"], a["wrapstring"]
    if isinstance(s, str) and isinstance(wrap, str) and _is_int(width):
        breaks = len(s) // max(width, 1) + s.count("\n") + 1
        env.check_size(len(s) + len(wrap) * breaks)


_FILTER_PRECHECKS: dict[str, Callable[[_PromptEnvironment, dict[str, Any]], None]] = {
    "center": _filter_center,
    "indent": _filter_indent,
    "replace": _filter_replace,
    "format": _filter_format,
    "join": _filter_join,
    "batch": _filter_count("linecount"),
    "slice": _filter_count("slices"),
    "wordwrap": _filter_wordwrap,
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
        compiled = env.template_class.from_code(env, parsed.code, env.make_globals(None), None)
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
    except RecursionError as exc:
        location = _locate(exc, origin)
        raise TemplateProblem(
            f"Template rendering failed{_where(origin, location)}: macro or include recursion is too deep",
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
