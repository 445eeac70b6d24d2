// Browser journey of the annotation queue: a QA analyst rates five runs of the embedded model with the keyboard
// only, and a claim is given back when the analyst leaves the rating screen.
import assert from "node:assert/strict";
import { test } from "node:test";
import { adminApi, expectAccessible, screenshot, signIn, useServerAndBrowser } from "./support.mjs";

const ANALYST = { email: "rater@example.com", password: "rater-password-1" };
const PROMPT = "sentiment/few-shot";
const REVIEWS = [
  "Arrived broken and nobody answered my emails.",
  "Great sound, comfortable, worth every cent.",
  "It is fine, nothing special.",
  "Stopped charging after a week.",
  "Best purchase this year, I love it.",
  "The box was damp but the item works.",
];

const env = useServerAndBrowser(async (base) => {
  await adminApi(base, "POST", "/api/v1/members", { email: ANALYST.email, name: "Rae Rater", role: "QAAnalyst", password: ANALYST.password });
});

/** One playground call per review on the local model; the run ids. */
async function makeRuns(reviews) {
  const ids = [];
  for (const review of reviews) {
    const answer = await adminApi(env.server.url, "POST", "/api/v1/playground/run", {
      prompt: `${PROMPT}@production`,
      variables: { review },
      models: [{ provider: "local", model: "gemma-3-270m", params: { max_tokens: 3, temperature: 0 } }],
    });
    assert.equal(answer.results[0].status, "ok", JSON.stringify(answer.results[0]));
    ids.push(answer.results[0].runId);
  }
  return ids;
}

async function queueItems(queue) {
  return (await adminApi(env.server.url, "GET", `/api/v1/annotations?queue=${queue}&limit=200`)).items;
}

/** The item the rating screen claimed after `previous` (read from the live region). */
async function nextItemId(page, previous) {
  const status = page.getByTestId("announcement");
  await page.waitForFunction(
    (prev) => {
      const text = document.querySelector('[data-testid="announcement"]')?.textContent ?? "";
      const match = text.match(/Now rating item (\S+)\./);
      return (match && match[1] !== prev) || text.includes("Nothing is left");
    },
    previous,
  );
  return (await status.textContent()).match(/Now rating item (ann_\w+)\./)?.[1] ?? null;
}

/** Wait until the element with `testId` contains `text`; on timeout, say what it showed instead. */
async function showsText(page, testId, text) {
  try {
    await page.getByTestId(testId).filter({ hasText: text }).waitFor({ timeout: 15_000 });
  } catch {
    assert.fail(`${testId}: expected "${text}", shows "${await page.getByTestId(testId).textContent()}"`);
  }
}

/** Press Tab until the focused control is named `name` (a real keyboard route to it, no programmatic focus). */
async function tabTo(page, name) {
  for (let presses = 0; presses < 60; presses++) {
    await page.keyboard.press("Tab");
    if ((await focusedLabel(page))?.trim() === name) return;
  }
  assert.fail(`Tab never reached ${name}`);
}

async function focusedLabel(page) {
  return page.evaluate(() => {
    const el = document.activeElement;
    if (el?.tagName === "BUTTON") return el.textContent;
    return el?.labels?.[0]?.textContent ?? el?.getAttribute("aria-label") ?? el?.tagName;
  });
}

async function signedInPage(colorScheme = "light") {
  const context = await env.browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme });
  const page = await context.newPage();
  await signIn(page, env.server.url, ANALYST);
  return { context, page };
}

