// Scorer types for the "New evaluation" form. The server's list (GET /api/v1/evals/scorers: every type it
// accepts, operators' scorers included, with its value rule, default threshold and option names) is the
// authority; this file adds how each built-in option is typed and explained (a hint, and whether it is a
// boolean, a number or JSON). SCORER_TYPES stands in until the server's list has loaded. The server still
// validates every spec (a bad option is a 422 naming the scorer, shown under the form).
import { useQuery } from "@tanstack/react-query";
import { useMemo } from "react";
import { api, unwrap, type Schemas } from "../../api/client";

export type ScorerSpec = Schemas["ScorerSpec"];

/** "required": value must be given; "reference": value, else the case's expected output; "optional"; "none". */
export type ValueKind = "required" | "reference" | "optional" | "none";
export type OptionKind = "boolean" | "number" | "text" | "json";

export interface ScorerType {
  type: string;
  description: string;
  valueKind: ValueKind;
  /** What the value is, in words (shown as the value field's description). */
  valueHint?: string;
  defaultThreshold: number;
  options: { name: string; kind: OptionKind; hint: string }[];
}

const MODEL_OPTION = { name: "model", kind: "json" as const, hint: '{"provider": "local", "model": "gemma-3-270m"}' };
const IGNORE_CASE = { name: "ignore_case", kind: "boolean" as const, hint: "ignore case" };
const STRINGS = "comma-separated strings, or a JSON list";
const SCHEMA = "a JSON schema";
const COUNT = "a whole number";

function scorer(type: string, valueKind: ValueKind, description: string, more: Partial<ScorerType> = {}): ScorerType {
  return { type, valueKind, description, defaultThreshold: 1, options: [], ...more };
}

export const SCORER_TYPES: ScorerType[] = [
  scorer("label", "reference", "Classifier label match: the answer's first line is read as a label and compared with the expected one.", {
    options: [
      { name: "labels", kind: "json", hint: 'the label set, e.g. ["positive", "negative"] (default: from the expected outputs)' },
      { name: "aliases", kind: "json", hint: 'other words for labels, e.g. {"pos": "positive"}' },
      { name: "exact", kind: "boolean", hint: "compare the whole output instead" },
    ],
  }),
  scorer("equals", "reference", "The output equals the value (else the expected output), surrounding white space ignored.", { options: [IGNORE_CASE] }),
  scorer("contains", "reference", "The output contains the value (else the expected output)."),
  scorer("icontains", "reference", "Like contains, ignoring case."),
  scorer("contains-any", "required", "The output contains at least one of the value's strings.", { valueHint: STRINGS }),
  scorer("icontains-any", "required", "Like contains-any, ignoring case.", { valueHint: STRINGS }),
  scorer("contains-all", "required", "The output contains every one of the value's strings.", { valueHint: STRINGS }),
  scorer("icontains-all", "required", "Like contains-all, ignoring case.", { valueHint: STRINGS }),
  scorer("starts-with", "reference", "The output starts with the value (else the expected output)."),
  scorer("regex", "required", "The output matches the regular expression (RE2 syntax, searched anywhere).", {
    valueHint: "a regular expression",
    options: [{ name: "flags", kind: "text", hint: "i (ignore case), m (multi-line), s (dot matches newline)" }],
  }),
  scorer("is-json", "optional", "The whole output is JSON; a value is a JSON schema it must also satisfy.", { valueHint: SCHEMA }),
  scorer("contains-json", "optional", "The output contains a JSON object or array; a value is a JSON schema for it.", { valueHint: SCHEMA }),
  scorer("json-schema", "required", "The output is JSON valid against the JSON schema value.", { valueHint: SCHEMA }),
  scorer("json-path", "optional", "The output is JSON and the JSONPath selects the value (else the expected output).", {
    options: [{ name: "path", kind: "text", hint: "JSONPath, e.g. $.answer.city (required)" }],
  }),
  scorer("numeric", "reference", "The number in the output is within a tolerance of the value (else the expected output).", {
    valueHint: "a number",
    options: [
      { name: "tolerance", kind: "number", hint: "absolute tolerance (default 0)" },
      { name: "relative_tolerance", kind: "number", hint: "relative tolerance, a fraction" },
      { name: "pick", kind: "text", hint: "first or last number in the output" },
    ],
  }),
  scorer("levenshtein", "reference", "Normalised edit similarity between the output and the value (else the expected output).", {
    defaultThreshold: 0.8,
    options: [{ name: "max_distance", kind: "number", hint: "pass when the edit distance is at most this" }, IGNORE_CASE],
  }),
  scorer("max-words", "required", "The output has at most this many words.", { valueHint: COUNT }),
  scorer("min-words", "required", "The output has at least this many words.", { valueHint: COUNT }),
  scorer("max-length", "required", "The output has at most this many characters.", { valueHint: COUNT }),
  scorer("min-length", "required", "The output has at least this many characters.", { valueHint: COUNT }),
  scorer("latency", "required", "The model call took at most this many milliseconds.", { valueHint: "milliseconds" }),
  scorer("cost", "required", "The model call cost at most this many US dollars.", { valueHint: "US dollars" }),
  scorer("llm-rubric", "optional", "LLM-as-judge on a 1-5 scale against a rubric; score = (rating - 1) / 4.", {
    valueHint: "the rubric (default: correctness, instruction following, clarity, safety)",
    defaultThreshold: 0.75,
    options: [MODEL_OPTION],
  }),
  scorer("similar", "reference", "Cosine similarity of the embeddings of the output and the value (else the expected output).", {
    defaultThreshold: 0.8,
    options: [MODEL_OPTION],
  }),
];

