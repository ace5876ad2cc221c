import path from "node:path";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

// `npm run bench`: the benchmarks inside workerd against local D1; the
// Markdown reporter writes docs/benchmarks.md. Benchmarks are not tests.
export default defineConfig(async () => {
  const migrations = await readD1Migrations(path.join(import.meta.dirname, "migrations"));
  return {
    plugins: [
      cloudflareTest({
        wrangler: { configPath: "./wrangler.toml" },
        miniflare: { bindings: { TEST_MIGRATIONS: migrations } },
      }),
    ],
    test: {
      include: ["bench/**/*.bench.ts"],
      setupFiles: ["./test/apply-migrations.ts"],
      reporters: ["default", "./bench/markdown-reporter.ts"],
    },
  };
});
