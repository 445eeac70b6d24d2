// Evaluations in the browser against a real server and the embedded local model: a small dataset, an
// evaluation started from the form with live progress, a case's drill-down, the CSV export, a second version
// evaluated and the two compared with the verdict and its interval in words.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { ADMIN, adminApi, expectAccessible, screenshot, signIn, useServerAndBrowser } from "./support.mjs";

const env = useServerAndBrowser();

const PROMPT = "sentiment/few-shot";
const DATASET = "e2e/reviews";
const CASES = [
  { id: "r01", input: { review: "Absolutely love this blender, it crushes ice in seconds." }, expected: "positive" },
  { id: "r02", input: { review: "Broke after one week. Total waste of money." }, expected: "negative" },
  { id: "r03", input: { review: "The headphones sound amazing and are comfortable for hours." }, expected: "positive" },
  { id: "r04", input: { review: "The zipper snapped the first time I used this bag, very disappointed." }, expected: "negative" },
  // More cases, so that the first evaluation (one case at a time) runs for seconds even on an idle machine and
  // its progress is seen moving: the small model answers a case in about 0.1 s.
  ...["kettle", "desk lamp", "backpack", "keyboard", "rain jacket", "phone case", "coffee grinder"].flatMap((product, i) =>
    [
      [`The ${product} works perfectly and I use it every day.`, "positive"],
      [`The ${product} stopped working after two days, I want my money back.`, "negative"],
      [`Great ${product}, well made and worth the price.`, "positive"],
      [`Cheap ${product}, it broke the first time I used it.`, "negative"],
    ].map(([review, expected], j) => ({ id: `r${String(5 + i * 4 + j).padStart(2, "0")}`, input: { review }, expected })),
  ),
];

const field = (scope, name) => scope.getByRole("textbox", { name }).or(scope.getByRole("combobox", { name }));

/** Fill the "New evaluation" form for one version of the prompt on the dataset and start it; returns the run id. */
async function startEvaluation(page, version, { extraScorer = false, shoot = false } = {}) {
  await page.getByRole("link", { name: "Evaluations" }).click();
  await page.getByRole("button", { name: "New evaluation" }).click();
  const dialog = page.getByRole("dialog", { name: "New evaluation" });
  await field(dialog, "Prompt").first().click();
  await page.getByRole("option", { name: PROMPT, exact: true }).click();
  await field(dialog, "Versions").first().click({ force: true }); // the pills wrapper takes the pointer
  await page.getByRole("option", { name: new RegExp(`^v${version}\\b`) }).click();
  await page.keyboard.press("Escape");
  await field(dialog, "Dataset").first().click();
  await page.getByRole("option", { name: new RegExp(`^${DATASET}`) }).click();
  if (extraScorer) {
    // an explicit label scorer and a size check with its value: the scorers' parameters reach the server
    await dialog.getByRole("button", { name: "Add scorer" }).click();
    await dialog.getByLabel("Scorer 1 name").fill("sentiment");
    await dialog.getByRole("button", { name: "Add scorer" }).click();
    await field(dialog, "Scorer 2 type").first().click();
    await page.getByRole("option", { name: "max-words", exact: true }).click();
    await dialog.getByLabel("Scorer 2 value").fill("3");
    await dialog.getByLabel("Scorer 2 weight").fill("0");
    await dialog.getByText("The output has at most value words (white-space separated).").waitFor(); // the server's words
  }
  if (shoot) {
    await dialog.getByLabel("Concurrency").fill("1"); // one case at a time: progress the page can be seen to follow
    await expectAccessible(page, "new evaluation form");
    await screenshot(page, "eval-new");
  }
  await dialog.getByRole("button", { name: "Start evaluation" }).click();
  await page.waitForURL(/\/evals\/evr_[^/?]+$/);
  return new URL(page.url()).pathname.split("/").pop();
}

