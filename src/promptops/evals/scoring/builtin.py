"""The deterministic built-in scorers: string, JSON, numeric, similarity, size, latency/cost and label checks.

Each is a class with a ``type`` (promptfoo's assertion name where one exists), a default threshold, the
options it accepts, ``validate(spec)`` (raises ValueError naming the problem) and ``score(...)``.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import jsonpath
import jsonschema
from rapidfuzz.distance import Levenshtein as _Levenshtein

from promptops.evals.schemas import ScorerSpec
from promptops.evals.scoring.types import ModelAccess, Outcome, ScoreInput, clip, reference
from promptops.safe_regex import FLAGS as PATTERN_FLAGS
from promptops.safe_regex import UserPattern, compile_user_pattern

MAX_SCANNED_CHARS = 100_000  # regex and JSON extraction look at this much of an output
MAX_LIST_ITEMS = 100
MAX_JSON_ATTEMPTS = 200
SHOWN = 200  # characters of output/expectation quoted in reasons


class Builtin:
    """Base of the built-in scorers. Subclasses set the class attributes and implement ``check``."""

    type: ClassVar[str]
    default_threshold: ClassVar[float] = 1.0
    aliases: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""
    options_allowed: ClassVar[frozenset[str]] = frozenset()
    # "required": value must be given; "reference": value, else the case's expected output; "optional"; "none"
    value_kind: ClassVar[str] = "none"

    def validate(self, spec: ScorerSpec) -> None:
        unknown = sorted(set(spec.options) - self.options_allowed)
        if unknown:
            allowed = ", ".join(sorted(self.options_allowed)) or "none"
            raise ValueError(f"unknown option(s) {', '.join(unknown)} (allowed: {allowed})")
        if self.value_kind == "required" and spec.value is None:
            raise ValueError("value is required")
        if self.value_kind == "none" and spec.value is not None:
            raise ValueError("this scorer takes no value")
        if spec.value is not None:
            self.check_value(spec.value)
        self.check_options(spec.options)

    def check_value(self, value: Any) -> None:
        """Raise ValueError when ``value`` has the wrong type or shape."""

    def check_options(self, options: dict[str, Any]) -> None:
        """Raise ValueError when an option has the wrong type or shape."""

    async def score(self, spec: ScorerSpec, inp: ScoreInput, models: ModelAccess) -> Outcome:
        assert inp.output is not None
        return self.check(spec, inp.output, inp)

    def check(self, spec: ScorerSpec, output: str, inp: ScoreInput) -> Outcome:
        raise NotImplementedError


# --- helpers ----------------------------------------------------------------------------------------------------


def _text_value(value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"value must be a string, got {type(value).__name__}")


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _bool_option(options: dict[str, Any], name: str) -> None:
    if name in options and not isinstance(options[name], bool):
        raise ValueError(f"options.{name} must be true or false")


def _number_option(
    options: dict[str, Any], name: str, *, minimum: float = 0.0, integer: bool = False
) -> None:
    if name not in options:
        return
    value = options[name]
    if integer:
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= minimum
    else:
        ok = (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
            and value >= minimum
        )
    if not ok:
        kind = "an integer" if integer else "a number"
        raise ValueError(f"options.{name} must be {kind} >= {minimum:g}")


def _quote(text: str) -> str:
    return repr(clip(text, SHOWN))


def _passfail(ok: bool, yes: str, no: str, details: dict[str, Any] | None = None) -> Outcome:
    return Outcome(1.0 if ok else 0.0, yes if ok else no, details or {})


_FENCE = re.compile(r"^```[a-zA-Z0-9_-]*\s*\n(.*?)\n?```$", re.S)


def parse_json_output(output: str) -> tuple[bool, Any, str]:
    """(ok, value, error) for an output that should be JSON as a whole (one ``` fence around it allowed)."""
    text = output.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    try:
        return True, json.loads(text), ""
    except ValueError as exc:
        return False, None, f"not valid JSON ({exc})"


def find_json(output: str) -> tuple[bool, Any]:
    """The first JSON object or array inside ``output`` (e.g. after prose or in a code fence)."""
    ok, value, _ = parse_json_output(output)
    if ok and isinstance(value, dict | list):
        return True, value
    text = output[:MAX_SCANNED_CHARS]
    decoder = json.JSONDecoder()
    attempts = 0
    for match in re.finditer(r"[\[{]", text):
        attempts += 1
        if attempts > MAX_JSON_ATTEMPTS:
            break
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        return True, value
    return False, None


def json_equal(a: Any, b: Any) -> bool:
    """Structural JSON equality: numbers by value (1 == 1.0), booleans only equal booleans."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _expected_json(value: Any) -> Any:
    """A reference taken from a case's expected output is text: read it as JSON when it is JSON."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _schema_validator(schema: Any) -> jsonschema.protocols.Validator:
    if not isinstance(schema, dict | bool):
        raise ValueError("value must be a JSON schema (an object)")
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "(root)"
        raise ValueError(f"invalid JSON schema at {where}: {exc.message}")
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def _schema_errors(schema: Any, value: Any) -> list[str]:
    validator = _schema_validator(schema)
    errors = sorted(validator.iter_errors(value), key=lambda e: list(e.path))
    return [f"{'/'.join(str(p) for p in e.path) or '(root)'}: {e.message}" for e in errors[:5]]


# --- string checks ----------------------------------------------------------------------------------------------


class Equals(Builtin):
    type = "equals"
    description = (
        "The output equals value (else the expected output), ignoring surrounding white space; a JSON value "
        "(object, array, number, boolean) is compared with the output parsed as JSON."
    )
    value_kind = "reference"
    options_allowed = frozenset({"ignore_case"})

    def check_options(self, options: dict[str, Any]) -> None:
        _bool_option(options, "ignore_case")

    def check(self, spec: ScorerSpec, output: str, inp: ScoreInput) -> Outcome:
        ref = reference(spec, inp)
        if not isinstance(ref, str):
            ok, parsed, error = parse_json_output(output)
            if not ok:
                return Outcome(0.0, f"expected JSON {_quote(_as_text(ref))} but the output is {error}")
            return _passfail(
                json_equal(parsed, ref),
                "output equals the expected JSON value",
                f"output JSON {_quote(_as_text(parsed))} differs from {_quote(_as_text(ref))}",
            )
        a, b = output.strip(), ref.strip()
        if spec.options.get("ignore_case"):
            a, b = a.casefold(), b.casefold()
        return _passfail(a == b, "output equals the expected text", f"output {_quote(a)} is not {_quote(b)}")


class Contains(Builtin):
    type = "contains"
    description = "The output contains value (else the expected output)."
    value_kind = "reference"
    fold = False

    def check_value(self, value: Any) -> None:
        _text_value(value)

    def check(self, spec: ScorerSpec, output: str, inp: ScoreInput) -> Outcome:
        needle = _as_text(reference(spec, inp))
        hay = output.casefold() if self.fold else output
        found = (needle.casefold() if self.fold else needle) in hay
        return _passfail(found, f"output contains {_quote(needle)}", f"output lacks {_quote(needle)}")


class IContains(Contains):
    type = "icontains"
    description = "The output contains value (else the expected output), ignoring case."
    fold = True


class ContainsAny(Builtin):
    type = "contains-any"
    description = (
        "The output contains at least one of value's strings (a list, or one comma-separated string)."
    )
    value_kind = "required"
    fold = False
    need_all = False

    def check_value(self, value: Any) -> None:
        self.items(value)

    @staticmethod
    def items(value: Any) -> list[str]:
        if isinstance(value, str):
            items = [part.strip() for part in value.split(",")]
        elif isinstance(value, list):
            for item in value:
                _text_value(item)
            items = [_as_text(item) for item in value]
        else:
            raise ValueError("value must be a list of strings or a comma-separated string")
        items = [item for item in items if item]
        if not items or len(items) > MAX_LIST_ITEMS:
            raise ValueError(f"value must list 1 to {MAX_LIST_ITEMS} non-empty strings")
        return items

    def check(self, spec: ScorerSpec, output: str, inp: ScoreInput) -> Outcome:
        items = self.items(spec.value)
        hay = output.casefold() if self.fold else output
        found = [item for item in items if (item.casefold() if self.fold else item) in hay]
        missing = [item for item in items if item not in found]
        details = {"found": found, "missing": missing}
        if self.need_all:
            return _passfail(
                not missing,
                f"output contains all {len(items)} strings",
                f"output lacks {', '.join(map(_quote, missing))}",
                details,
            )
        return _passfail(
            bool(found),
            f"output contains {_quote(found[0]) if found else ''}",
            f"output contains none of {', '.join(map(_quote, items))}",
            details,
        )


class IContainsAny(ContainsAny):
    type = "icontains-any"
    description = "Like contains-any, ignoring case."
    fold = True


class ContainsAll(ContainsAny):
    type = "contains-all"
    description = "The output contains every one of value's strings (a list, or one comma-separated string)."
    need_all = True


class IContainsAll(ContainsAll):
    type = "icontains-all"
    description = "Like contains-all, ignoring case."
    fold = True


class StartsWith(Builtin):
    type = "starts-with"
    description = "The output (leading white space ignored) starts with value (else the expected output)."
    value_kind = "reference"

    def check_value(self, value: Any) -> None:
        _text_value(value)

    def check(self, spec: ScorerSpec, output: str, inp: ScoreInput) -> Outcome:
        prefix = _as_text(reference(spec, inp))
        return _passfail(
            output.lstrip().startswith(prefix),
            f"output starts with {_quote(prefix)}",
            f"output starts with {_quote(output.lstrip()[: len(prefix) + 10])}, not {_quote(prefix)}",
        )


class Regex(Builtin):
    type = "regex"
    description = (
        "The output matches the regular expression value (RE2 syntax: no backreferences or lookaround; "
        "searched anywhere); options.flags may hold i (ignore case), m (multi-line), s (dot matches newline)."
    )
    value_kind = "required"
    options_allowed = frozenset({"flags"})

    def check_value(self, value: Any) -> None:
        if not isinstance(value, str) or not value:
            raise ValueError("value must be a non-empty regular expression string")

    def check_options(self, options: dict[str, Any]) -> None:
        flags = options.get("flags", "")
        if not isinstance(flags, str) or set(flags) - set(PATTERN_FLAGS):
            raise ValueError(
                "options.flags must be a string of the letters i (ignore case), m (multi-line), "
                "s (dot matches newline); RE2 has no verbose mode (x)"
            )

    def validate(self, spec: ScorerSpec) -> None:
        super().validate(spec)
        self.compiled(spec)  # PatternError is a ValueError naming the problem

    @staticmethod
    def compiled(spec: ScorerSpec) -> UserPattern:
        return compile_user_pattern(str(spec.value), str(spec.options.get("flags", "")))

    def check(self, spec: ScorerSpec, output: str, inp: ScoreInput) -> Outcome:
        match = self.compiled(spec).search(output[:MAX_SCANNED_CHARS])
        if match is None:
            return Outcome(0.0, f"output does not match /{clip(str(spec.value), SHOWN)}/", {})
        return Outcome(1.0, f"output matches at {match.start}", {"match": clip(match.text, SHOWN)})


# --- JSON -------------------------------------------------------------------------------------------------------


class IsJson(Builtin):
    type = "is-json"
    description = (
        "The whole output is JSON (white space and one ``` fence around it allowed); value, when given, is a "
        "JSON schema (Draft 2020-12) it must also satisfy."
    )
    value_kind = "optional"

    def check_value(self, value: Any) -> None:
        _schema_validator(value)

    def parse(self, output: str) -> tuple[bool, Any, str]:
        return parse_json_output(output)

    def check(self, spec: ScorerSpec, output: str, inp: ScoreInput) -> Outcome:
        ok, value, error = self.parse(output)
        if not ok:
            return Outcome(0.0, f"output is {error}", {})
        if spec.value is None:
            return Outcome(1.0, "output is valid JSON", {})
        errors = _schema_errors(spec.value, value)
        return _passfail(
            not errors,
            "output is JSON valid against the schema",
            f"output JSON does not match the schema: {'; '.join(errors)}",
            {"errors": errors},
        )


