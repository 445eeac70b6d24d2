// Browser journeys against a real server: node --test e2e/ (make test runs it after the Python suite).
import assert from "node:assert/strict";
import { test } from "node:test";
import { ADMIN, adminApi, expectAccessible, screenshot, signIn, signInAsNewMember, useServerAndBrowser } from "./support.mjs";

const env = useServerAndBrowser();

test("an engineer signs in, creates a prompt, ships it with a reviewed label move and rolls back", async () => {
  const context = await env.browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  await signIn(page, env.server.url, ADMIN);

  // The library lists the example prompts and filters them.
  await page.getByRole("table", { name: "Prompts" }).waitFor();
  await expectAccessible(page, "library");
  await screenshot(page, "library");
  await page.getByLabel("Search", { exact: true }).fill("sentiment");
  await page.getByRole("link", { name: "sentiment/few-shot" }).waitFor();
  await page.waitForFunction(() => !document.body.innerText.includes("support/reply"));

  // Create a prompt in the modal; the page moves to it.
  await page.getByRole("button", { name: "New prompt" }).click();
  const dialog = page.getByRole("dialog", { name: "New prompt" });
  await dialog.getByRole("textbox", { name: /^Name/ }).fill("e2e/greeting");
  await dialog.getByLabel("Description").fill("Greets a customer");
  await dialog.getByRole("textbox", { name: /^Template/ }).fill("Say hello to {{ customer }}.");
  await dialog.getByLabel("Commit message").fill("first");
  await dialog.getByRole("button", { name: "Create" }).click();
  await page.waitForURL(/\/prompts\/e2e\/greeting/);
  await page.getByRole("heading", { name: "e2e/greeting" }).waitFor();
  await expectAccessible(page, "prompt detail");
  await screenshot(page, "prompt-versions");

  // Write version 2 in the editor: completion, lint as you type, declare the variable, preview, save.
  await page.getByRole("tab", { name: "New version" }).click();
  const editor = page.getByRole("textbox", { name: "Template" });
  await editor.click();
  await page.keyboard.press("Control+A");
  await page.keyboard.insertText("Say a warm hello to {{ customer }}.");
  await page.getByTestId("lint-finding").filter({ hasText: "customer" }).first().waitFor();
  await page.getByRole("button", { name: "Declare customer" }).click();
  await page.getByLabel("Sample value for customer").fill("Ada");
  await page.getByLabel("Rendered prompt").getByText("Say a warm hello to Ada.").waitFor();
  await expectAccessible(page, "editor");
  await screenshot(page, "editor");
  await page.getByLabel("Commit message").fill("warmer");
  await page.getByRole("button", { name: "Save version" }).click();
  await page.getByRole("table", { name: "Versions" }).getByText("warmer").waitFor();
  await page.getByRole("tab", { name: "Diff" }).click();
  await page.getByTestId("diff").getByText("+Say a warm hello to {{ customer }}.").waitFor();
  await screenshot(page, "prompt-diff");

  // Ship v1 to production, then v2 after reviewing the diff, then roll back.
  await page.getByRole("tab", { name: "Labels" }).click();
  await page.getByLabel("Label", { exact: true }).fill("production");
  await page.getByRole("textbox", { name: "To version" }).or(page.getByRole("combobox", { name: "To version" })).click();
  await page.getByRole("option", { name: /^v1/ }).click();
  await page.getByRole("button", { name: "Review and move" }).click();
  await page.getByText("production is new on this prompt.").waitFor();
  await page.getByRole("button", { name: "Confirm move" }).click();
  await page.getByRole("table", { name: "Labels" }).getByText("v1").waitFor();

  await page.getByRole("textbox", { name: "To version" }).or(page.getByRole("combobox", { name: "To version" })).click();
  await page.getByRole("option", { name: /^v2/ }).click();
  await page.getByRole("button", { name: "Review and move" }).click();
  const review = page.getByRole("dialog");
  await review.getByText("production points at v1 now").waitFor();
  await review.getByText("+Say a warm hello to {{ customer }}.").waitFor();
  await expectAccessible(page, "label move review");
  await screenshot(page, "label-move-review");
  await review.getByRole("button", { name: "Confirm move" }).click();
  await page.getByRole("table", { name: "Labels" }).getByText("v2").waitFor();

  await page.getByRole("button", { name: "Roll back" }).click();
  const rollback = page.getByRole("dialog", { name: "Roll back production" });
  await rollback.getByText("production goes back from v2 to v1").waitFor();
  await rollback.getByLabel("Reason").fill("too warm");
  await rollback.getByRole("button", { name: "Confirm rollback" }).click();
  await page.getByRole("table", { name: "Label history" }).getByText("too warm").waitFor();
  const labels = await adminApi(env.server.url, "GET", "/api/v1/prompts/e2e/greeting/labels");
  assert.equal(labels.find((l) => l.name === "production").version, 1);

  // Fork v2 into a new prompt: its lineage names where it came from, and the original lists the fork.
  await page.getByRole("tab", { name: "Lineage" }).click();
  await page.getByText("This prompt was not forked from another one.").waitFor();
  await page.getByLabel("New prompt name").fill("e2e/greeting-formal");
  await page.getByRole("button", { name: "Fork", exact: true }).click();
  await page.waitForURL(/\/prompts\/e2e\/greeting-formal\?tab=lineage/);
  await page.getByRole("table", { name: "Forked from" }).getByRole("link", { name: "e2e/greeting@v2" }).waitFor();
  await expectAccessible(page, "lineage");
  await page.getByRole("table", { name: "Forked from" }).getByRole("link", { name: "e2e/greeting@v2" }).click();
  await page.getByRole("table", { name: "Forks of this prompt" }).getByRole("link", { name: "e2e/greeting-formal@v1" }).waitFor();

  // A call to the embedded model shows in the runs explorer, with its full record one click away.
  await adminApi(env.server.url, "POST", "/api/v1/playground/run", {
    prompt: "e2e/greeting@production",
    variables: { customer: "Ada" },
    models: [{ provider: "local", model: "gemma-3-270m", params: { max_tokens: 8, temperature: 0 } }],
  });
  await page.getByRole("link", { name: "Runs" }).click();
  await page.getByRole("textbox", { name: "Source" }).or(page.getByRole("combobox", { name: "Source" })).click();
  await page.getByRole("option", { name: "playground" }).click();
  await page.waitForURL(/source=playground/);
  await page.getByRole("table", { name: "Runs" }).getByText("local/gemma-3-270m").waitFor();
  // Narrow to the prompt's version 1 (what production pointed at), then to runs that cost at least $1: none.
  await page.getByLabel("Prompt", { exact: true }).fill("e2e/greeting");
  await page.getByLabel("Prompt", { exact: true }).blur();
  await page.getByRole("textbox", { name: "Version" }).or(page.getByRole("combobox", { name: "Version" })).click();
  await page.getByRole("option", { name: /^v1/ }).click();
  await page.waitForURL(/versionId=/);
  await page.getByRole("table", { name: "Runs" }).getByText("local/gemma-3-270m").waitFor();
  await expectAccessible(page, "runs");
  await screenshot(page, "runs");
  await page.getByLabel("Min cost (USD)").fill("1");
  await page.getByLabel("Min cost (USD)").blur();
  await page.getByText("No run matches these filters.").waitFor();
  await page.getByLabel("Min cost (USD)").fill("");
  await page.getByLabel("Min cost (USD)").blur();
  await page.getByRole("table", { name: "Runs" }).getByRole("link").first().click();
  await page.getByLabel("Input").getByText("Say hello to Ada.").waitFor();
  await expectAccessible(page, "run detail");

  // The audit page: the chain is verified, and the rollback is there with its reason.
  await page.getByRole("link", { name: "Audit log" }).click();
  await page.getByTestId("chain-status").getByText("Audit chain verified").waitFor();
  await page.getByLabel("Event type").fill("RollbackTriggered");
  await page.getByLabel("Event type").blur();
  await page.waitForURL(/eventType=RollbackTriggered/);
  const row = page.getByRole("table", { name: "Audit events" }).getByRole("row").nth(1);
  await row.getByText("RollbackTriggered").waitFor();
  await row.getByRole("button", { name: "Show" }).click();
  await page.getByText('"reason": "too warm"').waitFor();
  await expectAccessible(page, "audit");
  await screenshot(page, "audit");

  // An unknown page is a friendly not-found inside the app; sign out ends the session.
  await page.goto(`${env.server.url}/no/such/page`);
  await page.getByRole("heading", { name: "Page not found" }).waitFor();
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL(/\/login/);
  await expectAccessible(page, "sign-in");
  await screenshot(page, "sign-in");
  await context.close();
});

