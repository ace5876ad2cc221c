import { execFile } from "node:child_process";
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { main, type ExitCode } from "../../src/cli/main.js";
import { copyText, MARKER, NOTE, planMigrations, readPackageMigrations, writePlan } from "../../src/cli/migrations.js";
import { SCHEMA } from "../../src/sql/schema.js";

// `npx checkpointstore-d1 migrations <folder>` (docs/decisions/0023): most tests
// call `main` in process with a package migrations folder of their choosing
// (a copy of migrations/ with one more file stands for an upgrade); one runs the
// bin as built, one applies the result with the real wrangler.
const root = path.resolve(import.meta.dirname, "../..");
const packageMigrations = path.join(root, "migrations");
const wrangler = path.join(root, "node_modules", ".bin", "wrangler");
const quiet = { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false", CI: "true" };
const exec = promisify(execFile);

const USER = {
  "0001_events.sql": "CREATE TABLE IF NOT EXISTS events (position INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL);\n",
  "0002_orders.sql": "CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, total INTEGER NOT NULL);\n",
};
const INSTALLED = ["0001_events.sql", "0002_orders.sql", "0003_checkpoints.sql", "0004_projection_operations.sql", "0005_projection_versions.sql", "0006_fewer_rows_and_run_log.sql"];
const SNAPSHOTS = "CREATE TABLE IF NOT EXISTS projection_snapshots (name TEXT PRIMARY KEY, body TEXT NOT NULL);\n";

let work: string;
let app: string;

beforeEach(async () => {
  work = await mkdtemp(path.join(tmpdir(), "checkpointstore-d1-cli-"));
  app = path.join(work, "app");
  await mkdir(path.join(app, "migrations"), { recursive: true });
  for (const [file, text] of Object.entries(USER)) await writeFile(path.join(app, "migrations", file), text);
});

afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

interface Run {
  readonly code: ExitCode;
  readonly out: string[];
  readonly err: string[];
}

/** Runs the command in `app` against `source` (the package's migrations unless told). */
async function cli(argv: readonly string[], source = packageMigrations): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { source, cwd: app, out: (line) => out.push(line), err: (line) => err.push(line) });
  return { code, out, err };
}