class ContainsJson(IsJson):
    type = "contains-json"
    description = (
        "The output contains a JSON object or array (e.g. in a code fence after prose); value, when given, "
        "is a JSON schema the first one found must satisfy."
    )

    def parse(self, output: str) -> tuple[bool, Any, str]:
        ok, value = find_json(output)
        return ok, value, "without any JSON object or array"


class JsonSchema(IsJson):
    type = "json-schema"
    description = "The output is JSON (as for is-json) valid against the JSON schema value (Draft 2020-12)."
    value_kind = "required"


class JsonPath(Builtin):
    type = "json-path"
    aliases = ("jsonpath-equals",)
    description = (
        "The output is JSON and the JSONPath options.path (RFC 9535, e.g. $.answer.city) selects value "
        "(else the expected output, read as JSON when it is JSON). One match is compared itself, several as "
        "a list. With neither value nor expected output, the path only has to match something."
    )
    value_kind = "optional"
    options_allowed = frozenset({"path"})

    def check_options(self, options: dict[str, Any]) -> None:
        path = options.get("path")
        if not isinstance(path, str) or not path:
            raise ValueError("options.path (a JSONPath such as $.answer) is required")
        try:
            jsonpath.compile(path)
        except jsonpath.JSONPathError as exc:
            raise ValueError(f"invalid JSONPath {path!r}: {str(exc).splitlines()[0]}")

    def check(self, spec: ScorerSpec, output: str, inp: ScoreInput) -> Outcome:
        path = str(spec.options["path"])
        ok, data, error = parse_json_output(output)
        if not ok:
            ok, data = find_json(output)
            if not ok:
                return Outcome(0.0, f"output is {error}", {})
        try:
            matches = jsonpath.compile(path).findall(data)
        except jsonpath.JSONPathError as exc:
            return Outcome(0.0, f"JSONPath {path} failed: {exc}", {})
        if not matches:
            return Outcome(0.0, f"JSONPath {path} matches nothing in the output", {})
        found = matches[0] if len(matches) == 1 else list(matches)
        details = {"found": found}
        if spec.value is None and inp.expected is None:
            return Outcome(1.0, f"JSONPath {path} matches", details)
        ref = spec.value if spec.value is not None else _expected_json(inp.expected)
        return _passfail(
            json_equal(found, ref),
            f"{path} equals {_quote(_as_text(ref))}",
            f"{path} is {_quote(_as_text(found))}, not {_quote(_as_text(ref))}",
            details,
        )