test("a QA analyst rates five runs with the keyboard only", async () => {
  const queue = "e2e-qa";
  const runIds = await makeRuns(REVIEWS);
  const queued = await adminApi(env.server.url, "POST", "/api/v1/annotations", { queue, runIds });
  assert.equal(queued.created.length, 6);
  const runOfItem = new Map(queued.created.map((i) => [i.id, i.runId]));

  const { context, page } = await signedInPage();
  await page.goto(`${env.server.url}/annotations?queue=${queue}`);
  const table = page.getByRole("table", { name: "Queue items" });
  await table.getByRole("row").nth(6).waitFor();
  assert.equal(await table.getByText("pending").count(), 6);
  await expectAccessible(page, "annotation queue");
  await screenshot(page, "annotation-queue");

  // From here on only the keyboard: turn on the rubric, start rating.
  await tabTo(page, "Also rate the rubric criteria");
  await page.keyboard.press("Space");
  await page.waitForURL(/rubric=1/);
  await page.getByRole("checkbox", { name: "Also rate the rubric criteria", checked: true }).waitFor();
  await tabTo(page, "Start rating");
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { name: `Rating queue ${queue}` }).waitFor();

  const typed = new Map(); // run id -> {score, notes, rubric}
  const plan = [
    { score: 4, submit: "n" },
    { score: 2, submit: "Enter", note: "Said positive; 1 star review is negative. Needs examples." },
    { score: 5, submit: "n", correctness: 3 },
    { score: 1, submit: "Enter" },
    { score: 3, submit: "n" },
  ];
  let item = null;
  for (const [index, step] of plan.entries()) {
    item = await nextItemId(page, item);
    assert.ok(item, `item ${index + 1} claimed`);
    await showsText(page, "progress", `${index} rated, ${6 - index} left`);
    assert.equal(await focusedLabel(page), "1"); // the score group has the focus
    await page.keyboard.press(String(step.score));
    assert.equal(await page.getByRole("radiogroup", { name: /^Score/ }).getByRole("radio", { name: String(step.score) }).isChecked(), true);
    await showsText(page, "announcement", `Score ${step.score}`);
    if (step.note) {
      await page.keyboard.press("Tab");
      assert.equal(await focusedLabel(page), "Notes");
      await page.keyboard.type(step.note); // its n, s and digits must not trigger shortcuts
      assert.equal(await page.getByRole("textbox", { name: "Notes" }).inputValue(), step.note);
      await showsText(page, "announcement", `Score ${step.score}`);
      await page.keyboard.press("Escape");
    }
    if (step.correctness) {
      await page.keyboard.press("Tab"); // notes
      await page.keyboard.press("Tab"); // first criterion
      assert.equal(await focusedLabel(page), "1");
      await page.keyboard.press(String(step.correctness));
      await showsText(page, "announcement", `correctness ${step.correctness}`);
    }
    if (index === 0) {
      await expectAccessible(page, "rating screen");
      await screenshot(page, "annotation-rating");
    }
    typed.set(runOfItem.get(item), step);
    await page.keyboard.press(step.submit);
    await showsText(page, "announcement", `Rated ${step.score}`);
  }

  // The sixth is skipped with S; then the queue is empty.
  item = await nextItemId(page, item);
  await showsText(page, "progress", "5 rated, 1 left");
  await page.keyboard.press("s");
  await page.getByText(`Queue ${queue} has nothing waiting. You rated 5 items in this session.`).waitFor();
  await showsText(page, "progress", "5 rated, 0 left");
  await expectAccessible(page, "queue finished");
  await screenshot(page, "annotation-done");

  // The server holds five feedback records with the scores typed, one note and one rubric score.
  const items = await queueItems(queue);
  assert.deepEqual(items.map((i) => i.status).sort(), ["done", "done", "done", "done", "done", "skipped"]);
  for (const [runId, step] of typed) {
    const records = (await adminApi(env.server.url, "GET", `/api/v1/feedback?runId=${runId}`)).items;
    assert.equal(records.length, 1, runId);
    assert.equal(records[0].score, step.score);
    assert.equal(records[0].source, "annotation");
    assert.equal(records[0].notes, step.note ?? "");
    assert.deepEqual(records[0].rubric, step.correctness ? { correctness: step.correctness } : {});
    assert.equal(records[0].user, ANALYST.email);
  }
  const skipped = items.find((i) => i.status === "skipped");
  assert.equal((await adminApi(env.server.url, "GET", `/api/v1/feedback?runId=${skipped.runId}`)).items.length, 0);

  // What the prompt page's Feedback tab shows comes from these numbers.
  const summary = await adminApi(env.server.url, "GET", `/api/v1/feedback/summary?prompt=${encodeURIComponent(PROMPT)}`);
  assert.equal(summary.overall.count, 5);
  assert.deepEqual(summary.overall.scoreHistogram, { 1: 1, 2: 1, 3: 1, 4: 1, 5: 1 });
  assert.equal(summary.overall.meanScore, 3);
  assert.equal(summary.versions.length, 1);
  assert.equal(summary.versions[0].count, 5);
  assert.deepEqual(summary.overall.rubric, { correctness: { count: 1, mean: 3 } });

  // The prompt page's Feedback tab shows the same numbers.
  await page.goto(`${env.server.url}/prompts/${PROMPT}?tab=feedback`);
  await page.getByTestId("feedback-overall").getByText("5 ratings").waitFor();
  await expectAccessible(page, "feedback summary");
  await screenshot(page, "feedback-summary");
  await context.close();
});

