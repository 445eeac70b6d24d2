import { defineConfig } from "vitest/config";

// Every test file starts its own `promptops serve` (a real server on a fresh SQLite database): files run one at
// a time so the servers do not compete for the two cores.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 90_000,
  },
});
