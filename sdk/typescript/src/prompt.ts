import type { components } from "./schema.js";

/** The resolve answer; with a `unit` on a label where an experiment runs, it names the unit's arm (`experiment`). */
export type Resolved = components["schemas"]["ResolvedInExperimentOut"];
export type Version = components["schemas"]["VersionOut"];

/** A declared template variable (docs/api.md §4.2). */
export interface VariableDeclaration {
  name: string;
  type: string;
  required: boolean;
  default: unknown;
  description: string;
}

/** One chat message, the shape the OpenAI chat API takes. */
export interface ChatMessage {
  role: string;
  content: string;
}

/** What `Prompt.render` gives: the text (text prompts) or the messages (chat prompts) after substitution. */
export interface Rendered {
  kind: "text" | "chat";
  text: string | null;
  messages: ChatMessage[] | null;
  promptId: string | null;
  versionId: string | null;
  version: number | null;
  /** `server` (the render endpoint, the default) or `local` (the offline subset, see the README). */
  renderedBy: "server" | "local";
}

/** A prompt you give `getPrompt` for the case that nothing else is there (first start with the server down). */
export interface FallbackPrompt {
  template?: string;
  messages?: ChatMessage[];
  variables?: Array<Partial<VariableDeclaration> & { name: string }>;
  modelConfig?: ModelConfig;
}

/** What `fallback` takes: a template text, chat messages, or a `FallbackPrompt` (with variables, model config). */
export type FallbackInput = string | ChatMessage[] | FallbackPrompt;

export interface ModelConfig {
  provider?: string | null;
  model?: string | null;
  params: Record<string, unknown>;
}

/** Where the prompt in hand came from. */
export type PromptOrigin = "network" | "memory" | "disk" | "fallback";

interface Renderer {
  renderPrompt(prompt: Prompt, variables: Record<string, unknown>): Promise<Rendered>;
}

/**
 * One version of a registry prompt as `getPrompt` returns it. Immutable: a refreshed cache entry is a new object.
 */
export class Prompt {
  readonly name: string;
  readonly promptId: string | null;
  /** The version number; `0` for a `fallback` prompt that never came from the server. */
  readonly version: number;
  readonly versionId: string | null;
  /** The label the version was resolved by (`production`, `latest`, ...), `null` when asked by number. */
  readonly label: string | null;
  readonly kind: "text" | "chat";
  readonly template: string | null;
  readonly messages: ChatMessage[] | null;
  readonly variables: VariableDeclaration[];
  readonly modelConfig: ModelConfig;
  readonly responseSchema: Record<string, unknown> | null;
  readonly contentHash: string | null;
  /** When the server answered with this version (ms since the epoch); for a fallback, when it was made. */
  readonly fetchedAt: number;
  readonly isFallback: boolean;
  /** Fetched with a `unit` while an experiment runs on the label: the experiment id and the unit's (sticky) arm;
   * the version is the arm's, and `modelConfig.model` the arm's model when the arm overrides it. */
  readonly experiment: string | null;
  readonly arm: string | null;
  readonly unit: string | null;
  readonly #renderer: Renderer;

  /** @internal */
  constructor(renderer: Renderer, fields: Omit<Prompt, "render" | "toOpenAIMessages" | "toJSON">) {
    this.#renderer = renderer;
    this.name = fields.name;
    this.promptId = fields.promptId;
    this.version = fields.version;
    this.versionId = fields.versionId;
    this.label = fields.label;
    this.kind = fields.kind;
    this.template = fields.template;
    this.messages = fields.messages;
    this.variables = fields.variables;
    this.modelConfig = fields.modelConfig;
    this.responseSchema = fields.responseSchema;
    this.contentHash = fields.contentHash;
    this.fetchedAt = fields.fetchedAt;
    this.isFallback = fields.isFallback;
    this.experiment = fields.experiment;
    this.arm = fields.arm;
    this.unit = fields.unit;
  }

  /** @internal */
  static fromResolved(renderer: Renderer, resolved: Resolved, fetchedAt: number, unit: string | null = null): Prompt {
    const v = resolved.version;
    const by = resolved.resolvedBy ?? "";
    const tag = resolved.experiment ?? null;
    const modelConfig: ModelConfig = { params: {}, ...(v.modelConfig as Partial<ModelConfig>) };
    if (tag?.model) modelConfig.model = tag.model;
    return new Prompt(renderer, {
      name: resolved.prompt.name,
      promptId: resolved.prompt.id,
      version: v.version,
      versionId: v.id,
      label: by.startsWith("label:") ? by.slice("label:".length) : null,
      kind: v.kind === "chat" ? "chat" : "text",
      template: v.template ?? null,
      messages: v.messages ? v.messages.map((m) => ({ role: String(m.role), content: String(m.content) })) : null,
      variables: (v.variables ?? []) as unknown as VariableDeclaration[],
      modelConfig,
      responseSchema: v.responseSchema ?? null,
      contentHash: v.contentHash ?? null,
      fetchedAt,
      isFallback: false,
      experiment: tag?.id ?? null,
      arm: tag?.arm ?? null,
      unit: tag ? unit : null,
    });
  }

  /** @internal */
  static fromFallback(renderer: Renderer, name: string, label: string | null, fallback: FallbackInput): Prompt {
    const f: FallbackPrompt =
      typeof fallback === "string" ? { template: fallback } : Array.isArray(fallback) ? { messages: fallback } : fallback;
    if ((f.template === undefined) === (f.messages === undefined)) {
      throw new TypeError("A fallback prompt needs exactly one of `template` and `messages`");
    }
    return new Prompt(renderer, {
      name,
      promptId: null,
      version: 0,
      versionId: null,
      label,
      kind: f.messages ? "chat" : "text",
      template: f.template ?? null,
      messages: f.messages ?? null,
      variables: (f.variables ?? []).map((d) => ({
        name: d.name,
        type: d.type ?? "string",
        required: d.required ?? true,
        default: d.default ?? null,
        description: d.description ?? "",
      })),
      modelConfig: f.modelConfig ?? { params: {} },
      responseSchema: null,
      contentHash: null,
      fetchedAt: Date.now(),
      isFallback: true,
      experiment: null,
      arm: null,
      unit: null,
    });
  }

  /**
   * Fills in the variables. Renders on the server (`POST /api/v1/prompts/{name}/render`, pinned to this version),
   * which runs the same sandboxed Jinja2 as everywhere else; when the server cannot be reached, or for a fallback
   * prompt, a template that only substitutes (`{{ name }}`) with text values is rendered locally instead.
   */
  render(variables: Record<string, unknown> = {}): Promise<Rendered> {
    return this.#renderer.renderPrompt(this, variables);
  }

  /** The rendered prompt as OpenAI chat messages: a text prompt becomes one `user` message. */
  toOpenAIMessages(rendered: Rendered): ChatMessage[] {
    if (rendered.messages) return rendered.messages.map((m) => ({ role: m.role, content: m.content }));
    return [{ role: "user", content: rendered.text ?? "" }];
  }

  /** The run fields that attribute a call to this prompt (what tracing and the wrapper send). */
  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      version: this.version,
      versionId: this.versionId,
      label: this.label,
      ...(this.experiment ? { experiment: this.experiment, arm: this.arm } : {}),
    };
  }
}
