"""Which entry points of the server can move (or remove) a label: a reference graph of ``src/promptops``.

Every function is a node; an edge goes to every module-level function it names (called, passed as a value or
referenced as ``module.func``), resolved through the file's imports. A function reaches a label move when a
path of edges leads to the registry's label writers (:data:`LABEL_WRITERS`). Names that cannot be resolved
(methods on objects) are not followed, so the walk is checked from the other side too: only the label writers
may write the label table (``test_only_the_label_path_writes_labels``).
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

import promptops
from tests.support.route_guard_walk import _route_contexts

SRC = Path(promptops.__file__).parent
LABEL_WRITERS = frozenset(
    {"promptops.registry.service._move_label", "promptops.registry.service.delete_label"}
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def _imports(tree: ast.Module, module: str) -> dict[str, str]:
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    aliases[a.asname] = a.name
                else:
                    aliases[a.name.split(".")[0]] = a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = module.split(".")[: -node.level]
                base = ".".join([*parent, base] if base else parent)
            for a in node.names:
                aliases[a.asname or a.name] = f"{base}.{a.name}"
    return aliases


def _functions(tree: ast.Module, module: str) -> Iterator[tuple[str, ast.AST]]:
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield f"{module}.{node.name}", node
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    yield f"{module}.{node.name}.{item.name}", item


@cache
def reference_graph() -> dict[str, frozenset[str]]:
    graph: dict[str, frozenset[str]] = {}
    for path in SRC.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        module = _module_name(path)
        tree = ast.parse(path.read_text(), str(path))
        aliases = _imports(tree, module)
        local = {
            name.rsplit(".", 1)[1]
            for name, _ in _functions(tree, module)
            if name.count(".") == module.count(".") + 1
        }
        for name, fn in _functions(tree, module):
            refs: set[str] = set()
            for node in ast.walk(fn):
                if not isinstance(node, ast.Name | ast.Attribute):
                    continue
                dotted = _dotted(node)
                if not dotted:
                    continue
                head, _, rest = dotted.partition(".")
                if head in aliases:
                    refs.add(aliases[head] + (f".{rest}" if rest else ""))
                elif head in local:
                    refs.add(f"{module}.{dotted}")
            graph[name] = frozenset(refs)
    return graph


@cache
def reaching_label_writers() -> frozenset[str]:
    """Every function from which a path of references leads to a label writer."""
    graph = reference_graph()
    reach = set(LABEL_WRITERS)
    changed = True
    while changed:
        changed = False
        for name, refs in graph.items():
            if name not in reach and refs & reach:
                reach.add(name)
                changed = True
    return frozenset(reach)


def qualified(func: Any) -> str:
    func = inspect.unwrap(func)
    return f"{func.__module__}.{func.__qualname__}"


def label_moving_routes(app: FastAPI) -> set[str]:
    """``METHOD path`` of every API route whose handler can reach a label writer."""
    reach = reaching_label_writers()
    found = set()
    for original, effective in _route_contexts(app):
        if isinstance(original, APIRoute) and qualified(original.endpoint) in reach:
            for method in sorted(effective.methods or ()):
                found.add(f"{method} {effective.path}")
    return found


def label_moving_background_work() -> set[str]:
    """Job kinds and periodic tasks whose handler can reach a label writer."""
    from promptops.jobs import periodic
    from promptops.jobs.base import registered_kinds
    from promptops.jobs.kinds import import_job_modules

    import_job_modules()
    reach = reaching_label_writers()
    found = {f"job {k.name}" for k in registered_kinds() if qualified(k.handler) in reach}
    found |= {f"periodic {t.name}" for t in periodic.registered() if qualified(t.run) in reach}
    return found


def label_table_writers() -> set[str]:
    """Functions that name the label table (``PromptLabel``) and write: construct a row, update or delete rows,
    assign a ``version_id`` or delete an object."""
    writes = ("PromptLabel(", "delete(PromptLabel", "update(PromptLabel", ".version_id = ", "session.delete(")
    writers = set()
    for path in SRC.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        module = _module_name(path)
        source = path.read_text()
        tree = ast.parse(source, str(path))
        for name, fn in _functions(tree, module):
            body = ast.get_source_segment(source, fn) or ""
            if "PromptLabel" in body and any(w in body for w in writes):
                writers.add(name)
    return writers
