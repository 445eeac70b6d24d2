// Browser journeys of the optimizer pages against a real server and the embedded local model (budgets kept
// tiny: a 270M model on two cores). node --test e2e/optimize.test.mjs
import assert from "node:assert/strict";
import { test } from "node:test";
import { ADMIN, adminApi, expectAccessible, screenshot, signIn, useServerAndBrowser } from "./support.mjs";

const env = useServerAndBrowser();
let optimizationId; // made by the first journey, followed by the viewer in the second

const REVIEWS = [
  ["I love it, works great.", "positive"],
  ["Terrible, broke in a day.", "negative"],
  ["Wonderful quality, very happy.", "positive"],
  ["Awful smell and it leaks.", "negative"],
];

test("an admin generates variants, refines a prompt from a note, optimizes one and promotes the winner", async () => {
  await adminApi(env.server.url, "POST", "/api/v1/datasets", {
    name: "e2e/tiny-reviews",
    cases: REVIEWS.map(([review, expected]) => ({ input: { review }, expected })),
  });
  const context = await env.browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  await signIn(page, env.server.url, ADMIN);

  // Generate: two variants for a small task, saved as drafts, the text of one shown.
  await page.getByRole("link", { name: "Optimize" }).click();
  await page.getByRole("heading", { name: "Optimize", level: 1 }).waitFor();
  await page.getByRole("tab", { name: "Generate" }).click();
  await page.waitForURL(/tab=generate/);
  await page.getByRole("textbox", { name: /^Task/ }).fill("Classify a product review as positive or negative");
  await page.getByRole("textbox", { name: "Variants" }).fill("2");
  // Assembled variants, each evaluated on the tiny dataset by the local model with 3-token answers.
  await page.getByRole("textbox", { name: /^Dataset/ }).fill("e2e/tiny-reviews");
  await page.getByRole("textbox", { name: /^Max tokens/ }).fill("3");
  await page.getByRole("textbox", { name: /^Strategies/ }).or(page.getByRole("combobox", { name: /^Strategies/ })).click({ force: true }); // the pill box over it takes the pointer
  await page.getByRole("option", { name: /^structural/ }).click();
  await page.keyboard.press("Escape");
  await page.getByRole("button", { name: "Generate variants" }).click();
  const generated = page.getByRole("table", { name: "Generated candidates" });
  await generated.waitFor({ timeout: 150_000 });
  assert.equal(await generated.getByRole("row").count(), 3); // header + 2 variants
  await page.getByText(/mean case score on 4 case\(s\) \(local\/gemma-3-270m\)/).waitFor();
  await page.getByRole("button", { name: "Show the text of v1" }).click();
  await page.getByLabel("Text of v1", { exact: true }).waitFor();
  assert.match(await page.getByLabel("Text of v1", { exact: true }).textContent(), /\{\{ *review *\}\}/);
  await expectAccessible(page, "generate");
  await page.getByRole("button", { name: "Generate variants" }).scrollIntoViewIfNeeded();
  await page.evaluate(() => window.scrollBy(0, 200));
  await screenshot(page, "generate");

  // Refine (deep link from a prompt): a reviewer's note becomes a proposed version; the diff shows before it ships.
  await page.goto(`${env.server.url}/optimize?tab=refine&prompt=sentiment/few-shot`);
  assert.equal(await page.getByRole("textbox", { name: /^Prompt/ }).inputValue(), "sentiment/few-shot");
  await page.getByLabel("Reviewer notes").fill("Answer with one word only: positive or negative.");
  await page.getByRole("checkbox", { name: /critique and rewrite/ }).uncheck(); // a long model rewrite, slow on 2 cores
  await page.getByRole("button", { name: "Propose a refinement" }).click();
  await page.getByRole("heading", { name: "Proposed change (not saved yet)" }).waitFor({ timeout: 90_000 });
  await page.getByTestId("diff").getByText("+Answer with exactly one word.").waitFor();
  const before = await adminApi(env.server.url, "GET", "/api/v1/prompts/sentiment%2Ffew-shot/versions");
  assert.equal(before.items.length, 1, "a proposal is not saved before the reviewer saves it");
  await expectAccessible(page, "refine proposal");
  await page.getByRole("button", { name: "Save as a draft version" }).click();
  await page.getByRole("heading", { name: "Proposed: sentiment/few-shot v2" }).waitFor({ timeout: 30_000 });
  await page.getByTestId("diff").getByText("+Answer with exactly one word.").waitFor();
  const versions = await adminApi(env.server.url, "GET", "/api/v1/prompts/sentiment%2Ffew-shot/labels");
  assert.equal(versions.find((l) => l.name === "production").version, 1, "refining moves no label");
  await expectAccessible(page, "refine");
  await page.getByRole("heading", { name: "Proposed: sentiment/few-shot v2" }).scrollIntoViewIfNeeded();
  await page.evaluate(() => window.scrollBy(0, 120));
  await screenshot(page, "refine");

  // Optimize: the smallest budget on the tiny dataset; the page follows it while it runs.
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.getByRole("tab", { name: "Optimize" }).click();
  await page.waitForURL(/tab=optimize/);
  const form = page.getByRole("tabpanel", { name: "Optimize" });
  await form.getByRole("textbox", { name: /^Prompt/ }).fill("sentiment/zero-shot");
  await form.getByRole("textbox", { name: /^Dataset/ }).fill("e2e/tiny-reviews");
  await form.getByRole("textbox", { name: "Budget (model calls)" }).fill("10");
  await form.getByRole("textbox", { name: "Max rounds" }).fill("1");
  await form.getByRole("textbox", { name: "Candidates per round" }).fill("2");
  await expectAccessible(page, "optimize start form");
  await form.getByRole("button", { name: "Start optimization" }).click();
  await page.waitForURL(/\/optimize\/opt_/);
  const id = page.url().split("/").at(-1);
  optimizationId = id;
  await page.getByRole("heading", { name: `Optimization ${id}` }).waitFor();
  const candidates = page.getByRole("table", { name: "Candidates" });
  await candidates.getByText("baseline").waitFor({ timeout: 60_000 });
  await page.getByTestId("optimization-status").getByText("completed").waitFor({ timeout: 180_000 });
  await page.getByRole("img", { name: /Line chart of the best training score/ }).waitFor();
  await page.getByText("Trajectory as a table").click();
  const trajectory = page.getByRole("table", { name: "Trajectory" });
  assert.ok((await trajectory.getByRole("row").count()) >= 2, "at least one scored point");
  assert.ok((await candidates.getByRole("row").count()) >= 3, "the baseline and at least one candidate");
  await candidates.getByRole("button", { name: /Show the text of baseline/ }).click();
  await page.getByLabel("Text of baseline (round 0)", { exact: true }).waitFor();
  await expectAccessible(page, "optimization");
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.mouse.move(0, 0); // no chart tooltip in the picture
  await screenshot(page, "optimize-run");

  // Promote the winner to staging after a confirmation that shows the diff; the registry has the move.
  const done = await adminApi(env.server.url, "GET", `/api/v1/optimizations/${id}`);
  const winnerVersionId = done.winnerVersionId ?? done.baseVersionId;
  await page.getByRole("button", { name: "Promote winner" }).click();
  const dialog = page.getByRole("dialog");
  await dialog.getByText("staging is new on sentiment/zero-shot").waitFor();
  if (done.winnerVersionId) await dialog.getByTestId("diff").waitFor();
  await expectAccessible(page, "promote winner");
  await screenshot(page, "optimize-promote");
  await dialog.getByRole("button", { name: "Confirm move" }).click();
  await page.getByText(/staging now points at the winner/).waitFor();
  const labels = await adminApi(env.server.url, "GET", "/api/v1/prompts/sentiment%2Fzero-shot/labels");
  assert.equal(labels.find((l) => l.name === "staging")?.versionId, winnerVersionId);

  // The list shows it, filtered by prompt through the address.
  await page.goto(`${env.server.url}/optimize?prompt=sentiment/zero-shot`);
  await page.getByRole("table", { name: "Optimizations" }).getByRole("link", { name: id }).waitFor();
  await expectAccessible(page, "optimizations list");
  await screenshot(page, "optimize");
  await context.close();
});

