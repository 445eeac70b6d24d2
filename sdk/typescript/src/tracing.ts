import { PromptOpsError } from "./errors.js";
import { requestJson, type HttpOptions } from "./http.js";
import type { components } from "./schema.js";

type BatchIn = components["schemas"]["RunBatchIn"];
type BatchAnswer = components["schemas"]["RunBatchOut"];

/** The server takes request bodies of up to 1 MiB by default; batches stay below that. */
const MAX_BATCH_BYTES = 900_000;
const encoder = new TextEncoder();

/** One run as `POST /api/v1/runs/batch` takes it (docs/api.md §3.15). */

export interface RunRecord {
  id?: string;
  prompt?: string;
  version?: number;
  versionId?: string;
  provider?: string;
  model: string;
  params?: Record<string, unknown>;
  input: { messages: unknown[] } | { prompt: string };
  output?: string | null;
  toolCalls?: Array<Record<string, unknown>> | null;
  finishReason?: string | null;
  inputTokens?: number;
  outputTokens?: number;
  costUsd?: number;
  latencyMs?: number;
  ttftMs?: number | null;
  status: "ok" | "error";
  errorClass?: string | null;
  errorMessage?: string | null;
  traceId?: string | null;
  createdAt?: string;
  /** The live experiment whose arm served the run, and that arm (set from a prompt fetched with a `unit`). */
  experimentId?: string | null;
  arm?: string | null;
}

export interface TracingOptions {
  /** Runs per request, 1–500. Default 100. */
  batchSize?: number;
  /** How long a run may wait for a full batch before it is sent anyway. Default 1000 ms. */
  flushIntervalMs?: number;
  /** Runs held in memory at most; a run recorded when the queue is full is dropped and counted. Default 10,000. */
  maxQueueSize?: number;
  /** Tries per batch after the first, on network errors, 408, 429 and 5xx. Default 5. */
  maxRetries?: number;
  /** First retry delay; doubles each time (with jitter) up to `retryMaxMs`. Default 250 ms. */
  retryBaseMs?: number;
  retryMaxMs?: number;
}

/** Counters of the background sender (part of `po.stats`). */
export interface TracingStats {
  /** Runs accepted into the queue. */
  queued: number;
  /** Runs the server acknowledged (new or already stored). */
  sent: number;
  /** Of `sent`, the ones the server had already (a retried batch). */
  duplicates: number;
  /** Runs refused because the queue was full or the client was shut down. */
  dropped: number;
  /** Runs given up on: the server refused them (4xx) or every retry failed. */
  failed: number;
  /** Batch requests made, retries included. */
  requests: number;
  retries: number;
  /** Runs waiting in the queue now. */
  pending: number;
}

// Compile-time check against the generated API types: a RunRecord is a valid item of the batch body.
export const asRunIn = (run: RunRecord): BatchIn["runs"][number] => run;

function unref(timer: unknown): void {
  (timer as { unref?: () => void } | undefined)?.unref?.();
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => unref(setTimeout(resolve, ms)));
}

/**
 * The bounded, batched background sender. `enqueue` never waits and never throws: it appends to an in-memory
 * queue (or drops and counts when the queue is full). One pump sends batches one after the other; a batch that
 * fails with a retryable error is retried with exponential backoff and the same run ids, so the server stores
 * each run once however often its batch is sent.
 */
export class RunSender {
  readonly stats: TracingStats = { queued: 0, sent: 0, duplicates: 0, dropped: 0, failed: 0, requests: 0, retries: 0, pending: 0 };
  #queue: RunRecord[] = [];
  #pump: Promise<void> | null = null;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #closed = false;
  #batchSize: number;
  #interval: number;
  #maxQueue: number;
  #maxRetries: number;
  #retryBase: number;
  #retryMax: number;

  constructor(
    private readonly http: HttpOptions,
    options: TracingOptions = {},
    private readonly onError: (error: unknown) => void = () => {},
  ) {
    this.#batchSize = Math.min(500, Math.max(1, options.batchSize ?? 100));
    this.#interval = options.flushIntervalMs ?? 1000;
    this.#maxQueue = options.maxQueueSize ?? 10_000;
    this.#maxRetries = options.maxRetries ?? 5;
    this.#retryBase = options.retryBaseMs ?? 250;
    this.#retryMax = options.retryMaxMs ?? 30_000;
  }

  get closed(): boolean {
    return this.#closed;
  }