/** Wait for every cell to be done, reading the progress line as it changes; returns the lines seen. The page is
 * never reloaded (a marker set on window survives), so the changes came from polling. */
async function waitUntilDone(page, { shoot = false } = {}) {
  await page.evaluate(() => (window.__sameDocument = true));
  const done = `${CASES.length} of ${CASES.length} done (100%)`;
  const seen = [];
  const deadline = Date.now() + 240_000;
  for (;;) {
    const line = await page.getByTestId("progress-text").innerText();
    if (seen.at(-1) !== line) seen.push(line);
    if (shoot && seen.length === 2 && !line.startsWith(done)) await screenshot(page, "eval-progress");
    if (line.startsWith(done)) break;
    assert.ok(Date.now() < deadline, `still running: ${line}`);
    await page.waitForTimeout(250);
  }
  await page.getByText("completed", { exact: true }).first().waitFor({ timeout: 60_000 });
  await page.getByRole("table", { name: "Summary by version and model" }).getByText(/^\d+(\.\d)?%$/).first().waitFor();
  assert.equal(await page.evaluate(() => window.__sameDocument), true);
  return seen;
}

test("evaluate two versions on a dataset, drill into a case, export CSV and compare with a verdict", async () => {
  await adminApi(env.server.url, "POST", "/api/v1/datasets", { name: DATASET, description: "reviews", cases: CASES });
  await adminApi(env.server.url, "POST", `/api/v1/prompts/${PROMPT}/versions`, {
    template: "Is this review positive or negative?\n{{ review }}\nAnswer:",
    variables: [{ name: "review", type: "string" }],
    modelConfig: { provider: "local", model: "gemma-3-270m", params: { temperature: 0, max_tokens: 3, stop: ["\n"] } },
    commitMessage: "zero-shot",
  });

  const context = await env.browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  const page = await context.newPage();
  await signIn(page, env.server.url, ADMIN);
  await page.goto(`${env.server.url}/evals`);
  await page.getByText("No evaluations yet.").waitFor();
  await expectAccessible(page, "empty evaluations");

  // Version 1 from the form; the run page shows progress live (polled) until every cell is done.
  const first = await startEvaluation(page, 1, { extraScorer: true, shoot: true });
  const bar = page.getByRole("progressbar", { name: /cells? done$/ });
  await bar.waitFor();
  const seen = await waitUntilDone(page, { shoot: true });
  // progress moved on screen without a reload: a line before the end, then the end
  assert.ok(seen.length >= 2, `progress lines seen: ${JSON.stringify(seen)}`);
  assert.ok(Number(seen[0].match(new RegExp(`^(\\d+) of ${CASES.length} done`))?.[1]) < CASES.length, seen[0]);
  assert.equal(await bar.getAttribute("aria-valuenow"), "100");
  const run = await adminApi(env.server.url, "GET", `/api/v1/evals/${first}`);
  assert.equal(run.status, "completed");
  assert.deepEqual(run.scorers.map((s) => s.name ?? s.type), ["sentiment", "max-words"]);
  await page.getByRole("table", { name: "Results" }).getByText("r04").waitFor();
  await expectAccessible(page, "evaluation run");
  await screenshot(page, "eval-run");

  // The drill-down of a case: input and expected from the dataset, the output, each scorer with its reason.
  await page.getByRole("button", { name: /^Details of case r02/ }).click();
  const drill = page.getByRole("dialog", { name: "Case r02" });
  await drill.getByLabel("Case input").getByText("Broke after one week").waitFor();
  await drill.getByLabel("Expected output").getByText("negative").waitFor();
  const scores = drill.getByRole("table", { name: /^Scores of sentiment\/few-shot@1/ });
  await scores.getByText("sentiment", { exact: true }).waitFor();
  await scores.getByText("max-words").first().waitFor();
  const [result] = (await adminApi(env.server.url, "GET", `/api/v1/evals/${first}/results?caseKey=r02`)).items;
  for (const s of result.scores) await scores.getByText(s.reason, { exact: true }).waitFor();
  assert.match(page.url(), /case=r02/);
  await expectAccessible(page, "case drill-down");
  await screenshot(page, "eval-case");
  await drill.getByRole("button", { name: "Close" }).click();

  // CSV export: every result with its case's input and expected output and each scorer's score and reason.
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Export CSV" }).click()]);
  assert.equal(download.suggestedFilename(), `${first}.csv`);
  const csv = readFileSync(await download.path(), "utf8").trimEnd().split("\r\n");
  assert.equal(
    csv[0],
    "case_key,version,model,passed,score,input,expected,output,error,sentiment_score,sentiment_reason,max-words_score,max-words_reason,latency_ms,input_tokens,output_tokens,cost_usd,cached",
  );
  assert.equal(csv.length, 1 + CASES.length);
  for (const c of CASES) {
    const row = csv.find((line) => line.startsWith(`${c.id},`));
    assert.ok(row, `row for ${c.id}`);
    assert.ok(row.includes(`${PROMPT}@1,local/gemma-3-270m,`), row);
    assert.ok(row.includes(c.input.review), row);
    assert.ok(row.includes(`,${c.expected},`), row);
  }

  // Version 2 evaluated the same way, then the two compared from the list.
  const second = await startEvaluation(page, 2);
  await waitUntilDone(page);
  await page.goto(`${env.server.url}/evals?prompt=${encodeURIComponent(PROMPT)}`);
  const list = page.getByRole("table", { name: "Evaluations" });
  await list.getByRole("link").nth(1).waitFor();
  await expectAccessible(page, "evaluations list");
  await screenshot(page, "eval-list");
  await list.getByRole("checkbox", { name: new RegExp(first) }).check();
  await list.getByRole("checkbox", { name: new RegExp(second) }).check();
  await page.getByRole("button", { name: "Compare selected (2/2)" }).click();
  await page.waitForURL(new RegExp(`/evals/compare\\?run=${first}&against=${second}`));

  const expected = await adminApi(env.server.url, "GET", `/api/v1/evals/compare?run=${first}&against=${second}`);
  const verdict = page.getByTestId("verdict");
  await verdict.getByText(expected.verdict, { exact: true }).waitFor();
  const points = (v) => (v > 0 ? `+${v}` : String(v)).replace(/\.0$/, "");
  const headline = await verdict.locator("p").first().innerText();
  assert.match(headline, /sentiment\/few-shot@1/);
  assert.match(headline, /sentiment\/few-shot@2/);
  assert.match(headline, /95% interval \[[-+]?\d/);
  const interval = await page.getByTestId("interval").innerText();
  assert.ok(interval.includes(`95% interval [`), interval);
  assert.ok(interval.startsWith(`${points(Math.round(expected.scoreDiff.points * 10) / 10)} points`) || expected.scoreDiff.points === 0, interval);
  await verdict.getByTestId("method").getByText(/McNemar's (exact|chi-square) test/).waitFor();
  await page.getByRole("table", { name: `Paired outcomes on ${CASES.length} cases` }).waitFor();
  await expectAccessible(page, "compare");
  await screenshot(page, "eval-compare");

  // Deep links: a case of the run opens from its address.
  await page.goto(`${env.server.url}/evals/${second}?case=r01`);
  await page.getByRole("dialog", { name: "Case r01" }).getByLabel("Case input").getByText("Absolutely love").waitFor();

  // The dark theme passes the same checks.
  await page.evaluate(() => localStorage.setItem("promptops.theme", "dark"));
  await page.goto(`${env.server.url}/evals/compare?run=${first}&against=${second}`);
  await page.getByTestId("verdict").getByText(expected.verdict, { exact: true }).waitFor();
  await expectAccessible(page, "compare (dark)");
  await page.goto(`${env.server.url}/evals/${first}?case=r03`);
  await page.getByRole("dialog", { name: "Case r03" }).getByLabel("Case input").getByText("headphones").waitFor();
  await expectAccessible(page, "case drill-down (dark)");
  await page.goto(`${env.server.url}/evals?new=1`);
  await page.getByRole("dialog", { name: "New evaluation" }).getByRole("button", { name: "Add scorer" }).click();
  await expectAccessible(page, "new evaluation form (dark)");
  await page.evaluate(() => localStorage.setItem("promptops.theme", "light"));

  // A viewer reads evaluations but cannot start or cancel one: the buttons say why (on focus, for keyboards).
  // It must still be running when the engineer cancels it, after the viewer's visit (tens of seconds on a busy
  // machine): the reviews twelve times over (384 cases, one at a time) keep it busy long enough.
  const LONG = `${DATASET}-long`;
  const longCases = Array.from({ length: 12 }, (_, k) =>
    CASES.map((c) => ({ ...c, id: `${c.id}-${k}`, input: { review: `${c.input.review} (${k + 1})` } })),
  ).flat(); // distinct inputs: no answer comes from a cache
  await adminApi(env.server.url, "POST", "/api/v1/datasets", { name: LONG, description: "reviews, many times", cases: longCases });
  const third = await adminApi(env.server.url, "POST", "/api/v1/evals", { name: "to cancel", prompts: [`${PROMPT}@1`], dataset: LONG, concurrency: 1 });
  await adminApi(env.server.url, "POST", "/api/v1/members", { email: "eval-viewer@example.com", role: "Viewer", password: "viewer-password-1" });
  const viewer = await env.browser.newContext({ viewport: { width: 1280, height: 800 } });
  const viewerPage = await viewer.newPage();
  await signIn(viewerPage, env.server.url, { email: "eval-viewer@example.com", password: "viewer-password-1" });
  await viewerPage.goto(`${env.server.url}/evals`);
  await viewerPage.getByRole("table", { name: "Evaluations" }).getByRole("link", { name: "to cancel" }).waitFor();
  const newButton = viewerPage.getByRole("button", { name: "New evaluation" });
  assert.equal(await newButton.getAttribute("aria-disabled"), "true");
  await newButton.focus();
  await viewerPage.getByText("Your role cannot start evaluations (needs eval:run)").waitFor();
  await newButton.click({ force: true });
  assert.equal(await viewerPage.getByRole("dialog", { name: "New evaluation" }).count(), 0);
  await viewerPage.goto(`${env.server.url}/evals/${third.id}`);
  const viewerCancel = viewerPage.getByRole("button", { name: "Cancel" });
  assert.equal(await viewerCancel.getAttribute("aria-disabled"), "true");
  await viewerCancel.hover();
  await viewerPage.getByText("Your role cannot cancel evaluations (needs eval:run)").waitFor();
  await expectAccessible(viewerPage, "running evaluation (viewer)");
  await viewer.close();

  // The engineer cancels the running evaluation; completed cells are kept and the page shows it stopped.
  await page.goto(`${env.server.url}/evals/${third.id}`);
  await page.getByRole("button", { name: "Cancel" }).click();
  await page.getByText("cancelled", { exact: true }).first().waitFor({ timeout: 120_000 });
  assert.equal((await adminApi(env.server.url, "GET", `/api/v1/evals/${third.id}`)).status, "cancelled");

  // The prompt's page charts the mean score of each version.
  await page.goto(`${env.server.url}/prompts/${PROMPT}?tab=evaluations`);
  const history = page.getByRole("table", { name: "Evaluation history" });
  await history.getByText("v2").waitFor();
  await page.getByRole("figure", { name: `Mean score per version on ${DATASET}@1` }).waitFor();
  await expectAccessible(page, "evaluation history");
  await screenshot(page, "eval-history");
  await context.close();
});
