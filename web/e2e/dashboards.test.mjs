// Browser journey of the dashboards: a product manager (Viewer) sees the runs, cost, latency and feedback the
// project really produced on the embedded model, switches the range through the address, and a backwards custom
// range is a readable error rather than an empty chart.
import assert from "node:assert/strict";
import { test } from "node:test";
import { adminApi, expectAccessible, screenshot, signIn, useServerAndBrowser } from "./support.mjs";

const PM = { email: "pm@example.com", password: "product-manager-1" };
const PROMPT = "sentiment/few-shot";
const REVIEWS = ["Broke after a day.", "Love it, works great.", "It is fine.", "Terrible support."];

const env = useServerAndBrowser(async (base) => {
  await adminApi(base, "POST", "/api/v1/members", { email: PM.email, name: "Pat Manager", role: "Viewer", password: PM.password });
  for (const review of REVIEWS) {
    const answer = await adminApi(base, "POST", "/api/v1/playground/run", {
      prompt: `${PROMPT}@production`,
      variables: { review },
      models: [{ provider: "local", model: "gemma-3-270m", params: { max_tokens: 3, temperature: 0 } }],
    });
    assert.equal(answer.results[0].status, "ok", JSON.stringify(answer.results[0]));
  }
  for (const score of [5, 4, 2]) await adminApi(base, "POST", "/api/v1/feedback", { prompt: PROMPT, score });
});

/** A Mantine Select by its label (an input with the combobox or the textbox role, depending on the version). */
function select(page, name) {
  return page.getByRole("combobox", { name, exact: true }).or(page.getByRole("textbox", { name, exact: true })).first();
}

async function statValue(page, label) {
  const stat = page.getByRole("group", { name: label, exact: true });
  await stat.waitFor();
  return (await stat.innerText()).replace(label, "").trim();
}

test("a Viewer reads usage, top prompts and feedback trends, and switches the range in the address", async () => {
  const page = await env.browser.newPage({ viewport: { width: 1280, height: 800 } });
  await signIn(page, env.server.url, PM);
  await page.goto(`${env.server.url}/dashboards?range=24h`);
  await page.getByRole("heading", { name: "Dashboards", level: 1 }).waitFor();
  assert.equal(await statValue(page, "Runs"), String(REVIEWS.length));
  assert.equal(await statValue(page, "Errors"), "0");
  assert.match(await statValue(page, "Latency p95"), /^\d+ ms$/);
  await page.getByRole("heading", { name: "Runs per hour (UTC)" }).waitFor();
  await page.getByRole("heading", { name: "Cost per hour (UTC) by model" }).waitFor();
  await page.getByRole("table", { name: "Top prompts by cost" }).waitFor();
  await screenshot(page, "dashboards");

  // the top-prompts table links to the prompt page
  const top = page.getByRole("table", { name: "Top prompts by cost" });
  const link = top.getByRole("link", { name: PROMPT });
  await link.waitFor();
  assert.match(await top.innerText(), new RegExp(`${PROMPT}\\s+${REVIEWS.length}\\s`));

  // each chart's numbers: the runs table sums to what was created
  const figure = page.getByRole("figure", { name: "Runs per hour (UTC)" });
  await figure.getByText("Show the numbers").click();
  const cells = await figure.getByRole("table").locator("tbody tr td:nth-child(2)").allInnerTexts();
  // 24 hours that do not start on the hour touch 25 whole UTC hours
  assert.ok(cells.length === 24 || cells.length === 25, String(cells.length));
  assert.equal(cells.reduce((sum, c) => sum + Number(c), 0), REVIEWS.length);

  // feedback trend: the mean of 5, 4 and 2 today
  const feedback = page.getByRole("figure", { name: "Feedback score per day (UTC)" });
  await feedback.getByText("Show the numbers").click();
  assert.match(await feedback.getByRole("table").innerText(), /3\.6667\s+3\s+0 \/ 0/);
  await expectAccessible(page, "dashboards (24 h)");

  // the range lives in the address: 90 days in day buckets, the same runs
  await page.goto(`${env.server.url}/dashboards?range=90d&groupBy=prompt`);
  await page.getByRole("heading", { name: "Cost per day (UTC) by prompt" }).waitFor();
  assert.equal(await statValue(page, "Runs"), String(REVIEWS.length));
  assert.equal(await select(page, "Time range").inputValue(), "Last 90 days");
  await expectAccessible(page, "dashboards (90 d)");

  // choosing a range in the picker writes it into the address
  await select(page, "Time range").click();
  await page.getByRole("option", { name: "Last 7 days" }).click();
  await page.waitForURL(/range=7d/);
  await page.getByRole("heading", { name: "Runs per hour (UTC)" }).waitFor();
  assert.equal(await statValue(page, "Runs"), String(REVIEWS.length));

  // a backwards custom range is explained, not drawn
  await page.goto(`${env.server.url}/dashboards?range=custom&from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z`);
  const alert = page.getByRole("alert").first();
  await alert.waitFor();
  assert.match(await alert.innerText(), /'from' .* must be before 'to'/);
  await expectAccessible(page, "dashboards (bad range)");
  await page.close();
});
