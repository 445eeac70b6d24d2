// Browser journey of the experiment dashboard: a bandit runs on a prompt label, units were served and converted,
// the allocation was recomputed; a prompt engineer opens Experiments, reads the arms, the sample-ratio check and
// the allocation over time, pauses and resumes it, and ships the winning arm. A viewer reads the shipped
// experiment, which offers no lifecycle button.
import assert from "node:assert/strict";
import { test } from "node:test";
import { adminApi, expectAccessible, screenshot, signIn, signInAsNewMember, useServerAndBrowser } from "./support.mjs";

const ENGINEER = { email: "exp-engineer@example.com", password: "exp-engineer-pass-123" };
const PROMPT = "exp/greeting";
let experimentId = "";

const env = useServerAndBrowser(async (base) => {
  await adminApi(base, "POST", "/api/v1/members", { email: ENGINEER.email, name: "Erin Engineer", role: "PromptEngineer", password: ENGINEER.password });
  await adminApi(base, "POST", "/api/v1/prompts", { name: PROMPT, template: "Hello {{ who }}", labels: ["production"] });
  await adminApi(base, "POST", `/api/v1/prompts/${PROMPT}/versions`, { template: "Hi there {{ who }}!" });
  const created = await adminApi(base, "POST", "/api/v1/experiments", {
    name: "friendlier greeting",
    prompt: PROMPT,
    mode: "bandit",
    arms: [{ version: 1 }, { version: 2, name: "friendly" }],
    metrics: [{ name: "resolved" }],
  });
  experimentId = created.id;
  await adminApi(base, "POST", `/api/v1/experiments/${experimentId}/start`);
  const events = [];
  for (let i = 0; i < 120; i++) {
    const unit = `user-${i}`;
    const served = await adminApi(base, "GET", `/api/v1/prompts/${PROMPT}?label=production&unit=${unit}`);
    events.push({ unit, metric: "resolved", value: served.experiment.arm === "friendly" ? 1 : i % 10 === 0 ? 1 : 0 });
  }
  await adminApi(base, "POST", `/api/v1/experiments/${experimentId}/events`, { events });
  const moved = await adminApi(base, "POST", `/api/v1/experiments/${experimentId}/allocation`);
  assert.ok(moved.allocation.arms[1].share > 0.9);
});

test("an engineer reads a bandit's allocation, pauses, resumes and ships the winner", async () => {
  const page = await env.browser.newPage({ viewport: { width: 1280, height: 900 } });
  await signIn(page, env.server.url, ENGINEER);
  await page.getByRole("link", { name: "Experiments" }).click();
  await page.getByRole("heading", { name: "Experiments", level: 1 }).waitFor();
  const list = page.getByRole("table", { name: "Experiments" });
  await list.waitFor();
  assert.match(await list.getByRole("row").nth(1).innerText(), /friendlier greeting\s+exp\/greeting@production\s+bandit\s+running/i);
  await page.mouse.move(1200, 880);
  await expectAccessible(page, "experiment list");

  await list.getByRole("link", { name: "friendlier greeting" }).click();
  await page.waitForURL(/\/experiments\/exp_/);
  await page.getByRole("heading", { name: "friendlier greeting", level: 1 }).waitFor();
  const allocation = page.getByRole("table", { name: "Allocation over time" });
  await allocation.waitFor();
  assert.equal(await allocation.locator("tbody tr").count(), 2);
  assert.match(await allocation.locator("tbody tr").nth(1).innerText(), /manual/);
  await page.getByText(/Best arm: friendly/).waitFor();
  await page.getByText(/Sample ratio: ok/).waitFor();
  assert.match(await page.getByRole("table", { name: "Metric resolved" }).innerText(), /friendly/);
  await page.getByText(/No snapshot yet/).waitFor();
  await expectAccessible(page, "experiment detail");
  await screenshot(page, "experiment-detail");

  await page.getByRole("button", { name: "Pause" }).click();
  await page.getByRole("button", { name: "Resume" }).waitFor();
  await page.getByRole("button", { name: "Resume" }).click();
  await page.getByRole("button", { name: "Pause" }).waitFor();

  await page.getByRole("combobox", { name: "Arm to ship" }).click();
  await page.getByRole("option", { name: "friendly" }).click();
  await page.getByRole("button", { name: "Ship arm" }).click();
  await page.getByText(/shipped friendly/).waitFor();
  const served = await adminApi(env.server.url, "GET", `/api/v1/prompts/${PROMPT}?label=production`);
  assert.equal(served.version.version, 2);
  await page.close();
});

test("a viewer reads the shipped experiment (no lifecycle buttons)", async () => {
  const { context, page } = await signInAsNewMember(env, { email: "exp-viewer@example.com", role: "Viewer", password: "exp-viewer-pass-123" });
  await page.goto(`${env.server.url}/experiments/${experimentId}`);
  await page.getByRole("heading", { name: "friendlier greeting", level: 1 }).waitFor();
  await page.getByRole("table", { name: "Allocation over time" }).waitFor();
  await page.getByText(/shipped friendly/).waitFor();
  assert.equal(await page.getByRole("button", { name: /Pause|Resume|Stop|Ship arm/ }).count(), 0);
  await expectAccessible(page, "experiment detail (viewer)");
  await context.close();
});
