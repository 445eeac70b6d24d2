// Tracing against a real server: runs recorded by `trace`/`record` land as runs (GET /api/v1/runs), in batches,
// once each however often a batch is retried; a full queue drops and counts; flush and shutdown.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newRunId, type Prompt, type PromptOpsOptions } from "../src/index.js";
import { ADMIN_KEY, api, clientOf, gatedFetch, PACKAGE, runsOf, startServer, unique, type RunningServer } from "./support.js";

let server: RunningServer;
let prompt: Prompt;
const NAME = unique("sdk/traced");

beforeAll(async () => {
  server = await startServer();
  await api(server.url, "POST", "/api/v1/prompts", {
    name: NAME,
    template: "Summarize: {{ text }}",
    variables: [{ name: "text" }],
    modelConfig: { provider: "openai", model: "gpt-4o-mini", params: {} },
    labels: ["production"],
  });
  prompt = await clientOf(server).getPrompt(NAME, { label: "production" });
});

afterAll(async () => {
  await server?.stop();
});

const client = (extra: PromptOpsOptions = {}) => clientOf(server, extra);

describe("trace", () => {
  it("records a run of the prompt's version with what the callback recorded", async () => {
    const po = client();
    const traceId = unique("t");
    const answer = await po.trace(
      prompt,
      async (t) => {
        await new Promise((r) => setTimeout(r, 30));
        t.record({ input: { prompt: "Summarize: a long text" }, output: "short", inputTokens: 5, outputTokens: 1, finishReason: "stop" });
        return "short";
      },
      { traceId },
    );
    expect(answer).toBe("short");
    expect(await po.flush()).toBe(true);
    const runs = await runsOf(server.url, { traceId });
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({
      promptId: prompt.promptId,
      versionId: prompt.versionId,
      model: "gpt-4o-mini",
      input: { prompt: "Summarize: a long text" },
      output: "short",
      inputTokens: 5,
      outputTokens: 1,
      finishReason: "stop",
      status: "ok",
      source: "sdk",
      traceId,
    });
    expect(runs[0].id).toMatch(/^run_/);
    expect(runs[0].latencyMs).toBeGreaterThanOrEqual(25);
  });

  it("records a failed callback as an error run and rethrows", async () => {
    const po = client();
    const traceId = unique("t");
    class QuotaError extends Error {
      override name = "QuotaError";
    }
    await expect(
      po.trace(prompt, () => {
        throw new QuotaError("out of quota");
      }, { traceId }),
    ).rejects.toThrow("out of quota");
    await po.flush();
    const [run] = await runsOf(server.url, { traceId });
    expect(run).toMatchObject({ status: "error", errorClass: "QuotaError", errorMessage: "out of quota", versionId: prompt.versionId });
  });

  it("records nothing when the callback records nothing", async () => {
    const po = client();
    const traceId = unique("t");
    await po.trace(prompt, () => 1, { traceId });
    await po.flush();
    expect(await runsOf(server.url, { traceId })).toHaveLength(0);
    expect(po.stats.tracing.queued).toBe(0);
  });
});

