"""Local rendering with the server's template semantics (docs/api.md, section 4).

The same Jinja2 immutable sandbox and settings as the server (``StrictUndefined``, no autoescape, the trailing
newline kept, ``None`` printed as ``""``, no ``lipsum``), the same typed-variable checks (defaults, ``null`` as
not supplied, all missing names and all type mismatches reported together) and the same include resolution
(declarations merged, cycles and depth checked before any output). The includes themselves were fetched with
the prompt (see ``_fetch``). ``tests/sdk/test_render_parity.py`` renders every documented feature through the
server and here and compares the answers, errors included.

Not replicated: the server's resource limits (output size, work budget, worker CPU/memory). A template the
server refuses for size is the app's own CPU here; templates in the registry were saved (and are rendered)
under those limits anyway.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from jinja2 import BaseLoader, StrictUndefined, TemplateNotFound, meta, nodes
from jinja2.environment import Environment, Template
from jinja2.exceptions import SecurityError, TemplateSyntaxError
from jinja2.exceptions import TemplateError as JinjaTemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from promptops_sdk._errors import TemplateError


@dataclass(frozen=True)
class Included:
    """A prompt version an include reference resolved to when the prompt was fetched (or why it did not)."""

    ref: str
    prompt_id: str = ""
    name: str = ""
    version_id: str = ""
    version: int = 0
    kind: str = "text"
    template: str = ""
    variables: tuple[dict[str, Any], ...] = ()
    # the server's answer when the reference did not resolve: (code, detail, problem fields)
    error: tuple[str, str, dict[str, Any]] | None = None


@dataclass(frozen=True)
class _Parsed:
    template: Template
    used: frozenset[str]
    bound: frozenset[str]
    refs: tuple[str, ...]


@dataclass
class _Env:
    env: Environment
    includes: Mapping[str, Included]
    parsed: dict[str, _Parsed] = field(default_factory=dict)


class _Loader(BaseLoader):
    def __init__(self, includes: Mapping[str, Included]) -> None:
        self.includes = includes

    def get_source(self, environment: Environment, template: str) -> tuple[str, str, Any]:
        found = self.includes.get(template)
        if found is None or found.error is not None:
            raise TemplateNotFound(template)
        return found.template, f"<include:{template}>", lambda: True


def _finalize(value: Any) -> Any:
    return "" if value is None else value


def environment(includes: Mapping[str, Included]) -> Environment:
    env = ImmutableSandboxedEnvironment(
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        auto_reload=False,
        finalize=_finalize,
        loader=_Loader(includes),
    )
    env.globals.pop("lipsum", None)
    return env


def references(source: str) -> list[str]:
    """The constant include/import/extends targets of a template (empty when it does not parse)."""
    try:
        ast = environment({}).parse(source)
    except JinjaTemplateError:
        return []
    return list(dict.fromkeys(r for r in meta.find_referenced_templates(ast) if r is not None))


def _bound_names(ast: nodes.Template) -> frozenset[str]:
    names: set[str] = set()
    for name_node in ast.find_all(nodes.Name):
        if name_node.ctx in ("store", "param"):
            names.add(name_node.name)
    names.update(macro.name for macro in ast.find_all(nodes.Macro))
    names.update(imported.target for imported in ast.find_all(nodes.Import))
    for from_import in ast.find_all(nodes.FromImport):
        for entry in from_import.names:
            names.add(entry[1] if isinstance(entry, tuple) else entry)
    return frozenset(names)


def _parse(env: Environment, source: str, label: str, filename: str, extra: dict[str, Any]) -> _Parsed:
    try:
        ast = env.parse(source, filename=filename)
        refs = list(meta.find_referenced_templates(ast))
        if None in refs:
            raise TemplateError(
                f"{label.capitalize()} includes a template chosen at render time; includes must name a prompt "
                "with a constant string",
                code="dynamic_include",
                **extra,
            )
        code = env.compile(ast, filename=filename)
        template = env.template_class.from_code(env, code, env.make_globals(None), None)
    except TemplateSyntaxError as exc:
        raise TemplateError(
            f"Syntax error in {label} on line {exc.lineno}: {exc.message or exc}",
            code="template_syntax_error",
            line=exc.lineno,
            **extra,
        )
    return _Parsed(
        template=template,
        used=frozenset(meta.find_undeclared_variables(ast)),
        bound=_bound_names(ast),
        refs=tuple(dict.fromkeys(r for r in refs if r is not None)),
    )


# --- variables (the server's coercion rules) -------------------------------------------------------------------


def _matches(value: Any, type_: str) -> bool:
    is_bool = isinstance(value, bool)
    return {
        "any": True,
        "string": isinstance(value, str),
        "boolean": is_bool,
        "integer": isinstance(value, int) and not is_bool,
        "number": isinstance(value, int | float) and not is_bool,
        "array": isinstance(value, list | tuple),
        "object": isinstance(value, Mapping),
    }.get(type_, False)


def _json_type(value: Any) -> str:
    for kind, test in (
        ("null", value is None),
        ("boolean", isinstance(value, bool)),
        ("integer", isinstance(value, int)),
        ("number", isinstance(value, float)),
        ("string", isinstance(value, str)),
        ("array", isinstance(value, list | tuple)),
        ("object", isinstance(value, Mapping)),
    ):
        if test:
            return kind
    return type(value).__name__


def _coerce(
    specs: Sequence[Mapping[str, Any]], values: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str], list[dict[str, str]]]:
    result = dict(values)
    missing: list[str] = []
    errors: list[dict[str, str]] = []
    for spec in specs:
        name, type_ = spec["name"], spec.get("type") or "string"
        required = spec.get("required")
        required = True if required is None else required
        value = values.get(name)
        if value is None:
            if spec.get("default") is not None:
                result[name] = spec["default"]
            elif required:
                missing.append(name)
            else:
                result[name] = None
        elif not _matches(value, type_):
            errors.append({"name": name, "expected": type_, "got": _json_type(value)})
    return result, missing, errors


def _raise_variable_problems(missing: list[str], errors: list[dict[str, str]]) -> None:
    if missing:
        noun = "variable" if len(missing) == 1 else "variables"
        raise TemplateError(
            f"Missing value for template {noun}: {', '.join(missing)}",
            code="missing_variables",
            missing=missing,
        )
    if errors:
        described = ", ".join(f"{e['name']!r} must be {e['expected']} (got {e['got']})" for e in errors)
        raise TemplateError(
            f"Template variable type mismatch: {described}", code="invalid_variable_type", errors=errors
        )


# --- includes -------------------------------------------------------------------------------------------------


class _Graph:
    """The server's include walk (depth-first, cycle and depth checks) over the includes fetched earlier."""

    def __init__(self, state: _Env, max_depth: int) -> None:
        self.state = state
        self.max_depth = max_depth
        self.nodes: dict[str, tuple[Included, _Parsed]] = {}
        self._summaries: dict[str, tuple[int, frozenset[str]]] = {}

    def _node(self, ref: str) -> tuple[Included, _Parsed]:
        node = self.nodes.get(ref)
        if node is not None:
            return node
        found = self.state.includes.get(ref)
        if found is None:
            raise TemplateError(
                f"The template includes {ref!r}, which was not fetched with the prompt",
                code="include_unavailable",
                include=ref,
            )
        if found.error is not None:
            code, detail, extra = found.error
            raise TemplateError(detail, code=code, **extra)
        if found.kind != "text":
            raise TemplateError(
                f"Cannot include {ref!r}: {found.name} v{found.version} is a {found.kind} prompt "
                "and only text prompts can be included",
                code="include_not_text",
                include=ref,
                kind=found.kind,
            )
        parsed = _parse(
            self.state.env, found.template, f"included prompt {ref!r}", f"<include:{ref}>", {"include": ref}
        )
        self.nodes[ref] = (found, parsed)
        return self.nodes[ref]

    def visit(self, ref: str, chain: tuple[Included, ...]) -> tuple[int, frozenset[str]]:
        names = [link.name for link in chain]
        depth = len(chain) + 1
        if depth > self.max_depth:
            raise TemplateError(
                f"Includes are nested more than {self.max_depth} levels deep: " + " -> ".join([*names, ref]),
                code="include_depth_exceeded",
                maxDepth=self.max_depth,
                chain=[*names, ref],
            )
        included, parsed = self._node(ref)
        chain_ids = {link.prompt_id for link in chain}
        if included.prompt_id in chain_ids:
            cycle = [*names, included.name]
            raise TemplateError(
                "Include cycle: " + " -> ".join(cycle), code="include_cycle", chain=cycle, include=ref
            )
        summary = self._summaries.get(ref)
        if summary is not None and depth + summary[0] <= self.max_depth and not summary[1] & chain_ids:
            return summary
        height, ids = 0, {included.prompt_id}
        for child in parsed.refs:
            child_height, child_ids = self.visit(child, (*chain, included))
            height = max(height, child_height + 1)
            ids |= child_ids
        self._summaries[ref] = (height, frozenset(ids))
        return self._summaries[ref]


