import { defineConfig } from "vitest/config";

// Each test file starts its own `promptops serve` (a real server on a fresh SQLite database, or the database in
// SDK_TEST_DATABASE_URL): files run one at a time so the servers do not compete for the two cores.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 90_000,
  },
});