describe("the sender", () => {
  it("sends in batches and every run lands once", async () => {
    const gate = gatedFetch();
    gate.open();
    const po = client({ fetch: gate.fetch, tracing: { batchSize: 100, flushIntervalMs: 60_000 } });
    const traceId = unique("t");
    for (let i = 0; i < 250; i++) {
      po.record({ model: "m", input: { prompt: `p${i}` }, output: `o${i}`, status: "ok", traceId }, prompt);
    }
    expect(await po.flush()).toBe(true);
    expect(gate.calls.filter((c) => c.includes("/runs/batch"))).toHaveLength(3);
    expect(po.stats.tracing).toMatchObject({ queued: 250, sent: 250, dropped: 0, failed: 0, requests: 3, pending: 0 });
    const runs = await runsOf(server.url, { traceId });
    expect(runs).toHaveLength(250);
    expect(new Set(runs.map((r) => r.input.prompt)).size).toBe(250);
  });

  it("keeps each batch under the server's 1 MiB body limit: big runs go in more, smaller batches", async () => {
    const po = client({ tracing: { batchSize: 100, flushIntervalMs: 60_000 } });
    const traceId = unique("t");
    const big = "x".repeat(60_000); // 40 runs of 60 KB: 2.4 MB in all
    for (let i = 0; i < 40; i++) {
      po.record({ model: "m", input: { prompt: `p${i}` }, output: `${i} ${big}`, status: "ok", traceId }, prompt);
    }
    expect(await po.flush()).toBe(true);
    expect(po.stats.tracing).toMatchObject({ sent: 40, failed: 0 });
    expect(po.stats.tracing.requests).toBeGreaterThanOrEqual(3);
    expect(await runsOf(server.url, { traceId })).toHaveLength(40);
  });

  it("sends a partial batch after flushIntervalMs without a flush", async () => {
    const po = client({ tracing: { flushIntervalMs: 50 } });
    const traceId = unique("t");
    po.record({ model: "m", input: { prompt: "x" }, status: "ok", traceId });
    const deadline = Date.now() + 10_000;
    while ((await runsOf(server.url, { traceId })).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(await runsOf(server.url, { traceId })).toHaveLength(1);
  });

  it("retries a failed batch with the same ids: stored once", async () => {
    const traceId = unique("t");
    let failures = 0;
    // The first two requests reach the server and are stored, but their answers are "lost" (the client sees an error).
    const lossy: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      if (String(input).endsWith("/runs/batch") && failures < 2) {
        failures++;
        throw new TypeError("connection reset");
      }
      return response;
    };
    const po = client({ fetch: lossy, tracing: { retryBaseMs: 10 } });
    for (let i = 0; i < 3; i++) po.record({ model: "m", input: { prompt: `r${i}` }, status: "ok", traceId });
    expect(await po.flush()).toBe(true);
    expect(po.stats.tracing).toMatchObject({ requests: 3, retries: 2, sent: 3, duplicates: 3, failed: 0 });
    expect(await runsOf(server.url, { traceId })).toHaveLength(3);
  });

  it("drops and counts runs when the queue is full, and never waits", async () => {
    const gate = gatedFetch(); // closed: nothing is sent until it opens
    const po = client({ fetch: gate.fetch, tracing: { maxQueueSize: 5, batchSize: 100, flushIntervalMs: 60_000 } });
    const traceId = unique("t");
    const ids = Array.from({ length: 8 }, (_, i) => po.record({ model: "m", input: { prompt: `q${i}` }, status: "ok", traceId }));
    expect(ids.filter((id) => id === null)).toHaveLength(3);
    expect(po.stats.tracing).toMatchObject({ queued: 5, dropped: 3, pending: 5 });
    gate.open();
    expect(await po.flush()).toBe(true);
    expect((await runsOf(server.url, { traceId })).map((r) => r.input.prompt).sort()).toEqual(["q0", "q1", "q2", "q3", "q4"]);
  });

  it("gives up on a batch the server refuses, keeping the valid runs of it", async () => {
    const po = client({ tracing: { flushIntervalMs: 60_000 } });
    const traceId = unique("t");
    po.record({ model: "m", input: { prompt: "good 1" }, status: "ok", traceId });
    po.record({ id: "bad id!", model: "m", input: { prompt: "bad" }, status: "ok", traceId });
    po.record({ model: "m", input: { prompt: "good 2" }, status: "ok", traceId });
    expect(await po.flush()).toBe(true);
    expect(po.stats.tracing).toMatchObject({ failed: 1, sent: 2 });
    expect((await runsOf(server.url, { traceId })).map((r) => r.input.prompt).sort()).toEqual(["good 1", "good 2"]);
  });

  it("flush(timeout) gives up waiting, shutdown refuses new runs", async () => {
    const gate = gatedFetch();
    const po = client({ fetch: gate.fetch });
    const traceId = unique("t");
    po.record({ model: "m", input: { prompt: "late" }, status: "ok", traceId });
    expect(await po.flush(100)).toBe(false);
    gate.open();
    expect(await po.shutdown()).toBe(true);
    expect(po.record({ model: "m", input: { prompt: "after" }, status: "ok", traceId })).toBeNull();
    expect(po.stats.tracing).toMatchObject({ sent: 1, dropped: 1 });
    expect(await runsOf(server.url, { traceId })).toHaveLength(1);
  });

  it("a Node process that records and ends sends its runs on the way out", () => {
    const dist = join(PACKAGE, "dist", "index.js");
    expect(existsSync(dist), "build the package first (npm run build)").toBe(true);
    const traceId = unique("t");
    const script = `
      import { PromptOps } from "@promptops/sdk/node";
      const po = new PromptOps({ url: ${JSON.stringify(server.url)}, apiKey: ${JSON.stringify(ADMIN_KEY)}, store: null, tracing: { flushIntervalMs: 60000 } });
      for (let i = 0; i < 3; i++) po.record({ model: "m", input: { prompt: "exit " + i }, status: "ok", traceId: ${JSON.stringify(traceId)} });
    `;
    // Imported by package name (Node resolves a package's own name through its `exports`), as an app would.
    const child = spawnSync(process.execPath, ["--input-type=module", "-e", script], { cwd: PACKAGE, encoding: "utf8", timeout: 30_000 });
    expect(child.status, child.stderr).toBe(0);
    return runsOf(server.url, { traceId }).then((runs) => expect(runs).toHaveLength(3));
  });

  it("client ids have the server's shape and sort by time", () => {
    const a = newRunId(1_000_000);
    const b = newRunId(2_000_000);
    expect(a).toMatch(/^run_[0-9a-z]{26}$/);
    expect(a < b).toBe(true);
  });
});
