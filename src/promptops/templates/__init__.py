"""Prompt templates: a sandboxed Jinja2 engine with typed variables and registry includes."""

from promptops.templates.engine import (
    VARIABLE_TYPES,
    IncludedPrompt,
    RenderResult,
    Resolver,
    TemplateAnalysis,
    VariableSpec,
    analyze,
    analyze_async,
    coerce_variables,
    preanalyze,
    render,
    sources_of,
)

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
