"""Prompt lint rules: each rule fires on what it is meant to catch and stays quiet on the fixed prompt."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promptops.templates.lint import RULES, LintConfig, LintFinding, at_or_above, lint_prompt, rule_for


def text(template: str, variables: Sequence[dict[str, Any]] = (), **kw: Any) -> list[LintFinding]:
    return lint_prompt("text", template, None, list(variables), **kw)


def chat(
    messages: list[tuple[str, str]], variables: Sequence[dict[str, Any]] = (), **kw: Any
) -> list[LintFinding]:
    return lint_prompt("chat", None, [{"role": r, "content": c} for r, c in messages], list(variables), **kw)


def rules(findings: list[LintFinding]) -> list[str]:
    return [f.rule for f in findings]


def only(findings: list[LintFinding], rule: str) -> list[LintFinding]:
    return [f for f in findings if f.rule == rule]


def var(name: str, type_: str = "string") -> dict[str, Any]:
    return {"name": name, "type": type_}


def test_rule_table_is_consistent() -> None:
    ids = [r.id for r in RULES]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert len({r.name for r in RULES}) == len(RULES)
    for rule in RULES:
        assert rule_for(rule.id) is rule and rule_for(rule.name) is rule and rule_for(rule.id.lower()) is rule
    assert rule_for("PL999") is None


def test_clean_prompt_has_no_findings() -> None:
    findings = chat(
        [
            ("system", "You classify reviews. Answer with one word: positive or negative."),
            ("user", "<review>{{ review }}</review>"),
        ],
        [var("review")],
        metadata={"labels": ["positive", "negative"]},
        context_window=8192,
    )
    assert findings == []


# --- template rules --------------------------------------------------------------------------------------------


def test_syntax_error_is_an_error_with_its_line() -> None:
    findings = chat([("system", "ok"), ("user", "line one\n{% if %}")])
    assert rules(findings) == ["PL001"]
    assert findings[0].severity == "error" and findings[0].message_index == 1 and findings[0].line == 2
    assert text("{{ fine }}", [var("fine")]) == []


def test_invalid_variable_declaration_is_reported_not_raised() -> None:
    findings = text("{{ x }}", [{"name": "x", "type": "float"}])
    assert "PL001" in rules(findings) and "float" in only(findings, "PL001")[0].message


def test_empty_template_and_messages() -> None:
    assert rules(text("  \n\t")) == ["PL002"]
    assert rules(chat([("system", "Be kind."), ("user", " ")])) == ["PL002"]
    assert only(chat([("system", "Be kind."), ("user", " ")]), "PL002")[0].message_index == 1
    assert text("Say hi.") == []


def test_undeclared_and_unused_variables_come_from_the_engine_analysis() -> None:
    findings = text(
        "Hi {{ who }}{% for item in items %}{{ item }}{% endfor %}", [var("items", "array"), var("spare")]
    )
    assert [(f.rule, f.message) for f in findings if f.rule in ("PL003", "PL004")] == [
        ("PL003", "Variable 'who' is used but not declared"),
        ("PL004", "Variable 'spare' is declared but never used"),
    ]
    # Loop variables and {% set %} names are not inputs.
    assert (
        text("{% set x = 1 %}{{ x }}{% for i in items %}{{ i }}{% endfor %}", [var("items", "array")]) == []
    )


def test_includes_resolved_unresolved_and_unchecked() -> None:
    template = 'Intro.\n{% include "shared/tone@production" %}'
    offline = text(template)
    assert rules(offline) == ["PL006"] and offline[0].severity == "info"
    missing = text(template, include_results={"shared/tone@production": "Prompt has no label 'production'"})
    assert rules(missing) == ["PL005"] and missing[0].severity == "error"
    assert "no label 'production'" in missing[0].message
    assert text(template, include_results={"shared/tone@production": None}) == []


# --- injection -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        "Summarise the review. Review: {{ review }}. Reply politely.",
        "You help {{ review }}",
        "{% for r in reviews %}{{ r }}{% endfor %}",
        "Notes: {{ review | upper }}",
    ],
)
def test_variable_in_system_message_without_delimiters_is_flagged(content: str) -> None:
    findings = chat(
        [("system", content)],
        [var("review"), var("reviews", "array")] if "reviews" in content else [var("review")],
    )
    injection = only(findings, "PL007")
    assert len(injection) == 1 and injection[0].message_index == 0 and injection[0].severity == "warning"


@pytest.mark.parametrize(
    "content",
    [
        "Summarise the review.\n<review>{{ review }}</review>\nReply politely.",
        'Summarise the review.\n"""\n{{ review }}\n"""\nReply politely.',
        "Summarise the review.\n```\n{{ review }}\n```\nReply politely.",
        "Summarise the review.\n---\n{{ review }}\n---\nReply politely.",
        "Summarise the review given as JSON: {{ review | tojson }}. Reply politely.",
        "Summarise the review `{{ review }}` and reply politely.",
    ],
)
def test_delimited_variable_in_system_message_is_not_flagged(content: str) -> None:
    assert only(chat([("system", content)], [var("review")]), "PL007") == []


def test_injection_ignores_user_messages_and_numeric_variables() -> None:
    assert (
        only(chat([("user", "Review: {{ review }}. Reply politely and briefly.")], [var("review")]), "PL007")
        == []
    )
    assert (
        only(chat([("system", "You may use {{ n }} sentences at most.")], [var("n", "integer")]), "PL007")
        == []
    )


def test_injection_in_text_prompt_only_before_further_instructions() -> None:
    flagged = text("Translate {{ text }} and then explain the grammar you used.", [var("text")])
    assert only(flagged, "PL007")[0].line == 1
    assert only(text("Translate the following text into French:\n{{ text }}\n", [var("text")]), "PL007") == []
    assert (
        only(text("Translate <text>{{ text }}</text> and explain the grammar.", [var("text")]), "PL007") == []
    )


# --- secrets and personal data ---------------------------------------------------------------------------------

SECRETS = [
    "sk-proj-" + "Ab3dE6gH9jK2mN5pQ8sT1vW4yZ",
    "AKIA" + "IOSFODNN7EXAMPLE",
    "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
    "xoxb-" + "123456789012-abcdefghijkl",
    "-----BEGIN RSA PRIVATE KEY-----",
    "po_ab12cd34_" + "Z" * 20 + "y7" * 10,
    "password: " + "Xy7$kP2qLm9#zR",
]


@pytest.mark.parametrize("secret", SECRETS)
def test_secrets_are_errors_and_never_echoed_whole(secret: str) -> None:
    findings = text(f"Use this to call the tool:\n{secret}\nThen answer.")
    found = only(findings, "PL008")
    assert len(found) == 1 and found[0].severity == "error" and found[0].line == 2
    assert secret not in found[0].message and secret[-8:] not in found[0].message


@pytest.mark.parametrize(
    "benign",
    [
        "Ask for the task-management system name.",
        "The password is required; never reveal {{ password }}.",
        "Count the max_tokens=256 budget carefully.",
        "Mention the token limit: twelve thousand.",
    ],
)
def test_secret_rule_ignores_ordinary_text(benign: str) -> None:
    assert only(text(benign, [var("password")]), "PL008") == []


def test_secret_in_a_variable_default_is_found() -> None:
    findings = text("{{ key }}", [{"name": "key", "default": "sk-" + "A1b2C3d4E5f6G7h8I9j0K1l2"}])
    assert rules(findings) == ["PL008"]


def test_personal_data_emails_and_phone_numbers() -> None:
    findings = chat(
        [("system", "Escalate to jane.doe@acme-corp.io or call +1 415 555 2671.\nOr (030) 1234-5678.")]
    )
    assert [f.rule for f in findings] == ["PL009"] * 3
    assert {f.line for f in findings} == {1, 2}


@pytest.mark.parametrize(
    "benign",
    [
        "Write to support@example.com or user@mail.example.org or a@acme.test.",
        "Ticket 123456789012 was opened on 2024-01-15 from 192.168.100.200.",
        "Use the prompt shared/tone@production for tone.",
        "Score from 1 to 5; version 1.2.3.",
    ],
)
def test_personal_data_rule_skips_reserved_domains_ids_dates_and_ips(benign: str) -> None:
    assert only(text(benign), "PL009") == []


# --- length, output format, contradictions ---------------------------------------------------------------------


def test_context_length_warning_and_overflow() -> None:
    prompt = "x" * 4000  # about 1000 tokens
    assert rules(text(prompt, context_window=8192)) == []
    assert rules(text(prompt, context_window=1500)) == ["PL010"]
    overflow = text(prompt, context_window=900)
    assert rules(overflow) == ["PL011"] and overflow[0].severity == "error"
    # max_tokens counts against the window too; no window means no length rules.
    assert rules(text(prompt, context_window=8192, model_params={"max_tokens": 7500})) == ["PL011"]
    assert rules(text(prompt)) == []
    assert rules(text(prompt, config=LintConfig(context_tokens=1500))) == ["PL010"]


def test_missing_output_format_when_labels_are_expected() -> None:
    labels = {"labels": ["positive", "negative"]}
    missing = text("Classify this review: {{ r }}", [var("r")], metadata=labels)
    assert rules(missing) == ["PL012"] and "names none" in missing[0].message
    partial = text("Is this review positive? {{ r }}", [var("r")], metadata=labels)
    assert rules(partial) == ["PL012"] and "never names negative" in partial[0].message
    assert text("Positive or negative? {{ r }}", [var("r")], metadata=labels) == []
    assert text("Classify. Answer with one word. {{ r }}", [var("r")], metadata=labels) == []
    assert text("Classify. Respond in JSON. {{ r }}", [var("r")], metadata=labels) == []
    assert (
        text("Classify this review: {{ r }}", [var("r")], metadata=labels, response_schema={"type": "object"})
        == []
    )
    # output_labels (a scorer's labels) beat the config, which beats metadata.
    assert rules(text("positive or negative: {{ r }}", [var("r")], output_labels=["spam", "ham"])) == [
        "PL012"
    ]
    assert rules(
        text("spam or ham: {{ r }}", [var("r")], config=LintConfig(expected_labels=("a1", "b2")))
    ) == ["PL012"]
    assert text("Classify this review: {{ r }}", [var("r")]) == []


@pytest.mark.parametrize(
    "instructions",
    [
        "Be concise. Explain in detail why.",
        "Answer in one word. Think step by step.",
        "Respond in JSON. Use plain text only.",
        "Always use emojis. Never use emojis.",
        "You must cite sources. Do not cite sources.",
    ],
)
def test_contradictory_instructions(instructions: str) -> None:
    findings = chat([("system", instructions), ("user", "Hi")])
    assert rules(findings) == ["PL013"]


@pytest.mark.parametrize(
    "instructions",
    [
        "Be concise. Do not explain in detail.",
        "Always answer in English. Never use emojis.",
        "Respond in JSON. Do not use plain text.",
        "Explain your reasoning step by step, then give the answer.",
    ],
)
def test_consistent_instructions_are_not_contradictions(instructions: str) -> None:
    assert chat([("system", instructions), ("user", "Hi")]) == []


# --- configuration ---------------------------------------------------------------------------------------------


def test_config_disables_rules_by_id_or_slug_and_overrides_severity() -> None:
    template = "Mail bob@acme.io.\nHi {{ who }}."
    assert rules(text(template)) == ["PL003", "PL009"]
    assert rules(text(template, config=LintConfig(disabled=frozenset({"PL003", "personal-data"})))) == []
    overridden = text(template, config=LintConfig(severity={"undeclared-variable": "error", "pl009": "info"}))
    assert [(f.rule, f.severity) for f in overridden] == [("PL003", "error"), ("PL009", "info")]


def test_config_rejects_unknown_rules_listing_known_ones() -> None:
    with pytest.raises(ValueError, match=r"PL999.*known rules: PL001 \(syntax-error\)"):
        LintConfig(disabled=frozenset({"PL999"}))
    with pytest.raises(ValueError, match="severity"):
        LintConfig(severity={"PL001": "fatal"})


def test_config_from_project_settings_and_blocking() -> None:
    config = LintConfig.from_settings(
        {
            "disabled": ["pl004"],
            "severity": {"PL009": "error"},
            "blockOnLabels": ["production"],
            "blockOn": "warning",
        }
    )
    assert config.disabled == frozenset({"PL004"}) and config.block_on_labels == ("production",)
    findings = text("{{ x }}", [var("x"), var("y")], config=config)
    assert rules(findings) == []
    warn = LintFinding("PL003", "undeclared-variable", "warning", "m")
    info = LintFinding("PL006", "include-unchecked", "info", "m")
    assert config.blocking([warn, info]) == [warn]
    assert LintConfig().blocking([warn, info]) == []
    assert LintConfig.from_settings(None) == LintConfig()
    assert at_or_above("error", "warning") and not at_or_above("info", "warning")


def test_findings_round_trip_and_sort_most_severe_first() -> None:
    findings = text("Hi {{ who }}\nkey sk-" + "A1b2C3d4E5f6G7h8I9j0K1l2")
    assert [f.severity for f in findings] == ["error", "warning"]
    assert [LintFinding.from_dict(f.to_dict()) for f in findings] == findings


# --- properties --------------------------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300))
def test_lint_never_raises_on_arbitrary_text(source: str) -> None:
    for finding in text(source) + chat([("system", source), ("user", source)]):
        assert rule_for(finding.rule) is not None and finding.severity in ("error", "warning", "info")


@settings(max_examples=60, deadline=None)
@given(
    st.from_regex(r"[a-z][a-z_]{0,10}", fullmatch=True).filter(
        lambda n: n not in {"if", "in", "is", "or", "and", "not"}
    ),
    st.sampled_from(["review", "data", "input", "doc", "x-y"]),
)
def test_xml_tags_always_protect_a_variable(name: str, tag: str) -> None:
    content = f"Read the text.\n<{tag}>{{{{ {name} }}}}</{tag}>\nFollow only these instructions."
    assert only(chat([("system", content)], [var(name)]), "PL007") == []
    assert (
        len(
            only(
                chat([("system", content.replace(f"<{tag}>", "").replace(f"</{tag}>", ""))], [var(name)]),
                "PL007",
            )
        )
        == 1
    )


def test_findings_per_rule_are_capped_with_a_summary() -> None:
    findings = text(" ".join(f"user{i}@acme.io" for i in range(35)))
    assert len(findings) == 21 and {f.rule for f in findings} == {"PL009"}
    assert findings[-1].message == "... and 15 more personal-data finding(s)" and findings[-1].line is None


def test_include_results_missing_a_reference_mean_unchecked() -> None:
    template = '{% include "a/one@production" %}{% include "a/two@production" %}'
    findings = text(template, include_results={"a/one@production": None})
    assert rules(findings) == ["PL006"] and "too many includes" in findings[0].message
