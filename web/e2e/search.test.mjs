// Prompt search in the browser against a real server (its own embedding model, no network): the header's
// search box, the results page, the similar-prompts panel, the near-duplicate warning on save and the
// duplicates view.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ADMIN, adminApi, expectAccessible, signIn, useServerAndBrowser } from "./support.mjs";

const TRIAGE =
  "You are a support agent. Read the customer ticket below and classify it as billing, shipping, or technical. " +
  "Reply with the category only.\n\nTicket: {{ ticket }}";
// The same instructions in slightly different words, without the description: a near-duplicate (about 83% similar).
const SORTER =
  "You are a support agent. Read the customer ticket below and classify it as billing, shipping or technical. " +
  "Reply with only the category.\n\nTicket: {{ ticket }}";

const env = useServerAndBrowser(async (base) => {
  await adminApi(base, "POST", "/api/v1/prompts", {
    name: "support/triage",
    description: "Sort incoming support tickets",
    tags: ["support"],
    template: TRIAGE,
    commitMessage: "first",
  });
  await adminApi(base, "PUT", "/api/v1/prompts/support/triage/labels/production", { version: 1, reason: "ship" });
  await adminApi(base, "POST", "/api/v1/prompts", {
    name: "billing/refund-reply",
    description: "Answer a refund request",
    tags: ["billing"],
    template: "Write a polite answer to a customer asking for their money back for an order: {{ order }}. Explain the refund policy.",
  });
});

