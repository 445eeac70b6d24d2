// getPrompt against a real server: selectors, fields, server-side rendering, the stale-while-revalidate cache.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PromptOps, PromptOpsError, type PromptOpsOptions } from "../src/index.js";
import { api, clientOf, gatedFetch, startServer, unique, until, type RunningServer } from "./support.js";

let server: RunningServer;
const TRIAGE = unique("sdk/triage");
const REPLY = unique("sdk/reply");

beforeAll(async () => {
  server = await startServer();
  await api(server.url, "POST", "/api/v1/prompts", {
    name: TRIAGE,
    template: "Classify this ticket from {{ customer }}:\n{{ ticket }}\n",
    variables: [{ name: "customer" }, { name: "ticket" }],
    modelConfig: { provider: "openai", model: "gpt-4o-mini", params: { temperature: 0 } },
    labels: ["production"],
  });
  await api(server.url, "POST", `/api/v1/prompts/${TRIAGE}/versions`, {
    template: "{% if urgent %}URGENT {% endif %}{{ customer | upper }}: {{ ticket }}",
    variables: [{ name: "customer" }, { name: "ticket" }, { name: "urgent", type: "boolean", required: false }],
    modelConfig: { provider: "openai", model: "gpt-4o", params: {} },
    labels: ["staging"],
  });
  await api(server.url, "POST", "/api/v1/prompts", {
    name: REPLY,
    kind: "chat",
    messages: [
      { role: "system", content: "You support {{ product }}." },
      { role: "user", content: "{{ question }}" },
    ],
    variables: [{ name: "product", default: "Acme" }, { name: "question" }],
  });
});

afterAll(async () => {
  await server?.stop();
});

const client = (extra: PromptOpsOptions = {}) => clientOf(server, extra);

describe("getPrompt", () => {
  it("resolves a label, a version number and the newest version", async () => {
    const po = client();
    const production = await po.getPrompt(TRIAGE, { label: "production" });
    expect(production).toMatchObject({ name: TRIAGE, version: 1, label: "production", kind: "text", isFallback: false });
    expect(production.versionId).toMatch(/^ver_/);
    expect(production.template).toBe("Classify this ticket from {{ customer }}:\n{{ ticket }}\n");
    expect(production.modelConfig).toEqual({ provider: "openai", model: "gpt-4o-mini", params: { temperature: 0 } });
    expect(production.variables.map((v) => v.name)).toEqual(["customer", "ticket"]);

    const two = await po.getPrompt(TRIAGE, { version: 2 });
    expect(two).toMatchObject({ version: 2, label: null });
    expect(two.modelConfig.model).toBe("gpt-4o");
    const latest = await po.getPrompt(TRIAGE);
    expect(latest).toMatchObject({ version: 2, label: "latest" });
    expect(latest.versionId).toBe(two.versionId);
    expect(po.stats.cache).toMatchObject({ misses: 3, fetches: 3, hits: 0 });
  });

  it("throws the server's problem for an unknown prompt or label, even with a fallback", async () => {
    const po = client();
    const missing = await po.getPrompt("sdk/nope-" + TRIAGE.slice(-6), { fallback: "x" }).catch((e) => e);
    expect(missing).toBeInstanceOf(PromptOpsError);
    expect(missing).toMatchObject({ status: 404, code: "prompt_not_found" });
    const label = await po.getPrompt(TRIAGE, { label: "canary" }).catch((e) => e);
    expect(label).toMatchObject({ status: 404, code: "label_not_found" });
    const badKey = await new PromptOps({ url: server.url, apiKey: "po_00000000_" + "x".repeat(40), flushOnExit: false })
      .getPrompt(TRIAGE)
      .catch((e) => e);
    expect(badKey).toMatchObject({ status: 401 });
    expect(po.stats.cache.fallbacks).toBe(0);
  });

  it("renders on the server, pinned to the version in hand", async () => {
    const po = client();
    const production = await po.getPrompt(TRIAGE, { label: "production" });
    const staging = await po.getPrompt(TRIAGE, { label: "staging" });
    const vars = { customer: "Dana", ticket: "Charged twice", urgent: true };
    const a = await production.render(vars);
    expect(a).toMatchObject({ kind: "text", text: "Classify this ticket from Dana:\nCharged twice\n", version: 1, renderedBy: "server" });
    expect(a.versionId).toBe(production.versionId);
    const b = await staging.render(vars);
    expect(b.text).toBe("URGENT DANA: Charged twice");
    expect(production.toOpenAIMessages(a)).toEqual([{ role: "user", content: a.text }]);

    const missing = await staging.render({ customer: "Dana" }).catch((e) => e);
    expect(missing).toMatchObject({ status: 422, code: "missing_variables" });
    expect(missing.problem.missing).toEqual(["ticket"]);
  });

  it("renders chat prompts to OpenAI messages", async () => {
    const po = client();
    const reply = await po.getPrompt(REPLY);
    expect(reply.kind).toBe("chat");
    const rendered = await reply.render({ question: "How do I export?" });
    expect(reply.toOpenAIMessages(rendered)).toEqual([
      { role: "system", content: "You support Acme." },
      { role: "user", content: "How do I export?" },
    ]);
  });
});

