import { PromptOpsError } from "./errors.js";
import { promptPath, requestJson, type HttpOptions } from "./http.js";
import { newRunId } from "./ids.js";
import { renderLocally } from "./local.js";
import { Prompt, type FallbackInput, type Rendered, type Resolved } from "./prompt.js";
import type { PromptStore } from "./store.js";
import { RunSender, type RunRecord, type TracingOptions, type TracingStats } from "./tracing.js";
import type { components } from "./schema.js";

type RenderOut = components["schemas"]["RenderOut"];

export interface PromptOpsOptions {
  /** Server address. Default: `PROMPTOPS_URL` (in Node), else `http://127.0.0.1:8000`. */
  url?: string;
  /** An API key (`po_…`). Default: `PROMPTOPS_API_KEY` (in Node). */
  apiKey?: string;
  /** Project id or name, for session tokens (an API key always works in its own project). Default `PROMPTOPS_PROJECT`. */
  project?: string;
  /** How long a fetched prompt is fresh. After that it is still served, and refreshed in the background. Default 60 s. */
  cacheTtlMs?: number;
  /** After a failed refresh (or a start from the store or a fallback), how long until the next try. Default 5 s. */
  retryAfterMs?: number;
  /** Per request. Default 10 s. */
  timeoutMs?: number;
  /** The persisted fallback (see `PromptStore`). `@promptops/sdk/node`'s `PromptOps` uses a file store by default. */
  store?: PromptStore | null;
  tracing?: TracingOptions;
  /** In Node, send what is queued when the event loop empties (`beforeExit`). Default true. */
  flushOnExit?: boolean;
  /** Called with every error the client hides from the caller (background refreshes, store, sender). */
  onError?: (error: unknown) => void;
  /** A `fetch` to use instead of the global one. */
  fetch?: typeof fetch;
  /** Units whose experiment arm is kept in memory at most (least recently fetched dropped first). Default 10,000. */
  unitCacheSize?: number;
}

export interface GetPromptOptions {
  /** A label (`production`, `staging`, ...). Neither label nor version: the newest version (`latest`). */
  label?: string;
  /** A version number. Versions never change, so a version once fetched is never fetched again. */
  version?: number;
  /** Used when the prompt is neither cached, nor stored, nor reachable: a template text, chat messages, or a
   * `FallbackPrompt` (`{template | messages, variables?, modelConfig?}`). */
  fallback?: FallbackInput;
  /** Overrides the client's `cacheTtlMs` for this prompt. */
  cacheTtlMs?: number;
  /** A user or session id (1–200 characters), with `label`: when an experiment runs on the label, the unit's
   * sticky arm is served. Cached per unit (never another unit's arm); a label without an experiment is fetched
   * once for every unit per TTL. */
  unit?: string;
}

export interface CacheStats {
  /** Served from memory while fresh. */
  hits: number;
  /** Served from memory after the TTL (a background refresh was started or is running). */
  staleHits: number;
  /** Not in memory: the caller waited for the server (or the store, or the fallback). */
  misses: number;
  /** Requests made to resolve prompts (misses and background refreshes, single-flight). */
  fetches: number;
  /** Background refreshes that failed (the stale prompt stays in use). */
  refreshErrors: number;
  /** Misses answered from the persisted store because the server could not be reached. */
  storeHits: number;
  /** Misses answered with the `fallback` option. */
  fallbacks: number;
  storeErrors: number;
  /** Renders done locally because the server could not be reached (or for a fallback prompt). */
  localRenders: number;
}

export interface Stats {
  cache: CacheStats;
  tracing: TracingStats;
}

interface Entry {
  prompt: Prompt;
  freshUntil: number;
}

/** What `trace` gives the callback: `record` the call's details; they are sent when the callback returns. */
export class Trace {
  readonly runId: string = newRunId();
  readonly traceId: string | null;
  readonly startedAt = Date.now();
  readonly #start = now();
  #fields: Partial<RunRecord> | null = null;

  constructor(traceId: string | null) {
    this.traceId = traceId;
  }