test("a user searches prompts, opens one, sees similar prompts, is warned of near-duplicates and reviews duplicates", async () => {
  const context = await env.browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  await signIn(page, env.server.url, ADMIN);
  await page.getByRole("table", { name: "Prompts" }).waitFor();

  // "/" focuses the header's search box from anywhere; Enter opens the results page, with the search in the address.
  const box = page.getByRole("searchbox", { name: "Search prompts" });
  await page.keyboard.press("/");
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute("aria-label")), "Search prompts");
  await page.keyboard.type("classify ticket");
  await page.keyboard.press("Enter");
  await page.waitForURL(/\/search\?q=classify\+ticket&mode=hybrid$/);
  const results = page.getByRole("list", { name: "Search results" });
  const triage = results.getByRole("listitem").filter({ has: page.getByRole("link", { name: "support/triage", exact: true }) });
  await triage.waitFor();
  assert.ok((await triage.locator("mark").allTextContents()).some((w) => w.toLowerCase() === "classify"), "the matched word is highlighted");
  await triage.getByText("production", { exact: true }).waitFor();
  await triage.getByText("in project default").waitFor();
  await page.getByRole("status").filter({ hasText: /^Results 1–\d+ of \d+$/ }).waitFor();
  await expectAccessible(page, "search results");

  // Ctrl+K from the page focuses the box again; typing on the results page searches as you type (debounced).
  await page.evaluate(() => document.activeElement instanceof HTMLElement && document.activeElement.blur());
  await page.keyboard.press("Control+k");
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute("aria-label")), "Search prompts");
  await box.fill("money back");
  await page.waitForURL(/\/search\?q=money\+back&mode=hybrid$/);
  await results.getByRole("link", { name: "billing/refund-reply" }).waitFor();

  // Mode and filters live in the address: by words only, then a tag that leaves nothing, then every project.
  await page.getByText("Words", { exact: true }).click();
  await page.waitForURL(/mode=text/);
  await box.fill("zebra giraffe");
  await page.getByTestId("no-results").getByText("No prompt matches “zebra giraffe”.").waitFor();
  await page.getByRole("button", { name: "Search by meaning instead" }).waitFor();
  await box.fill("refund");
  await results.getByRole("link", { name: "billing/refund-reply" }).waitFor();
  await page.getByRole("combobox", { name: "Tags" }).fill("support");
  await page.getByRole("combobox", { name: "Tags" }).press("Enter");
  await page.waitForURL(/tag=support/);
  await page.getByTestId("no-results").waitFor();
  await page.getByRole("button", { name: "Clear the filters" }).click();
  await page.getByRole("switch", { name: "All my projects" }).click();
  await page.waitForURL(/project=\*/);
  await results.getByRole("link", { name: "billing/refund-reply" }).waitFor();
  assert.ok(!page.url().includes("tag="));

  // Dark theme: highlights and badges stay readable.
  await page.getByRole("button", { name: "Switch to the dark theme" }).click();
  await expectAccessible(page, "search results, dark theme");
  await page.getByRole("button", { name: "Switch to the light theme" }).click();

  // Open a result: the prompt page, with its similar prompts.
  await box.fill("classify ticket");
  await results.getByRole("link", { name: "support/triage", exact: true }).click();
  await page.waitForURL(/\/prompts\/support\/triage$/);
  await page.getByRole("heading", { name: "support/triage", level: 1 }).waitFor();
  const similar = page.getByRole("region", { name: "Similar prompts" });
  await similar.waitFor();
  await similar.getByRole("link").or(similar.getByText("No other prompt in this project means about the same.")).first().waitFor();
  assert.equal(await similar.getByRole("link", { name: "support/ticket-sorter" }).count(), 0);

  // Create a near-duplicate in the library's dialog: it is saved, and its page warns which prompt it resembles.
  await page.getByRole("link", { name: "Prompts", exact: true }).click();
  await page.getByRole("button", { name: "New prompt" }).click();
  const dialog = page.getByRole("dialog", { name: "New prompt" });
  await dialog.getByRole("textbox", { name: /^Name/ }).fill("support/ticket-sorter");
  await dialog.getByRole("textbox", { name: /^Template/ }).fill(SORTER);
  await dialog.getByRole("button", { name: "Create" }).click();
  await page.waitForURL(/\/prompts\/support\/ticket-sorter$/);
  const warning = page.getByTestId("near-duplicates");
  await warning.getByText("support/ticket-sorter@1 is saved.", { exact: false }).waitFor();
  const line = await warning.getByRole("listitem").first().textContent();
  assert.match(line ?? "", /^[89]\d% similar to support\/triage@1$/);
  await expectAccessible(page, "near-duplicate warning");
  const sorterSimilar = page.getByRole("region", { name: "Similar prompts" });
  await sorterSimilar.getByRole("link", { name: "support/triage" }).waitFor();
  await sorterSimilar.getByText("near duplicate").waitFor();

  // Follow the warning's link; the other prompt's similar panel lists the new one with its percentage.
  await warning.getByRole("link", { name: "support/triage@1" }).click();
  await page.waitForURL(/\/prompts\/support\/triage$/);
  await page.getByRole("heading", { name: "support/triage", level: 1 }).waitFor();
  // The warning belongs to the prompt just saved: it goes once the other prompt's page has rendered.
  await page.getByTestId("near-duplicates").waitFor({ state: "detached", timeout: 10_000 });
  const item = page.getByRole("region", { name: "Similar prompts" }).getByRole("listitem").filter({ has: page.getByRole("link", { name: "support/ticket-sorter" }) });
  await item.waitFor();
  assert.match((await item.textContent()) ?? "", /[89]\d% similar/);
  await expectAccessible(page, "prompt page with similar prompts");

  // Save a new version in the editor that still says the same: the warning names the near-duplicate.
  await page.getByRole("tab", { name: "New version" }).click();
  const editor = page.getByRole("textbox", { name: "Template" });
  await editor.click();
  await page.keyboard.press("Control+End");
  await page.keyboard.insertText("\nBe brief.");
  await page.getByLabel("Commit message").fill("brief");
  await page.getByRole("button", { name: "Save version" }).click();
  await page.getByRole("table", { name: "Versions" }).getByText("brief", { exact: true }).waitFor();
  const saved = page.getByTestId("near-duplicates");
  await saved.getByText("support/triage@2 is saved.", { exact: false }).waitFor();
  assert.match((await saved.getByRole("listitem").first().textContent()) ?? "", /^\d+% similar to support\/ticket-sorter@1$/);
  await saved.getByRole("button", { name: "Dismiss the duplicate warning" }).click();
  await saved.waitFor({ state: "detached" });

  // The duplicates view groups the two.
  await page.getByRole("link", { name: "Prompts", exact: true }).click();
  await page.getByRole("link", { name: "Duplicates" }).click();
  await page.waitForURL(/\/search\/duplicates$/);
  const cluster = page.getByTestId("duplicate-cluster").first();
  await cluster.waitFor();
  const names = await cluster.getByRole("link").allTextContents();
  assert.deepEqual([...names].sort(), ["support/ticket-sorter", "support/triage"]);
  await expectAccessible(page, "duplicates");
  // The two differ by a word or two: even at the strictest floor they stay grouped, and the floor is in the address.
  await page.getByRole("textbox", { name: "Duplicate score" }).or(page.getByRole("combobox", { name: "Duplicate score" })).click();
  await page.getByRole("option", { name: "0.70 (very strict)" }).click();
  await page.waitForURL(/threshold=0\.7/);
  const strict = page.getByTestId("duplicate-cluster").first();
  await strict.getByRole("heading", { name: /duplicate score (0\.[7-9]\d|1\.00) or more/ }).waitFor();
  assert.deepEqual([...(await strict.getByRole("link").allTextContents())].sort(), ["support/ticket-sorter", "support/triage"]);
  await context.close();
});