/** Every entry of a folder with its text ("(folder)" for a folder). */
async function snapshot(folder: string): Promise<Record<string, string>> {
  const entries = (await readdir(folder, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
  return Object.fromEntries(
    await Promise.all(entries.map(async (entry) => [entry.name, entry.isFile() ? await readFile(path.join(folder, entry.name), "utf8") : "(folder)"] as const)),
  );
}

/** A copy of the package's migrations with `extra` added (or replaced), standing for a later version of the package. */
async function upgraded(extra: Record<string, string>): Promise<string> {
  const source = path.join(work, "package-next");
  await cp(packageMigrations, source, { recursive: true });
  for (const [file, text] of Object.entries(extra)) await writeFile(path.join(source, file), text);
  return source;
}

const folder = (): string => path.join(app, "migrations");

describe("checkpointstore-d1 migrations", () => {
  it("numbers the package's migrations after the app's highest, each with its marker and the package's statements", async () => {
    const run = await cli(["migrations", "./migrations"]);
    expect(run).toEqual({
      code: 0,
      out: [
        "added              migrations/0003_checkpoints.sql (package's 0001_checkpoints.sql)",
        "added              migrations/0004_projection_operations.sql (package's 0002_projection_operations.sql)",
        "added              migrations/0005_projection_versions.sql (package's 0003_projection_versions.sql)",
        "added              migrations/0006_fewer_rows_and_run_log.sql (package's 0004_fewer_rows_and_run_log.sql)",
        "4 added, 0 already installed in migrations/. Apply them with: npx wrangler d1 migrations apply <binding>",
      ],
      err: [],
    });
    const files = await snapshot(folder());
    expect(Object.keys(files)).toEqual(INSTALLED);
    const [first] = await readPackageMigrations(packageMigrations);
    expect(files["0003_checkpoints.sql"]).toBe(first && copyText(first));
    const copies = INSTALLED.slice(2).map((file) => files[file]?.split("\n") ?? []);
    for (const [at, lines] of copies.entries()) {
      expect(lines[0]).toMatch(MARKER);
      expect(MARKER.exec(lines[0] ?? "")?.[1]).toBe(["0001_checkpoints", "0002_projection_operations", "0003_projection_versions", "0004_fewer_rows_and_run_log"][at]);
      expect(lines[1]).toBe(NOTE);
    }
    expect(copies.map((lines) => lines.slice(2).join("\n")).join("")).toBe(SCHEMA);
  });

  it("is idempotent: a second run finds every copy and changes nothing", async () => {
    await cli(["migrations", "migrations"]);
    const before = await snapshot(folder());
    const again = await cli(["migrations", "migrations"]);
    expect(again.code).toBe(0);
    expect(again.out.slice(0, 4).every((line) => line.startsWith("already installed  migrations/000"))).toBe(true);
    expect(again.out[4]).toBe("Nothing to add: the package's 4 migrations are already installed in migrations/.");
    expect(await snapshot(folder())).toEqual(before);
  });

  it("recognises copies made by hand by their content, whatever their number or line endings", async () => {
    // The old README's way: the package's files copied as they are, beside a user's 0003_events.sql.
    await rm(folder(), { recursive: true });
    await cp(packageMigrations, folder(), { recursive: true });
    await writeFile(path.join(folder(), "0003_events.sql"), USER["0001_events.sql"]);
    const crlf = (await readFile(path.join(folder(), "0002_projection_operations.sql"), "utf8")).replace(/\n/g, "\r\n");
    await writeFile(path.join(folder(), "0002_projection_operations.sql"), crlf);
    const before = await snapshot(folder());
    const run = await cli(["migrations"]);
    expect(run.code).toBe(0);
    expect(run.out).toContain("already installed  migrations/0003_projection_versions.sql (package's 0003_projection_versions.sql)");
    expect(run.out.at(-1)).toMatch(/^Nothing to add/);
    expect(await snapshot(folder())).toEqual(before);
  });

  it("after an upgrade adds only the new migration, numbered after what the app has by then", async () => {
    await cli(["migrations"]);
    await writeFile(path.join(folder(), "0007_refunds.sql"), "CREATE TABLE IF NOT EXISTS refunds (id TEXT PRIMARY KEY);\n");
    const before = await snapshot(folder());
    const source = await upgraded({ "0005_projection_snapshots.sql": SNAPSHOTS });
    const run = await cli(["migrations", "migrations"], source);
    expect(run.code).toBe(0);
    expect(run.out.filter((line) => line.startsWith("added"))).toEqual([
      "added              migrations/0008_projection_snapshots.sql (package's 0005_projection_snapshots.sql)",
    ]);
    expect(run.out.at(-1)).toMatch(/^1 added, 4 already installed in migrations\//);
    const after = await snapshot(folder());
    expect(Object.keys(after)).toEqual([...Object.keys(before), "0008_projection_snapshots.sql"]);
    expect(after).toMatchObject(before);
    expect(after["0008_projection_snapshots.sql"]?.endsWith(`${NOTE}\n${SNAPSHOTS}`)).toBe(true);
  });

  it("reports a copy edited after it was copied, and writes nothing, not even the new migrations", async () => {
    await cli(["migrations"]);
    const edited = path.join(folder(), "0004_projection_operations.sql");
    await writeFile(edited, `${await readFile(edited, "utf8")}DROP TRIGGER checkpoint_deleted;\n`);
    const before = await snapshot(folder());
    const run = await cli(["migrations"], await upgraded({ "0005_projection_snapshots.sql": SNAPSHOTS }));
    expect(run.code).toBe(1);
    expect(run.out).toContain("not added          migrations/0007_projection_snapshots.sql (package's 0005_projection_snapshots.sql)");
    const changed = run.out.find((line) => line.startsWith("CHANGED"));
    expect(changed).toMatch(/^CHANGED {12}migrations\/0004_projection_operations\.sql \(package's 0002_projection_operations\.sql\): edited after it was copied/);
    expect(changed).toContain("restore it from ../package-next/0002_projection_operations.sql");
    expect(run.err).toEqual(["error: 1 installed copy differs from the package's migrations (see CHANGED above), so nothing was written"]);
    expect(await snapshot(folder())).toEqual(before);
  });

  it("tells a package migration that changed from a copy that was edited", async () => {
    await cli(["migrations"]);
    const before = await snapshot(folder());
    const changedPackage = await upgraded({ "0001_checkpoints.sql": "CREATE TABLE IF NOT EXISTS checkpoints (name TEXT PRIMARY KEY);\n" });
    const run = await cli(["migrations"], changedPackage);
    expect(run.code).toBe(1);
    expect(run.out[0]).toMatch(/^CHANGED {12}migrations\/0003_checkpoints\.sql .*: unchanged since it was copied, but this version of the package ships other statements/);
    expect(await snapshot(folder())).toEqual(before);
  });

  it("reports a hand copy that has a migration's name but not its statements", async () => {
    await writeFile(path.join(folder(), "0003_checkpoints.sql"), "CREATE TABLE checkpoints (name TEXT PRIMARY KEY, position INTEGER);\n");
    const before = await snapshot(folder());
    const run = await cli(["migrations"]);
    expect(run.code).toBe(1);
    expect(run.out[0]).toMatch(/^CHANGED {12}migrations\/0003_checkpoints\.sql .*: has the migration's name but not its statements/);
    expect(run.out.slice(1).every((line) => line.startsWith("not added"))).toBe(true);
    expect(await snapshot(folder())).toEqual(before);
  });

  it("--dry-run prints what it would do and writes nothing", async () => {
    const before = await snapshot(folder());
    const dry = await cli(["migrations", "--dry-run"]);
    expect(dry.code).toBe(0);
    expect(dry.out[0]).toBe("would add          migrations/0003_checkpoints.sql (package's 0001_checkpoints.sql)");
    expect(dry.out.at(-1)).toBe("Dry run: would add 4, 0 already installed in migrations/; nothing written.");
    expect(await snapshot(folder())).toEqual(before);
    const missing = await cli(["--dry-run", "migrations", "db/migrations"]);
    expect(missing.out.at(-1)).toBe("Dry run: would add 4, 0 already installed in db/migrations/, would create the folder; nothing written.");
    expect(await readdir(app)).toEqual(["migrations"]);
  });

  it("creates the folder when it is missing, ./migrations by default", async () => {
    await rm(folder(), { recursive: true });
    const run = await cli(["migrations"]);
    expect(run.code).toBe(0);
    expect(run.out.at(-1)).toBe("4 added, 0 already installed in migrations/, created the folder. Apply them with: npx wrangler d1 migrations apply <binding>");
    expect(Object.keys(await snapshot(folder()))).toEqual(["0001_checkpoints.sql", "0002_projection_operations.sql", "0003_projection_versions.sql", "0004_fewer_rows_and_run_log.sql"]);
  });

  it("refuses bad arguments with exit 2 and a clear message, writing nothing", async () => {
    await writeFile(path.join(app, "notes.txt"), "not a folder\n");
    const cases: [string[], string][] = [
      [[], "error: missing command: the only one is migrations"],
      [["migration"], 'error: unknown command "migration": the only one is migrations'],
      [["migrations", "a", "b"], "error: migrations takes one folder, got 2: a b"],
      [["migrations", "--force"], "error: unknown option --force"],
      [["migrations", "-n"], "error: unknown option -n"],
      [["migrations", ""], "error: the migrations folder is an empty string"],
      [["migrations", "notes.txt"], "error: notes.txt is not a folder"],
    ];
    const before = await snapshot(app);
    for (const [argv, message] of cases) {
      const run = await cli(argv);
      expect(run, argv.join(" ")).toEqual({ code: 2, out: [], err: [message, "Usage: checkpointstore-d1 migrations [folder] [--dry-run]  (--help for more)"] });
    }
    expect(await snapshot(app)).toEqual(before);
    expect(await readdir(folder())).toEqual(Object.keys(USER));
    for (const argv of [["--help"], ["-h"], ["help"], ["migrations", "x", "--help"]]) {
      const help = await cli(argv);
      expect(help.code).toBe(0);
      expect(help.out[0]).toMatch(/^Usage: checkpointstore-d1 migrations \[folder\] \[--dry-run\]\n/);
    }
    const afterDashes = await cli(["migrations", "--", "--dry-run"]); // "--" ends the options: a folder named --dry-run
    expect(afterDashes.out.at(-1)).toMatch(/in --dry-run\/, created the folder/);
  });

  it("refuses to add a migration that wrangler would not apply last", async () => {
    for (const last of ["9999_final.sql", "seed.sql"]) {
      await writeFile(path.join(folder(), last), "SELECT 1;\n");
      const before = await snapshot(folder());
      const run = await cli(["migrations"]);
      expect(run.code).toBe(1);
      expect(run.err[0]).toMatch(new RegExp(`^error: \\d+_checkpoints\\.sql would sort before ${last}, and wrangler applies migrations in file-name order$`));
      expect(run.err.at(-1)).toBe("error: nothing was written");
      expect(await snapshot(folder())).toEqual(before);
      await rm(path.join(folder(), last));
    }
  });

  it("writes all or nothing: a failed write removes the copies it made", async () => {
    const plan = await planMigrations(packageMigrations, folder());
    await writeFile(path.join(folder(), "0004_projection_operations.sql"), "-- someone else's\n"); // appears after planning
    await expect(writePlan(plan)).rejects.toThrow(/EEXIST/);
    expect(await readdir(folder())).toEqual([...Object.keys(USER), "0004_projection_operations.sql"]);
    expect(await readFile(path.join(folder(), "0004_projection_operations.sql"), "utf8")).toBe("-- someone else's\n");
  });
});

describe("the checkpointstore-d1 bin", () => {
  it("is declared in package.json, shipped by files, and kept out of the library's entry points", async () => {
    const pkg = JSON.parse(await readFile(path.join(root, "package.json"), "utf8")) as { bin: Record<string, string>; files: string[] };
    expect(pkg.bin).toEqual({ "checkpointstore-d1": "dist/cli/bin.js" });
    expect(pkg.files).toEqual(expect.arrayContaining(["dist", "migrations"]));
    for (const entry of (await readdir(path.join(root, "src"))).filter((file) => file.endsWith(".ts"))) {
      expect(await readFile(path.join(root, "src", entry), "utf8"), entry).not.toMatch(/\/cli\//);
    }
  });

  it("runs as built, from the package's layout", async () => {
    // The package as npm installs it: dist/ from the real build, migrations/ beside it.
    const pkg = path.join(work, "package");
    await exec(process.execPath, [path.join(root, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.build.json", "--outDir", path.join(pkg, "dist")], { cwd: root }).catch(() => undefined); // others' work in progress may not type-check; the emit is what counts
    await cp(packageMigrations, path.join(pkg, "migrations"), { recursive: true });
    const bin = path.join(pkg, "dist", "cli", "bin.js");
    expect((await readFile(bin, "utf8")).startsWith("#!/usr/bin/env node\n")).toBe(true);
    const run = async (...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
      try {
        return { code: 0, ...(await exec(process.execPath, [bin, ...argv], { cwd: app })) };
      } catch (error) {
        const { code, stdout, stderr } = error as { code: number; stdout: string; stderr: string }; // execFile's error on a non-zero exit
        return { code, stdout, stderr };
      }
    };
    const first = await run("migrations", "./migrations");
    expect(first.code).toBe(0);
    expect(first.stdout).toContain("added              migrations/0006_fewer_rows_and_run_log.sql (package's 0004_fewer_rows_and_run_log.sql)\n4 added");
    expect(Object.keys(await snapshot(folder()))).toEqual(INSTALLED);
    expect((await run("migrations", "./migrations")).stdout).toMatch(/Nothing to add/);
    const bad = await run("migrations", "a", "b");
    expect(bad).toMatchObject({ code: 2, stdout: "" });
    expect(bad.stderr).toMatch(/^error: migrations takes one folder/);
  });

  it("installs migrations that wrangler d1 migrations apply runs after the app's, and then only the new one", async () => {
    const persist = path.join(work, "state");
    await writeFile(
      path.join(app, "wrangler.toml"),
      'name = "app"\ncompatibility_date = "2026-04-20"\n\n[[d1_databases]]\nbinding = "DB"\ndatabase_name = "app"\ndatabase_id = "00000000-0000-0000-0000-000000000001"\nmigrations_dir = "migrations"\n',
    );
    const d1 = async (...args: string[]): Promise<string> =>
      (await exec(wrangler, ["d1", ...args, "--local", "--persist-to", persist], { cwd: app, env: quiet })).stdout;
    const query = async <Row>(sql: string): Promise<Row[]> => {
      const results = JSON.parse(await d1("execute", "DB", "--json", "--command", sql)) as { results: Row[] }[];
      return results.at(-1)?.results ?? []; // the last statement's rows
    };
    const applied = async (): Promise<string[]> => (await query<{ name: string }>("SELECT name FROM d1_migrations ORDER BY id")).map((row) => row.name);

    expect((await cli(["migrations"])).code).toBe(0);
    const first = await d1("migrations", "apply", "DB");
    for (const file of INSTALLED) expect(first).toContain(file);
    expect(await applied()).toEqual(INSTALLED);
    const tables = (await query<{ name: string }>("SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger') ORDER BY name")).map((row) => row.name);
    expect(tables).toEqual(
      expect.arrayContaining(["events", "orders", "checkpoints", "parked_events", "checkpoint_moves", "projection_leases", "projection_versions", "checkpoint_inserted"]),
    );
    expect(await query("INSERT INTO checkpoints (name, position) VALUES ('p', 1); SELECT COUNT(*) AS n FROM checkpoint_moves WHERE name = 'p'")).toEqual([
      { n: 1 },
    ]);

    await writeFile(path.join(folder(), "0007_refunds.sql"), "CREATE TABLE IF NOT EXISTS refunds (id TEXT PRIMARY KEY);\n");
    expect((await cli(["migrations"], await upgraded({ "0005_projection_snapshots.sql": SNAPSHOTS }))).code).toBe(0);
    const second = await d1("migrations", "apply", "DB");
    expect(second).toContain("0008_projection_snapshots.sql");
    expect(second).not.toContain("0003_checkpoints.sql");
    expect(await applied()).toEqual([...INSTALLED, "0007_refunds.sql", "0008_projection_snapshots.sql"]);
    expect(await query("SELECT COUNT(*) AS n FROM projection_snapshots")).toEqual([{ n: 0 }]);
    expect(await d1("migrations", "apply", "DB")).toMatch(/No migrations to apply/);
  });
});
