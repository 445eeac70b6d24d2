// Browser journey of the alert inbox: production traffic of a prompt label has too many errors, a threshold rule
// fires; a prompt engineer opens the inbox, reads the alert and its history, acknowledges it with a note, sends
// the failing runs to an annotation queue for QA review, and resolves it.
import assert from "node:assert/strict";
import { test } from "node:test";
import { adminApi, expectAccessible, screenshot, signIn, useServerAndBrowser } from "./support.mjs";

const ENGINEER = { email: "oncall@example.com", password: "oncall-pass-12345" };
const PROMPT = "alerts/triage";

const env = useServerAndBrowser(async (base) => {
  await adminApi(base, "POST", "/api/v1/members", { email: ENGINEER.email, name: "Olive Oncall", role: "PromptEngineer", password: ENGINEER.password });
  await adminApi(base, "POST", "/api/v1/prompts", { name: PROMPT, template: "Classify: {{ text }}", labels: ["production"] });
  const runs = [];
  for (let i = 0; i < 20; i++) {
    const failed = i % 4 === 0;
    runs.push({
      prompt: PROMPT,
      version: 1,
      provider: "openai",
      model: "gpt-test",
      input: { prompt: `Classify: ticket ${i}` },
      output: failed ? null : "billing",
      status: failed ? "error" : "ok",
      errorClass: failed ? "Timeout" : null,
      latencyMs: 120,
    });
  }
  await adminApi(base, "POST", "/api/v1/runs/batch", { runs });
  await adminApi(base, "POST", "/api/v1/alert-rules", {
    name: "triage errors",
    kind: "threshold",
    prompt: PROMPT,
    metric: "error_rate",
    op: "gt",
    value: 0.1,
    windowMinutes: 60,
    severity: "critical",
  });
  const evaluated = await adminApi(base, "POST", "/api/v1/alert-rules/triage errors/evaluate");
  assert.equal(evaluated.fired + evaluated.refired, 1);
});

test("an engineer acknowledges an alert, queues its runs for QA review and resolves it", async () => {
  const page = await env.browser.newPage({ viewport: { width: 1280, height: 900 } });
  await signIn(page, env.server.url, ENGINEER);
  await page.getByRole("link", { name: "Alerts", exact: true }).click();
  await page.getByRole("heading", { name: "Alerts", level: 1 }).waitFor();
  const inbox = page.getByRole("table", { name: "Alerts" });
  await inbox.waitFor();
  const row = inbox.getByRole("row").nth(1);
  assert.match(await row.innerText(), /critical\s+open\s+error_rate of alerts\/triage@production > 0\.1/i);
  await page.mouse.move(1200, 880); // not hovering the navigation link it came by
  await expectAccessible(page, "alert inbox");
  await screenshot(page, "alerts-inbox");

  // the alert: what was measured, and its history
  await row.getByRole("button", { name: /error_rate of alerts\/triage/ }).click();
  await page.waitForURL(/alert=alt_/);
  await page.getByRole("heading", { name: /error_rate of alerts\/triage@production/, level: 2 }).waitFor();
  await page.getByRole("paragraph").filter({ hasText: /error_rate is 0\.25 over 20 sample/ }).waitFor();
  const history = page.getByRole("table", { name: "Alert history" });
  assert.match(await history.innerText(), /fired\s+system/);
  await expectAccessible(page, "alert detail");

  await page.getByRole("textbox", { name: "Note" }).fill("looking at the upstream timeouts");
  await page.getByRole("button", { name: "Acknowledge" }).click();
  await page.getByText(/acknowledged by oncall@example\.com/).waitFor();
  await history.getByText("looking at the upstream timeouts").waitFor();
  assert.equal(await page.getByRole("button", { name: "Acknowledge" }).count(), 0);

  // one click: the failing runs go to an annotation queue, which opens
  await page.getByRole("button", { name: "Review in annotation queue" }).click();
  await page.waitForURL(/\/annotations\?queue=alert-/);
  const items = page.getByRole("table", { name: "Queue items" });
  await items.waitFor();
  assert.equal(await items.locator("tbody tr").count(), 5);

  // back to the alert: it names its queue; resolve it by hand
  await page.goBack();
  await page.getByRole("heading", { name: /error_rate of alerts\/triage@production/, level: 2 }).waitFor();
  await page.getByRole("link", { name: /^Queue alert-/ }).waitFor();
  await page.getByRole("button", { name: "Resolve" }).click();
  await page.getByText(/resolved by oncall@example\.com/).waitFor();
  await page.getByRole("button", { name: "Back to the inbox" }).click();
  await page.getByText("No active alerts.").waitFor();
  await page.goto(`${env.server.url}/alerts?status=resolved`); // the filter is in the address
  assert.match(await page.getByRole("table", { name: "Alerts" }).getByRole("row").nth(1).innerText(), /resolved/i);
  await page.close();
});
