// The built package in a real browser (Debian's chromium through playwright-core): the core entry point loads as
// plain ES modules without Node, fetches and renders a prompt, and its traces land as runs. The page is on the
// server's own origin; the package's files are served into it under /__sdk/.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_KEY, api, PACKAGE, runsOf, startServer, unique, type RunningServer } from "./support.js";

let server: RunningServer;
let browser: Browser;
const NAME = unique("sdk/browser");
const DIST = join(PACKAGE, "dist");

beforeAll(async () => {
  [server, browser] = await Promise.all([
    startServer(),
    chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium", args: ["--no-sandbox", "--disable-dev-shm-usage"] }),
  ]);
  await api(server.url, "POST", "/api/v1/prompts", {
    name: NAME,
    template: "{{ greeting | title }}, {{ who }}!",
    variables: [{ name: "greeting" }, { name: "who" }],
    labels: ["production"],
  });
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

describe("in a browser", () => {
  it("the core entry point imports nothing from Node", () => {
    for (const file of readdirSync(DIST).filter((f) => f.endsWith(".js") && f !== "node.js")) {
      const code = readFileSync(join(DIST, file), "utf8");
      expect(code, file).not.toMatch(/from\s+["']node:|require\(/);
      const imports = [...code.matchAll(/from\s+["']([^"']+)["']/g)].map((m) => m[1]);
      expect(imports.every((i) => i?.startsWith("./")), `${file} imports ${imports.join(", ")}`).toBe(true);
    }
  });

  it("fetches, renders, traces, and starts from localStorage with the server unreachable", async () => {
    const page = await browser.newPage();
    await page.route(`${server.url}/__sdk/**`, (route) => {
      const file = new URL(route.request().url()).pathname.slice("/__sdk/".length);
      if (file === "page.html") {
        // An application page on the server's origin (the server's own answers carry a CSP that runs no script).
        route.fulfill({ body: "<!doctype html><title>app</title>", contentType: "text/html" });
        return;
      }
      route.fulfill({ body: readFileSync(join(DIST, file), "utf8"), contentType: "text/javascript" });
    });
    await page.goto(`${server.url}/__sdk/page.html`);
    const traceId = unique("t");
    // A string, not a function: vitest would rewrite a dynamic import() inside a function it compiles.
    const script = `(async () => {
      const { PromptOps, localStorageStore } = await import("/__sdk/index.js");
      const po = new PromptOps({ url: location.origin, apiKey: ${JSON.stringify(ADMIN_KEY)}, store: localStorageStore() });
      const prompt = await po.getPrompt(${JSON.stringify(NAME)}, { label: "production" });
      const again = await po.getPrompt(${JSON.stringify(NAME)}, { label: "production" });
      const rendered = await prompt.render({ greeting: "good morning", who: "Ada" });
      await po.trace(prompt, (t) => t.record({ model: "m", input: { prompt: rendered.text }, output: "ok" }), { traceId: ${JSON.stringify(traceId)} });
      const flushed = await po.flush();
      // A page loaded while the server is unreachable starts from localStorage.
      const down = new PromptOps({ url: "http://127.0.0.1:9", apiKey: "po_00000000_" + "x".repeat(40), store: localStorageStore() });
      const stored = await down.getPrompt(${JSON.stringify(NAME)}, { label: "production" });
      return { same: prompt === again, version: prompt.version, text: rendered.text, flushed, stats: po.stats,
               stored: { version: stored.version, versionId: stored.versionId === prompt.versionId, storeHits: down.stats.cache.storeHits } };
    })()`;
    const result = await page.evaluate(script);
    expect(result).toMatchObject({ same: true, version: 1, text: "Good Morning, Ada!", flushed: true });
    expect((result as any).stored).toEqual({ version: 1, versionId: true, storeHits: 1 });
    expect((result as any).stats.cache).toMatchObject({ misses: 1, hits: 1 });
    expect((result as any).stats.tracing).toMatchObject({ sent: 1 });
    const runs = await runsOf(server.url, { traceId });
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ input: { prompt: "Good Morning, Ada!" }, source: "sdk" });
    await page.close();
  });
});