  enqueue(run: RunRecord): boolean {
    if (this.#closed || this.#queue.length >= this.#maxQueue) {
      this.stats.dropped++;
      return false;
    }
    this.#queue.push(run);
    this.stats.queued++;
    this.stats.pending = this.#queue.length;
    if (this.#queue.length >= this.#batchSize) this.#kick();
    else if (this.#timer === null && this.#pump === null) {
      this.#timer = setTimeout(() => {
        this.#timer = null;
        this.#kick();
      }, this.#interval);
      unref(this.#timer);
    }
    return true;
  }

  /** Sends what is queued now (and what arrives meanwhile); resolves `true` once the queue is empty, `false` on timeout. */
  async flush(timeoutMs?: number): Promise<boolean> {
    // The sender's own timers do not keep a Node process alive; an awaited flush does, until it ends.
    const keepAlive = setInterval(() => {}, 1000);
    try {
      return await this.#flush(timeoutMs);
    } finally {
      clearInterval(keepAlive);
    }
  }

  async #flush(timeoutMs?: number): Promise<boolean> {
    const done = (async () => {
      while (this.#queue.length > 0 || this.#pump !== null) {
        this.#kick();
        await this.#pump;
      }
      return true;
    })();
    if (timeoutMs === undefined) return done;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
      unref(timer);
    });
    try {
      return await Promise.race([done, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Flushes, then refuses new runs (they are dropped and counted). */
  async close(timeoutMs?: number): Promise<boolean> {
    const flushed = await this.flush(timeoutMs);
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    return flushed;
  }

  /** True when there is something to send (the process-exit hook uses it). */
  get busy(): boolean {
    return this.#queue.length > 0 || this.#pump !== null;
  }

  #kick(): void {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    if (this.#pump !== null || this.#queue.length === 0) return;
    this.#pump = (async () => {
      try {
        while (this.#queue.length > 0) {
          const batch = this.#queue.splice(0, this.#batchLength());
          this.stats.pending = this.#queue.length;
          await this.#send(batch);
        }
      } finally {
        this.#pump = null;
      }
    })();
  }

  /** How many queued runs the next batch takes: up to `batchSize`, and no more than MAX_BATCH_BYTES of JSON
   * (a run bigger than that goes alone; the server then refuses it with 413 and it is counted as failed). */
  #batchLength(): number {
    let size = 0;
    let count = 0;
    while (count < this.#queue.length && count < this.#batchSize) {
      const runSize = encoder.encode(JSON.stringify(asRunIn(this.#queue[count]!))).length + 1;
      if (count > 0 && size + runSize > MAX_BATCH_BYTES) break;
      size += runSize;
      count++;
    }
    return Math.max(1, count);
  }

  async #send(batch: RunRecord[]): Promise<void> {
    let remaining = batch;
    for (let attempt = 0; remaining.length > 0; attempt++) {
      try {
        this.stats.requests++;
        const answer = await requestJson<BatchAnswer>(this.http, "POST", "/api/v1/runs/batch", {
          runs: remaining.map(asRunIn),
        } satisfies BatchIn);
        this.stats.sent += remaining.length;
        this.stats.duplicates += answer?.duplicates ?? 0;
        return;
      } catch (error) {
        this.onError(error);
        // A concurrent batch with some of the same ids (409 run_id_conflict) is resolved by sending again.
        const retryable = !(error instanceof PromptOpsError) || error.retryable || error.code === "run_id_conflict";
        if (error instanceof PromptOpsError && error.status === 413 && remaining.length > 1) {
          // Too big for the server's body limit (set lower than this SDK assumes): send it in halves.
          const half = Math.ceil(remaining.length / 2);
          await this.#send(remaining.slice(0, half));
          await this.#send(remaining.slice(half));
          return;
        }
        if (!retryable) {
          // The whole batch is refused for one bad run: drop that one (the problem names its index) and send the rest.
          const index = badIndex(error);
          if (index !== undefined && index < remaining.length && remaining.length > 1) {
            this.stats.failed++;
            remaining = remaining.filter((_run, i) => i !== index);
            continue;
          }
          this.stats.failed += remaining.length;
          return;
        }
        if (attempt >= this.#maxRetries) {
          this.stats.failed += remaining.length;
          return;
        }
        this.stats.retries++;
        const delay = Math.min(this.#retryMax, this.#retryBase * 2 ** attempt);
        await sleep(delay / 2 + Math.random() * (delay / 2));
      }
    }
  }
}

/** The index of the refused run in a batch problem: `index` (unknown prompt or version, bad `createdAt`), or
 * `runs.N.…` in a validation error's `loc` (`["body", "runs", "1", "id"]`). */
function badIndex(error: unknown): number | undefined {
  if (!(error instanceof PromptOpsError) || !error.problem) return undefined;
  const problem = error.problem;
  if (typeof problem.index === "number") return problem.index;
  const errors = Array.isArray(problem.errors) ? (problem.errors as Array<{ loc?: unknown[] }>) : [];
  for (const e of errors) {
    const loc = Array.isArray(e.loc) ? e.loc : [];
    const at = loc.indexOf("runs");
    const index = at >= 0 ? Number(loc[at + 1]) : NaN;
    if (Number.isInteger(index)) return index;
  }
  return undefined;
}