describe("the cache", () => {
  it("answers a fresh prompt from memory without a request", async () => {
    const gate = gatedFetch();
    gate.open();
    const po = client({ fetch: gate.fetch, cacheTtlMs: 60_000 });
    const first = await po.getPrompt(TRIAGE, { label: "production" });
    for (let i = 0; i < 100; i++) expect(await po.getPrompt(TRIAGE, { label: "production" })).toBe(first);
    expect(gate.calls).toHaveLength(1);
    expect(po.stats.cache).toMatchObject({ misses: 1, hits: 100, fetches: 1 });
  });

  it("serves a stale prompt at once and refreshes it once in the background for concurrent callers", async () => {
    const name = unique("sdk/swr");
    await api(server.url, "POST", "/api/v1/prompts", { name, template: "one", labels: ["production"] });
    const gate = gatedFetch();
    gate.open();
    const po = client({ fetch: gate.fetch, cacheTtlMs: 50 });
    const v1 = await po.getPrompt(name, { label: "production" });
    expect(v1.version).toBe(1);

    await api(server.url, "POST", `/api/v1/prompts/${name}/versions`, { template: "two", labels: ["production"] });
    await new Promise((r) => setTimeout(r, 80)); // past the TTL
    gate.close(); // the refresh will hang until the gate opens: a stale hit must not wait for it
    const hits = await Promise.all(Array.from({ length: 50 }, () => po.getPrompt(name, { label: "production" })));
    expect(hits.every((p) => p === v1)).toBe(true);
    expect(gate.calls).toHaveLength(2); // the first fetch and ONE refresh for 50 stale hits
    expect(po.stats.cache).toMatchObject({ staleHits: 50, fetches: 2 });

    gate.open();
    const v2 = await until(async () => {
      const p = await po.getPrompt(name, { label: "production" });
      return p.version === 2 ? p : undefined;
    }, "the refreshed version");
    expect(v2.template).toBe("two");
  });

  it("keeps serving the stale prompt when a refresh fails, and retries later", async () => {
    const name = unique("sdk/swr-down");
    await api(server.url, "POST", `/api/v1/prompts`, { name, template: "stays", labels: ["production"] });
    let down = false;
    const errors: unknown[] = [];
    const po = client({
      cacheTtlMs: 10,
      retryAfterMs: 1000,
      onError: (e) => errors.push(e),
      fetch: (input, init) => (down ? fetch("http://127.0.0.1:9/", init) : fetch(input, init)),
    });
    const first = await po.getPrompt(name, { label: "production" });
    down = true;
    await new Promise((r) => setTimeout(r, 20));
    expect(await po.getPrompt(name, { label: "production" })).toBe(first);
    await until(() => po.stats.cache.refreshErrors === 1 || undefined, "the failed refresh");
    // Within retryAfterMs the entry counts as fresh: no new attempt.
    expect(await po.getPrompt(name, { label: "production" })).toBe(first);
    expect(po.stats.cache.fetches).toBe(2);
    expect(errors[0]).toMatchObject({ code: "network_error" });
    down = false;
    await new Promise((r) => setTimeout(r, 1100));
    await po.getPrompt(name, { label: "production" });
    await until(() => po.stats.cache.fetches === 3 || undefined, "the next refresh");
  });

  it("never refetches a version asked by number", async () => {
    const gate = gatedFetch();
    gate.open();
    const po = client({ fetch: gate.fetch, cacheTtlMs: 0 });
    const one = await po.getPrompt(TRIAGE, { version: 1 });
    await new Promise((r) => setTimeout(r, 5));
    expect(await po.getPrompt(TRIAGE, { version: 1 })).toBe(one);
    expect(gate.calls).toHaveLength(1);
  });

  it("makes one request for concurrent first fetches", async () => {
    const gate = gatedFetch();
    const po = client({ fetch: gate.fetch });
    const all = Promise.all(Array.from({ length: 20 }, () => po.getPrompt(REPLY)));
    await until(() => gate.calls.length === 1 || undefined, "the first request");
    gate.open();
    const prompts = await all;
    expect(new Set(prompts).size).toBe(1);
    expect(gate.calls).toHaveLength(1);
  });
});
