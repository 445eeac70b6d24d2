// `.prompt.md` files, the CLI's prompt-file format (src/promptops/registry/files.py): YAML front matter for
// everything but the template, the template as the body, byte for byte. Parsing and writing them, the
// normalised content the server hashes (src/promptops/registry/hashing.py), and the registry status of a file.
import { createHash } from "node:crypto";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";

export const SUFFIX = ".prompt.md";

/** The front matter keys the CLI accepts (files.py FRONT_MATTER_KEYS). */
export const FRONT_MATTER_KEYS = new Set([
  "name",
  "description",
  "tags",
  "kind",
  "messages",
  "variables",
  "modelConfig",
  "responseSchema",
  "metadata",
  "labels",
  "commitMessage",
]);

export interface Message {
  role: string;
  content: string;
}

export interface VariableDecl {
  name: string;
  type?: string | null;
  required?: boolean | null;
  default?: unknown;
  description?: string | null;
}

/** A push body (`PUT /api/v1/prompts/{name}`) read from a prompt file: the front matter plus the template. */
export interface PromptFileBody {
  name: string;
  kind: "text" | "chat";
  template?: string;
  messages?: Message[];
  variables?: VariableDecl[];
  modelConfig?: { provider?: string | null; model?: string | null; params?: Record<string, unknown> | null };
  responseSchema?: Record<string, unknown> | null;
  metadata?: Record<string, unknown>;
  description?: string;
  tags?: string[];
  labels?: string[];
  commitMessage?: string;
}

/** A prompt file that cannot be read: the message names the file and what is wrong (like the CLI's). */
export class PromptFileError extends Error {
  readonly code = "invalid_prompt_file";
  constructor(message: string) {
    super(message);
    this.name = "PromptFileError";
  }
}

// PyYAML's safe_load reads YAML 1.1 (yes/no are booleans, duplicate keys: the last wins); so does this parse.
const YAML_IN = { version: "1.1", uniqueKeys: false, merge: true } as const;

/** (front matter text, body) split exactly as files.py does, so pull -> push round-trips byte for byte. */
export function splitFrontMatter(raw: string, source = "<string>"): { header: string; body: string } {
  const text = raw.replace(/^\ufeff+/, "");
  if (!text.startsWith("---\n") && !text.startsWith("---\r\n")) {
    throw new PromptFileError(`${source}: a prompt file starts with '---' and YAML front matter`);
  }
  const firstBreak = text.indexOf("\n") + 1;
  let end = text.indexOf("\n---", firstBreak - 1);
  while (end !== -1 && !["\n", "\r", ""].includes(text.slice(end + 4, end + 5))) end = text.indexOf("\n---", end + 4);
  if (end === -1) throw new PromptFileError(`${source}: the front matter has no closing '---' line`);
  const header = text.slice(firstBreak, end + 1);
  const rest = text.slice(end + 4);
  const body = rest.startsWith("\r\n") ? rest.slice(2) : rest.startsWith("\n") ? rest.slice(1) : rest;
  return { header, body };
}