export const SCORER_BY_TYPE = new Map(SCORER_TYPES.map((s) => [s.type, s]));

/** The server's scorer types, with this file's hints for the options it knows (others are plain text). */
export function mergeScorerTypes(server: Schemas["ScorerTypeOut"][]): ScorerType[] {
  return server.map((s) => {
    const local = SCORER_BY_TYPE.get(s.type);
    return {
      type: s.type,
      description: s.description || local?.description || "",
      valueKind: s.valueKind,
      valueHint: local?.valueHint,
      defaultThreshold: s.defaultThreshold,
      options: s.options.map((name) => local?.options.find((o) => o.name === name) ?? { name, kind: "text" as const, hint: "" }),
    };
  });
}

/** Scorer types by name: the server's once loaded, this file's list until then. */
export function useScorerTypes(): Map<string, ScorerType> {
  const server = useQuery({
    queryKey: ["scorer-types"],
    queryFn: () => unwrap(api.GET("/api/v1/evals/scorers")),
    staleTime: 300_000,
  });
  return useMemo(() => new Map((server.data ? mergeScorerTypes(server.data) : SCORER_TYPES).map((s) => [s.type, s])), [server.data]);
}

/** One scorer row of the form, as typed (strings, so half-typed numbers and JSON stay editable). */
export interface ScorerDraft {
  type: string;
  name: string;
  value: string;
  threshold: string;
  weight: string;
  negate: boolean;
  options: Record<string, string | boolean>;
}

export function newDraft(type = "label"): ScorerDraft {
  return { type, name: "", value: "", threshold: "", weight: "1", negate: false, options: {} };
}

/** A value as typed: JSON when it parses as JSON (numbers, lists, schemas), else the text itself. */
export function parseValue(text: string): unknown {
  const trimmed = text.trim();
  if (trimmed === "") return undefined;
  try {
    return JSON.parse(trimmed);
  } catch {
    return text;
  }
}

/** The spec the API takes for a drafted scorer; throws an Error naming the field when a field cannot be read. */
export function toSpec(draft: ScorerDraft, types: Map<string, ScorerType> = SCORER_BY_TYPE): ScorerSpec {
  const known = types.get(draft.type);
  const spec: ScorerSpec = { type: draft.type, weight: 1, negate: draft.negate, options: {} };
  if (draft.name.trim()) spec.name = draft.name.trim();
  const value = parseValue(draft.value);
  if (value !== undefined) spec.value = value;
  if (draft.threshold.trim()) {
    const threshold = Number(draft.threshold);
    if (!Number.isFinite(threshold)) throw new Error(`${draft.type}: threshold must be a number from 0 to 1`);
    spec.threshold = threshold;
  }
  if (draft.weight.trim()) {
    const weight = Number(draft.weight);
    if (!Number.isFinite(weight)) throw new Error(`${draft.type}: weight must be a number`);
    spec.weight = weight;
  }
  const options: Record<string, unknown> = {};
  for (const option of known?.options ?? []) {
    const raw = draft.options[option.name];
    if (raw === undefined || raw === "" || raw === false) continue;
    if (option.kind === "boolean") options[option.name] = raw === true;
    else if (option.kind === "number") {
      const number = Number(raw);
      if (!Number.isFinite(number)) throw new Error(`${draft.type}: options.${option.name} must be a number`);
      options[option.name] = number;
    } else if (option.kind === "json") {
      try {
        options[option.name] = JSON.parse(String(raw));
      } catch {
        throw new Error(`${draft.type}: options.${option.name} must be JSON`);
      }
    } else options[option.name] = String(raw);
  }
  spec.options = options;
  return spec;
}
