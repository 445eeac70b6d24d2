// Browser journey of production monitoring: a QA analyst opens the monitoring page of a prompt label that an
// application reported traffic for (SDK runs), reads volume, errors, feedback and the versions that served the
// label, and checks drift: refusals jumped in the last hours, so the page says the refusal rate drifted.
import assert from "node:assert/strict";
import { test } from "node:test";
import { adminApi, expectAccessible, screenshot, signIn, useServerAndBrowser } from "./support.mjs";

const QA = { email: "qa-monitor@example.com", password: "qa-monitor-pass-1" };
const PROMPT = "monitor/triage";
const HOUR = 3600_000;

function run(version, at, output, extra = {}) {
  return {
    prompt: PROMPT,
    version,
    provider: "openai",
    model: "gpt-test",
    input: { prompt: "Classify: the parcel arrived late" },
    output,
    inputTokens: 20,
    outputTokens: 2,
    costUsd: 0.001,
    latencyMs: 150 + (output.length % 7) * 10,
    createdAt: new Date(at).toISOString(),
    ...extra,
  };
}

const env = useServerAndBrowser(async (base) => {
  await adminApi(base, "POST", "/api/v1/members", { email: QA.email, name: "Quinn QA", role: "QAAnalyst", password: QA.password });
  await adminApi(base, "POST", "/api/v1/prompts", { name: PROMPT, template: "Classify: {{ text }}", labels: ["production"] });
  const now = Date.now();
  const runs = [];
  // baseline: 18 hours of steady labels before the last hour and a half; current: the last hour, mostly refusals
  for (let i = 0; i < 120; i++) runs.push(run(1, now - 1.5 * HOUR - (i / 120) * 18 * HOUR, ["positive", "negative", "neutral"][i % 3]));
  for (let i = 0; i < 60; i++) {
    const refused = i % 5 !== 0;
    runs.push(run(1, now - 0.9 * HOUR + (i / 60) * 0.8 * HOUR, refused ? "I'm sorry, I can't help with that." : "positive"));
  }
  runs.push(run(1, now - 2 * HOUR, "", { status: "error", output: null, errorClass: "Timeout" }));
  const answer = await adminApi(base, "POST", "/api/v1/runs/batch", { runs });
  assert.equal(answer.accepted, runs.length);
  for (const score of [5, 3]) await adminApi(base, "POST", "/api/v1/feedback", { prompt: `${PROMPT}@production`, score });
});

async function statValue(page, label) {
  const stat = page.getByRole("group", { name: label, exact: true });
  await stat.waitFor();
  return (await stat.innerText()).replace(label, "").trim();
}

test("a QA analyst reads a label's production metrics and finds the refusal drift", async () => {
  const page = await env.browser.newPage({ viewport: { width: 1280, height: 900 } });
  await signIn(page, env.server.url, QA);
  await page.getByRole("link", { name: "Monitoring" }).click();
  await page.getByRole("heading", { name: "Monitoring", level: 1 }).waitFor();
  await page.getByText("Choose a prompt").waitFor();

  // the prompt goes into the address, so the view is a link
  const promptBox = page.getByRole("textbox", { name: "Prompt" });
  await promptBox.fill(PROMPT);
  await promptBox.press("Enter");
  await page.waitForURL(/prompt=monitor%2Ftriage/);
  await page.goto(`${env.server.url}/monitoring?prompt=${encodeURIComponent(PROMPT)}&range=24h`);
  assert.equal(await statValue(page, "Runs"), "181");
  assert.equal(await statValue(page, "Feedback mean"), "4.00");
  assert.match(await statValue(page, "Latency p95"), /^\d+ ms$/);
  const versions = page.getByRole("table", { name: "Versions" });
  await versions.waitFor();
  assert.match(await versions.innerText(), /v1\s+since .*\s+181\s/);
  await page.getByRole("heading", { name: "Volume per hour (UTC)" }).waitFor();
  const volume = page.getByRole("figure", { name: "Volume per hour (UTC)" });
  await volume.getByText("Show the numbers").click();
  const cells = await volume.getByRole("table").locator("tbody tr td:nth-child(2)").allInnerTexts();
  assert.equal(cells.reduce((sum, c) => sum + Number(c), 0), 180);
  await page.getByText("No online evaluation scores in the range.").waitFor();
  await expectAccessible(page, "monitoring");

  // drift: the last hour against the day before flags the refusals
  const drift = page.getByRole("region", { name: "Drift" });
  const compare = drift.getByRole("combobox", { name: "Compare", exact: true }).or(drift.getByRole("textbox", { name: "Compare", exact: true })).first();
  await compare.click();
  await page.getByRole("option", { name: "Last hour vs the 24 hours before" }).click();
  await drift.getByRole("button", { name: "Check drift" }).click();
  const verdict = drift.getByRole("status");
  await verdict.waitFor();
  assert.match(await verdict.innerText(), /Drift detected: .*Refusal rate/);
  const signals = drift.getByRole("table", { name: "Drift signals" });
  assert.match(await signals.innerText(), /Refusal rate\s+drifted/i);
  assert.match(await signals.innerText(), /Cost per run\s+no/);
  await drift.getByText(/runs of the current window to review/).waitFor();
  await screenshot(page, "monitoring");
  await expectAccessible(page, "monitoring (drift)");

  // an unknown prompt is explained
  await page.goto(`${env.server.url}/monitoring?prompt=no/such-prompt`);
  const alert = page.getByRole("alert").first();
  await alert.waitFor();
  assert.match(await alert.innerText(), /not found/);
  await page.close();
});