test("a viewer sees no write controls, and a forged write is refused", async () => {
  const { context, page } = await signInAsNewMember(env, {
    email: "viewer@example.com",
    name: "Vera Viewer",
    role: "Viewer",
    password: "viewer-password-1",
  });
  assert.equal(await page.getByTestId("whoami").textContent(), "viewer@example.com");
  assert.equal(await page.getByRole("button", { name: "New prompt" }).isDisabled(), true);
  assert.equal(await page.getByRole("link", { name: "Audit log" }).count(), 0); // no audit:read

  await page.getByRole("link", { name: "sentiment/few-shot" }).click();
  await page.getByRole("tab", { name: "Labels" }).click();
  await page.getByText("Your role can read labels but not move them.").waitFor();
  assert.equal(await page.getByRole("button", { name: "Review and move" }).count(), 0);

  // The server is the authority: the same request the UI would send, with the session's CSRF token, is 403.
  const status = await page.evaluate(async () => {
    const csrf = document.cookie.split("; ").find((c) => c.startsWith("promptops_csrf="))?.split("=")[1] ?? "";
    const response = await fetch("/api/v1/prompts/sentiment%2Ffew-shot/labels/production", {
      method: "PUT",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify({ version: 1, reason: "forged" }),
    });
    return response.status;
  });
  assert.equal(status, 403);
  await context.close();
});

