import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { CheckpointRangeError, D1CheckpointStore, ProjectionVersionError } from "../src/index.js";
import { freshObject, inObject } from "./support/in-object.js";

// What makes a table a projection's own (decision 0020, "Whose tables"): the
// names its version records hold. A rebuild, a switch or a drop never
// renames or drops a name another projection's records hold, a table of the
// package or of wrangler, or a live table that readers do not read through
// its read name. Each case is refused before anything is written.

const db = env.DB;

async function objects(): Promise<string[]> {
  const { results } = await db.prepare("SELECT type || ' ' || name AS o FROM sqlite_master WHERE name GLOB 'zz_*' ORDER BY name").all<{ o: string }>();
  return results.map((row) => row.o);
}

async function records(): Promise<string[]> {
  const { results } = await db.prepare("SELECT name || ' ' || version || ' ' || state || ' ' || tables AS r FROM projection_versions ORDER BY name, version").all<{ r: string }>();
  return results.map((row) => row.r);
}

async function checkpoints(): Promise<string[]> {
  const { results } = await db.prepare("SELECT name FROM checkpoints ORDER BY name").all<{ name: string }>();
  return results.map((row) => row.name);
}

const table = (name: string): D1PreparedStatement => db.prepare(`CREATE TABLE ${name} (k TEXT PRIMARY KEY, v INTEGER NOT NULL)`);

beforeEach(async () => {
  const { results } = await db.prepare("SELECT type, name FROM sqlite_master WHERE name GLOB 'zz_*' AND type IN ('table', 'view') ORDER BY type DESC").all<{ type: string; name: string }>();
  await db.batch([
    ...results.map(({ type, name }) => db.prepare(`DROP ${type === "view" ? "VIEW" : "TABLE"} IF EXISTS ${name}`)),
    db.prepare("DELETE FROM checkpoints"),
    db.prepare("DELETE FROM projection_versions"),
    db.prepare("DELETE FROM parked_events"),
  ]);
  // Projection A's read model, and an event log that no projection owns.
  await db.batch([table("zz_a"), db.prepare("INSERT INTO zz_a VALUES ('x', 1)"), table("zz_events"), db.prepare("INSERT INTO zz_events VALUES ('e', 1)")]);
});

/** A starts rebuilding version 2 beside its live table zz_a. */
async function rebuildA(store: D1CheckpointStore): Promise<void> {
  await store.startRebuild("pa", 2, { tables: { zz_a: "zz_a_v2" }, create: [table("zz_a_v2")] });
}

/** Expects `call` to be refused with nothing written: the same objects, records and checkpoints as before. */
async function refused(call: () => Promise<unknown>, error: new (...args: never[]) => Error, message: RegExp): Promise<void> {
  const before = [await objects(), await records(), await checkpoints()];
  const thrown = await call().catch((e: unknown) => e);
  expect(thrown).toBeInstanceOf(error);
  expect((thrown as Error).message).toMatch(message);
  expect([await objects(), await records(), await checkpoints()]).toEqual(before);
}

