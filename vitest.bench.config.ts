import path from "node:path";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

// `npm run bench`: the benchmarks inside workerd against local D1 (and the
// in-memory store in Node, where a clock moves without I/O); the Markdown
// reporter writes docs/benchmarks.md. Benchmarks are not tests.
export default defineConfig(async () => {
  const migrations = await readD1Migrations(path.join(import.meta.dirname, "migrations"));
  return {
    test: {
      reporters: ["default", "./bench/markdown-reporter.ts"],
      projects: [
        {
          plugins: [
            cloudflareTest({
              wrangler: { configPath: "./wrangler.toml" },
              miniflare: { bindings: { TEST_MIGRATIONS: migrations } },
            }),
          ],
          test: { name: "workerd", include: ["bench/**/*.bench.ts"], setupFiles: ["./test/apply-migrations.ts"] },
        },
        { test: { name: "node", include: ["bench/**/*.node-bench.ts"], environment: "node" } },
      ],
    },
  };
});
