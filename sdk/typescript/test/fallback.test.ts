// The server down: the persisted store (a file per prompt, written atomically) and `fallback` for a first start.
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FileStore, PromptOps } from "../src/node.js";
import { ADMIN_KEY, api, freePort, startServer, unique, type RunningServer } from "./support.js";

let server: RunningServer;
const PLAIN = unique("sdk/plain");
const JINJA = unique("sdk/jinja");

beforeAll(async () => {
  server = await startServer();
  await api(server.url, "POST", "/api/v1/prompts", {
    name: PLAIN,
    kind: "chat",
    messages: [
      { role: "system", content: "You are {{ persona }}." },
      { role: "user", content: "{{question}}" },
    ],
    variables: [{ name: "persona", default: "helpful" }, { name: "question" }],
    modelConfig: { model: "gpt-4o-mini", params: {} },
    labels: ["production"],
  });
  await api(server.url, "POST", "/api/v1/prompts", {
    name: JINJA,
    template: "{% for x in items %}{{ x }};{% endfor %}",
    variables: [{ name: "items", type: "array" }],
    labels: ["production"],
  });
});

afterAll(async () => {
  await server?.stop();
});

describe("with the server down", () => {
  it("a first start uses `fallback`, renders it locally, and throws without one", async () => {
    const down = `http://127.0.0.1:${await freePort()}`;
    const po = new PromptOps({ url: down, apiKey: ADMIN_KEY, store: null, flushOnExit: false, timeoutMs: 2000 });
    const error = await po.getPrompt("support/triage", { label: "production" }).catch((e) => e);
    expect(error).toMatchObject({ code: "network_error", status: undefined });

    const p = await po.getPrompt("support/triage", {
      label: "production",
      fallback: { template: "Classify: {{ ticket }}", variables: [{ name: "ticket" }], modelConfig: { model: "gpt-4o-mini", params: {} } },
    });
    expect(p).toMatchObject({ name: "support/triage", version: 0, versionId: null, label: "production", isFallback: true });
    expect(p.modelConfig.model).toBe("gpt-4o-mini");
    const rendered = await p.render({ ticket: "refund please" });
    expect(rendered).toMatchObject({ kind: "text", text: "Classify: refund please", renderedBy: "local", version: null });
    expect(po.stats.cache).toMatchObject({ fallbacks: 1, localRenders: 1 });
    // The fallback is remembered: the next call does not wait for the network again.
    expect(await po.getPrompt("support/triage", { label: "production", fallback: "ignored" })).toBe(p);
    // Chat messages make a chat fallback.
    const chat = await po.getPrompt("support/reply", { fallback: [{ role: "system", content: "Be brief, {{ name }}." }] });
    expect(chat).toMatchObject({ kind: "chat", label: "latest", isFallback: true });
    expect(chat.toOpenAIMessages(await chat.render({ name: "Bo" }))).toEqual([{ role: "system", content: "Be brief, Bo." }]);
  });

  it("a client restarted while the server is down gets the last known version from disk", async () => {
    const dir = mkdtempSync(join(tmpdir(), "promptops-sdk-cache-"));
    const before = new PromptOps({ url: server.url, apiKey: ADMIN_KEY, cacheDir: dir, flushOnExit: false });
    const live = await before.getPrompt(PLAIN, { label: "production" });
    await before.getPrompt(JINJA, { label: "production" });
    const liveRender = await live.render({ question: "Where is my order?" });
    expect(liveRender.renderedBy).toBe("server");

    // Written atomically: only finished files, no temporary ones left.
    const waitForFiles = async () => {
      for (let i = 0; i < 100 && readdirSync(dir).filter((f) => f.endsWith(".json")).length < 2; i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    await waitForFiles();
    const files = readdirSync(dir);
    expect(files.filter((f) => f.endsWith(".json"))).toHaveLength(2);
    expect(files.filter((f) => f.endsWith(".tmp"))).toHaveLength(0);
    for (const f of files) expect(() => JSON.parse(readFileSync(join(dir, f), "utf8"))).not.toThrow();

    await server.stop();
    const after = new PromptOps({ url: server.url, apiKey: ADMIN_KEY, cacheDir: dir, flushOnExit: false, timeoutMs: 2000 });
    const stored = await after.getPrompt(PLAIN, { label: "production", fallback: "not used" });
    expect(stored).toMatchObject({ name: PLAIN, version: 1, versionId: live.versionId, isFallback: false, label: "production" });
    expect(after.stats.cache).toMatchObject({ storeHits: 1, fallbacks: 0 });
    // Plain substitution renders the same without the server.
    const offline = await stored.render({ question: "Where is my order?" });
    expect(offline).toMatchObject({ renderedBy: "local", messages: liveRender.messages, versionId: live.versionId });
    // A template that needs Jinja2 cannot: the network error is what the caller gets.
    const jinja = await after.getPrompt(JINJA, { label: "production" });
    const error = await jinja.render({ items: [1, 2] }).catch((e) => e);
    expect(error).toMatchObject({ code: "network_error" });
    // Another server's (or project's) entries are not used.
    const other = new PromptOps({ url: "http://127.0.0.1:9", apiKey: ADMIN_KEY, cacheDir: dir, flushOnExit: false });
    expect(await other.getPrompt(PLAIN, { label: "production" }).catch((e) => e)).toMatchObject({ code: "network_error" });
    server = await startServer(); // for afterAll
  });

  it("a FileStore reader sees whole entries only, while writers race", async () => {
    const store = new FileStore(mkdtempSync(join(tmpdir(), "promptops-sdk-store-")));
    const entry = (n: number) => ({ resolved: { prompt: { name: "x".repeat(50_000) }, version: { version: n } } as never, fetchedAt: n });
    await store.set("k", entry(0));
    const reads: Array<Promise<unknown>> = [];
    const writes = Array.from({ length: 30 }, (_, i) => store.set("k", entry(i + 1)));
    for (let i = 0; i < 60; i++) reads.push(store.get("k"));
    await Promise.all(writes);
    for (const got of (await Promise.all(reads)) as Array<{ resolved: any; fetchedAt: number }>) {
      expect(got.resolved.version.version).toBe(got.fetchedAt);
      expect(got.resolved.prompt.name).toHaveLength(50_000);
    }
    expect(readdirSync(store.dir).filter((f) => f.endsWith(".tmp"))).toHaveLength(0);
    expect(await store.get("other")).toBeUndefined();
  });
});