/** The front matter as a mapping (throws PromptFileError when it is not YAML or not a mapping). */
export function frontMatter(raw: string, source = "<string>"): { meta: Record<string, unknown>; body: string } {
  const { header, body } = splitFrontMatter(raw, source);
  let meta: unknown = {};
  if (header.trim()) {
    try {
      meta = parseYaml(header, YAML_IN);
    } catch (error) {
      throw new PromptFileError(`${source}: front matter is not valid YAML: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  if (meta === null || meta === undefined) meta = {};
  if (typeof meta !== "object" || Array.isArray(meta)) throw new PromptFileError(`${source}: front matter must be a YAML mapping`);
  return { meta: meta as Record<string, unknown>, body };
}

/** The push body of a prompt file, checked like the CLI's parse_prompt_file. */
export function parsePromptFile(raw: string, source = "<string>"): PromptFileBody {
  const { meta, body: content } = frontMatter(raw, source);
  const unknown = Object.keys(meta).filter((k) => !FRONT_MATTER_KEYS.has(k)).sort();
  if (unknown.length) throw new PromptFileError(`${source}: unknown front matter keys: ${unknown.join(", ")}`);
  if (!("name" in meta)) throw new PromptFileError(`${source}: front matter needs a 'name'`);
  const body: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(meta)) if (value !== null && value !== undefined) body[key] = value;
  const kind = (meta.kind as string | undefined) || ("messages" in meta ? "chat" : "text");
  body.kind = kind;
  if (kind === "text") {
    body.template = content;
  } else if (content.trim()) {
    throw new PromptFileError(`${source}: a chat prompt keeps its messages in the front matter; the body must be empty`);
  }
  if (typeof body.name !== "string" || !body.name.trim()) throw new PromptFileError(`${source}: 'name' must be a prompt name`);
  return body as unknown as PromptFileBody;
}

/** A prompt and one of its versions as the API returns them (`GET /api/v1/prompts/{ref}`). */
export interface RegistryPrompt {
  name: string;
  description?: string;
  tags?: string[];
}

export interface RegistryVersion {
  version: number;
  kind: string;
  template: string | null;
  messages: Message[] | null;
  variables: VariableDecl[];
  modelConfig: Record<string, unknown>;
  responseSchema: Record<string, unknown> | null;
  metadata?: Record<string, unknown>;
  contentHash?: string;
  labels?: string[];
}

// PyYAML's safe_dump(sort_keys=False, width=100): block style, sequences not indented under their key.
const YAML_OUT = { version: "1.1", indentSeq: false, lineWidth: 100, singleQuote: true, blockQuote: false } as const;

const truthy = (value: unknown) =>
  value !== null && value !== undefined && value !== "" && !(Array.isArray(value) && value.length === 0) &&
  !(typeof value === "object" && !Array.isArray(value) && Object.keys(value as object).length === 0);

/** The prompt file of one version, with the keys in the order `promptops prompts pull` writes them. */
export function dumpPromptFile(prompt: RegistryPrompt, version: RegistryVersion): string {
  const meta: Record<string, unknown> = { name: prompt.name };
  if (prompt.description) meta.description = prompt.description;
  if (prompt.tags?.length) meta.tags = prompt.tags;
  meta.kind = version.kind;
  if (version.kind === "chat") meta.messages = version.messages;
  for (const key of ["variables", "modelConfig", "responseSchema", "metadata"] as const) {
    if (truthy(version[key])) meta[key] = version[key];
  }
  const header = stringifyYaml(meta, YAML_OUT);
  const body = version.kind === "text" ? (version.template ?? "") : "";
  return `---\n${header}---\n${body}`;
}

/** Where `promptops prompts pull` puts a prompt: `<root>/support/triage.prompt.md` for `support/triage`. */
export function relativePathFor(name: string): string {
  return `${name}${SUFFIX}`;
}

// --- the normalised content (what the server's content hash covers) -------------------------------------------

export interface Canonical {
  kind: string;
  template: string | null;
  messages: Message[] | null;
  variables: { name: string; type: string; required: boolean; default: unknown; description: string }[];
  modelConfig: Record<string, unknown>;
  responseSchema: Record<string, unknown> | null;
}

type Versionish = Pick<PromptFileBody, "kind" | "template" | "messages" | "variables" | "modelConfig" | "responseSchema">;

/** What changes behaviour, normalised as the server stores it: variable specs with their defaults filled in,
 * the model config without null fields, messages as role + content; not commit message, labels or metadata. */
export function canonical(fields: Versionish | RegistryVersion): Canonical {
  const kind = fields.kind ?? "text";
  const orNull = <T>(v: T | null | undefined): T | null => (v === undefined ? null : v);
  const messages = fields.messages?.length ? fields.messages.map((m) => ({ role: m.role, content: m.content })) : null;
  const variables = (fields.variables ?? []).map((v) => ({
    name: v.name,
    type: v.type ?? "string",
    required: v.required ?? true,
    default: orNull(v.default),
    description: v.description ?? "",
  }));
  const config = fields.modelConfig ?? {};
  const modelConfig: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(config)) if (value !== null && value !== undefined) modelConfig[key] = value;
  if (modelConfig.params === undefined) modelConfig.params = {};
  return {
    kind,
    template: kind === "text" ? orNull(fields.template) : null,
    messages,
    variables,
    modelConfig,
    responseSchema: orNull(fields.responseSchema),
  };
}

function sortedJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(sortedJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.keys(value as object)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${sortedJson((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(",")}}`;
  }
  return JSON.stringify(value ?? null);
}

/** The server's content hash (sha256 of the sorted, compact JSON of the canonical form). Whole-valued floats
 * such as `temperature: 1.0` print differently in Python, so status compares the canonical forms too. */
export function contentHash(fields: Versionish | RegistryVersion): string {
  return createHash("sha256").update(sortedJson(canonical(fields)), "utf8").digest("hex");
}

export function sameContent(a: Versionish | RegistryVersion, b: Versionish | RegistryVersion): boolean {
  return sortedJson(canonical(a)) === sortedJson(canonical(b));
}

// --- the registry status of a file (the CodeLens) ------------------------------------------------------------

export type FileStatus =
  | { state: "inSync"; name: string; version: number; labels: string[]; latest: number; text: string }
  | { state: "changed"; name: string; latest: number; labels: string[]; text: string }
  | { state: "missing"; name: string; text: string }
  | { state: "invalid"; text: string };

/** The file against the registry's versions (newest first; null: the prompt is not in the registry). */
export function fileStatus(file: PromptFileBody, versions: RegistryVersion[] | null): FileStatus {
  const name = file.name;
  if (!versions || versions.length === 0) return { state: "missing", name, text: "not in the registry" };
  const hash = contentHash(file);
  const latest = Math.max(...versions.map((v) => v.version));
  const match = [...versions].sort((a, b) => b.version - a.version).find((v) => v.contentHash === hash || sameContent(file, v));
  const labelsOf = (v: RegistryVersion) => (v.labels ?? []).filter((l) => l !== "latest");
  if (match) {
    const labels = labelsOf(match);
    const where = labels.length ? ` (${labels.join(", ")})` : match.version === latest ? " (latest)" : "";
    const newer = match.version === latest ? "" : ` · v${latest} is newer`;
    return { state: "inSync", name, version: match.version, labels, latest, text: `in sync with v${match.version}${where}${newer}` };
  }
  const newest = versions.find((v) => v.version === latest)!;
  const labels = labelsOf(newest);
  const where = labels.length ? ` (${labels.join(", ")})` : "";
  return { state: "changed", name, latest, labels, text: `changed since v${latest}${where}` };
}

// --- variable completion inside {{ }} ------------------------------------------------------------------------

export interface VariableCompletion {
  name: string;
  /** "declared" in the front matter, or only "used" in the file. */
  origin: "declared" | "used";
  detail: string;
  documentation?: string;
}

const TEMPLATE_KEYWORDS = new Set(["true", "false", "none", "True", "False", "None", "and", "or", "not", "in", "is", "if", "else", "self", "loop"]);

/** The word being typed when `offset` is inside an open `{{ ... }}` (or `{% ... %}`) tag; undefined elsewhere. */
export function openTagPrefix(text: string, offset: number): string | undefined {
  const before = text.slice(0, offset);
  const open = Math.max(before.lastIndexOf("{{"), before.lastIndexOf("{%"));
  if (open < 0) return undefined;
  const inside = before.slice(open + 2);
  if (inside.includes("}}") || inside.includes("%}") || inside.includes("\n")) return undefined;
  // After a `.` or a `|` the word is an attribute or a filter, not a variable.
  const word = /[A-Za-z_][A-Za-z0-9_]*$/.exec(inside)?.[0] ?? "";
  const lead = inside.slice(0, inside.length - word.length);
  if (/[.|]\s*$/.test(lead)) return undefined;
  return word;
}

/** Variables to offer at `offset`: declared in the front matter (with type and description), then the ones
 * already used in `{{ }}` elsewhere in the file. Undefined when the cursor is not inside a tag. */
export function variableCompletions(text: string, offset: number): VariableCompletion[] | undefined {
  const prefix = openTagPrefix(text, offset);
  if (prefix === undefined) return undefined;
  const found = new Map<string, VariableCompletion>();
  let declared: VariableDecl[] = [];
  try {
    const { meta } = frontMatter(text);
    if (Array.isArray(meta.variables)) declared = meta.variables as VariableDecl[];
  } catch {
    declared = []; // half-typed front matter: offer what the body uses
  }
  for (const v of declared) {
    if (!v || typeof v.name !== "string" || !v.name) continue;
    const bits = [v.type ?? "string", v.required === false ? "optional" : "required"];
    if (v.default !== undefined && v.default !== null) bits.push(`default ${JSON.stringify(v.default)}`);
    found.set(v.name, { name: v.name, origin: "declared", detail: bits.join(", "), documentation: v.description || undefined });
  }
  // Uses elsewhere in the file (not the word under the cursor itself).
  const rest = text.slice(0, offset - prefix.length) + text.slice(offset);
  for (const name of templateVariables(rest)) {
    if (!found.has(name)) found.set(name, { name, origin: "used", detail: "used in this file (not declared)" });
  }
  return [...found.values()].filter((c) => c.name.startsWith(prefix));
}

/** The variables the `{{ }}` and `{% %}` tags of a text read: not attributes, filters, keywords, loop or `set`
 * names, keyword arguments or strings. */
export function templateVariables(text: string): string[] {
  const names = new Set<string>();
  const bound = new Set<string>(); // loop and `set` names, anywhere in the text
  for (const tag of text.matchAll(/\{([{%])-?([\s\S]*?)-?[}%]\}/g)) {
    let content = tag[2].replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, " ");
    if (tag[1] === "%") {
      const statement = /^\s*([A-Za-z_]\w*)/.exec(content)?.[1] ?? "";
      content = content.replace(/^\s*[A-Za-z_]\w*/, " ");
      if (statement === "for") {
        const head = /^\s*([\w\s,]+?)\s+in\b/.exec(content);
        for (const n of head?.[1].split(",") ?? []) bound.add(n.trim());
      } else if (statement === "set") {
        const head = /^\s*([\w\s,]+?)\s*=(?!=)/.exec(content);
        for (const n of head?.[1].split(",") ?? []) bound.add(n.trim());
      } else if (!["if", "elif", "with"].includes(statement)) {
        continue; // endif, else, include, macro, ...: no variables worth offering
      }
    }
    for (const token of content.matchAll(/([.|]\s*)?\b([A-Za-z_]\w*)\b(\s*=(?!=))?/g)) {
      const [, lead, name, kwarg] = token;
      if (lead || kwarg || TEMPLATE_KEYWORDS.has(name)) continue;
      names.add(name);
    }
  }
  return [...names].filter((name) => !bound.has(name));
}
