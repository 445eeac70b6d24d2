// Browser journey of sign-in security: every main page renders under the server's strict Content-Security-Policy
// without a single violation, and a user turns on two-factor authentication from Settings, signs out, and can
// sign in again only with a code from the authenticator (computed here as an authenticator app would, RFC 6238).
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { test } from "node:test";
import { adminApi, expectAccessible, signIn, useServerAndBrowser } from "./support.mjs";

const USER = { email: "second-factor@example.com", password: "violet-harbour-lantern-42" };
const PAGES = ["/", "/playground", "/annotations", "/optimize", "/search?q=sentiment", "/dashboards", "/evals", "/datasets", "/runs", "/audit", "/settings?tab=keys", "/prompts/sentiment/few-shot"];

const env = useServerAndBrowser(async (base) => {
  await adminApi(base, "POST", "/api/v1/members", { email: USER.email, role: "PromptOpsAdmin", password: USER.password });
});

/** RFC 6238 TOTP (SHA-1, 30 s, 6 digits) for a base32 secret, at `offset` steps from now. */
function totp(secret, offset = 0) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const ch of secret.replace(/=+$/, "")) bits += alphabet.indexOf(ch).toString(2).padStart(5, "0");
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 30_000) + offset));
  const mac = createHmac("sha1", key).update(counter).digest();
  const at = mac[mac.length - 1] & 0xf;
  const code = (mac.readUInt32BE(at) & 0x7fffffff) % 1_000_000;
  return String(code).padStart(6, "0");
}

test("the main pages render under the strict CSP with no violation", async () => {
  const page = await env.browser.newPage({ viewport: { width: 1280, height: 800 } });
  const violations = [];
  page.on("console", (message) => {
    if (/Content Security Policy/i.test(message.text())) violations.push(message.text());
  });
  const response = await page.goto(`${env.server.url}/login`);
  const policy = response.headers()["content-security-policy"];
  assert.match(policy, /script-src 'self';/);
  assert.match(policy, /frame-ancestors 'none'/);
  await signIn(page, env.server.url, USER);
  for (const path of PAGES) {
    await page.goto(`${env.server.url}${path}`);
    await page.getByTestId("whoami").waitFor();
    await page.waitForLoadState("networkidle");
  }
  assert.deepEqual(violations, [], violations.join("\n"));
  await page.close();
});

test("a user turns on two-factor sign-in and needs a code from then on", async () => {
  const context = await env.browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  await signIn(page, env.server.url, USER);
  await page.goto(`${env.server.url}/settings?tab=security`);
  await page.getByRole("button", { name: "Set up two-factor authentication" }).click();
  const secret = (await page.getByTestId("totp-secret").innerText()).trim();
  assert.match(secret, /^[A-Z2-7]{16,}$/);
  await expectAccessible(page, "two-factor set-up");
  await page.getByRole("textbox", { name: /First code from the app/ }).fill(totp(secret));
  await page.getByRole("button", { name: "Confirm" }).click();
  await page.getByText("On", { exact: true }).waitFor();
  await context.close();

  // A new browser: the password alone is not enough; the form asks for the code, and the next step's code works.
  const fresh = await env.browser.newContext({ viewport: { width: 1280, height: 800 } });
  const again = await fresh.newPage();
  await again.goto(`${env.server.url}/login`);
  await again.getByLabel("Email").fill(USER.email);
  await again.getByRole("textbox", { name: "Password" }).fill(USER.password);
  await again.getByRole("button", { name: "Sign in" }).click();
  const code = again.getByRole("textbox", { name: /Two-factor code/ });
  await code.waitFor();
  await expectAccessible(again, "sign-in second step");
  await code.fill(totp(secret, 1));
  await again.getByRole("button", { name: "Sign in" }).click();
  await again.getByTestId("whoami").waitFor();
  await fresh.close();
});
