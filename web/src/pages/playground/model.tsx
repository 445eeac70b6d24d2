// The playground's state without the UI: model columns (what to call) and their outputs (what came back),
// folded from the stream's events by a reducer so a column fills token by token.
import type { Schemas } from "../../api/client";
import type { PlaygroundEvent } from "../../api/sse";

export const MAX_COLUMNS = 4;
export const LOCAL_MODEL = "local/gemma-3-270m";

/** One column's settings: "provider/model", the two common knobs, and any other params as JSON text. */
export type ColumnConfig = { id: number; model: string; temperature: number | ""; maxTokens: number | ""; extra: string };

export type Result = Schemas["CallResultOut"];
export type ColumnOutput = { text: string; result: Result | null; state: "waiting" | "streaming" | "done" | "stopped" };

let nextId = 1;

/** A column from a model config (a version's `modelConfig`, or another column to copy). */
export function columnFrom(config: Record<string, unknown> | undefined): ColumnConfig {
  const params = { ...((config?.params as Record<string, unknown> | undefined) ?? {}) };
  const temperature = typeof params.temperature === "number" ? params.temperature : "";
  const maxTokens = typeof params.max_tokens === "number" ? params.max_tokens : "";
  delete params.temperature;
  delete params.max_tokens;
  const model = config?.model ? `${(config.provider as string | undefined) ?? "local"}/${String(config.model)}` : LOCAL_MODEL;
  return { id: nextId++, model, temperature, maxTokens, extra: Object.keys(params).length ? JSON.stringify(params) : "" };
}

export function copyColumn(column: ColumnConfig): ColumnConfig {
  return { ...column, id: nextId++ };
}

/** The request's target for a column, or a sentence saying what is wrong with its settings. */
export function targetOf(column: ColumnConfig): Schemas["ModelTarget"] | string {
  const slash = column.model.indexOf("/");
  if (slash < 1 || slash === column.model.length - 1) return `Choose a model as provider/model (got "${column.model}")`;
  let params: Record<string, unknown> = {};
  if (column.extra.trim()) {
    try {
      params = JSON.parse(column.extra);
    } catch {
      return "Other parameters must be a JSON object, e.g. {\"stop\": [\"\\n\"]}";
    }
    if (typeof params !== "object" || params === null || Array.isArray(params)) return "Other parameters must be a JSON object";
  }
  if (column.temperature !== "") params.temperature = column.temperature;
  if (column.maxTokens !== "") params.max_tokens = column.maxTokens;
  return { provider: column.model.slice(0, slash), model: column.model.slice(slash + 1), params };
}

/** A summary of a column's settings in words, e.g. "temperature 0.7 · max tokens 16". */
export function describeColumn(column: ColumnConfig): string {
  return [
    column.temperature !== "" && `temperature ${column.temperature}`,
    column.maxTokens !== "" && `max tokens ${column.maxTokens}`,
    column.extra.trim() && column.extra.trim(),
  ]
    .filter(Boolean)
    .join(" · ");
}

export type OutputAction = { type: "reset"; count: number } | { type: "finished" } | PlaygroundEvent;

/** The outputs after one stream event; `finished` marks columns that never got their result as stopped. */
export function outputsReducer(outputs: ColumnOutput[], action: OutputAction): ColumnOutput[] {
  const set = (index: number, change: (o: ColumnOutput) => ColumnOutput) =>
    outputs.map((output, i) => (i === index ? change(output) : output));
  if ("type" in action) {
    if (action.type === "reset") return Array.from({ length: action.count }, () => ({ text: "", result: null, state: "waiting" }));
    return outputs.map((o) => (o.state === "done" ? o : { ...o, state: "stopped" }));
  }
  switch (action.event) {
    case "delta":
      return set(action.data.index, (o) => ({ ...o, text: o.text + action.data.text, state: "streaming" }));
    case "result":
      // The result's text is the whole answer (it may differ from the deltas, e.g. after a fallback).
      return set(action.data.index, (o) => ({ text: action.data.text ?? o.text, result: action.data, state: "done" }));
    default:
      return outputs;
  }
}