# --- rendering ------------------------------------------------------------------------------------------------


def _line_of(exc: BaseException, filenames: set[str]) -> dict[str, Any]:
    location: dict[str, Any] = {}
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename in filenames or filename.startswith("<include:"):
            location["line"] = tb.tb_lineno
            if filename.startswith("<include:"):
                location["include"] = filename[len("<include:") : -1]
        tb = tb.tb_next
    return location


def _render_one(parsed: _Parsed, filename: str, extra: dict[str, Any], context: dict[str, Any]) -> str:
    try:
        return "".join(parsed.template.generate(context))
    except SecurityError as exc:
        raise TemplateError(
            f"Template blocked by the sandbox: {exc}",
            code="template_security_error",
            **{**extra, **_line_of(exc, {filename})},
        )
    except RecursionError as exc:
        raise TemplateError(
            "Template rendering failed: macro or include recursion is too deep",
            code="template_render_error",
            **{**extra, **_line_of(exc, {filename})},
        )
    except JinjaTemplateError as exc:
        raise TemplateError(
            f"Template rendering failed: {exc.message or exc}",
            code="template_render_error",
            **{**extra, **_line_of(exc, {filename})},
        )
    except TemplateError:
        raise
    except Exception as exc:
        raise TemplateError(
            f"Template rendering failed: {type(exc).__name__}: {exc}",
            code="template_render_error",
            **{**extra, **_line_of(exc, {filename})},
        )


