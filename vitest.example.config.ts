import path from "node:path";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

// The example Worker, end to end inside workerd with its own migrations.
export default defineConfig(async () => {
  const migrations = await readD1Migrations(path.join(import.meta.dirname, "example", "migrations"));
  return {
    plugins: [
      cloudflareTest({
        wrangler: { configPath: "./example/wrangler.toml" },
        miniflare: { bindings: { TEST_MIGRATIONS: migrations, ADMIN_TOKEN: "test-admin-token" } },
      }),
    ],
    test: {
      include: ["example/test/**/*.test.ts"],
      setupFiles: ["./test/apply-migrations.ts"],
    },
  };
});
