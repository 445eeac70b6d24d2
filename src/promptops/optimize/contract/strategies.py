"""PromptOpt's prompt-editing strategies: pure, deterministic functions on template text (no I/O, no model calls),
and the meta-prompts the model-driven strategies send.

Used by ``generate`` (candidates from a task) and ``refine`` (a better version from feedback). A strategy's
result is a :class:`Proposal`; worked examples are :class:`promptops.optimize.examples.Example`.
Everything here works on *text* templates (Jinja, ``{{ variable }}`` placeholders). Literal text taken from
data (examples, task, context) is escaped with :func:`literal`, so a ``{{`` in a review cannot break a template.

Public helpers (stable signatures):

* :func:`with_examples` ``(template, examples, variable=None, *, answer_label=None) -> str``
* :func:`tighten_format` ``(template, params, notes, *, labels=()) -> FormatEdit | None``
* :func:`detect_format_intent` ``(notes, labels=()) -> str | None``
* :func:`insert_instruction` ``(template, instruction) -> str``
* :func:`apply_notes` ``(template, notes) -> str | None``
* :func:`infer_labels` ``(expected_values) -> list[str]``
* :func:`structural_candidates` ``(task, context, variables, *, examples=(), labels=(), base_template=None,
  seed=0, limit=20) -> list[Proposal]``
* :func:`meta_prompt` / :func:`critique_prompt` and :func:`extract_prompt` for the LLM strategies
* :func:`check_candidate` ``(template, variables, required, allowed_includes=()) -> str | None``
"""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from promptops.errors import ProblemError
from promptops.optimize.examples import Example, pick_examples
from promptops.templates import engine as templates

MAX_TEMPLATE_CHARS = 20_000
CLIP_CHARS = 600  # an example's values are shown up to this length

# --- small text helpers ---------------------------------------------------------------------------------------


def literal(text: str) -> str:
    """``text`` as literal template text: wrapped in ``{% raw %}`` when it holds template syntax."""
    text = str(text)
    if any(marker in text for marker in ("{{", "}}", "{%", "%}", "{#", "#}")):
        return "{% raw %}" + text.replace("{% endraw %}", "{ % endraw % }") + "{% endraw %}"
    return text


def placeholder(name: str) -> str:
    return "{{ " + name + " }}"


def title(name: str) -> str:
    """``customer_name`` -> ``Customer name`` (the label an input line gets)."""
    words = name.replace("_", " ").strip()
    return words[:1].upper() + words[1:] if words else "Input"


def sentence(text: str) -> str:
    """One clean sentence: white space collapsed, a final full stop added when missing."""
    text = " ".join(str(text).split())
    text = text[:1].upper() + text[1:]
    if text and text[-1] not in ".!?:":
        text += "."
    return text


def normalized(template: str) -> str:
    """What two candidates are compared by: case and white space ignored."""
    return " ".join(template.split()).lower()


def _var_pattern(name: str) -> re.Pattern[str]:
    return re.compile(r"\{\{-?\s*" + re.escape(name) + r"\b")


def _clip(text: str, limit: int = CLIP_CHARS) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- examples -------------------------------------------------------------------------------------------------


def infer_labels(expected_values: Iterable[str | None], max_labels: int = 10) -> list[str]:
    """The answer labels of a classification set: few distinct, short expected values (else ``[]``)."""
    values = [v.strip() for v in expected_values if isinstance(v, str) and v.strip()]
    distinct = list(dict.fromkeys(values))
    if not distinct or len(distinct) > max_labels or (len(distinct) == len(values) and len(values) > 2):
        return []
    if any(len(v) > 40 or len(v.split()) > 3 for v in distinct):
        return []
    return distinct


@dataclass(frozen=True)
class _InputSite:
    start: int  # first line of the input block
    end: int  # last line of the input block
    prefix: str
    suffix: str
    cue: str | None  # the answer cue after the input ("Sentiment:"), if any
    cue_line: int | None


