import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SCHEMA } from "../../src/index.js";

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, "../..");
const wrangler = path.join(root, "node_modules", ".bin", "wrangler");
const quiet = { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false", CI: "true" };

describe("migrations/", () => {
  it("SCHEMA is byte for byte the migration files' statements", async () => {
    const files = (await readdir(path.join(root, "migrations"))).filter((f) => f.endsWith(".sql")).sort();
    expect(files).toEqual(["0001_checkpoints.sql", "0002_projection_operations.sql", "0003_projection_versions.sql", "0004_fewer_rows_and_run_log.sql"]);
    const text = await Promise.all(files.map((f) => readFile(path.join(root, "migrations", f), "utf8")));
    expect(text.join("")).toBe(SCHEMA);
  });

  describe("wrangler d1 migrations apply --local", () => {
    let persist: string;

    beforeAll(async () => {
      persist = await mkdtemp(path.join(tmpdir(), "checkpointstore-d1-"));
    });

    afterAll(async () => {
      await rm(persist, { recursive: true, force: true });
    });

    async function wranglerD1(...args: string[]): Promise<string> {
      const { stdout } = await run(wrangler, ["d1", ...args, "--local", "--persist-to", persist], {
        cwd: root,
        env: quiet,
      });
      return stdout;
    }

    it("applies the schema, then has nothing left to apply", async () => {
      const first = await wranglerD1("migrations", "apply", "DB");
      expect(first).toContain("0001_checkpoints.sql");
      expect(first).toContain("0002_projection_operations.sql");
      expect(first).toContain("0003_projection_versions.sql");
      const again = await wranglerD1("migrations", "apply", "DB");
      expect(again).toMatch(/No migrations to apply/);
      const out = await wranglerD1(
        "execute",
        "DB",
        "--json",
        "--command",
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'checkpoints'",
      );
      const [result] = JSON.parse(out) as [{ results: { sql: string }[] }];
      const [first0001] = SCHEMA.split(";\n", 1);
      expect(result.results[0]?.sql).toBe(first0001?.replace(/^CREATE TABLE IF NOT EXISTS/, "CREATE TABLE"));
      // wrangler applies the triggers whole (their bodies hold semicolons): a save records when the checkpoint moved.
      const moved = await wranglerD1(
        "execute",
        "DB",
        "--json",
        "--command",
        "INSERT INTO checkpoints (name, position) VALUES ('p', 1); SELECT COUNT(*) AS n FROM checkpoint_moves WHERE name = 'p'",
      );
      expect(JSON.stringify(JSON.parse(moved))).toContain('"n":1');
    });
  });
});
