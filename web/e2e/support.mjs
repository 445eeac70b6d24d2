// What the browser journeys share: a real `promptops serve` on a fresh SQLite database, Debian's chromium
// driven by playwright-core, and axe-core for accessibility. Only loopback traffic.
import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";
import { after, before } from "node:test";
import { chromium } from "playwright-core";

const HERE = dirname(fileURLToPath(import.meta.url));
export const ROOT = join(HERE, "..", "..");
export const SCREENSHOTS = join(ROOT, "docs", "ui");
export const ADMIN = { email: "admin@localhost", password: "e2e-admin-password" };
export const ADMIN_KEY = "po_e2etest0_" + "E".repeat(40);

function freePort() {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

export async function startServer(extraEnv = {}) {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), "promptops-e2e-"));
  const bin = process.env.PROMPTOPS_BIN ?? join(ROOT, ".venv", "bin", "promptops");
  const child = spawn(bin, ["serve", "--port", String(port)], {
    env: {
      ...process.env,
      PROMPTOPS_DATA_DIR: dataDir,
      PROMPTOPS_BOOTSTRAP_ADMIN_PASSWORD: ADMIN.password,
      PROMPTOPS_BOOTSTRAP_ADMIN_KEY: ADMIN_KEY,
      PROMPTOPS_LOG_LEVEL: "WARNING",
      ...extraEnv,
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (chunk) => (stderr += chunk));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`promptops serve exited: ${stderr}`);
    try {
      if ((await fetch(`${url}/readyz`)).ok) break;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) throw new Error(`promptops serve did not start: ${stderr}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return { url, stop: () => child.kill("SIGTERM") };
}

/** A call to the API as the bootstrap admin key (set-up that is not the journey under test). */
export async function adminApi(base, method, path, body) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { Authorization: `Bearer ${ADMIN_KEY}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
}

export async function signIn(page, base, { email, password }) {
  await page.goto(`${base}/`);
  await page.waitForURL(/\/login/);
  await page.getByLabel("Email").fill(email);
  await page.getByRole("textbox", { name: "Password" }).fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByTestId("whoami").waitFor();
}

const AXE = readFileSync(join(ROOT, "web", "node_modules", "axe-core", "axe.min.js"), "utf8");

/** Serious or critical accessibility violations on the page as it is now (axe-core, WCAG 2 A/AA rules). */
export async function seriousViolations(page) {
  // A dialog fading in is half transparent: contrast measured mid-transition is wrong. Let animations end.
  // (Only finite ones, e.g. not a spinner's; and at most 2 s.)
  await page.evaluate(() => {
    const finite = document.getAnimations().filter((a) => a.effect?.getTiming().iterations !== Infinity);
    const ended = Promise.all(finite.map((a) => a.finished.catch(() => undefined)));
    return Promise.race([ended, new Promise((resolve) => setTimeout(resolve, 2000))]);
  });
  await page.evaluate(AXE); // over the DevTools protocol: the UI's CSP refuses inline scripts
  const violations = await page.evaluate(async () => {
    const result = await window.axe.run(document, {
      runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] },
    });
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(" ")).slice(0, 3) }));
  });
  return violations.filter((v) => v.impact === "serious" || v.impact === "critical");
}

/** Fails the test with axe's findings when the page has a serious or critical violation. */
export async function expectAccessible(page, where) {
  const violations = await seriousViolations(page);
  assert.deepEqual(violations, [], `${where}: ${JSON.stringify(violations, null, 1)}`);
}

/** One real server and one browser for the tests of a file: `const env = useServerAndBrowser(setUp?);` at the
 * top, then `env.server.url` and `env.browser` inside the tests. `setUp(base)` runs once the server is up (data
 * every test of the file needs, made through the API); `serverEnv`: extra PROMPTOPS_* settings of the server. */
export function useServerAndBrowser(setUp, serverEnv = {}) {
  const env = { server: null, browser: null };
  before(async () => {
    env.server = await startServer(serverEnv);
    env.browser = await launch();
    await setUp?.(env.server.url);
  });
  after(async () => {
    await env.browser?.close();
    env.server?.stop();
  });
  return env;
}

/** Adds a project member through the API and signs them in, in a fresh 1280×800 browser context. */
export async function signInAsNewMember(env, { email, name = "", role, password }) {
  await adminApi(env.server.url, "POST", "/api/v1/members", { email, name, role, password });
  const context = await env.browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  await signIn(page, env.server.url, { email, password });
  return { context, page };
}

export async function screenshot(page, name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`) });
}