test("a wrong password is a readable error with the request id", async () => {
  const context = await env.browser.newContext();
  const page = await context.newPage();
  await page.goto(`${env.server.url}/login`);
  await page.getByLabel("Email").fill(ADMIN.email);
  await page.getByRole("textbox", { name: "Password" }).fill("not the password");
  await page.getByRole("button", { name: "Sign in" }).click();
  const alert = page.getByRole("alert");
  await alert.getByText("Could not sign in").waitFor();
  assert.match(await alert.textContent(), /Request id: \S+/);
  await context.close();
});

test("an admin creates an API key, sees it once, and revokes it", async () => {
  const context = await env.browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  await signIn(page, env.server.url, ADMIN);
  await page.getByRole("link", { name: "Settings" }).click();
  await page.getByRole("table", { name: "Members" }).getByText(ADMIN.email).waitFor();
  await page.getByRole("tab", { name: "API keys" }).click();
  await page.getByLabel("Key name").fill("ci-reader");
  await page.getByRole("button", { name: "Create key" }).click();
  const key = (await page.getByTestId("new-key").textContent()).trim();
  assert.match(key, /^po_/);
  await expectAccessible(page, "new key");
  await page.getByRole("button", { name: "Done" }).click();
  const me = await fetch(`${env.server.url}/api/v1/auth/me`, { headers: { Authorization: `Bearer ${key}` } });
  assert.equal(me.status, 200);
  assert.equal((await me.json()).role, "Viewer");

  page.once("dialog", (dialog) => dialog.accept());
  await page.getByRole("table", { name: "API keys" }).getByRole("row", { name: /ci-reader/ }).getByRole("button", { name: "Revoke" }).click();
  await page.getByRole("table", { name: "API keys" }).getByRole("row", { name: /ci-reader/ }).getByText("revoked").waitFor();
  const after = await fetch(`${env.server.url}/api/v1/auth/me`, { headers: { Authorization: `Bearer ${key}` } });
  assert.equal(after.status, 401);
  await page.getByRole("tab", { name: "Providers" }).click();
  await page.getByRole("table", { name: "Provider connections" }).getByText("local").first().waitFor();
  await expectAccessible(page, "settings");
  await screenshot(page, "settings");

  // A project price for a model; it is what the catalog now answers.
  await page.getByRole("tab", { name: "Model prices" }).click();
  await page.getByRole("button", { name: "Add a model price" }).click();
  const priceForm = page.getByRole("dialog", { name: "Add a model price" });
  await priceForm.getByLabel("Provider").fill("openai");
  await priceForm.getByLabel("Model").fill("e2e-model");
  await priceForm.getByLabel("Input, USD per 1M tokens").fill("1.5");
  await priceForm.getByLabel("Output, USD per 1M tokens").fill("6");
  await priceForm.getByRole("button", { name: "Save price" }).click();
  await page.getByRole("table", { name: "Model prices" }).getByRole("row", { name: /e2e-model/ }).getByText("this project").waitFor();
  await expectAccessible(page, "model prices");
  const models = await adminApi(env.server.url, "GET", "/api/v1/models");
  assert.equal(models.find((m) => m.model === "e2e-model").outputPer1M, 6);

  // Protect staging as a deployment label and turn one lint rule off.
  await page.getByRole("tab", { name: "Labels and lint" }).click();
  const deployment = page.getByRole("combobox", { name: "Deployment labels" });
  await deployment.fill("staging");
  await deployment.press("Enter");
  await page.getByRole("switch", { name: /^Run PL002/ }).uncheck({ force: true });
  await expectAccessible(page, "labels and lint");
  await screenshot(page, "settings-policy");
  await page.getByRole("button", { name: "Save settings" }).click();
  await page.getByText("Settings saved.").waitFor();
  const rules = await adminApi(env.server.url, "GET", "/api/v1/lint/rules");
  assert.equal(rules.find((r) => r.id === "PL002").enabled, false);
  const projects = await adminApi(env.server.url, "GET", "/api/v1/projects");
  assert.deepEqual(projects[0].settings.deployableLabels, ["production", "staging"]);
  await context.close();
});