# --- numbers, similarity, size ----------------------------------------------------------------------------------

_NUMBER = re.compile(
    r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?|[-+]?\.\d+(?:[eE][-+]?\d+)?"
)


def _number_in(text: str, last: bool) -> float | None:
    found = _NUMBER.findall(text[:MAX_SCANNED_CHARS])
    if not found:
        return None
    return float((found[-1] if last else found[0]).replace(",", ""))


class Numeric(Builtin):
    type = "numeric"
    description = (
        "The number in the output (the first one; options.pick = last for the last) is within "
        "options.tolerance (absolute, default 0) or options.relative_tolerance (a fraction) of value "
        "(else the expected output)."
    )
    value_kind = "reference"
    options_allowed = frozenset({"tolerance", "relative_tolerance", "pick"})

    def check_value(self, value: Any) -> None:
        if self.target(value) is None:
            raise ValueError("value must be a number")

    def check_options(self, options: dict[str, Any]) -> None:
        _number_option(options, "tolerance")
        _number_option(options, "relative_tolerance")
        if options.get("pick", "first") not in ("first", "last"):
            raise ValueError("options.pick must be first or last")

    @staticmethod
    def target(value: Any) -> float | None:
        if isinstance(value, bool):
            return None
        if isinstance(value, int | float):
            return float(value) if math.isfinite(value) else None
        if isinstance(value, str):
            match = _NUMBER.fullmatch(value.strip())
            return float(match.group(0).replace(",", "")) if match else None
        return None

    def check(self, spec: ScorerSpec, output: str, inp: ScoreInput) -> Outcome:
        ref = reference(spec, inp)
        target = self.target(ref)
        if target is None:
            return Outcome(0.0, f"the expected value {_quote(_as_text(ref))} is not a number", {})
        got = _number_in(output, spec.options.get("pick") == "last")
        if got is None:
            return Outcome(0.0, "output contains no number", {})
        tolerance = max(
            float(spec.options.get("tolerance", 0.0)),
            float(spec.options.get("relative_tolerance", 0.0)) * abs(target),
        )
        difference = abs(got - target)
        return _passfail(
            difference <= tolerance + 1e-12,
            f"{got:g} is within {tolerance:g} of {target:g}",
            f"{got:g} is {difference:g} away from {target:g} (tolerance {tolerance:g})",
            {"found": got, "expected": target, "difference": difference},
        )


