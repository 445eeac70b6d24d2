// Browser journey of single sign-on: a real `promptops serve`, a real OpenID Connect provider (panva's
// oidc-provider, tests/support/oidc_idp, on 127.0.0.1) and chromium. "Sign in with SSO" on the login page goes
// to the provider's own login and consent pages and comes back signed in with the role the group mapping gives;
// signing out ends the provider's session too (RP-initiated logout); a refused callback comes back to the login
// page with the reason.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { ROOT, adminApi, expectAccessible, useServerAndBrowser } from "./support.mjs";

const USER = { login: "alice", password: "alice-pass", email: "alice@example.com" };
let idp = null;

/** The OIDC provider with one client whose redirect URI is the server's callback; resolves to its issuer. */
function startIdp(base) {
  const dir = mkdtempSync(join(tmpdir(), "promptops-idp-"));
  const config = join(dir, "idp.json");
  writeFileSync(
    config,
    JSON.stringify({
      clients: [{ client_id: "promptops", client_secret: "e2e-client-secret-0123456789", redirect_uris: [`${base}/api/v1/auth/sso/corp/callback`], post_logout_redirect_uris: [`${base}/login`] }],
      users: { alice: { password: USER.password, email: USER.email, name: "Alice", groups: ["prompt-engineers"] } },
    }),
  );
  const child = spawn(process.execPath, [join(ROOT, "tests", "support", "oidc_idp", "server.mjs"), config], { stdio: ["ignore", "pipe", "ignore"] });
  return new Promise((resolve, reject) => {
    let out = "";
    child.on("exit", (code) => reject(new Error(`the test OIDC provider exited (${code})`)));
    child.stdout.on("data", (chunk) => {
      out += chunk;
      const found = out.match(/LISTENING (\d+)/);
      if (found) resolve({ issuer: `http://127.0.0.1:${found[1]}`, stop: () => child.kill("SIGTERM") });
    });
  });
}

const env = useServerAndBrowser(
  async (base) => {
    idp = await startIdp(base);
    await adminApi(base, "POST", "/api/v1/sso/providers", {
      name: "corp",
      displayName: "Corp",
      issuer: idp.issuer,
      clientId: "promptops",
      clientSecret: "e2e-client-secret-0123456789",
      scopes: ["openid", "email", "profile", "groups"],
    });
    await adminApi(base, "PUT", "/api/v1/sso/providers/corp/mappings", { mappings: [{ group: "prompt-engineers", role: "PromptEngineer" }] });
  },
  { PROMPTOPS_PROVIDER_ALLOWED_HOSTS: "127.0.0.1" },
);

after(() => idp?.stop());

test("Sign in with SSO through the identity provider's pages, with the mapped role", async () => {
  const page = await env.browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(`${env.server.url}/datasets`);
  await page.waitForURL(/\/login/);
  const sso = page.getByRole("link", { name: "Sign in with SSO" });
  await sso.waitFor();
  await expectAccessible(page, "login page with SSO");
  await sso.click();

  await page.waitForURL((url) => url.href.startsWith(idp.issuer));
  await page.locator('input[name="login"]').fill(USER.login);
  await page.locator('input[name="password"]').fill(USER.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("button", { name: "Continue" }).click(); // the provider's consent page

  await page.waitForURL(`${env.server.url}/datasets`);
  assert.equal(await page.getByTestId("whoami").textContent(), USER.email);
  await page.getByText("PromptEngineer", { exact: true }).waitFor();

  // Signing out ends the provider's session too: its end-session page, then back to the login page.
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL((url) => url.href.startsWith(`${idp.issuer}/session/end`));
  await page.getByRole("button", { name: "Yes, sign me out" }).click();
  await page.waitForURL(`${env.server.url}/login`);
  await page.getByRole("link", { name: "Sign in with SSO" }).waitFor();
  // the provider asks for the password again: its session ended as well
  await page.getByRole("link", { name: "Sign in with SSO" }).click();
  await page.waitForURL((url) => url.href.startsWith(idp.issuer));
  await page.locator('input[name="password"]').waitFor();
  await page.close();
});

test("a refused callback comes back to the login page with the reason", async () => {
  const page = await env.browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(`${env.server.url}/api/v1/auth/sso/corp/callback?state=not-a-state&code=x`);
  await page.waitForURL(/\/login\?ssoError=sso_state_invalid/);
  await page.getByText("That sign-in link was already used or is unknown. Start again.").waitFor();
  await page.getByRole("link", { name: "Sign in with SSO" }).waitFor();
  await page.close();
});