describe("a rebuild touches only the projection's own tables", () => {
  it("A. another projection's live table, rebuild table or read-name view is not a read name of this one", async () => {
    const store = new D1CheckpointStore(db);
    await rebuildA(store);
    await refused(() => store.startRebuild("pb", 2, { tables: { zz_a: "zz_b_v2" }, create: [table("zz_b_v2")] }), ProjectionVersionError, /"zz_a" belongs to projection "pa"/);
    await refused(() => store.startRebuild("pb", 2, { tables: { zz_a_v2: "zz_b_v2" } }), ProjectionVersionError, /"zz_a_v2" belongs to projection "pa"/);
    await store.switchVersion("pa", 2);
    // zz_a is A's view now, zz_a_v1 its retired table.
    await refused(() => store.startRebuild("pb", 2, { tables: { zz_a: "zz_b_v2" } }), ProjectionVersionError, /"zz_a" belongs to projection "pa"/);
    await refused(() => store.startRebuild("pb", 2, { tables: { zz_b: "zz_a_v1" } }), ProjectionVersionError, /"zz_a_v1" belongs to projection "pa"/);
    // A is whole: its own next switch works.
    await store.startRebuild("pa", 3, { tables: { zz_a: "zz_a_v3" }, create: [table("zz_a_v3")] });
    await store.switchVersion("pa", 3, { retire: "drop" });
    expect(await objects()).toEqual(["view zz_a", "table zz_a_v1", "table zz_a_v3", "table zz_events"]);
  });

  it("B. liveTables may not name another projection's rebuild table or read-name view", async () => {
    const store = new D1CheckpointStore(db);
    await rebuildA(store);
    await db.prepare("CREATE VIEW zz_b AS SELECT * FROM zz_a_v2").run();
    await refused(
      () => store.startRebuild("pb", 2, { tables: { zz_b: "zz_b_v2" }, liveTables: { zz_b: "zz_a_v2" }, create: [table("zz_b_v2")] }),
      ProjectionVersionError,
      /"zz_a_v2" belongs to projection "pa"/,
    );
    await db.prepare("DROP VIEW zz_b").run();
    await store.switchVersion("pa", 2);
    await db.prepare("CREATE VIEW zz_b AS SELECT * FROM zz_a").run();
    await refused(() => store.startRebuild("pb", 2, { tables: { zz_b: "zz_b_v2" }, liveTables: { zz_b: "zz_a" } }), ProjectionVersionError, /"zz_a" belongs to projection "pa"/);
  });

  it("C. liveTables is checked: never wrangler's or the package's tables, and only a table readers read through the read name", async () => {
    const store = new D1CheckpointStore(db);
    for (const reserved of ["d1_migrations", "_cf_KV", "sqlite_sequence", "checkpoints", "projection_versions"]) {
      await refused(() => store.startRebuild("pb", 2, { tables: { zz_b: "zz_b_v2" }, liveTables: { zz_b: reserved } }), CheckpointRangeError, /may name neither/);
      await refused(() => store.startRebuild("pb", 2, { tables: { zz_b: reserved } }), CheckpointRangeError, /may name neither/);
    }
    // The event log is not what readers of zz_b read: zz_b does not exist, or is not a view of it.
    await refused(() => store.startRebuild("pb", 2, { tables: { zz_b: "zz_b_v2" }, liveTables: { zz_b: "zz_events" } }), ProjectionVersionError, /readers read "zz_b" now/);
    await db.prepare("CREATE VIEW zz_b AS SELECT * FROM zz_a").run();
    await refused(() => store.startRebuild("pb", 2, { tables: { zz_b: "zz_b_v2" }, liveTables: { zz_b: "zz_events" } }), ProjectionVersionError, /readers read "zz_b" now/);
    // The view's own table is accepted: it is what readers read, and a drop of version 1 drops only it.
    await store.startRebuild("pb", 2, { tables: { zz_b: "zz_b_v2" }, liveTables: { zz_b: "zz_a" }, create: [table("zz_b_v2")] });
    await store.switchVersion("pb", 2);
    await store.dropVersion("pb", 1);
    expect(await objects()).toEqual(["view zz_b", "table zz_b_v2", "table zz_events"]);
  });

  it("a switch and a drop check ownership again: records another projection wrote meanwhile stop them, with nothing changed", async () => {
    const store = new D1CheckpointStore(db);
    await rebuildA(store);
    // Records that claim A's rebuild table for another projection (an older version of the package, or a hand-written row).
    await db.prepare(`INSERT INTO projection_versions (name, version, state, tables, started_at) VALUES ('pc', 1, 'live', '{"zz_c":"zz_a_v2"}', 0)`).run();
    await refused(() => store.switchVersion("pa", 2), ProjectionVersionError, /"zz_a_v2" belongs to projection "pc"/);
    await db.prepare("DELETE FROM projection_versions WHERE name = 'pc'").run();
    await store.switchVersion("pa", 2);
    await db.prepare(`INSERT INTO projection_versions (name, version, state, tables, started_at) VALUES ('pc', 1, 'live', '{"zz_c":"zz_a_v1"}', 0)`).run();
    await refused(() => store.dropVersion("pa", 1), ProjectionVersionError, /"zz_a_v1" belongs to projection "pc"/);
  });

  it("the Durable Object store plans from the same rules", async () => {
    const outcome = await inObject(freshObject(), async (store, storage) => {
      storage.sql.exec("CREATE TABLE zz_a (k TEXT PRIMARY KEY, v INTEGER NOT NULL)");
      await store.startRebuild("pa", 2, { tables: { zz_a: "zz_a_v2" }, create: (sql) => void sql.exec("CREATE TABLE zz_a_v2 (k TEXT PRIMARY KEY, v INTEGER NOT NULL)") });
      const error = await store.startRebuild("pb", 2, { tables: { zz_a: "zz_b_v2" } }).catch((e: unknown) => e);
      return { refused: error instanceof ProjectionVersionError && /belongs to projection "pa"/.test(error.message), records: storage.sql.exec("SELECT name FROM projection_versions").toArray().length };
    });
    expect(outcome).toEqual({ refused: true, records: 2 });
  });
});