test("a claim is given back when the analyst stops rating or leaves the page (dark theme)", async () => {
  const queue = "e2e-release";
  const [runId] = await makeRuns(["Works as described."]);
  await adminApi(env.server.url, "POST", "/api/v1/annotations", { queue, runIds: [runId] });
  const { context, page } = await signedInPage("dark");

  // "Stop rating" inside the app (in the dark theme, which must pass axe too).
  await page.goto(`${env.server.url}/annotations?queue=${queue}&mode=rate`);
  await nextItemId(page, null);
  assert.equal((await queueItems(queue))[0].status, "claimed");
  await page.keyboard.press("3");
  await expectAccessible(page, "rating screen, dark");
  await screenshot(page, "annotation-rating-dark");
  await page.keyboard.down("Shift");
  await tabTo(page, "Stop rating"); // backwards from the score
  await page.keyboard.up("Shift");
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { name: "Annotation queue" }).waitFor();
  await page.getByRole("table", { name: "Queue items" }).getByText("pending").waitFor();
  assert.equal((await queueItems(queue))[0].status, "pending");

  // Leaving the page altogether (the tab unloads).
  await page.goto(`${env.server.url}/annotations?queue=${queue}&mode=rate`);
  await nextItemId(page, null);
  assert.equal((await queueItems(queue))[0].status, "claimed");
  await page.goto("about:blank");
  const deadline = Date.now() + 10_000;
  while ((await queueItems(queue))[0].status !== "pending") {
    assert.ok(Date.now() < deadline, "the claim was not released on page exit");
    await new Promise((r) => setTimeout(r, 200));
  }
  await context.close();
});

test("a manager fills a queue from a prompt's recent runs; a viewer cannot start rating", async () => {
  const { context, page } = await signedInPage();
  await page.goto(`${env.server.url}/annotations?queue=e2e-sample`);
  await page.getByText("No item in queue e2e-sample.").waitFor();
  await page.getByRole("textbox", { name: "Prompt" }).fill(PROMPT);
  await page.getByRole("textbox", { name: "How many" }).fill("3");
  await page.getByRole("button", { name: "Add to queue" }).click();
  await page.getByRole("status").getByText("Added 3 items.").waitFor();
  await page.getByRole("table", { name: "Queue items" }).getByRole("row").nth(3).waitFor();
  await expectAccessible(page, "queue filled");
  await context.close();

  await adminApi(env.server.url, "POST", "/api/v1/members", { email: "look@example.com", role: "Viewer", password: "viewer-password-1" });
  const viewer = await env.browser.newContext({ viewport: { width: 1280, height: 800 } });
  const viewerPage = await viewer.newPage();
  await signIn(viewerPage, env.server.url, { email: "look@example.com", password: "viewer-password-1" });
  await viewerPage.goto(`${env.server.url}/annotations?queue=e2e-sample`);
  await viewerPage.getByRole("table", { name: "Queue items" }).waitFor();
  assert.equal(await viewerPage.getByRole("button", { name: "Start rating" }).isDisabled(), true);
  assert.equal(await viewerPage.getByRole("button", { name: "Add to queue" }).count(), 0);
  await viewer.close();
});