test("a viewer follows an optimization (dark theme) but cannot start one or promote its winner", async () => {
  const id =
    optimizationId ??
    (await adminApi(env.server.url, "POST", "/api/v1/optimizations", {
      prompt: "sentiment/zero-shot",
      dataset: "sentiment/reviews",
      budget: 10,
      maxRounds: 1,
      candidatesPerRound: 1,
      maxTrainCases: 2,
      maxValCases: 2,
    })).id;
  await adminApi(env.server.url, "POST", "/api/v1/members", {
    email: "viewer-opt@example.com",
    name: "Vic Viewer",
    role: "Viewer",
    password: "viewer-password-1",
  });
  const context = await env.browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: "dark" });
  await context.addInitScript(() => window.localStorage.setItem("promptops.theme", "dark")); // axe checks the dark theme here
  const page = await context.newPage();
  await signIn(page, env.server.url, { email: "viewer-opt@example.com", password: "viewer-password-1" });
  await page.goto(`${env.server.url}/optimize`);
  await page.getByText("Your role can follow optimizations but not start them").waitFor();
  assert.equal(await page.getByRole("button", { name: "Start optimization" }).count(), 0);
  await page.getByRole("table", { name: "Optimizations" }).getByRole("link", { name: id }).click();
  await page.getByRole("heading", { name: `Optimization ${id}` }).waitFor();
  await page.getByTestId("optimization-status").getByText("completed").waitFor({ timeout: 180_000 });
  assert.equal(await page.getByRole("button", { name: "Promote winner" }).isDisabled(), true);
  assert.equal(await page.evaluate(() => document.documentElement.dataset.mantineColorScheme), "dark");
  await expectAccessible(page, "optimization as viewer (dark theme)");
  await screenshot(page, "optimize-viewer-dark");
  await context.close();
});
