// Browser journey of approvals on a gated label, against a real server and the embedded model: the admin gates
// production behind one approval from PromptOpsAdmin or QAAnalyst in the settings; an engineer writes a version
// and asks to move production to it from the prompt page, which answers with a link to the approval request (the
// label stays); the engineer cannot approve their own request (the page says why); a QA analyst sees the
// request waiting in the navigation, reviews the diff, the lint findings and both versions' evaluation with the
// paired comparison, approves it, and production moves.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ADMIN, adminApi, expectAccessible, screenshot, signIn, signInAsNewMember, useServerAndBrowser } from "./support.mjs";

const PROMPT = "sentiment/few-shot";
const DATASET = "e2e/approval-reviews";
const ENGINEER = { email: "eng@example.com", name: "Eve Engineer", role: "PromptEngineer", password: "engineer-password-1" };
const QA = { email: "qa@example.com", name: "Quinn Analyst", role: "QAAnalyst", password: "qa-analyst-password-1" };
const CASES = [
  { id: "r1", input: { review: "Absolutely love this blender, it crushes ice in seconds." }, expected: "positive" },
  { id: "r2", input: { review: "Broke after one week. Total waste of money." }, expected: "negative" },
  { id: "r3", input: { review: "The headphones sound amazing and are comfortable for hours." }, expected: "positive" },
  { id: "r4", input: { review: "The zipper snapped the first time I used this bag." }, expected: "negative" },
];

const env = useServerAndBrowser(async (base) => {
  await adminApi(base, "POST", "/api/v1/datasets", { name: DATASET, description: "reviews", cases: CASES });
});

/** A Mantine Select or MultiSelect by its label (an input with the combobox or the textbox role). */
function field(scope, name) {
  return scope.getByRole("combobox", { name, exact: true }).or(scope.getByRole("textbox", { name, exact: true })).first();
}

async function productionVersion(base) {
  const labels = await adminApi(base, "GET", `/api/v1/prompts/${PROMPT}/labels`);
  return labels.find((l) => l.name === "production")?.version ?? null;
}

