import { cp, mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import { planMigrations, writePlan } from "./src/cli/migrations.js";

// Every test suite, as vitest projects (`vitest run --project <name>` runs one):
// - package: the library inside workerd against local D1 (storage isolated per file);
// - example: the example Worker end to end inside workerd, with its own migrations;
// - quickstart: the README's Quick start (docs/quickstart) inside workerd, on a fresh database;
// - node: the package driven from plain Node (Miniflare, wrangler migrations, npm start);
// - browser: the example's admin page in a real Chromium (`npm run test:browser`; not in `npm test`).
// The benchmarks have their own config (vitest.bench.config.ts): they are not tests.
export default defineConfig(async () => {
  const migrations = await readD1Migrations(path.join(import.meta.dirname, "migrations"));
  const exampleMigrations = await readD1Migrations(path.join(import.meta.dirname, "example", "migrations"));
  // The Quick start's migrations folder as a user has it after `npx checkpointstore-d1 migrations ./migrations`:
  // a copy of its own migrations, with the package's installed by the bin's own code.
  const quickstart = await mkdtemp(path.join(tmpdir(), "quickstart-migrations-"));
  await cp(path.join(import.meta.dirname, "docs", "quickstart", "migrations"), quickstart, { recursive: true });
  const plan = await planMigrations(path.join(import.meta.dirname, "migrations"), quickstart);
  if (plan.problems.length > 0) throw new Error(`the Quick start's migrations: ${JSON.stringify(plan.problems)}`);
  await writePlan(plan);
  const quickstartMigrations = await readD1Migrations(quickstart);
  const self = { "@synapse-es/checkpointstore-d1": path.join(import.meta.dirname, "src", "index.ts") };
  return {
    test: {
      // workerd suites share the machine's two cores: one project file at a time each
      maxWorkers: 1,
      projects: [
        {
          plugins: [
            cloudflareTest({
              wrangler: { configPath: "./wrangler.toml" },
              miniflare: { bindings: { TEST_MIGRATIONS: migrations } },
            }),
          ],
          test: {
            name: "package",
            include: ["test/**/*.test.ts"],
            exclude: ["test/node/**", "test/browser/**", "test/consumer-app/**"],
            setupFiles: ["./test/apply-migrations.ts"],
          },
        },
        {
          plugins: [
            cloudflareTest({
              wrangler: { configPath: "./example/wrangler.toml" },
              miniflare: { bindings: { TEST_MIGRATIONS: exampleMigrations, ADMIN_TOKEN: "test-admin-token-0123456789abcdef" } },
            }),
          ],
          test: {
            name: "example",
            include: ["example/test/**/*.test.ts"],
            setupFiles: ["./test/apply-migrations.ts"],
          },
        },
        {
          plugins: [
            cloudflareTest({
              wrangler: { configPath: "./docs/quickstart/wrangler.jsonc" },
              miniflare: { bindings: { TEST_MIGRATIONS: quickstartMigrations } },
            }),
          ],
          resolve: { alias: self },
          test: {
            name: "quickstart",
            include: ["docs/quickstart/test/**/*.test.ts"],
            setupFiles: ["./docs/quickstart/test/apply-migrations.ts"],
          },
        },
        {
          test: {
            name: "node",
            include: ["test/node/**/*.test.ts"],
            environment: "node",
            testTimeout: 120_000,
            hookTimeout: 120_000,
          },
        },
        {
          test: {
            name: "browser",
            include: ["test/browser/**/*.test.ts"],
            environment: "node",
            testTimeout: 180_000,
            hookTimeout: 180_000,
          },
        },
      ],
    },
  };
});