def _input_site(lines: list[str], variable: str) -> _InputSite | None:
    pattern = _var_pattern(variable)
    for index, line in enumerate(lines):
        match = pattern.search(line)
        if match is None:
            continue
        close = line.find("}}", match.end())
        prefix = line[: match.start()]
        suffix = line[close + 2 :] if close >= 0 else ""
        start = end = index
        stripped = line.strip()
        before = lines[index - 1].strip() if index > 0 else ""
        after = lines[index + 1].strip() if index + 1 < len(lines) else ""
        opening = re.fullmatch(r"<([A-Za-z][\w.-]*)>", before)
        if stripped.startswith("{{") and opening and after == f"</{opening.group(1)}>":
            start, end = index - 1, index + 1
        cue = None
        cue_line = None
        for follow in range(end + 1, min(end + 3, len(lines))):
            candidate = lines[follow].strip()
            if not candidate:
                continue
            if candidate.endswith(":") and len(candidate) <= 60 and "{{" not in candidate:
                cue, cue_line = candidate, follow
            break
        return _InputSite(start, end, prefix, suffix, cue, cue_line)
    return None


def primary_variable(template: str) -> str | None:
    """The variable used last in the template (usually the input the answer is about)."""
    found: list[tuple[int, str]] = []
    for match in re.finditer(r"\{\{-?\s*([A-Za-z_][A-Za-z0-9_]*)", template):
        found.append((match.start(), match.group(1)))
    return found[-1][1] if found else None


def with_examples(
    template: str,
    examples: Sequence[Example],
    variable: str | None = None,
    *,
    answer_label: str | None = None,
) -> str:
    """Insert few-shot ``examples`` in front of the input of ``template``, in the same layout as the input.

    ``variable`` is the input the examples show (default: the variable used last). The examples copy the input
    line around it (``Review: {{ review }}`` becomes ``Review: <example text>``) and the answer cue after it
    (``Sentiment:`` becomes ``Sentiment: positive``); without a cue, ``answer_label`` (default ``Answer:``).
    A template without that variable gets the examples appended under an ``Examples:`` heading.
    """
    if not examples:
        return template
    variable = variable or primary_variable(template)
    lines = template.split("\n")
    site = _input_site(lines, variable) if variable else None
    if site is None:
        label = answer_label or "Answer:"
        shown = "\n\n".join(
            "\n".join(f"{title(k)}: {literal(_clip(v))}" for k, v in ex.variables.items())
            + f"\n{label} {literal(_clip(ex.expected))}"
            for ex in examples
        )
        return template.rstrip("\n") + "\n\nExamples:\n\n" + shown + "\n"
    cue = site.cue or answer_label or "Answer:"
    blocks: list[str] = []
    for example in examples:
        value = literal(_clip(example.variables.get(variable or "", "")))
        if site.start != site.end:  # an XML-style block around the variable
            body = "\n".join([lines[site.start], value, lines[site.end]])
        else:
            body = f"{site.prefix}{value}{site.suffix}"
        blocks.append(f"{body}\n{cue} {literal(_clip(example.expected))}")
    inserted = "\n\n".join(blocks) + "\n\n"
    head = "\n".join(lines[: site.start])
    tail = "\n".join(lines[site.start :])
    if site.cue is None and site.cue_line is None and not answer_label:
        # The examples answer after "Answer:"; ask the same of the real input.
        tail = tail.rstrip("\n") + "\nAnswer:"
    return (head + "\n" if head else "") + inserted + tail


# --- output format ----------------------------------------------------------------------------------------------

FORMAT_INTENTS = ("json", "label", "one-word", "short")

_INTENT_PATTERNS: dict[str, re.Pattern[str]] = {
    "json": re.compile(r"(?i)\bjson\b"),
    "label": re.compile(
        r"(?i)\b(?:only|just)\s+(?:the\s+|a\s+)?(?:label|category|class|classification)\b|"
        r"\b(?:answer|reply|respond)\s+with\s+(?:only\s+)?one\s+of\b|\bno explanations?\b.*\blabel\b"
    ),
    "one-word": re.compile(
        r"(?i)\b(?:one|single|1)[- ]word\b|\bone-word\b|\bin a word\b|\bjust (?:the|a) word\b"
    ),
    "short": re.compile(
        r"(?i)\btoo\s+(?:long|verbose|wordy|chatty)\b|\b(?:shorter|concise|concisely|brief|briefly|terse|"
        r"succinct)\b|\bone sentence\b|\bkeep it short\b|\bramble|\blong-winded\b|\bless text\b"
    ),
}

_DETAIL_LINE = re.compile(
    r"(?i)\b(?:explain|explanation|in detail|step[- ]by[- ]step|elaborate|justify|reasoning|think aloud)\b"
)


