// A project's own embedding model for search, in the browser against a real server and a loopback server speaking
// the OpenAI embeddings API (vectors: hashed bags of words, so texts that share words are close). The admin picks
// the connection and model in Settings → Search, the project's prompts are embedded again in the background, search
// by meaning uses the provider, and a provider that fails leaves search by words with a warning on the page.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, before, test } from "node:test";
import { ADMIN, adminApi, expectAccessible, signIn, useServerAndBrowser } from "./support.mjs";

const MODEL = "text-embedding-3-small";
const DIMENSIONS = 64;
const provider = { server: null, url: "", failing: false, calls: 0 };

function embedding(text) {
  const vector = new Array(DIMENSIONS).fill(0);
  for (const word of text.toLowerCase().match(/\w+/g) ?? []) {
    let hash = 2166136261;
    for (const char of word) hash = Math.imul(hash ^ char.charCodeAt(0), 16777619) >>> 0;
    vector[hash % DIMENSIONS] += 1;
  }
  const norm = Math.hypot(...vector);
  return norm ? vector.map((x) => x / norm) : vector;
}

before(async () => {
  provider.server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => (body += chunk));
    request.on("end", () => {
      provider.calls += 1;
      if (provider.failing || request.url !== "/v1/embeddings") {
        response.writeHead(503, { "Content-Type": "application/json" });
        response.end(JSON.stringify({ error: { message: "The service is temporarily unavailable", type: "server_error" } }));
        return;
      }
      const { input, model } = JSON.parse(body);
      const texts = Array.isArray(input) ? input : [input];
      response.writeHead(200, { "Content-Type": "application/json" });
      response.end(
        JSON.stringify({
          object: "list",
          model,
          data: texts.map((text, index) => ({ object: "embedding", index, embedding: embedding(text) })),
          usage: { prompt_tokens: texts.join(" ").split(/\s+/).length, total_tokens: texts.join(" ").split(/\s+/).length },
        }),
      );
    });
  });
  await new Promise((resolve) => provider.server.listen(0, "127.0.0.1", resolve));
  provider.url = `http://127.0.0.1:${provider.server.address().port}`;
});

after(() => provider.server?.close());

const env = useServerAndBrowser(
  async (base) => {
    await adminApi(base, "POST", "/api/v1/prompts", {
      name: "billing/refund-email",
      template: "Write a polite refund email to the customer about their refund request for order {{ order }}.",
    });
    await adminApi(base, "POST", "/api/v1/prompts", {
      name: "travel/packing-list",
      template: "Make a packing list for a ski holiday in the mountains for {{ people }} people.",
    });
    await adminApi(base, "POST", "/api/v1/providers", { name: "emb", type: "openai", baseUrl: `${provider.url}/v1`, apiKey: "sk-test", maxRetries: 0 });
  },
  { PROMPTOPS_PROVIDER_ALLOWED_HOSTS: "127.0.0.1" },
);

test("an admin searches the project with a provider model, and a failing provider leaves search by words", async () => {
  const context = await env.browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  await signIn(page, env.server.url, ADMIN);
  await page.goto(`${env.server.url}/settings?tab=search`);
  const current = page.getByRole("table", { name: "Search embedding model" });
  await current.getByText("(the server's offline model)", { exact: false }).waitFor();

  const form = page.getByRole("form", { name: "Search with a provider model" });
  await form.getByRole("combobox", { name: "Connection" }).click();
  await page.getByRole("option", { name: "emb", exact: true }).click();
  await form.getByRole("textbox", { name: "Embedding model" }).fill(MODEL);
  await form.getByRole("button", { name: "Use this model" }).click();
  await current.getByText(`emb/${MODEL}`).waitFor();
  assert.ok(provider.calls >= 1, "the model was checked with a call");
  // the project's versions are embedded again in the background; the notice goes once none waits
  await page.getByRole("alert").filter({ hasText: "wait for their vectors" }).waitFor({ state: "detached", timeout: 30_000 });
  await expectAccessible(page, "search settings");
  const settings = await adminApi(env.server.url, "GET", "/api/v1/search/settings");
  assert.equal(settings.documentsWaiting, 0);
  assert.equal(settings.dimensions, 64); // as the check call answered

  // search by meaning with the provider's vectors
  await page.goto(`${env.server.url}/search?q=refund+email+for+the+customer&mode=semantic`);
  const results = page.getByRole("list", { name: "Search results" });
  await results.getByRole("link", { name: "billing/refund-email", exact: true }).waitFor();
  assert.equal(await page.getByText("Searched by words only").count(), 0);
  const searchRuns = await adminApi(env.server.url, "GET", "/api/v1/runs?source=search&limit=50");
  assert.ok(searchRuns.items.length >= 2 && searchRuns.items.every((run) => run.provider === "emb"));

  // the provider goes down: a new query is searched by words, and the page says why
  provider.failing = true;
  await page.goto(`${env.server.url}/search?q=packing+list+for+a+ski+holiday&mode=hybrid`);
  await results.getByRole("link", { name: "travel/packing-list", exact: true }).waitFor();
  const warning = page.getByRole("alert").filter({ hasText: "Searched by words only" });
  await warning.waitFor();
  assert.match(await warning.textContent(), new RegExp(`emb/${MODEL}`));
  await expectAccessible(page, "search with a failing provider");
  provider.failing = false;

  // back to the server's model
  await page.goto(`${env.server.url}/settings?tab=search`);
  await page.getByRole("button", { name: "Use the server's model" }).click();
  await current.getByText("(the server's offline model)", { exact: false }).waitFor();
  await context.close();
});
