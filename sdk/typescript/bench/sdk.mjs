// Figures for the TypeScript SDK (`npm run bench`, after `npm run build`): against a real `promptops serve` on a
// fresh SQLite database (loopback), what a cached getPrompt costs (fresh and stale), a cold fetch, a start from
// the disk store with the server stopped, what recording a run costs the caller (record, trace), and how fast
// the background sender gets runs into the server. Prints the figures; asserts nothing about speed.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PromptOps } from "../dist/node.js";
import { ADMIN_KEY, api, startServer } from "../test/server.mjs";

const NAME = "bench/triage";
const SELECTOR = { label: "production" };

function quantile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** Times `n` calls one after the other; prints p50/p99/mean in µs. */
async function measure(what, n, fn) {
  const times = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const start = performance.now();
    await fn(i);
    times[i] = (performance.now() - start) * 1000;
  }
  times.sort();
  const mean = times.reduce((a, b) => a + b, 0) / n;
  const f = (x) => x.toFixed(x < 10 ? 2 : 0).padStart(9);
  console.log(`${what.padEnd(62)} p50 ${f(quantile(times, 0.5))} µs  p99 ${f(quantile(times, 0.99))} µs  mean ${f(mean)} µs  (n=${n})`);
}

const server = await startServer();
const cacheDir = mkdtempSync(join(tmpdir(), "promptops-sdk-bench-"));
const make = (extra = {}) => new PromptOps({ url: server.url, apiKey: ADMIN_KEY, cacheDir, flushOnExit: false, ...extra });
try {
  await api(server.url, "POST", "/api/v1/prompts", {
    name: NAME,
    template: "Classify this ticket from {{ customer }}:\n{{ ticket }}",
    variables: [{ name: "customer" }, { name: "ticket" }],
    labels: ["production"],
  });
  console.log(`TypeScript SDK, Node ${process.version}, promptops serve on SQLite at ${server.url}`);

  const fresh = make();
  await fresh.getPrompt(NAME, SELECTOR);
  await measure("getPrompt, fresh in memory", 100_000, () => fresh.getPrompt(NAME, SELECTOR));

  const stale = make({ cacheTtlMs: 0 });
  await stale.getPrompt(NAME, SELECTOR);
  await measure("getPrompt, stale in memory (refresh in the background)", 100_000, () => stale.getPrompt(NAME, SELECTOR));
  console.log(`  -> ${stale.stats.cache.staleHits} stale hits made ${stale.stats.cache.fetches - 1} background requests (single flight)`);

  const cold = make({ store: null });
  await measure("getPrompt, cold (GET /api/v1/prompts/{name}, loopback)", 300, () => {
    cold.clearCache();
    return cold.getPrompt(NAME, SELECTOR);
  });

  const prompt = await fresh.getPrompt(NAME, SELECTOR);
  await measure("prompt.render (POST .../render, loopback)", 300, () => prompt.render({ customer: "Dana", ticket: "Charged twice" }));

  const tracer = make({ tracing: { maxQueueSize: 1_000_000, batchSize: 500 } });
  await measure("record one run (queued, sent in the background)", 50_000, (i) =>
    tracer.record({ model: "m", input: { prompt: `p${i}` }, output: "o", status: "ok" }),
  );
  await measure("trace() around a callback that records", 50_000, (i) =>
    tracer.trace(prompt, (t) => t.record({ model: "m", input: { prompt: `t${i}` }, output: "o" })),
  );
  const start = performance.now();
  await tracer.flush();
  const s = tracer.stats.tracing;
  const seconds = (performance.now() - start) / 1000;
  console.log(
    `sender: ${s.sent} runs stored in ${s.requests} requests, ${(s.sent / seconds).toFixed(0)} runs/s while draining ` +
      `(${seconds.toFixed(1)} s after the last record), dropped ${s.dropped}, failed ${s.failed}`,
  );
  await tracer.shutdown();

  await make().getPrompt(NAME, SELECTOR); // the store has it
  await new Promise((r) => setTimeout(r, 200));
  await server.stop();
  const offline = make({ timeoutMs: 2000 });
  await measure("getPrompt, server stopped: from the disk store (new client)", 300, async () => {
    offline.clearCache();
    const p = await offline.getPrompt(NAME, SELECTOR);
    if (p.version !== 1) throw new Error("not served from the store");
  });
  console.log(`  -> store hits ${offline.stats.cache.storeHits}; the caller waited for "connection refused" then read one file`);
} finally {
  await server.stop();
}