def detect_format_intent(notes: str, labels: Sequence[str] = ()) -> str | None:
    """Which output-format change ``notes`` ask for: ``json``, ``label``, ``one-word``, ``short`` or None."""
    if not notes:
        return None
    for intent in FORMAT_INTENTS:
        if _INTENT_PATTERNS[intent].search(notes):
            return intent
    if labels and re.search(r"(?i)\bonly\b.*\b(?:" + "|".join(re.escape(x) for x in labels) + r")\b", notes):
        return "label"
    return None


@dataclass(frozen=True)
class FormatEdit:
    """A tightened template and model parameters, and what was changed (for the rationale)."""

    intent: str
    template: str
    params: dict[str, Any]
    changes: list[str] = field(default_factory=list)


def insert_instruction(template: str, instruction: str) -> str:
    """Put ``instruction`` right after the template's first line when that line is an instruction (no
    variable, more lines follow); otherwise at the very top. Already present (any case): unchanged."""
    if normalized(instruction) in normalized(template):
        return template
    lines = template.split("\n")
    if len(lines) > 1 and "{{" not in lines[0] and "{%" not in lines[0] and lines[0].strip():
        return "\n".join([lines[0], instruction, *lines[1:]])
    return instruction + "\n\n" + template


def _ends_with_cue(template: str) -> bool:
    stripped = template.rstrip()
    last = stripped.rsplit("\n", 1)[-1].strip()
    return bool(last) and last.endswith(":") and "{{" not in last and len(last) <= 60