  /** Adds details of the call (model, input, output, tokens, ...). Can be called more than once; later fields win. */
  record(fields: Partial<RunRecord>): void {
    this.#fields = { ...(this.#fields ?? {}), ...fields };
  }

  /** @internal */
  get fields(): Partial<RunRecord> | null {
    return this.#fields;
  }

  /** Milliseconds since the trace started. */
  elapsedMs(): number {
    return now() - this.#start;
  }
}

/**
 * One `beforeExit` listener for every client of the process (not one each): when nothing else keeps Node running,
 * each sender with runs queued sends them. Elsewhere (browsers) there is no such event and nothing is installed.
 */
const exitHook = {
  senders: new Set<RunSender>(),
  installed: false,
  install(): boolean {
    const proc = (globalThis as { process?: { on?: unknown } }).process as
      | { on(event: string, fn: () => void): void }
      | undefined;
    if (typeof proc?.on !== "function") return false;
    if (!this.installed) {
      proc.on("beforeExit", () => {
        for (const sender of this.senders) if (sender.busy && !sender.closed) void sender.flush();
      });
      this.installed = true;
    }
    return true;
  },
};

function now(): number {
  return globalThis.performance?.now() ?? Date.now();
}

function env(name: string): string | undefined {
  const proc = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  return proc?.env?.[name] || undefined;
}

function keyOf(name: string, options: GetPromptOptions): string {
  if (options.label !== undefined && options.version !== undefined) {
    throw new TypeError("Give a label or a version, not both");
  }
  const selector = options.version !== undefined ? `@${options.version}` : `#${options.label ?? "latest"}`;
  return `${name}${selector}`;
}

/** The unit a call is about: only with a label (a version number or the newest version is the same for all). */
function unitOf(options: GetPromptOptions): string | null {
  if (options.unit === undefined) return null;
  if (typeof options.unit !== "string" || options.unit.length < 1 || options.unit.length > 200) {
    throw new TypeError("unit must be a string of 1-200 characters");
  }
  return options.label !== undefined ? options.unit : null;
}

/**
 * The PromptOps client: `getPrompt` (cached, stale-while-revalidate), `trace`/`record` (batched background
 * sender), `flush` and `shutdown`. Works in Node 20+ and browsers; it only needs `fetch`.
 */
