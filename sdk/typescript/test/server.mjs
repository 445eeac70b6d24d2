// A real `promptops serve` on a fresh SQLite database (or on the database named by SDK_TEST_DATABASE_URL), with
// the bootstrap admin key, for the tests (through support.ts) and bench/sdk.mjs. Only loopback traffic.
import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const PACKAGE = join(dirname(fileURLToPath(import.meta.url)), "..");
export const ROOT = join(PACKAGE, "..", "..");
export const ADMIN_KEY = "po_sdkts000_" + "T".repeat(40);

/** A port nothing listens on (for "server down"). @returns {Promise<number>} */
export function freePort() {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

/**
 * @param {Record<string, string>} [extraEnv] more PROMPTOPS_* settings for this server
 * @returns {Promise<{url: string, stop: () => Promise<void>}>}
 */
export async function startServer(extraEnv = {}) {
  const port = await freePort();
  const env = {
    ...process.env,
    ...extraEnv,
    PROMPTOPS_DATA_DIR: mkdtempSync(join(tmpdir(), "promptops-sdk-ts-")),
    PROMPTOPS_BOOTSTRAP_ADMIN_PASSWORD: "sdk-ts-admin-password",
    PROMPTOPS_BOOTSTRAP_ADMIN_KEY: ADMIN_KEY,
    PROMPTOPS_LOG_LEVEL: "WARNING",
    PROMPTOPS_DATABASE_URL: process.env.SDK_TEST_DATABASE_URL,
  };
  if (!env.PROMPTOPS_DATABASE_URL) delete env.PROMPTOPS_DATABASE_URL;
  const bin = process.env.PROMPTOPS_BIN ?? join(ROOT, ".venv", "bin", "promptops");
  const child = spawn(bin, ["serve", "--port", String(port)], { env, stdio: ["ignore", "ignore", "pipe"] });
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
  const stop = () =>
    new Promise((resolve) => {
      if (child.exitCode !== null) return resolve(undefined);
      child.once("exit", () => resolve(undefined));
      child.kill("SIGTERM");
    });
  return { url, stop };
}

/** A call to the API as the bootstrap admin key (set-up and checks, not the SDK under test). */
export async function api(base, method, path, body) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { Authorization: `Bearer ${ADMIN_KEY}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}
