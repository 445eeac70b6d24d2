// The offline renderer: the subset of the server's template language whose output is certain without Jinja2.
// A template qualifies when its only markup is plain substitution (`{{ name }}`, spaces optional) and every
// substituted value is text, an integer or null. Variable handling follows the server (docs/api.md §4.2):
// null counts as not supplied, defaults fill in, all missing names are reported together (declared ones in
// declaration order, then undeclared ones used by the template, sorted), type mismatches are reported together.
// test/render.test.ts renders the same templates here and on the server and compares the results.
import { PromptOpsError } from "./errors.js";
import type { ChatMessage, Prompt, Rendered, VariableDeclaration } from "./prompt.js";

const PLACEHOLDER = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;
const MARKUP = /\{\{|\{%|\{#|\}\}|%\}|#\}/;

function unsupported(why: string): PromptOpsError {
  return new PromptOpsError(`This prompt cannot be rendered without the server: ${why}`, {
    code: "local_render_unsupported",
  });
}

/** The variable names a template substitutes, or an error when it uses anything but plain substitution. */
function placeholders(source: string): string[] {
  const names: string[] = [];
  const rest = source.replace(PLACEHOLDER, (_all, name: string) => {
    names.push(name);
    return "";
  });
  if (MARKUP.test(rest)) throw unsupported("the template uses Jinja2 markup beyond plain {{ name }} substitution");
  return names;
}

function jsonType(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "boolean") return "boolean";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  if (typeof value === "string") return "string";
  if (Array.isArray(value)) return "array";
  return "object";
}

function matchesType(value: unknown, type: string): boolean {
  const got = jsonType(value);
  switch (type) {
    case "any":
      return true;
    case "number":
      return got === "number" || got === "integer";
    default:
      return got === type;
  }
}

function text(value: unknown, name: string): string {
  if (value === null || value === undefined) return "";
  if (typeof value === "string") return value;
  if (typeof value === "number" && Number.isSafeInteger(value)) return String(value);
  throw unsupported(`the value of '${name}' is ${jsonType(value)}, only text and integers render the same here`);
}

export function renderLocally(prompt: Prompt, supplied: Record<string, unknown>): Rendered {
  const sources: string[] = prompt.kind === "chat" ? (prompt.messages ?? []).map((m) => m.content) : [prompt.template ?? ""];
  const used = new Set(sources.flatMap(placeholders));
  const values: Record<string, unknown> = { ...supplied };
  const missing: string[] = [];
  const errors: Array<{ name: string; expected: string; got: string }> = [];
  const declared = new Map<string, VariableDeclaration>(prompt.variables.map((d) => [d.name, d]));
  for (const spec of declared.values()) {
    const value = supplied[spec.name];
    if (value === null || value === undefined) {
      if (spec.default !== null && spec.default !== undefined) values[spec.name] = spec.default;
      else if (spec.required ?? true) missing.push(spec.name);
      else values[spec.name] = null;
    } else if (!matchesType(value, spec.type ?? "string")) {
      errors.push({ name: spec.name, expected: spec.type ?? "string", got: jsonType(value) });
    }
  }
  for (const name of [...used].sort()) {
    if (!declared.has(name) && !(name in supplied) && !missing.includes(name)) missing.push(name);
  }
  if (missing.length) {
    const noun = missing.length === 1 ? "variable" : "variables";
    const detail = `Missing value for template ${noun}: ${missing.join(", ")}`;
    throw new PromptOpsError(detail, { status: 422, code: "missing_variables", problem: { code: "missing_variables", status: 422, detail, missing } });
  }
  if (errors.length) {
    const described = errors.map((e) => `'${e.name}' must be ${e.expected} (got ${e.got})`).join(", ");
    const detail = `Template variable type mismatch: ${described}`;
    throw new PromptOpsError(detail, { status: 422, code: "invalid_variable_type", problem: { code: "invalid_variable_type", status: 422, detail, errors } });
  }
  const fill = (source: string) => source.replace(PLACEHOLDER, (_all, name: string) => text(values[name], name));
  const base = { promptId: prompt.promptId, versionId: prompt.versionId, version: prompt.versionId ? prompt.version : null };
  if (prompt.kind === "chat") {
    const messages: ChatMessage[] = (prompt.messages ?? []).map((m) => ({ role: m.role, content: fill(m.content) }));
    return { kind: "chat", text: null, messages, ...base, renderedBy: "local" };
  }
  return { kind: "text", text: fill(prompt.template ?? ""), messages: null, ...base, renderedBy: "local" };
}
