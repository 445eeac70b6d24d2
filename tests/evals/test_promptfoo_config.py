"""Translating promptfoo configs into registry prompts, dataset cases, model targets and scorers."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from promptops.datasets.formats import normalize_cases
from promptops.datasets.promptfoo_tests import BundleFiles
from promptops.evals.promptfoo import ImportPlan, PromptfooConfigError, parse_config
from promptops.evals.promptfoo import translate as translate_plan
from promptops.evals.promptfoo.bundle import DiskFiles, collect, read_text
from promptops.evals.promptfoo.parse import MAX_CONFIG_BYTES
from promptops.evals.schemas import EvalRunIn, ScorerSpec
from promptops.evals.scoring import validate_specs
from promptops.registry.schemas import CreatePromptIn

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "promptfoo" / "promptfooconfig.yaml"


def load_config(path: Path) -> dict[str, Any]:
    """A config file read as the CLI reads it."""
    return parse_config(read_text(path, MAX_CONFIG_BYTES, "config file"), path.name)


def translate(config: dict[str, Any], *, base_dir: Path, prefix: str, **kwargs: Any) -> ImportPlan:
    """The translation with the config's files read from ``base_dir`` (the server reads the same files from
    the bundle the CLI sends: tests/evals/test_promptfoo_import_api.py)."""
    return translate_plan(config, files=DiskFiles(base_dir), prefix=prefix, **kwargs)


def _write(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return tmp_path / "promptfooconfig.yaml"


def _translate(tmp_path: Path, config: str, files: dict[str, str] | None = None, **kwargs: Any):
    path = _write(tmp_path, {"promptfooconfig.yaml": config, **(files or {})})
    return translate(load_config(path), base_dir=tmp_path, prefix=kwargs.pop("prefix", "mig"), **kwargs)


def _check_usable(result) -> None:
    """What the CLI will send must pass our own request validation."""
    for draft in result.prompts:
        CreatePromptIn.model_validate(draft.body())
    normalize_cases(result.cases)
    EvalRunIn.model_validate(result.eval_run_body([d.name for d in result.prompts], "ds"))
    for case in result.cases:
        specs = [ScorerSpec.model_validate(s) for s in result.scorers + case["metadata"].get("scorers", [])]
        validate_specs(specs)


# --- the shipped example ------------------------------------------------------------------------------------


def test_example_config_translates_completely() -> None:
    result = translate(load_config(EXAMPLE), base_dir=EXAMPLE.parent, prefix="sentiment")
    assert result.unsupported == []
    assert result.description == "Sentiment of product reviews, zero-shot vs few-shot"
    assert [(p.name, p.kind) for p in result.prompts] == [
        ("sentiment/zero-shot", "text"),
        ("sentiment/few-shot", "chat"),
    ]
    assert "{{review}}" in (result.prompts[0].template or "")
    assert result.prompts[1].messages is not None and result.prompts[1].messages[-1]["content"] == (
        "Review: {{review}}"
    )
    for draft in result.prompts:
        assert draft.variables == [{"name": "review", "type": "string", "required": True}]
    assert result.models == [
        {"provider": "local", "model": "gemma-3-270m", "params": {"temperature": 0, "max_tokens": 5}}
    ]
    assert len(result.cases) == 8
    assert {c["expected"] for c in result.cases} == {"positive", "negative"}
    assert result.cases[0]["metadata"] == {"description": "enthusiastic kitchen review"}
    # every test asserted icontains <its expected label>: one run scorer comparing with the expected output
    assert result.scorers == [{"type": "icontains"}]
    assert all("scorers" not in c["metadata"] for c in result.cases)
    _check_usable(result)


# --- prompts ------------------------------------------------------------------------------------------------


def test_prompt_forms(tmp_path: Path) -> None:
    result = _translate(
        tmp_path,
        """
        prompts:
          - "Summarize: {{ text }}"
          - '[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "{{ text }}"}]'
          - file://prompts/many.txt
          - id: file://prompts/chat.yaml
            label: Chat Style!
          - raw: "Data: {{ obj | dump }}"
            label: dumped
          - file://prompts/fn.py:make_prompt
          - "Broken {{ text "
        providers: [promptops:local]
        tests:
          - vars: {text: hello, obj: {a: 1}}
        """,
        {
            "prompts/many.txt": """
                First: {{ text }}
                ---
                Second: {{ text }}
                """,
            "prompts/chat.yaml": """
                - role: system
                  content: You are terse.
                - role: user
                  content: "{{ text }}"
                """,
            "prompts/fn.py": "def make_prompt(context): return 'x'\n",
        },
    )
    names = [p.name for p in result.prompts]
    assert names == [
        "mig/prompt-1",
        "mig/prompt-2",
        "mig/many-1",
        "mig/many-2",
        "mig/chat-style",
        "mig/dumped",
    ]
    kinds = [p.kind for p in result.prompts]
    assert kinds == ["text", "chat", "text", "text", "chat", "text"]
    assert result.prompts[2].template == "First: {{ text }}"
    assert result.prompts[3].template == "Second: {{ text }}"
    assert result.prompts[4].messages == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "{{ text }}"},
    ]
    assert result.prompts[5].template == "Data: {{ obj | tojson }}"
    assert result.prompts[5].variables == [{"name": "obj", "type": "any", "required": True}]
    assert any(line.startswith("prompts[5]: prompt functions") for line in result.unsupported)
    assert any(line.startswith("prompts[6]: the template is not valid") for line in result.unsupported)
    _check_usable(result)


def test_legacy_prompt_map_glob_and_name_collisions(tmp_path: Path) -> None:
    result = _translate(
        tmp_path,
        """
        prompts:
          file://p/*.txt: ignored-label-for-many
        providers: [promptops:local]
        """,
        {"p/a.txt": "A {{x}}", "p/b.txt": "B {{x}}", "p/versions.txt": "C {{x}}"},
    )
    assert [p.name for p in result.prompts] == ["mig/a", "mig/b", "mig/versions-prompt"]
    # no tests: one case, as promptfoo runs each prompt once
    assert result.cases == [{"input": {}, "expected": None, "tags": [], "metadata": {}}]
    assert result.prompts[0].variables == [{"name": "x", "type": "string", "required": False}]


def test_missing_prompts_and_files_are_errors(tmp_path: Path) -> None:
    with pytest.raises(PromptfooConfigError, match="no 'prompts'"):
        _translate(tmp_path, "providers: [openai:gpt-4o-mini]\n")
    with pytest.raises(PromptfooConfigError, match=r"no file matches file://missing\.txt"):
        _translate(tmp_path, "prompts: [file://missing.txt]\n")
    with pytest.raises(PromptfooConfigError, match="no usable prompt"):
        _translate(tmp_path, "prompts: [file://gen.js]\n")
    with pytest.raises(PromptfooConfigError, match="invalid prompt prefix"):
        _translate(tmp_path, "prompts: [hi]\n", prefix="Bad Prefix")


# --- providers ----------------------------------------------------------------------------------------------


def test_provider_mapping(tmp_path: Path) -> None:
    result = _translate(
        tmp_path,
        """
        prompts: ["{{q}}"]
        providers:
          - openai:gpt-4o-mini
          - openai:chat:gpt-4.1
          - id: anthropic:messages:claude-3-5-haiku-20241022
            label: haiku
            config: {temperature: 0.2, max_tokens: 64, apiBaseUrl: "https://proxy.example", top_k: 5}
          - ollama:chat:llama3.2
          - localai:chat:mistral
          - local
          - promptops:corp-vllm:qwen2.5-7b
          - openai:embedding:text-embedding-3-small
          - openai:chat
          - file://my_provider.py
          - openai:gpt-4o-mini
          - mistral:mistral-small: {config: {temperature: 0}}
        """,
        provider_map={"ollama": "my-ollama", "mistral": "mistral-conn"},
    )
    assert result.models == [
        {"provider": "openai", "model": "gpt-4o-mini", "params": {}},
        {"provider": "openai", "model": "gpt-4.1", "params": {}},
        {
            "provider": "anthropic",
            "model": "claude-3-5-haiku-20241022",
            "params": {"temperature": 0.2, "max_tokens": 64},
        },
        {"provider": "my-ollama", "model": "llama3.2", "params": {}},
        {"provider": "local", "model": "gemma-3-270m", "params": {}},
        {"provider": "corp-vllm", "model": "qwen2.5-7b", "params": {}},
        {"provider": "mistral-conn", "model": "mistral-small", "params": {"temperature": 0}},
    ]
    text = "\n".join(result.unsupported)
    assert (
        "providers[2].config.apiBaseUrl: endpoints and credentials belong to a PromptOps provider connection"
        in (text)
    )
    assert "providers[2].config.top_k: not supported" in text
    assert (
        "providers[4]: provider 'localai:chat:mistral' has no PromptOps connection; map its prefix 'localai'"
        in (text)
    )
    assert "providers[7]: 'openai:embedding:text-embedding-3-small': only chat and completion models" in text
    assert "providers[8]: 'openai:chat' names no model" in text
    assert "providers[9]: provider 'file://my_provider.py' (custom code" in text
    assert "providers[10]: the same model is listed twice" in text


def test_no_providers_is_reported(tmp_path: Path) -> None:
    result = _translate(tmp_path, "prompts: [hi]\n")
    assert result.models == []
    assert result.unsupported == [
        "providers: no providers given; each prompt version's model settings (else the local model) are used"
    ]


# --- tests and assertions -----------------------------------------------------------------------------------

ASSERT_CONFIG = """
description: Support answers
prompts: ["Answer the customer: {{question}} ({{tone}})"]
providers: [openai:gpt-4o-mini]
evaluateOptions: {maxConcurrency: 4, repeat: 2}
outputPath: results.json
defaultTest:
  vars: {tone: friendly}
  assert:
    - type: not-icontains
      value: as an AI
    - type: latency
      threshold: 5000
    - type: javascript
      value: output.length < 500