class LevenshteinRatio(Builtin):
    type = "levenshtein"
    default_threshold = 0.8
    description = (
        "Normalised Levenshtein similarity (1 - distance / longer length) between the output and value (else "
        "the expected output), surrounding white space ignored; passes at the threshold (default 0.8), or, "
        "when options.max_distance is set, when the edit distance is at most that (promptfoo's meaning)."
    )
    value_kind = "reference"
    options_allowed = frozenset({"max_distance", "ignore_case"})

    def check_value(self, value: Any) -> None:
        _text_value(value)

    def check_options(self, options: dict[str, Any]) -> None:
        _number_option(options, "max_distance", integer=True)
        _bool_option(options, "ignore_case")

    def check(self, spec: ScorerSpec, output: str, inp: ScoreInput) -> Outcome:
        a, b = output.strip(), _as_text(reference(spec, inp)).strip()
        if spec.options.get("ignore_case"):
            a, b = a.casefold(), b.casefold()
        distance = _Levenshtein.distance(a, b)
        ratio = _Levenshtein.normalized_similarity(a, b)
        details = {"distance": distance, "ratio": round(ratio, 6)}
        reason = f"similarity {ratio:.3f} (edit distance {distance})"
        if "max_distance" in spec.options:
            limit = int(spec.options["max_distance"])
            return Outcome(ratio, f"{reason}, limit {limit}", details, passed=distance <= limit)
        return Outcome(ratio, reason, details)