class Renderer:
    """A version's templates parsed, with their include graph walked, once; :meth:`render` per call.

    A problem found while preparing (syntax, includes) is kept and raised by every render, as the server
    would answer every render of that version with it.
    """

    def __init__(
        self,
        kind: str,
        template: str | None,
        messages: Sequence[Mapping[str, str]] | None,
        specs: Sequence[Mapping[str, Any]],
        includes: Mapping[str, Included],
        *,
        max_depth: int = 5,
    ) -> None:
        self.kind = kind
        self.messages = [dict(m) for m in messages or []]
        if kind == "chat":
            self.roots = [
                (message["content"], f"message {index}", f"<message:{index}>", {"messageIndex": index})
                for index, message in enumerate(self.messages)
            ]
        else:
            self.roots = [(template or "", "template", "<template>", {})]
        self.problem: TemplateError | None = None
        self.parsed: list[_Parsed] = []
        self.merged: dict[str, Mapping[str, Any]] = {}
        self.used: set[str] = set()
        try:
            self._prepare(specs, includes, max_depth)
        except TemplateError as problem:
            self.problem = problem

    def _prepare(
        self, specs: Sequence[Mapping[str, Any]], includes: Mapping[str, Included], max_depth: int
    ) -> None:
        state = _Env(environment(includes), includes)
        self.parsed = [
            _parse(state.env, source, label, name, extra) for source, label, name, extra in self.roots
        ]
        graph = _Graph(state, max_depth)
        for ref in dict.fromkeys(ref for one in self.parsed for ref in one.refs):
            graph.visit(ref, ())
        self.merged = {spec["name"]: spec for spec in specs}
        for included, _ in graph.nodes.values():
            for spec in included.variables:
                self.merged.setdefault(spec["name"], spec)
        bound: set[str] = set()
        for one in self.parsed:
            self.used |= one.used
            bound |= one.bound
        for _, node in graph.nodes.values():
            bound |= node.bound
        for _, node in graph.nodes.values():
            self.used |= node.used - bound

    def render(self, values: Mapping[str, Any]) -> tuple[str | None, list[dict[str, str]] | None]:
        """(text, None) for a text prompt, (None, messages) for a chat prompt, or a :class:`TemplateError`."""
        if self.problem is not None:
            raise TemplateError(self.problem.detail, code=self.problem.code, **self.problem.extra)
        context, missing, errors = _coerce(list(self.merged.values()), values)
        for name in sorted(self.used):
            if name not in self.merged and name not in values and name not in missing:
                missing.append(name)
        _raise_variable_problems(missing, errors)
        rendered = [
            _render_one(one, filename, extra, context)
            for one, (_, _, filename, extra) in zip(self.parsed, self.roots, strict=True)
        ]
        if self.kind == "chat":
            return None, [
                {**message, "content": text} for message, text in zip(self.messages, rendered, strict=True)
            ]
        return rendered[0], None
