// Browser journey through the playground against a real server and the embedded Gemma model: a deep link, two
// model columns streamed side by side, a result saved as a dataset case, the run opened, a run stopped.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ADMIN, adminApi, expectAccessible, screenshot, signIn, signInAsNewMember, useServerAndBrowser } from "./support.mjs";

const env = useServerAndBrowser();

const REVIEW = "The strap broke on the first day and the seller ignored my emails.";

/** A Mantine Select by its label (a textbox or a combobox, depending on whether it is searchable). */
function select(within, name) {
  return within.getByRole("textbox", { name }).or(within.getByRole("combobox", { name }));
}

/** Watch a column's output box: every text it shows, and whether its result (the latency) was on screen yet. */
async function watchColumn(page, column) {
  await page.evaluate((n) => {
    window.__seen = window.__seen ?? {};
    const seen = (window.__seen[n] = []);
    const observer = new MutationObserver(() => {
      const output = document.querySelector(`[data-testid="output-${n}"]`);
      const region = output?.closest("section");
      if (!output || !region) return;
      const text = output.textContent ?? "";
      if (seen.at(-1)?.text !== text) seen.push({ text, result: region.textContent.includes("Latency:") });
    });
    observer.observe(document.body, { subtree: true, childList: true, characterData: true });
  }, column);
}