export class PromptOps {
  readonly url: string;
  readonly #http: HttpOptions;
  readonly #ttl: number;
  readonly #retryAfter: number;
  readonly #store: PromptStore | null;
  readonly #onError: (error: unknown) => void;
  readonly #cache = new Map<string, Entry>();
  readonly #inflight = new Map<string, Promise<Prompt>>();
  /** Answers for a unit on a label where an experiment runs, least recently stored first (bounded). */
  readonly #units = new Map<string, Entry>();
  readonly #unitCacheSize: number;
  /** label key -> when a fetch with a unit last said no experiment runs there (ms since the epoch). */
  readonly #noExperiment = new Map<string, number>();
  readonly #sender: RunSender;
  readonly #cacheStats: CacheStats = {
    hits: 0,
    staleHits: 0,
    misses: 0,
    fetches: 0,
    refreshErrors: 0,
    storeHits: 0,
    fallbacks: 0,
    storeErrors: 0,
    localRenders: 0,
  };
  #exitHook: (() => void) | null = null;

  constructor(options: PromptOpsOptions = {}) {
    this.url = (options.url ?? env("PROMPTOPS_URL") ?? "http://127.0.0.1:8000").replace(/\/+$/, "");
    const fetchImpl = options.fetch ?? globalThis.fetch;
    if (typeof fetchImpl !== "function") throw new TypeError("PromptOps needs a global fetch (Node 20+, browsers)");
    this.#http = {
      url: this.url,
      apiKey: options.apiKey ?? env("PROMPTOPS_API_KEY"),
      project: options.project ?? env("PROMPTOPS_PROJECT"),
      timeoutMs: options.timeoutMs ?? 10_000,
      fetch: (input, init) => fetchImpl(input, init),
    };
    this.#ttl = options.cacheTtlMs ?? 60_000;
    this.#unitCacheSize = Math.max(1, options.unitCacheSize ?? 10_000);
    this.#retryAfter = options.retryAfterMs ?? 5_000;
    this.#store = options.store ?? null;
    this.#onError = options.onError ?? (() => {});
    this.#sender = new RunSender(this.#http, options.tracing, this.#onError);
    if (options.flushOnExit ?? true) this.#installExitHook();
  }

  /** Counters of the cache and the run sender (a snapshot). */
  get stats(): Stats {
    return { cache: { ...this.#cacheStats }, tracing: { ...this.#sender.stats } };
  }

  // --- prompts --------------------------------------------------------------------------------------------

  /**
   * A prompt version by label (`{label: "production"}`), by number (`{version: 3}`) or the newest one. A fresh
   * cached prompt is returned at once; a stale one is returned at once too and refreshed in the background (one
   * request however many callers). Only the first fetch of a prompt waits for the server; when the server cannot
   * be reached then, the persisted store, then `fallback` answer, else the error is thrown. A 4xx answer (unknown
   * prompt or label, bad key) is always thrown.
   */
  async getPrompt(name: string, options: GetPromptOptions = {}): Promise<Prompt> {
    const key = keyOf(name, options);
    const unit = unitOf(options);
    if (unit !== null) return this.#forUnit(key, unit, name, options);
    const entry = this.#cache.get(key);
    if (entry) {
      if (Date.now() < entry.freshUntil) {
        this.#cacheStats.hits++;
      } else {
        this.#cacheStats.staleHits++;
        this.#refresh(key, name, options);
      }
      return entry.prompt;
    }
    this.#cacheStats.misses++;
    try {
      return await this.#load(key, name, options);
    } catch (error) {
      if (!(error instanceof PromptOpsError) || !error.retryable) throw error;
      const stored = await this.#fromStore(key);
      if (stored) {
        this.#cacheStats.storeHits++;
        return this.#remember(key, stored, Date.now() + this.#retryAfter);
      }
      if (options.fallback !== undefined) {
        this.#cacheStats.fallbacks++;
        const label = options.version !== undefined ? null : (options.label ?? "latest");
        const prompt = Prompt.fromFallback(this, name, label, options.fallback);
        return this.#remember(key, prompt, Date.now() + this.#retryAfter);
      }
      throw error;
    }
  }

  /** Drops every cached prompt from memory (the persisted store is left alone). */
  clearCache(): void {
    this.#cache.clear();
    this.#units.clear();
    this.#noExperiment.clear();
  }

  /** `getPrompt` with a unit on a label (see `GetPromptOptions.unit`). */
  async #forUnit(labelKey: string, unit: string, name: string, options: GetPromptOptions): Promise<Prompt> {
    const now = Date.now();
    const ttl = options.cacheTtlMs ?? this.#ttl;
    const said = this.#noExperiment.get(labelKey);
    const labelEntry = this.#cache.get(labelKey);
    if (said !== undefined && now - said < ttl && labelEntry && now < labelEntry.freshUntil) {
      this.#cacheStats.hits++;
      return labelEntry.prompt;
    }
    const key = JSON.stringify([labelKey, unit]);
    const entry = this.#units.get(key);
    if (entry) {
      if (now < entry.freshUntil) {
        this.#cacheStats.hits++;
      } else {
        this.#cacheStats.staleHits++;
        if (!this.#inflight.has(key)) {
          this.#load(key, name, options, unit).catch((error: unknown) => {
            this.#cacheStats.refreshErrors++;
            entry.freshUntil = Date.now() + this.#retryAfter;
            this.#onError(error);
          });
        }
      }
      return entry.prompt;
    }
    this.#cacheStats.misses++;
    try {
      return await this.#load(key, name, options, unit);
    } catch (error) {
      if (!(error instanceof PromptOpsError) || !error.retryable) throw error;
      // unreachable: the label's own copy (no experiment), as a call without a unit would get
      if (labelEntry) return labelEntry.prompt;
      const { unit: _unit, ...plain } = options;
      return this.getPrompt(name, plain);
    }
  }

  #remember(key: string, prompt: Prompt, freshUntil: number): Prompt {
    // A fallback never replaces a prompt that came from the server.
    const current = this.#cache.get(key);
    if (current && !current.prompt.isFallback && prompt.isFallback) return current.prompt;
    this.#cache.set(key, { prompt, freshUntil });
    return prompt;
  }

  #refresh(key: string, name: string, options: GetPromptOptions): void {
    if (this.#inflight.has(key)) return;
    this.#load(key, name, options).catch((error: unknown) => {
      this.#cacheStats.refreshErrors++;
      const entry = this.#cache.get(key);
      if (entry) entry.freshUntil = Date.now() + this.#retryAfter;
      this.#onError(error);
    });
  }

  /** One request per key at a time: concurrent callers share it. With a unit: the unit's arm, kept per unit, or
   * (no experiment on the label) the label's version, kept as the label's entry for every unit. */
  #load(key: string, name: string, options: GetPromptOptions, unit: string | null = null): Promise<Prompt> {
    const running = this.#inflight.get(key);
    if (running) return running;
    const load = (async () => {
      try {
        this.#cacheStats.fetches++;
        const query = new URLSearchParams();
        if (options.label !== undefined) query.set("label", options.label);
        if (options.version !== undefined) query.set("version", String(options.version));
        if (unit !== null) query.set("unit", unit);
        const qs = query.size ? `?${query}` : "";
        const resolved = await requestJson<Resolved>(this.#http, "GET", promptPath(name, qs));
        const fetchedAt = Date.now();
        const prompt = Prompt.fromResolved(this, resolved, fetchedAt, unit);
        // A version number always means the same content: it never goes stale.
        const ttl = options.version !== undefined ? Infinity : (options.cacheTtlMs ?? this.#ttl);
        let storeKey: string | null = key;
        if (unit !== null && prompt.experiment !== null) {
          this.#units.delete(key);
          this.#units.set(key, { prompt, freshUntil: fetchedAt + ttl });
          while (this.#units.size > this.#unitCacheSize) this.#units.delete(this.#units.keys().next().value as string);
          this.#noExperiment.delete(keyOf(name, options));
          storeKey = null; // a unit's arm is never persisted (one entry per user would pile up)
        } else if (unit !== null) {
          storeKey = keyOf(name, options);
          this.#noExperiment.set(storeKey, fetchedAt);
          this.#units.delete(key);
          this.#remember(storeKey, prompt, fetchedAt + ttl);
        } else {
          this.#remember(key, prompt, fetchedAt + ttl);
        }
        if (this.#store && storeKey !== null) {
          this.#store.set(storeKey, { resolved, fetchedAt }).catch((error: unknown) => {
            this.#cacheStats.storeErrors++;
            this.#onError(error);
          });
        }
        return prompt;
      } finally {
        this.#inflight.delete(key);
      }
    })();
    this.#inflight.set(key, load);
    return load;
  }

  async #fromStore(key: string): Promise<Prompt | undefined> {
    if (!this.#store) return undefined;
    try {
      const stored = await this.#store.get(key);
      return stored ? Prompt.fromResolved(this, stored.resolved, stored.fetchedAt) : undefined;
    } catch (error) {
      this.#cacheStats.storeErrors++;
      this.#onError(error);
      return undefined;
    }
  }

  /** @internal What `Prompt.render` calls. */
  async renderPrompt(prompt: Prompt, variables: Record<string, unknown>): Promise<Rendered> {
    if (prompt.isFallback) {
      this.#cacheStats.localRenders++;
      return renderLocally(prompt, variables);
    }
    try {
      const out = await requestJson<RenderOut>(this.#http, "POST", promptPath(prompt.name, "/render"), {
        variables,
        version: prompt.version,
      });
      return {
        kind: out.kind === "chat" ? "chat" : "text",
        text: out.text ?? null,
        messages: out.messages ? out.messages.map((m) => ({ role: m.role, content: m.content })) : null,
        promptId: out.promptId,
        versionId: out.versionId,
        version: out.version,
        renderedBy: "server",
      };
    } catch (error) {
      if (!(error instanceof PromptOpsError) || !error.retryable) throw error;
      let rendered: Rendered;
      try {
        rendered = renderLocally(prompt, variables);
      } catch (local) {
        if (local instanceof PromptOpsError && local.code === "local_render_unsupported") throw error;
        throw local;
      }
      this.#cacheStats.localRenders++;
      this.#onError(error);
      return rendered;
    }
  }

  // --- tracing --------------------------------------------------------------------------------------------

  /**
   * Runs `fn` and records one run for it: what `fn` passed to `t.record(...)`, plus the prompt's name and version,
   * the latency (time in `fn` unless recorded) and, if `fn` throws, `status: "error"` with the error's name and
   * message (the error is rethrown). Nothing is recorded when `fn` returns without calling `t.record`. Recording
   * never waits for the network: the run joins the background sender's queue.
   */
  async trace<T>(prompt: Prompt | null, fn: (t: Trace) => Promise<T> | T, options: { traceId?: string } = {}): Promise<T> {
    const t = new Trace(options.traceId ?? null);
    let result: T;
    try {
      result = await fn(t);
    } catch (error) {
      const err = error instanceof Error ? error : new Error(String(error));
      this.#finish(prompt, t, { status: "error", errorClass: err.name, errorMessage: err.message.slice(0, 2000) });
      throw error;
    }
    if (t.fields) this.#finish(prompt, t, {});
    return result;
  }

  #finish(prompt: Prompt | null, t: Trace, overrides: Partial<RunRecord>): void {
    const fields = { ...t.fields, ...overrides };
    this.record(
      {
        ...fields,
        id: fields.id ?? t.runId,
        traceId: fields.traceId ?? t.traceId,
        latencyMs: fields.latencyMs ?? t.elapsedMs(),
        createdAt: fields.createdAt ?? new Date(t.startedAt).toISOString(),
        model: fields.model ?? prompt?.modelConfig.model ?? "unknown",
        input: fields.input ?? { prompt: "" },
        status: fields.status ?? "ok",
      },
      prompt,
    );
  }

  /**
   * Queues one finished run (returns its id, or `null` when it was dropped because the queue is full or the client
   * is shut down). `prompt` attributes it to a registry version.
   */
  record(run: RunRecord, prompt: Prompt | null = null): string | null {
    const full: RunRecord = { ...run, id: run.id ?? newRunId(), createdAt: run.createdAt ?? new Date().toISOString() };
    if (prompt && !prompt.isFallback && prompt.versionId) {
      full.prompt ??= prompt.name;
      full.versionId ??= prompt.versionId;
      if (prompt.experiment && prompt.arm) {
        full.experimentId ??= prompt.experiment;
        full.arm ??= prompt.arm;
      }
    }
    for (const k of Object.keys(full) as Array<keyof RunRecord>) if (full[k] === undefined) delete full[k];
    return this.#sender.enqueue(full) ? (full.id as string) : null;
  }

  /** Sends every queued run now. Resolves `true` when the queue is empty, `false` if `timeoutMs` passed first. */
  flush(timeoutMs?: number): Promise<boolean> {
    return this.#sender.flush(timeoutMs);
  }

  /** Flushes and stops: runs recorded afterwards are dropped (and counted). */
  async shutdown(timeoutMs?: number): Promise<boolean> {
    const flushed = await this.#sender.close(timeoutMs);
    this.#removeExitHook();
    return flushed;
  }

  #installExitHook(): void {
    if (exitHook.install()) {
      exitHook.senders.add(this.#sender);
      this.#exitHook = () => exitHook.senders.delete(this.#sender);
    }
  }

  #removeExitHook(): void {
    this.#exitHook?.();
    this.#exitHook = null;
  }
}