async function evaluated(base, body) {
  const run = await adminApi(base, "POST", "/api/v1/evals", body);
  for (let i = 0; i < 600; i++) {
    const now = await adminApi(base, "GET", `/api/v1/evals/${run.id}`);
    if (["completed", "failed", "cancelled"].includes(now.status)) {
      assert.equal(now.status, "completed", JSON.stringify(now.error));
      return now;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error("the evaluation did not finish");
}

test("a production move waits for a second person's approval, then happens", async () => {
  const base = env.server.url;

  // 1. The admin gates production in the settings: one approval from PromptOpsAdmin or QAAnalyst.
  const adminContext = await env.browser.newContext({ viewport: { width: 1280, height: 900 } });
  const admin = await adminContext.newPage();
  await signIn(admin, base, ADMIN);
  await admin.goto(`${base}/settings?tab=policy`);
  const rules = admin.getByRole("form", { name: "Approval rules" });
  await rules.getByText("No label needs approvals.").waitFor();
  await rules.getByRole("button", { name: "Add a gated label" }).click();
  assert.equal(await rules.getByRole("textbox", { name: "Name of gated label 1" }).inputValue(), "production");
  await field(rules, "Roles whose approvals count for production").click({ force: true }); // the pills take the pointer
  await admin.getByRole("option", { name: "PromptEngineer", exact: true }).click(); // chosen by default: unchoose it
  await admin.getByRole("option", { name: "QAAnalyst", exact: true }).click();
  await admin.keyboard.press("Escape");
  await expectAccessible(admin, "settings: approval rules");
  await rules.getByRole("button", { name: "Save approval rules" }).click();
  await rules.getByText("Approval rules saved.").waitFor();
  const [project] = await adminApi(base, "GET", "/api/v1/projects");
  assert.deepEqual(project.settings.approvals, {
    labels: { production: { required: 1, roles: ["PromptOpsAdmin", "QAAnalyst"] } },
    rollback: "previousVersion",
  });
  await adminContext.close();

  // 2. The engineer writes version 2 (in their session) and asks to move production to it from the prompt page.
  const before = await productionVersion(base);
  assert.equal(before, 1);
  const eng = await signInAsNewMember(env, ENGINEER);
  const written = await eng.page.evaluate(async (prompt) => {
    const csrf = document.cookie.split("; ").find((c) => c.startsWith("promptops_csrf="))?.split("=")[1] ?? "";
    const response = await fetch(`/api/v1/prompts/${prompt}/versions`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": decodeURIComponent(csrf) },
      body: JSON.stringify({
        template: "Is this review positive or negative? Answer with one word.\n{{ review }}\nAnswer:",
        variables: [{ name: "review", type: "string" }],
        modelConfig: { provider: "local", model: "gemma-3-270m", params: { temperature: 0, max_tokens: 3, stop: ["\n"] } },
        commitMessage: "one-word answers",
      }),
    });
    return { status: response.status, body: await response.json() };
  }, PROMPT);
  assert.equal(written.status, 201, JSON.stringify(written.body));
  assert.equal(written.body.version.version, 2);
  assert.equal(written.body.version.createdBy, (await adminApi(base, "GET", "/api/v1/members")).find((m) => m.email === ENGINEER.email).userId);
  // both versions evaluated on the same cases: the review pairs them
  await evaluated(base, { name: "v1 vs v2", prompts: [`${PROMPT}@1`, `${PROMPT}@2`], dataset: DATASET });

  await eng.page.goto(`${base}/prompts/${PROMPT}?tab=labels`);
  await eng.page.getByRole("textbox", { name: "Label", exact: true }).fill("production");
  await field(eng.page, "To version").click();
  await eng.page.getByRole("option", { name: /^v2\b/ }).click();
  await eng.page.getByRole("textbox", { name: "Reason", exact: true }).fill("one-word answers parse better");
  await eng.page.getByRole("button", { name: "Review and move" }).click();
  await eng.page.getByRole("dialog").getByTestId("diff").waitFor();
  await eng.page.getByRole("button", { name: "Confirm move" }).click();
  const notice = eng.page.getByTestId("approval-notice");
  await notice.waitFor();
  assert.match(await notice.innerText(), /production on sentiment\/few-shot needs 1 approval \(from PromptOpsAdmin, QAAnalyst\) before it moves \(v1 → v2\)\. Nothing moved yet\./);
  assert.equal(await productionVersion(base), 1, "nothing moved");
  await expectAccessible(eng.page, "prompt page: approval notice");
  const link = notice.getByRole("link", { name: /^Open approval request apr_/ });
  const requestId = (await link.innerText()).replace("Open approval request ", "");

  // 3. The requester (and author) cannot approve: no decision buttons, and the page says why.
  await link.click();
  await eng.page.getByRole("heading", { name: `Approval request ${requestId}`, level: 1 }).waitFor();
  assert.match(await eng.page.getByTestId("why-not").innerText(), /You cannot approve or reject this request: You requested this move \(four-eyes rule\)\./);
  assert.equal(await eng.page.getByRole("button", { name: "Approve" }).count(), 0);
  assert.equal(await eng.page.getByRole("button", { name: "Reject" }).count(), 0);
  await eng.page.getByRole("button", { name: "Withdraw request…" }).waitFor(); // the requester may withdraw it
  await expectAccessible(eng.page, "approval request (requester)");
  await eng.context.close();

  // 4. A QA analyst sees it waiting in the navigation, reviews it and approves it.
  const qa = await signInAsNewMember(env, QA);
  const nav = qa.page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: /^Approvals/ });
  await qa.page.getByTestId("approvals-waiting").waitFor();
  // the count's accessible name says what it counts
  await qa.page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Approvals 1 waiting for your decision", exact: true }).waitFor();
  await nav.click();
  await qa.page.getByRole("heading", { name: "Approvals", level: 1 }).waitFor();
  await field(qa.page, "Status").click();
  await qa.page.getByRole("option", { name: "open", exact: true }).click();
  await qa.page.waitForURL(/status=open/);
  const table = qa.page.getByRole("table", { name: "Approval requests" });
  await table.getByRole("link", { name: requestId }).waitFor();
  assert.match(await table.innerText(), /waiting for you/i);
  assert.match(await table.innerText(), /Eve Engineer/);
  await expectAccessible(qa.page, "approvals list");
  await table.getByRole("link", { name: requestId }).click();

  await qa.page.getByTestId("requested-move").waitFor();
  assert.equal(await qa.page.getByTestId("requested-move").innerText(), "Move production of sentiment/few-shot: v1 → v2");
  assert.equal(await qa.page.getByTestId("rule").innerText(), "0 of 1 approval from PromptOpsAdmin, QAAnalyst");
  assert.match(await qa.page.getByLabel("Template diff").innerText(), /\+Is this review positive or negative\? Answer with one word\./);
  const evaluation = qa.page.getByRole("table", { name: "Latest evaluation of both versions" });
  assert.match(await evaluation.innerText(), /Current \(v1\)[\s\S]*Requested \(v2\)/);
  await qa.page.getByTestId("approval-comparison").waitFor();
  assert.match(await qa.page.getByTestId("approval-comparison").innerText(), /4 paired cases/);
  await expectAccessible(qa.page, "approval review");
  await qa.page.setViewportSize({ width: 1280, height: 1800 }); // the whole review: move, decision, diff, lint, evaluation
  await screenshot(qa.page, "approvals-review");
  await qa.page.setViewportSize({ width: 1280, height: 800 });

  await qa.page.getByRole("textbox", { name: /^Comment/ }).fill("one word is easier to parse");
  await qa.page.getByRole("button", { name: "Approve" }).click();
  const outcome = qa.page.getByTestId("approval-outcome");
  await outcome.waitFor();
  assert.equal(await outcome.innerText(), "Approved: the rule is met. production now points at v2.");
  await qa.page.getByTestId("outcome").waitFor();
  assert.match(await qa.page.getByTestId("outcome").innerText(), /^applied by Quinn Analyst/);
  assert.match(await qa.page.getByRole("table", { name: "Decisions" }).innerText(), /Quinn Analyst\s+QAAnalyst\s+approved\s+one word is easier to parse/i);
  assert.equal(await productionVersion(base), 2, "production moved");
  // nothing waits for the analyst any more
  await qa.page.getByTestId("approvals-waiting").waitFor({ state: "detached" });
  await expectAccessible(qa.page, "approval applied");

  const applied = await adminApi(base, "GET", "/api/v1/audit?eventType=ApprovalApplied&limit=5");
  assert.equal(applied.events[0].data.requestId, requestId);
  await qa.context.close();
});