def _format_rule(
    intent: str, labels: Sequence[str], old_params: dict[str, Any]
) -> tuple[str, str | None, dict[str, Any]]:
    """(instruction, answer cue, model parameters) that state and enforce the format ``intent`` asks for."""
    new_params = dict(old_params)
    if intent == "one-word":
        new_params.update(temperature=0, max_tokens=4, stop=["\n", ".", ","])
        return "Answer with exactly one word.", "One-word answer:", new_params
    if intent == "label":
        longest = max((len(label) for label in labels), default=12)
        new_params.update(temperature=0, max_tokens=max(3, min(16, longest // 3 + 3)), stop=["\n"])
        instruction = (
            f"Answer with only one of: {', '.join(labels)}." if labels else "Answer with only the label."
        )
        return instruction, "Label:", new_params
    if intent == "json":
        new_params.update(temperature=0)
        if isinstance(new_params.get("stop"), list) and "\n" in new_params["stop"]:
            new_params["stop"] = [s for s in new_params["stop"] if s != "\n"] or None
            if new_params["stop"] is None:
                new_params.pop("stop")
        return "Respond with a single valid JSON object and nothing else.", "JSON:", new_params
    # short
    current = old_params.get("max_tokens")
    limit = 60 if not isinstance(current, int) or current > 60 else current
    new_params.update(temperature=0, max_tokens=limit, stop=["\n\n"])
    return "Keep the answer short: one sentence at most.", None, new_params


def tighten_format(
    template: str,
    params: Mapping[str, Any] | None,
    notes: str,
    *,
    labels: Sequence[str] = (),
) -> FormatEdit | None:
    """Make the answer format explicit and enforce it with model parameters, when ``notes`` ask for it.

    Recognised requests (:func:`detect_format_intent`): "answer with one word", "only the label" / "one of",
    "respond in JSON", "too long" / "be concise". The edit inserts an explicit format instruction, removes
    instruction lines asking for explanations (they contradict a terse format), ends the prompt with an answer
    cue when it has none, and sets ``temperature`` 0 plus a small ``max_tokens`` and ``stop`` sequences that
    end the answer where the format says it ends. None when nothing applies or nothing would change.
    """
    intent = detect_format_intent(notes, labels)
    if intent is None:
        return None
    old_params = dict(params or {})
    changes: list[str] = []
    lines = template.split("\n")
    if intent in ("one-word", "label", "short"):
        kept = [
            line
            for line in lines
            if not (_DETAIL_LINE.search(line) and "{{" not in line and "{%" not in line)
        ]
        if len(kept) != len(lines):
            changes.append(f"removed {len(lines) - len(kept)} line(s) asking for explanations")
            lines = kept
    text = "\n".join(lines)
    instruction, cue, new_params = _format_rule(intent, labels, old_params)
    before = text
    text = insert_instruction(text, instruction)
    if text != before:
        changes.append(f"added the instruction {instruction!r}")
    if cue and not _ends_with_cue(text):
        text = text.rstrip("\n") + "\n" + cue
        changes.append(f"ended the prompt with the answer cue {cue!r}")
    for key in sorted(set(new_params) | set(old_params)):
        if new_params.get(key) != old_params.get(key):
            changes.append(f"set {key}={new_params.get(key)!r} (was {old_params.get(key)!r})")
    if text == template and new_params == old_params:
        return None
    return FormatEdit(intent, text, new_params, changes)


def apply_notes(template: str, notes: str) -> str | None:
    """The reviewers' notes as an explicit instruction after the first line (None when there are none)."""
    cleaned = [sentence(n) for n in notes.split("\n") if n.strip()]
    if not cleaned:
        return None
    guidance = " ".join(cleaned)[:1000]
    result = insert_instruction(template, literal(guidance))
    return None if result == template else result


# --- structural assembly ------------------------------------------------------------------------------------------


@dataclass
class Proposal:
    """What one strategy proposes: a template (None when the strategy does not apply; ``note`` says why), model
    parameters to set (None: keep the base's), the model that wrote it, and later its scores."""

    strategy: str
    template: str | None
    params: dict[str, Any] | None = None
    note: str = ""
    model_version: str = "structural"
    score: float | None = None  # mean case score of the quick evaluation
    pass_rate: float | None = None
    rank: float = 0.0  # heuristic rank when there are no cases to evaluate on

    @property
    def applied(self) -> bool:
        return self.template is not None

    @property
    def text(self) -> str:
        assert self.template is not None, "only an applied proposal has a template"
        return self.template


# Role lines of assembled templates (None: no role line); the optimizer's role operator has its own.
ASSEMBLY_ROLES = (
    None,
    "You are a careful expert who follows instructions exactly.",
    "You are a precise assistant for this task.",
)
INSTRUCTION_FORMS = ("{task}", "Task: {task}", "Your task: {task}")
LAYOUTS = ("plain", "xml", "markdown")


def _input_lines(variables: Sequence[str], layout: str) -> str:
    if layout == "xml":
        return "\n".join(f"<{v}>\n{placeholder(v)}\n</{v}>" for v in variables)
    if layout == "markdown":
        return "\n\n".join(f"### {title(v)}\n{placeholder(v)}" for v in variables)
    return "\n".join(f"{title(v)}: {placeholder(v)}" for v in variables)


def _examples_block(examples: Sequence[Example], variables: Sequence[str], layout: str) -> str:
    blocks = []
    for ex in examples:
        shown = [v for v in variables if v in ex.variables] or list(ex.variables)[:1]
        if layout == "xml":
            body = "\n".join(f"<{v}>{literal(_clip(ex.variables.get(v, '')))}</{v}>" for v in shown)
        else:
            body = "\n".join(f"{title(v)}: {literal(_clip(ex.variables.get(v, '')))}" for v in shown)
        blocks.append(f"{body}\nAnswer: {literal(_clip(ex.expected))}")
    return "\n\n".join(blocks)


def assemble(
    task: str,
    variables: Sequence[str],
    *,
    context: str = "",
    role: str | None = None,
    instruction_form: str = "{task}",
    constraints: Sequence[str] = (),
    output_format: str | None = None,
    examples: Sequence[Example] = (),
    step_by_step: bool = False,
    layout: str = "plain",
) -> str:
    """A text template from parts: role, instruction, context, constraints, output format, examples, input."""
    head: list[str] = []
    if role:
        head.append(role)
    head.append(instruction_form.format(task=literal(sentence(task))))
    sections = ["\n".join(head)]
    if context.strip():
        label = "### Context" if layout == "markdown" else "Context:"
        sections.append(f"{label}\n{literal(context.strip())}")
    rules = list(constraints)
    if step_by_step:
        rules.append("Think step by step, then give the final answer on the last line.")
    if output_format:
        rules.append(output_format)
    if rules:
        if layout == "markdown":
            sections.append("### Rules\n" + "\n".join(f"- {r}" for r in rules))
        else:
            sections.append("\n".join(rules))
    if examples:
        label = "### Examples" if layout == "markdown" else "Examples:"
        sections.append(f"{label}\n\n{_examples_block(examples, variables, layout)}")
    sections.append(_input_lines(variables, layout))
    answer = "### Answer" if layout == "markdown" else "Answer:"
    return "\n\n".join(sections) + "\n" + answer


def _format_options(labels: Sequence[str]) -> tuple[str | None, ...]:
    if labels:
        return (f"Answer with only one of: {', '.join(labels)}.", None)
    return ("Answer concisely, without preamble.", None)


def structural_candidates(
    task: str,
    context: str,
    variables: Sequence[str],
    *,
    examples: Sequence[Example] = (),
    labels: Sequence[str] = (),
    base_template: str | None = None,
    seed: int = 0,
    limit: int = 20,
) -> list[Proposal]:
    """Up to ``limit`` distinct templates assembled from parts, most complete first; deterministic per seed.

    With ``base_template`` the first drafts edit the base (add a role, an output format, examples, rules);
    the rest are assembled from ``task``. There are always at least 20 distinct drafts.
    """
    drafts: list[Proposal] = []
    seen: set[str] = {normalized(base_template)} if base_template is not None else set()
    made = itertools.chain(
        _base_edits(base_template, task, examples, labels, seed) if base_template is not None else (),
        _assembled(task, context, variables, examples, labels, seed),
    )
    for strategy, template in made:
        if len(drafts) >= limit:
            break
        key = normalized(template)
        if key not in seen:
            seen.add(key)
            drafts.append(Proposal(strategy, template))
    return drafts


def _base_edits(
    base: str, task: str, examples: Sequence[Example], labels: Sequence[str], seed: int
) -> list[tuple[str, str]]:
    """(strategy, template) edits of a starting template: a format line, examples, a role, rules, the task."""
    fmt = _format_options(labels)[0] or "Answer concisely, without preamble."
    primary = primary_variable(base)
    few = pick_examples(examples, 3, seed=seed)
    edits = [("structural:base+format", insert_instruction(base, fmt))]
    if few:
        edits.append(("structural:base+examples", with_examples(base, few, primary)))
        edits.append(
            ("structural:base+examples+format", insert_instruction(with_examples(base, few, primary), fmt))
        )
    edits.append(("structural:base+role", f"{ASSEMBLY_ROLES[1]}\n\n{base}"))
    edits.append(("structural:base+role+format", f"{ASSEMBLY_ROLES[1]}\n\n{insert_instruction(base, fmt)}"))
    edits.append(
        (
            "structural:base+constraints",
            insert_instruction(base, "Use only the information given. Do not add explanations."),
        )
    )
    if task.strip():
        edits.append(("structural:base+task", insert_instruction(base, literal(sentence(task)))))
    return edits


def _assembled(
    task: str,
    context: str,
    variables: Sequence[str],
    examples: Sequence[Example],
    labels: Sequence[str],
    seed: int,
) -> Iterator[tuple[str, str]]:
    """(strategy, template) assembled from the task: the most complete combinations of parts first, then a
    seeded shuffle of the rest (made lazily: the caller stops when it has enough)."""
    example_counts = (4, 2, 0) if examples else (0,)
    constraints_options: tuple[tuple[str, ...], ...] = (("Use only the information in the input.",), ())
    combos = list(
        itertools.product(
            example_counts,
            _format_options(labels),
            ASSEMBLY_ROLES,
            constraints_options,
            INSTRUCTION_FORMS,
            LAYOUTS,
        )
    )
    head, rest = combos[:3], combos[3:]
    random.Random(seed).shuffle(rest)  # noqa: S311 - reproducible order, not security
    step_ok = not labels
    for index, (k, fmt_option, role, rules, form, layout) in enumerate(head + rest):
        picked = pick_examples(examples, k, seed=seed + index)
        parts = ["role"] if role else []
        parts += ["instruction"] + (["constraints"] if rules else []) + (["format"] if fmt_option else [])
        parts += [f"{len(picked)}-shot"] if picked else []
        step = step_ok and index % 4 == 3
        if step:
            parts.append("step-by-step")
        template = assemble(
            task,
            variables,
            context=context,
            role=role,
            instruction_form=form,
            constraints=rules,
            output_format=fmt_option,
            examples=picked,
            step_by_step=step,
            layout=layout,
        )
        yield f"structural:{'+'.join(parts)}:{layout}", template


# --- model-driven strategies -------------------------------------------------------------------------------------

LLM_STRATEGIES: dict[str, str] = {
    "clarify": "Rewrite the prompt so its instructions are clear, specific and unambiguous.",
    "role": "Rewrite the prompt so it first gives the model a fitting expert role.",
    "format": "Rewrite the prompt so it states exactly what the answer must look like.",
    "step-by-step": "Rewrite the prompt so it asks for step-by-step reasoning before the final answer.",
    "few-shot": "Rewrite the prompt and include the worked examples below in it.",
    "constrain-length": "Rewrite the prompt so it limits the length of the answer.",
}


def _placeholders_note(variables: Sequence[str]) -> str:
    return ", ".join(placeholder(v) for v in variables)


def meta_prompt(
    strategy: str,
    task: str,
    context: str,
    template: str,
    variables: Sequence[str],
    examples: Sequence[Example] = (),
) -> str:
    """The prompt that asks a model to apply one :data:`LLM_STRATEGIES` strategy to ``template``."""
    lines = [
        "You improve prompts for language models.",
        LLM_STRATEGIES[strategy],
        f"Keep these placeholders exactly as written: {_placeholders_note(variables)}.",
        "Return only the new prompt between <prompt> and </prompt>.",
        "",
        f"Task: {sentence(task)}",
    ]
    if context.strip():
        lines.append(f"Context: {_clip(context, 2000)}")
    if strategy == "few-shot" and examples:
        lines.append("Examples:")
        for ex in examples:
            shown = "; ".join(f"{k}={_clip(v, 200)}" for k, v in ex.variables.items())
            lines.append(f"- {shown} -> {_clip(ex.expected, 200)}")
    lines += ["", "Current prompt:", "<prompt>", template, "</prompt>", "", "New prompt:", "<prompt>"]
    return "\n".join(lines)


def critique_prompt(template: str, notes: str, failures: Sequence[tuple[str, str | None, str | None]]) -> str:
    """Critique-and-edit: the prompt, what reviewers said and failing cases; asks for the corrected prompt.

    ``failures`` are (input shown, expected answer, actual answer).
    """
    lines = [
        "You improve prompts for language models.",
        "Read the prompt, the reviewers' feedback and the failing cases, then write a corrected prompt that",
        "fixes the problems. Keep every {{ placeholder }} exactly as written.",
        "Return only the corrected prompt between <prompt> and </prompt>.",
        "",
        "Prompt:",
        "<prompt>",
        template,
        "</prompt>",
    ]
    if notes.strip():
        lines += ["", "Feedback:", _clip(notes, 2000)]
    if failures:
        lines += ["", "Failing cases:"]
        for shown, expected, actual in failures[:5]:
            lines.append(
                f"- input: {_clip(shown, 200)} | expected: {_clip(expected or '', 80)} | "
                f"got: {_clip(actual or '', 120)}"
            )
    lines += ["", "Corrected prompt:", "<prompt>"]
    return "\n".join(lines)


_FENCE = re.compile(r"^```[\w-]*\n(.*?)\n```$", re.S)


def extract_prompt(text: str | None) -> str | None:
    """The prompt a model wrote (up to ``</prompt>``, fences and labels removed); None when empty."""
    if not text:
        return None
    body = text
    if "<prompt>" in body:
        body = body.split("<prompt>", 1)[1]
    body = body.split("</prompt>", 1)[0]
    body = body.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1).strip()
    body = re.sub(r"(?i)^(?:new|improved|corrected)\s+prompt:\s*", "", body).strip()
    return body or None


def check_candidate(
    template: str,
    variables: Sequence[Mapping[str, Any]],
    required: Iterable[str],
    allowed_includes: Iterable[str] = (),
) -> str | None:
    """Why ``template`` cannot be a candidate (None when it can): empty, too long, does not parse, lost a
    required variable, uses an undeclared one, or adds an include."""
    if not template.strip():
        return "empty"
    if len(template) > MAX_TEMPLATE_CHARS:
        return f"longer than {MAX_TEMPLATE_CHARS} characters"
    try:
        specs = [templates.VariableSpec.from_dict(v) for v in variables]
        analysis = templates.analyze("text", template, None, specs)
    except ProblemError as problem:
        return f"does not parse: {problem.detail}"
    missing = sorted(set(required) - set(analysis.used))
    if missing:
        return f"lost the variable(s) {', '.join(missing)}"
    if analysis.undeclared:
        return f"uses undeclared variable(s) {', '.join(analysis.undeclared)}"
    extra = sorted(set(analysis.includes) - set(allowed_includes))
    if extra:
        return f"adds include(s) {', '.join(extra)}"
    return None