test("an engineer compares two temperatures on a deep-linked prompt, saves a case, opens the run and stops a run", async () => {
  const context = await env.browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  await signIn(page, env.server.url, ADMIN);

  // The link a prompt page gives: the production version of sentiment/few-shot, with its model config.
  await page.goto(`${env.server.url}/playground?prompt=sentiment/few-shot&label=production`);
  await page.getByRole("heading", { name: "Playground" }).waitFor();
  await page.getByRole("link", { name: "sentiment/few-shot v1" }).waitFor();
  assert.equal(await select(page, "Prompt").inputValue(), "sentiment/few-shot");
  assert.equal(await page.getByRole("textbox", { name: "Max tokens 1" }).inputValue(), "3");
  assert.equal(await page.getByRole("textbox", { name: "Other parameters 1" }).inputValue(), '{"stop":["\\n"]}');

  await page.getByRole("textbox", { name: /^review/ }).fill(REVIEW);
  // Longer answers than the classifier's 3 tokens, so the streaming is visible; a second, warmer column.
  await page.getByRole("textbox", { name: "Max tokens 1" }).fill("12");
  await page.getByRole("textbox", { name: "Other parameters 1" }).fill("");
  await page.getByRole("button", { name: "Add column" }).click();
  await page.getByRole("textbox", { name: "Temperature 2" }).fill("0.9");
  await select(page, "Model 2").click();
  await page.getByRole("option", { name: "local/gemma-3-270m" }).click();

  await watchColumn(page, 1);
  await page.getByRole("button", { name: "Run", exact: true }).click();
  const first = page.getByRole("region", { name: "Column 1" });
  const second = page.getByRole("region", { name: "Column 2" });
  await first.getByRole("link", { name: "Open run" }).waitFor({ timeout: 120_000 });
  await second.getByRole("link", { name: "Open run" }).waitFor({ timeout: 120_000 });

  // Tokens arrived one by one: the column showed partial text before its result (tokens, latency) was there.
  const seen = await page.evaluate(() => window.__seen[1]);
  const streamed = seen.filter((s) => !s.result && s.text && !s.text.startsWith("Waiting"));
  assert.ok(streamed.length >= 2, `expected several streamed states before the result, saw ${JSON.stringify(seen)}`);
  const final = (await first.getByTestId("output-1").textContent()) ?? "";
  assert.ok(final.startsWith(streamed[0].text), `${JSON.stringify(streamed[0].text)} is a prefix of ${JSON.stringify(final)}`);

  for (const column of [first, second]) {
    await column.getByText(/Tokens: \d+ in \/ \d+ out/).waitFor();
    await column.getByText(/Latency: \d+ ms/).waitFor();
    await column.getByText("ok", { exact: true }).waitFor();
  }
  await second.getByText("temperature 0.9 · max tokens 12").waitFor();
  await page.getByLabel("Rendered prompt").getByText(`Review: ${REVIEW}`).waitFor();
  await expectAccessible(page, "playground results");
  await page.getByRole("heading", { name: "Models" }).evaluate((heading) => {
    heading.scrollIntoView({ block: "start" });
    window.scrollBy(0, -64); // below the fixed header
  });
  await screenshot(page, "playground");
  await page.getByRole("button", { name: "Switch to the dark theme" }).click();
  await expectAccessible(page, "playground results, dark theme");
  await page.getByRole("button", { name: "Switch to the light theme" }).click();

  // Column 1 becomes a case of a new dataset: its variables as input, its answer as the expected output.
  const runHref = await first.getByRole("link", { name: "Open run" }).getAttribute("href");
  const runId = runHref.split("/").at(-1);
  await first.getByRole("button", { name: "Save as dataset case" }).click();
  const dialog = page.getByRole("dialog", { name: "Save column 1 as a dataset case" });
  await select(dialog, /^Dataset/).fill("e2e/playground-cases");
  await expectAccessible(page, "save case dialog");
  await dialog.getByRole("button", { name: "Save case" }).click();
  await first.getByRole("status").getByText("Case added: v1 (1 cases).").waitFor();
  const cases = await adminApi(env.server.url, "GET", "/api/v1/datasets/e2e/playground-cases/versions/1/cases");
  assert.equal(cases.items.length, 1);
  assert.deepEqual(cases.items[0].input, { review: REVIEW });
  assert.equal(cases.items[0].sourceRunId, runId);
  assert.equal(cases.items[0].expected.trim(), final.trim());

  // The run behind the column, one click away.
  await first.getByRole("link", { name: "Open run" }).click();
  await page.waitForURL(new RegExp(`/runs/${runId}$`));
  await page.getByRole("heading", { name: `Run ${runId}` }).waitFor();
  await page.getByText("Source: playground").waitFor();

  // Back to the same deep link; a long answer is stopped while it streams.
  await page.goBack();
  await page.getByRole("link", { name: "sentiment/few-shot v1" }).waitFor();
  await page.getByRole("textbox", { name: /^review/ }).fill(REVIEW);
  await page.getByRole("textbox", { name: "Max tokens 1" }).fill("400");
  await page.getByRole("textbox", { name: "Other parameters 1" }).fill("");
  await page.getByRole("button", { name: "Run", exact: true }).click();
  await page.getByRole("button", { name: "Stop" }).waitFor();
  await page.getByRole("region", { name: "Column 1" }).getByText("streaming", { exact: true }).waitFor({ timeout: 60_000 });
  await page.getByRole("button", { name: "Stop" }).click();
  await page.getByRole("button", { name: "Re-run" }).waitFor();
  await page.getByRole("region", { name: "Column 1" }).getByText("stopped", { exact: true }).waitFor();
  await page.getByText("Stopped before the model finished.").waitFor();
  await context.close();
});

test("a viewer opening a playground link reads why they cannot run it", async () => {
  const { context, page } = await signInAsNewMember(env, {
    email: "viewer@example.com",
    name: "Vera Viewer",
    role: "Viewer",
    password: "viewer-password-1",
  });
  assert.equal(await page.getByRole("link", { name: "Playground" }).count(), 0);
  await page.goto(`${env.server.url}/playground?prompt=sentiment/few-shot`);
  await page.getByText("Your role (Viewer) does not have the playground:run permission").waitFor();
  assert.equal(await page.getByRole("button", { name: "Run", exact: true }).count(), 0);
  await expectAccessible(page, "playground for a viewer");
  await context.close();
});