test("an analyst uploads a CSV dataset, previews it and browses its cases; a bad file names its line", async () => {
  await adminApi(env.server.url, "POST", "/api/v1/members", {
    email: "qa@example.com",
    role: "QAAnalyst",
    password: "qa-password-123",
  });
  const context = await env.browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  await signIn(page, env.server.url, { email: "qa@example.com", password: "qa-password-123" });
  await page.getByRole("link", { name: "Datasets" }).click();
  await page.getByLabel("Dataset file").setInputFiles(new URL("./data/broken.jsonl", import.meta.url).pathname);
  await page.getByRole("button", { name: "Import" }).click();
  const alert = page.getByRole("alert").filter({ hasText: "The file was not imported" });
  await alert.waitFor();
  assert.match(await alert.textContent(), /line 1/i);

  await page.getByLabel("Dataset file").setInputFiles(new URL("./data/reviews.csv", import.meta.url).pathname);
  await page.getByLabel("File preview").getByText("Arrived broken, no refund.").waitFor();
  await page.getByRole("textbox", { name: /^Dataset name/ }).fill("e2e/reviews");
  await page.getByLabel("Version message").fill("three reviews");
  await expectAccessible(page, "datasets");
  await page.getByRole("button", { name: "Import" }).click();
  await page.waitForURL(/\/datasets\/e2e\/reviews/);
  await page.getByText("3 cases in v1").waitFor();
  await page.getByRole("table", { name: "Cases" }).getByText("Works great, fast shipping").waitFor();
  await expectAccessible(page, "dataset cases");
  await screenshot(page, "dataset");
  await page.getByLabel("Tag").fill("refund");
  await page.getByLabel("Tag").blur();
  await page.getByText("3 cases in v1 · showing those tagged refund").waitFor();
  assert.match(page.url(), /tag=refund/);
  await page.waitForFunction(() => !document.body.innerText.includes("Works great, fast shipping"));
  assert.equal(await page.getByRole("table", { name: "Cases" }).getByRole("row").count(), 2);
  await context.close();
});