tests:
  - description: refund policy
    vars: {question: "How do I get a refund?"}
    assert:
      - type: icontains
        value: refund
        metric: accuracy
        weight: 2
      - type: contains-any
        value: [30 days, thirty days]
        metric: accuracy
      - type: llm-rubric
        value: Explains the refund steps politely
        threshold: 0.5
        provider: openai:gpt-4o
      - type: levenshtein
        value: Go to settings
        threshold: 12
      - type: similar
        value: Open a ticket to get your money back
      - type: python
        value: file://check.py
      - type: model-graded-closedqa
        value: mentions the 30 day window
      - type: word-count
        value: {min: 5, max: 80}
      - type: is-json
        value: file://schema.json
  - vars: {question: "Where is my order?", tone: formal}
    options: {prefix: "SYSTEM: "}
    threshold: 0.8
    assert:
      - type: assert-set
        weight: 2
        assert:
          - type: starts-with
            value: Dear
          - type: regex
            value: "order\\\\s+#?\\\\d+"
      - type: contains
        value: tracking
        transform: output.toLowerCase()
"""


def test_assertions_and_default_test(tmp_path: Path) -> None:
    result = _translate(
        tmp_path,
        ASSERT_CONFIG,
        {
            "schema.json": '{"type": "object", "required": ["answer"]}',
            "check.py": "def get_assert(o, c): return True\n",
        },
    )
    assert result.description == "Support answers"
    assert result.concurrency == 4
    # defaultTest.assert -> run scorers; javascript is reported
    assert result.scorers == [
        {"type": "icontains", "value": "as an AI", "negate": True},
        {"type": "latency", "value": 5000},
    ]
    first, second = result.cases
    assert first["input"] == {"tone": "friendly", "question": "How do I get a refund?"}
    assert second["input"] == {"tone": "formal", "question": "Where is my order?"}
    assert first["expected"] == "refund"
    assert first["metadata"]["description"] == "refund policy"
    assert first["metadata"]["scorers"] == [
        {"type": "icontains", "value": "refund", "weight": 2.0, "name": "accuracy"},
        {"type": "contains-any", "value": ["30 days", "thirty days"], "name": "accuracy #2"},
        {
            "type": "llm-rubric",
            "value": "Explains the refund steps politely",
            "threshold": 0.5,
            "options": {"model": {"provider": "openai", "model": "gpt-4o"}},
        },
        {"type": "levenshtein", "value": "Go to settings", "options": {"max_distance": 12}},
        {"type": "similar", "value": "Open a ticket to get your money back", "threshold": 0.75},
        {"type": "min-words", "value": 5},
        {"type": "max-words", "value": 80},
        {"type": "is-json", "value": {"type": "object", "required": ["answer"]}},
    ]
    assert second["expected"] == "Dear"
    assert second["metadata"]["scorers"] == [
        {"type": "starts-with", "value": "Dear", "weight": 2.0},
        {"type": "regex", "value": "order\\s+#?\\d+", "weight": 2.0},
    ]
    assert result.unsupported == [
        "outputPath: this setting is not supported and was ignored",
        "defaultTest.assert[2]: type 'javascript' is not supported: PromptOps runs no code from evaluation configs",
        "tests[0].assert[5]: type 'python' is not supported: PromptOps runs no code from evaluation configs",
        "tests[0].assert[6]: type 'model-graded-closedqa' is not supported",
        "tests[1].threshold: not supported; ignored",
        "tests[1].options.prefix: not supported; ignored",
        "tests[1].assert[1].transform: output transforms are not supported; assertion ignored",
        "evaluateOptions.repeat: not supported; ignored",
    ]
    _check_usable(result)


def test_templated_default_assert_becomes_expected_and_is_hoisted(tmp_path: Path) -> None:
    result = _translate(
        tmp_path,
        """
        prompts: ["Translate to {{language}}: {{text}}"]
        providers: [promptops:local]
        defaultTest:
          assert:
            - type: icontains
              value: "{{ answer }}"
            - type: max-length
              value: 200
        tests:
          - vars: {language: French, text: cat, answer: chat}
          - vars: {language: German, text: dog, answer: Hund}
        """,
    )
    assert [c["expected"] for c in result.cases] == ["chat", "Hund"]
    assert result.scorers == [{"type": "max-length", "value": 200}, {"type": "icontains"}]
    assert all("scorers" not in c["metadata"] for c in result.cases)
    _check_usable(result)


def test_per_case_assertions_stay_with_their_case_when_they_differ(tmp_path: Path) -> None:
    result = _translate(
        tmp_path,
        """
        prompts: ["{{q}}"]
        providers: [promptops:local]
        tests:
          - vars: {q: "2+2?"}
            assert: [{type: equals, value: "4"}]
          - vars: {q: "Capital of France?"}
            assert: [{type: icontains, value: Paris}]
          - vars: {q: "Say hi"}
        """,
    )
    assert result.scorers == []
    assert result.cases[0]["metadata"]["scorers"] == [{"type": "equals", "value": "4"}]
    assert result.cases[1]["metadata"]["scorers"] == [{"type": "icontains", "value": "Paris"}]
    assert "scorers" not in result.cases[2]["metadata"]
    assert [c["expected"] for c in result.cases] == ["4", "Paris", None]


def test_csv_tests_with_expected_columns(tmp_path: Path) -> None:
    result = _translate(
        tmp_path,
        """
        prompts: ["Classify: {{text}}"]
        providers: [promptops:local]
        tests: file://cases.csv
        """,
        {
            "cases.csv": """
                text,__expected,__expected2,__description,__metadata:topic,__prefix
                I love it,positive,not-contains: negative,happy,reviews,
                Meh,"contains-any: neutral,mixed",,unsure,reviews,
                It is awful,javascript: output === 'negative',,angry,,Answer:
                What is this,similar(0.9): a question,,question,,
                """
        },
    )
    rows = result.cases
    assert [r["input"] for r in rows] == [
        {"text": "I love it"},
        {"text": "Meh"},
        {"text": "It is awful"},
        {"text": "What is this"},
    ]
    assert rows[0]["expected"] == "positive"
    assert rows[0]["metadata"] == {
        "topic": "reviews",
        "description": "happy",
        "scorers": [
            {"type": "equals", "value": "positive"},
            {"type": "contains", "value": "negative", "negate": True},
        ],
    }
    assert rows[1]["metadata"]["scorers"] == [{"type": "contains-any", "value": ["neutral", "mixed"]}]
    assert rows[1]["expected"] is None
    assert "scorers" not in rows[2]["metadata"]
    assert rows[3]["metadata"]["scorers"] == [{"type": "similar", "value": "a question", "threshold": 0.9}]
    assert result.unsupported == [
        "cases.csv row 3 column __prefix: not supported; ignored",
        "cases.csv row 3.assert[0]: type 'javascript' is not supported: PromptOps runs no code from evaluation "
        "configs",
    ]
    _check_usable(result)


def test_test_files_list_variables_and_var_files(tmp_path: Path) -> None:
    result = _translate(
        tmp_path,
        """
        prompts: ["Write a {{style}} poem about {{topic}} in {{language}}. {{context}}"]
        providers: [promptops:local]
        tests:
          - file://more/*.yaml
          - vars:
              style: [short, long]
              topic: [sea, sky]
              language: English
              context: file://context.txt
          - vars: {style: short, topic: sea, language: English, context: file://context.txt}
        """,
        {
            "more/a.yaml": """
                - vars: {style: haiku, topic: rain, language: Japanese, context: ""}
                  assert: [{type: max-words, value: 20}]
                """,
            "context.txt": "Keep it gentle.",
        },
    )
    inputs = [c["input"] for c in result.cases]
    assert inputs[0] == {"style": "haiku", "topic": "rain", "language": "Japanese", "context": ""}
    assert inputs[1:5] == [
        {"style": s, "topic": t, "language": "English", "context": "Keep it gentle."}
        for s in ("short", "long")
        for t in ("sea", "sky")
    ]
    # the last test repeats an earlier input: it gets its own id so dataset keys stay unique
    assert inputs[5] == inputs[1]
    assert result.cases[5]["id"] == "test-6"
    assert all("id" not in c for c in result.cases[:5])
    assert result.cases[0]["metadata"]["scorers"] == [{"type": "max-words", "value": 20}]
    _check_usable(result)


def test_invalid_assertion_values_are_reported_not_kept(tmp_path: Path) -> None:
    result = _translate(
        tmp_path,
        """
        prompts: ["{{q}}"]
        providers: [promptops:local]
        tests:
          - vars: {q: x}
            assert:
              - type: regex
                value: "(unclosed"
              - type: contains
              - type: icontains
                value: "{{ q | upper }}"
              - type: equals
                value: x
                threshold: 7
              - {value: no type}
              - type: assert-set
                threshold: 0.5
                assert: [{type: contains, value: a}]
        """,
    )
    # what survived is hoisted (a single case): equals compares with the expected output "x"
    assert result.cases[0]["expected"] == "x"
    assert result.scorers == [{"type": "contains"}, {"type": "equals"}]
    text = "\n".join(result.unsupported)
    assert "tests[0].assert[0]: type 'regex' cannot be translated:" in text
    assert "tests[0].assert[2]: its value uses template syntax beyond {{ variable }}" in text
    assert "tests[0].assert[3].threshold: 7 is not a score between 0 and 1" in text
    assert "tests[0].assert[4]: an assertion must be a mapping with a 'type'" in text
    assert "tests[0].assert[5]: assert-set with a threshold" in text
    # contains without a value compares with the expected output: valid, and kept
    assert len(result.unsupported) == 5


# --- loading ------------------------------------------------------------------------------------------------


def test_load_config_errors(tmp_path: Path) -> None:
    with pytest.raises(PromptfooConfigError, match="no such config file"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("prompts:\n  - ok\n providers: [x\n")
    with pytest.raises(PromptfooConfigError, match=r"invalid YAML at line \d+, column \d+"):
        load_config(bad)
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(PromptfooConfigError, match="must be a mapping"):
        load_config(listing)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(PromptfooConfigError, match="an empty document"):
        load_config(empty)
    broken_json = tmp_path / "c.json"
    broken_json.write_text('{"prompts": [}')
    with pytest.raises(PromptfooConfigError, match="invalid JSON at line 1"):
        load_config(broken_json)
    with pytest.raises(PromptfooConfigError, match="is a directory"):
        load_config(tmp_path)


def test_load_config_json(tmp_path: Path) -> None:
    path = tmp_path / "promptfooconfig.json"
    path.write_text(
        '{"prompts": ["Hi {{name}}"], "providers": ["local"], "tests": [{"vars": {"name": "Ada"}}]}'
    )
    result = translate(load_config(path), base_dir=tmp_path, prefix="json/demo")
    assert result.prompts[0].name == "json/demo/prompt-1"
    assert result.cases[0]["input"] == {"name": "Ada"}


def test_unknown_top_level_keys_are_reported(tmp_path: Path) -> None:
    config = yaml.safe_load(EXAMPLE.read_text())
    config["scenarios"] = [{"config": []}]
    config["redteam"] = {"plugins": ["harmful"]}
    result = translate(config, base_dir=EXAMPLE.parent, prefix="sentiment")
    assert result.unsupported == [
        "scenarios: this setting is not supported and was ignored",
        "redteam: this setting is not supported and was ignored",
    ]


def test_only_path_like_prompts_are_read_as_files(tmp_path: Path) -> None:
    result = _translate(
        tmp_path,
        """
        prompts:
          - "What is 1/2? Answer in one word."
          - "Summarise {{ text }}"
          - greeting.md
          - {raw: "prompts/*.txt", label: many}
          - fn.py:make_prompt
        providers: [promptops:local]
        """,
        {"greeting.md": "Hello {{ name }}", "prompts/a.txt": "A {{ x }}", "prompts/b.txt": "B {{ x }}"},
    )
    assert [(p.name, p.template) for p in result.prompts] == [
        ("mig/prompt-1", "What is 1/2? Answer in one word."),
        ("mig/prompt-2", "Summarise {{ text }}"),
        ("mig/greeting", "Hello {{ name }}"),
        ("mig/a", "A {{ x }}"),
        ("mig/b", "B {{ x }}"),
        ("mig/prompt-5", "fn.py:make_prompt"),
    ]
    assert result.skipped == []
    assert [str(w) for w in result.warnings] == [
        "prompts[4]: 'fn.py:make_prompt' looks like a file path, but no such file exists (relative to the "
        "config's folder); it was used as the prompt text"
    ]


# --- the bundle: files read on the client, the same translation on the server ------------------------------------


def test_the_server_translates_the_bundle_as_the_client_read_it(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        {
            "promptfooconfig.yaml": """
            prompts: [prompts/*.txt, file://chat/**/*.json]
            providers: [echo]
            tests: [file://data/*.csv, file://more.yaml]
            defaultTest: {vars: {tone: file://tone.md}}
            """,
            "prompts/a.txt": "A {{ q }} {{ tone }}",
            "prompts/b.txt": "B {{ q }}",
            "chat/x/c.json": '[{"role": "user", "content": "C {{ q }}"}]',
            "data/one.csv": "q,__expected\nwhy,contains: y\n",
            "more.yaml": "- vars: {q: how}\n",
            "tone.md": "calm",
            "unused.txt": "never sent",
        },
    )
    bundle = collect(path, prefix="mig")
    assert sorted(bundle.files) == [
        "chat/x/c.json",
        "data/one.csv",
        "more.yaml",
        "prompts/a.txt",
        "prompts/b.txt",
        "tone.md",
    ]
    on_server = translate_plan(parse_config(bundle.config), files=BundleFiles(bundle.files), prefix="mig")
    assert bundle.plan is not None
    assert on_server.prompts == bundle.plan.prompts and on_server.cases == bundle.plan.cases
    assert [p.name for p in on_server.prompts] == ["mig/a", "mig/b", "mig/c"]
    assert [c["input"] for c in on_server.cases] == [
        {"tone": "calm", "q": "why"},
        {"tone": "calm", "q": "how"},
    ]


def test_bundle_paths_and_globs() -> None:
    files = BundleFiles({"./a/b.txt": "x", "a/c/d.txt": "y", "e.csv": "z"})
    assert sorted(files.files) == ["a/b.txt", "a/c/d.txt", "e.csv"]
    assert files.glob("a/*.txt") == ["a/b.txt"]
    assert files.glob("a/**/*.txt") == ["a/b.txt", "a/c/d.txt"]
    assert files.glob("**/*.csv") == ["e.csv"] and files.glob("[ab]/b.txt") == ["a/b.txt"]
    assert files.glob("missing.txt") == []
    for bad, message in (
        ("../x", "outside the config's folder"),
        ("/etc/x", "absolute path"),
        ("C:\\x", "absolute"),
    ):
        with pytest.raises(PromptfooConfigError, match=message):
            BundleFiles({bad: "x"})
    with pytest.raises(PromptfooConfigError, match="no such prompt file was sent"):
        files.read("nope.txt", "prompt file")


def test_grader_content_parts_and_test_options(tmp_path: Path) -> None:
    result = _translate(
        tmp_path,
        """
        prompts: [file://prompt.yaml]
        providers: [anthropic:messages:claude-x]
        defaultTest:
          options: {provider: {embedding: openai:embedding:text-embedding-3-small}}
        tests:
          - vars: {q: a}
            assert: [{type: llm-rubric, value: polite}, {type: similar, value: hello}]
          - vars: {q: b}
            options: {provider: anthropic:messages:claude-judge}
            assert: [{type: llm-rubric, value: short}]
        """,
        {
            "prompt.yaml": """
            messages:
              - role: system
                content: [{type: text, text: Be brief, cache_control: {type: ephemeral}}]
              - role: user
                content: "{{ q }}"
            """
        },
        grader="openai:gpt-judge",
    )
    assert result.prompts[0].messages == [
        {"role": "system", "content": "Be brief"},
        {"role": "user", "content": "{{ q }}"},
    ]
    assert [str(f) for f in result.skipped] == [
        "prompts[0] message 0 part 0.cache_control: not supported; ignored"
    ]
    first, second = (c["metadata"]["scorers"] for c in result.cases)
    assert first[0]["options"]["model"] == {"provider": "openai", "model": "gpt-judge"}  # --grader
    assert first[1]["options"]["model"] == {"provider": "openai", "model": "text-embedding-3-small"}
    assert second[0]["options"]["model"] == {"provider": "anthropic", "model": "claude-judge"}
    assert result.errors == []
