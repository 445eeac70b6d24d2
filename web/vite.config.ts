/// <reference types="vitest/config" />
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// `npm run dev` proxies the API to a local `promptops serve` (PROMPTOPS_URL, default :8000).
const api = process.env.PROMPTOPS_URL ?? "http://127.0.0.1:8000";

export default defineConfig({
  plugins: [react()],
  server: { proxy: { "/api": api } },
  build: { outDir: "dist", sourcemap: false, manifest: true, chunkSizeWarningLimit: 600 },
  // A generous per-test timeout: user-event typing in jsdom is slow on a loaded 2-core CI machine.
  test: { environment: "jsdom", setupFiles: ["src/test/setup.ts"], include: ["src/**/*.test.tsx", "src/**/*.test.ts"], testTimeout: 30_000 },
});
