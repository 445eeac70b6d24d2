// The library page with 10,000 prompts: the list is paged by the server, so typing, filtering, sorting and
// paging stay quick. Prints what it measured (a figure, not a pass/fail timing): the longest interaction
// (Event Timing API: input to next paint, the figure behind INP) and how long each result took to show.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ADMIN, ADMIN_KEY, signIn, useServerAndBrowser } from "./support.mjs";

const COUNT = 10_000;
const CONCURRENCY = 16;

// This journey is about the library page, not search: the server embeds the 10,000 prompts with the static model
// (0.2 ms a prompt) instead of the default MiniLM (its 10,000 embeddings alone took 10 minutes of a CI run).
const env = useServerAndBrowser(undefined, { PROMPTOPS_SEARCH_EMBEDDINGS: "static" });

async function createPrompts(base) {
  let next = 0;
  async function worker() {
    while (next < COUNT) {
      const i = next++;
      const team = ["billing", "shipping", "returns", "accounts"][i % 4];
      const response = await fetch(`${base}/api/v1/prompts`, {
        method: "POST",
        headers: { Authorization: `Bearer ${ADMIN_KEY}`, "Content-Type": "application/json" },
        body: JSON.stringify({
          name: `scale/${team}/p${String(i).padStart(5, "0")}`,
          description: `Prompt ${i} for the ${team} team`,
          tags: [team],
          template: `Answer the ${team} question: {{ question }}`,
        }),
      });
      if (response.status !== 201) throw new Error(`create ${i}: ${response.status} ${await response.text()}`);
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
}

/** Milliseconds from `action` until `ready` resolves. */
async function timed(action, ready) {
  const start = performance.now();
  await action();
  await ready();
  return Math.round(performance.now() - start);
}

test("the library stays responsive with 10,000 prompts", async () => {
  const started = performance.now();
  await createPrompts(env.server.url);
  const createSeconds = ((performance.now() - started) / 1000).toFixed(1);

  const context = await env.browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  await page.addInitScript(() => {
    window.__interactions = [];
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) if (entry.interactionId) window.__interactions.push({ name: entry.name, duration: entry.duration });
    }).observe({ type: "event", durationThreshold: 16, buffered: true });
  });
  const loadStart = performance.now();
  await signIn(page, env.server.url, ADMIN);
  const table = page.getByRole("table", { name: "Prompts" });
  await table.waitFor();
  const firstLoad = Math.round(performance.now() - loadStart);
  assert.equal(await table.getByRole("row").count(), 51); // header + one page of 50

  const search = await timed(
    () => page.getByLabel("Search", { exact: true }).pressSequentially("p09999", { delay: 30 }),
    () => table.getByRole("link", { name: "scale/accounts/p09999" }).waitFor(),
  );
  assert.equal(await table.getByRole("row").count(), 2);
  await page.getByLabel("Search", { exact: true }).fill("");
  await table.getByRole("link", { name: /^scale\// }).first().waitFor();

  const tag = await timed(
    async () => {
      await page.getByLabel("Tag").fill("returns");
      await page.getByLabel("Tag").blur();
    },
    () => page.waitForURL(/tag=returns/).then(() => table.getByRole("link", { name: "scale/returns/p00002" }).waitFor()),
  );
  const nextPage = await timed(
    () => page.getByRole("button", { name: "Next page" }).click(),
    () => table.getByRole("link", { name: "scale/returns/p00202" }).waitFor(),
  );
  const sort = await timed(
    async () => {
      await page.getByRole("textbox", { name: "Sort" }).or(page.getByRole("combobox", { name: "Sort" })).click();
      await page.getByRole("option", { name: "Recently updated" }).click();
    },
    () => page.waitForURL(/sort=updated/).then(() => table.getByRole("link", { name: "scale/returns/p09998" }).waitFor()),
  );

  const interactions = await page.evaluate(() => window.__interactions);
  const slowest = [...interactions].sort((a, b) => b.duration - a.duration).slice(0, 3);
  const longest = slowest[0]?.duration ?? 0;
  console.log(
    [
      `library with ${COUNT} prompts (created in ${createSeconds} s through the API, ${CONCURRENCY} at a time)`,
      `  sign-in to first page shown      ${firstLoad} ms`,
      `  type a 6-character search → hit   ${search} ms (includes the 250 ms debounce and the typing itself, 30 ms/key)`,
      `  tag filter → first row            ${tag} ms`,
      `  next page → rows shown            ${nextPage} ms`,
      `  sort by updated → rows shown      ${sort} ms`,
      `  longest interaction (input to next paint, ${interactions.length} over 16 ms): ${Math.round(longest)} ms`,
      `  slowest: ${slowest.map((e) => `${e.name} ${Math.round(e.duration)} ms`).join(", ")}`,
    ].join("\n"),
  );
  await context.close();
});
