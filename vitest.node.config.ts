import { defineConfig } from "vitest/config";

// Suites that drive the package from plain Node: Miniflare's getD1Database(),
// and wrangler's `d1 migrations apply`, the way users test and deploy.
export default defineConfig({
  test: {
    include: ["test/node/**/*.test.ts"],
    environment: "node",
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