class _Limit(Builtin):
    value_kind = "required"
    upper = True
    unit = ""

    def check_value(self, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError("value must be a whole number >= 0")

    def measure(self, output: str) -> int:
        raise NotImplementedError

    def check(self, spec: ScorerSpec, output: str, inp: ScoreInput) -> Outcome:
        size, limit = self.measure(output), int(spec.value)
        ok = size <= limit if self.upper else size >= limit
        word = "at most" if self.upper else "at least"
        return _passfail(
            ok,
            f"{size} {self.unit} ({word} {limit})",
            f"{size} {self.unit}, expected {word} {limit}",
            {"size": size},
        )


class MaxWords(_Limit):
    type = "max-words"
    description = "The output has at most value words (white-space separated)."
    unit = "words"

    def measure(self, output: str) -> int:
        return len(output.split())


class MinWords(MaxWords):
    type = "min-words"
    description = "The output has at least value words."
    upper = False


class MaxLength(_Limit):
    type = "max-length"
    description = "The output has at most value characters."
    unit = "characters"

    def measure(self, output: str) -> int:
        return len(output)


class MinLength(MaxLength):
    type = "min-length"
    description = "The output has at least value characters."
    upper = False


class _CallBudget(Builtin):
    """A limit on what the model call used: ``field`` of the score input must be at most value."""

    value_kind = "required"
    field: ClassVar[str]
    zero_allowed: ClassVar[bool]
    value_error: ClassVar[str]
    used_format: ClassVar[str]
    limit_format: ClassVar[str]

    def check_value(self, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(self.value_error)
        if not (value >= 0 if self.zero_allowed else value > 0):
            raise ValueError(self.value_error)

    def check(self, spec: ScorerSpec, output: str, inp: ScoreInput) -> Outcome:
        limit = float(spec.value)
        used = float(getattr(inp, self.field))
        shown_used, shown_limit = self.used_format.format(used), self.limit_format.format(limit)
        return _passfail(
            used <= limit,
            f"{shown_used} (limit {shown_limit})",
            f"{shown_used} exceeds {shown_limit}",
            {self.field: getattr(inp, self.field)},
        )


class Latency(_CallBudget):
    type = "latency"
    description = "The model call took at most value milliseconds."
    field = "latency_ms"
    zero_allowed = False
    value_error = "value must be a number of milliseconds > 0"
    used_format = "{:.0f} ms"
    limit_format = "{:g} ms"


class Cost(_CallBudget):
    type = "cost"
    description = "The model call cost at most value US dollars."
    field = "cost_usd"
    zero_allowed = True
    value_error = "value must be a number of US dollars >= 0"
    used_format = "${:.6f}"
    limit_format = "${:g}"


# --- classifier labels ------------------------------------------------------------------------------------------

MAX_LABEL_SET = 20  # more distinct expected values than this: not a label set
MAX_LABEL_CHARS = 60
NEGATIONS = frozenset({"not", "no", "never", "isn t", "isnt", "nor"})
# "Sentiment: positive", "Final answer - positive": a short lead-in ending in ':' or ' - ' before the answer
_LEAD_IN = re.compile(r"^\s*[^\W\d][\w '/()-]{0,40}?\s*(?::|\s-)\s*(?=\S)")


def normalise_label(text: str) -> str:
    """Case-folded, punctuation and symbols turned into spaces, white space collapsed."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(" " if unicodedata.category(ch)[0] in "PS" else ch for ch in text)
    return " ".join(text.split())


def label_set(values: Iterable[Any]) -> list[str]:
    """The label set of a classification task: the distinct expected values, when there are 2 to 20 of them,
    each a short single line (and fewer distinct values than cases once there are more than 2 cases, so a set
    of free-text answers is not mistaken for labels). Else ``[]``. First spelling of each label wins."""
    seen: dict[str, str] = {}
    count = 0
    for value in values:
        if value is None:
            continue
        count += 1
        text = _as_text(value).strip()
        norm = normalise_label(text)
        if not norm or len(text) > MAX_LABEL_CHARS or "\n" in text:
            return []
        seen.setdefault(norm, text)
        if len(seen) > MAX_LABEL_SET:
            return []
    if len(seen) < 2 or (count > 2 and len(seen) == count):
        return []
    return sorted(seen.values(), key=str.casefold)


def first_answer_line(output: str) -> str:
    """The first line of ``output`` that has a letter or digit in it (the answer a person reads first)."""
    for line in output.splitlines():
        if normalise_label(line):
            return line.strip()
    return ""


@dataclass(frozen=True)
class LabelRead:
    """What :func:`read_label` made of an answer: the label, or None with why."""

    label: str | None
    answer: str  # the line that was read
    problem: str = ""  # "empty" | "none" | "ambiguous" when label is None
    found: tuple[str, ...] = ()


def read_label(output: str, labels: Sequence[str], aliases: Mapping[str, str] | None = None) -> LabelRead:
    """Read a classifier's answer the way a person does (labels and aliases given normalised).

    1. Take the first non-empty line; drop a short lead-in ending in ':' (``Sentiment: positive``,
       ``Answer: positive``).
    2. The whole line (with or without the lead-in) is a label or alias: that label.
    3. The line's first word(s) are a label or alias (``positive, the reviewer loved it``): that label.
    4. Else the labels found anywhere in the line as whole words, not right after a negation (``not``,
       ``no``, ``never``): exactly one is the answer (``Sentiment: positive, because ...``, ``This review is
       positive``); two different labels are a miss (ambiguous).
    """
    aliases = dict(aliases or {})
    words = {label: label for label in labels} | aliases
    line = first_answer_line(output)
    if not line:
        return LabelRead(None, "", "empty")
    stripped = _LEAD_IN.sub("", line, count=1)
    variants = [normalise_label(stripped), normalise_label(line)]
    for text in variants:
        if text in words:
            return LabelRead(words[text], line)
    text = variants[1]
    starts = [(len(w), label) for w, label in words.items() if text.startswith(w + " ")]
    if starts:
        return LabelRead(max(starts)[1], line)
    found: dict[str, int] = {}
    for word, label in words.items():
        for match in re.finditer(rf"(?<!\w){re.escape(word)}(?!\w)", text):
            before = text[: match.start()].split()
            if before and (before[-1] in NEGATIONS or " ".join(before[-2:]) in NEGATIONS):
                continue
            found[label] = min(found.get(label, match.start()), match.start())
    if len(found) == 1:
        return LabelRead(next(iter(found)), line, found=tuple(found))
    if found:
        return LabelRead(None, line, "ambiguous", tuple(sorted(found, key=found.__getitem__)))
    return LabelRead(None, line, "none")


class Label(Builtin):
    type = "label"
    description = (
        "Classifier label match, read the way a person reads an answer: the first non-empty line of the "
        "output, without a lead-in such as 'Sentiment:' or 'Answer:', compared with value (else the expected "
        "output) ignoring case, white space and punctuation. The line may be the label, start with it "
        "('positive, because ...'), or name exactly one known label ('This review is positive'); naming two "
        "different labels is a miss. options.labels gives the label set (evaluations infer it from the "
        "cases' expected outputs); options.aliases maps other words to labels ({'pos': 'positive'}); "
        "options.exact: true compares the whole output instead."
    )
    value_kind = "reference"
    options_allowed = frozenset({"labels", "aliases", "exact"})

    def check_value(self, value: Any) -> None:
        _text_value(value)
        if not normalise_label(_as_text(value)):
            raise ValueError("value is empty once normalised")

    def check_options(self, options: dict[str, Any]) -> None:
        _bool_option(options, "exact")
        labels = options.get("labels")
        if labels is not None:
            if not isinstance(labels, list) or not labels or len(labels) > MAX_LIST_ITEMS:
                raise ValueError(f"options.labels must be a list of 1 to {MAX_LIST_ITEMS} strings")
            for label in labels:
                if not isinstance(label, str) or not normalise_label(label):
                    raise ValueError("options.labels must hold non-empty strings (after normalising)")
        aliases = options.get("aliases")
        if aliases is not None:
            if not isinstance(aliases, dict) or len(aliases) > MAX_LIST_ITEMS:
                raise ValueError(f"options.aliases must be an object of at most {MAX_LIST_ITEMS} entries")
            known = {normalise_label(label) for label in labels or []}
            for alias, label in aliases.items():
                if not normalise_label(alias) or not isinstance(label, str) or not normalise_label(label):
                    raise ValueError("options.aliases must map non-empty words to non-empty labels")
                if labels is not None and normalise_label(label) not in known:
                    raise ValueError(f"options.aliases maps {alias!r} to {label!r}, which is not in labels")

    def check(self, spec: ScorerSpec, output: str, inp: ScoreInput) -> Outcome:
        aliases = {
            normalise_label(k): normalise_label(v) for k, v in (spec.options.get("aliases") or {}).items()
        }
        expected_raw = normalise_label(_as_text(reference(spec, inp)))
        expected = aliases.get(expected_raw, expected_raw)
        if spec.options.get("exact"):
            text = normalise_label(output)
            predicted = aliases.get(text, text)
            return _passfail(
                predicted == expected,
                f"label {predicted!r} matches",
                f"output {clip(predicted, SHOWN)!r} is not {expected!r}",
                {"predicted": predicted, "expected": expected, "mode": "exact"},
            )
        labels = [normalise_label(label) for label in spec.options.get("labels") or []]
        if expected not in labels:
            labels.append(expected)
        read = read_label(output, labels, aliases)
        details = {"predicted": read.label, "expected": expected, "answer": clip(read.answer, SHOWN)}
        if read.label is None and read.problem == "none" and not spec.options.get("labels"):
            # No label set to read against: the answer itself is the prediction.
            predicted = normalise_label(_LEAD_IN.sub("", read.answer, count=1))
            details["predicted"] = aliases.get(predicted, predicted)
            return Outcome(0.0, f"label {clip(predicted, SHOWN)!r} is not {expected!r}", details)
        if read.label is None:
            details["unparsed"] = read.problem
            if read.problem == "empty":
                reason = "the output is empty"
            elif read.problem == "ambiguous":
                reason = f"the answer {_quote(read.answer)} names several labels ({', '.join(read.found)})"
            else:
                reason = f"no known label in the answer {_quote(read.answer)}"
            return Outcome(0.0, reason, details)
        return _passfail(
            read.label == expected,
            f"label {read.label!r} matches",
            f"label {clip(read.label, SHOWN)!r} is not {expected!r}",
            details,
        )


BUILTINS: tuple[type[Builtin], ...] = (
    Equals,
    Contains,
    IContains,
    ContainsAny,
    IContainsAny,
    ContainsAll,
    IContainsAll,
    StartsWith,
    Regex,
    IsJson,
    ContainsJson,
    JsonSchema,
    JsonPath,
    Numeric,
    LevenshteinRatio,
    MaxWords,
    MinWords,
    MaxLength,
    MinLength,
    Latency,
    Cost,
    Label,
)
