"""PromptOps SDK: fetch registry prompts (cached, with a disk fallback), render them locally exactly as the
server does, and trace model calls as runs.

    from promptops_sdk import PromptOps
    po = PromptOps()  # PROMPTOPS_URL, PROMPTOPS_API_KEY
    prompt = po.get_prompt("support/triage", label="production")
    text = prompt.render(customer="Dana", ticket="I was charged twice")
"""

from promptops_sdk._errors import ApiError, PromptOpsError, TemplateError, UnavailableError
from promptops_sdk._prompt import Prompt
from promptops_sdk._tracing import Stats, Trace
from promptops_sdk.client import AsyncPromptOps, PromptOps, __version__

__all__ = [
    "ApiError",
    "AsyncPromptOps",
    "Prompt",
    "PromptOps",
    "PromptOpsError",
    "Stats",
    "TemplateError",
    "Trace",
    "UnavailableError",
    "__version__",
]
