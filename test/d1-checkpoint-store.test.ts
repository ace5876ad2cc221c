import { env } from "cloudflare:workers";
import { SCHEMA_OBJECT_COUNT, SCHEMA_PRESENT_SQL } from "../src/sql/schema.js";
import { beforeEach, describe, expect, it } from "vitest";
import { countD1, interceptD1 } from "../src/testing/intercept.js";
import {
  CorruptCheckpointError,
  D1CheckpointStore,
  D1OperationError,
  migrate,
  SCHEMA,
} from "../src/index.js";
import { schemaStatements } from "../src/sql/schema.js";
import { clearCheckpoints, collect, storedRows } from "./support/helpers.js";

beforeEach(() => clearCheckpoints());

async function dropTable(): Promise<void> {
  await env.DB.prepare("DROP TABLE IF EXISTS checkpoints").run();
}

async function tableExists(): Promise<boolean> {
  const row = await env.DB.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'checkpoints'").first();
  return row !== null;
}

describe("schema", () => {
  it("SCHEMA is the statements of the migration files", () => {
    const applied = env.TEST_MIGRATIONS.flatMap((migration) => migration.queries).map((q) => q.trim().replace(/;$/, ""));
    expect(applied).toEqual(schemaStatements(SCHEMA));
    expect(env.TEST_MIGRATIONS.map((m) => m.name)).toEqual(["0001_checkpoints.sql", "0002_projection_operations.sql", "0003_projection_versions.sql", "0004_fewer_rows_and_run_log.sql"]);
  });

  it("is the seed's table: name TEXT PRIMARY KEY, position INTEGER NOT NULL, nothing more", async () => {
    const { results } = await env.DB.prepare("PRAGMA table_info(checkpoints)").all<{
      name: string;
      type: string;
      notnull: number;
      pk: number;
    }>();
    expect(results.map(({ name, type, notnull, pk }) => ({ name, type, notnull, pk }))).toEqual([
      { name: "name", type: "TEXT", notnull: 0, pk: 1 },
      { name: "position", type: "INTEGER", notnull: 1, pk: 0 },
    ]);
  });

  it("migrate applies SCHEMA in one batch, and once it is there sends only the read that finds it", async () => {
    await dropTable();
    const counted = countD1(env.DB);
    await migrate(counted.db);
    await migrate(counted.db);
    expect(counted.calls.map((c) => c.kind)).toEqual(["first", "batch", "first"]);
    // The read counts SCHEMA's 6 tables and 4 triggers (0004's checkpoint_moved_back among them).
    expect(SCHEMA_OBJECT_COUNT).toBe(10);
    expect(await env.DB.prepare(SCHEMA_PRESENT_SQL).first("n")).toBe(SCHEMA_OBJECT_COUNT);
    // A database with 0001 to 0003 only (the old triggers, no run log) gets the whole of it again.
    await env.DB.batch([env.DB.prepare("DROP TRIGGER checkpoint_moved_back"), env.DB.prepare("DROP TABLE projection_runs")]);
    await migrate(env.DB);
    expect(await env.DB.prepare(SCHEMA_PRESENT_SQL).first("n")).toBe(SCHEMA_OBJECT_COUNT);
    expect(await tableExists()).toBe(true);
  });

  it("create migrates by default, once per binding in this isolate", async () => {
    await dropTable();
    const counted = countD1(env.DB);
    const store = await D1CheckpointStore.create(counted.db);
    expect(await tableExists()).toBe(true);
    await D1CheckpointStore.create(counted.db);
    await D1CheckpointStore.create(counted.db);
    expect(counted.calls.map((c) => c.kind)).toEqual(["first", "batch"]);
    await store.save("after-create", 1);
    await expect(store.load("after-create")).resolves.toEqual({ position: 1, found: true });
  });

  it("create with migrate: false and new never touch the schema", async () => {
    await dropTable();
    const counted = countD1(env.DB);
    await D1CheckpointStore.create(counted.db, { migrate: false });
    new D1CheckpointStore(counted.db);
    expect(counted.calls).toEqual([]);
    expect(await tableExists()).toBe(false);
    await migrate(env.DB);
  });

  it("a failed migration is reported with D1's error as cause, and tried again next time", async () => {
    await dropTable();
    let failures = 1;
    const db = interceptD1(env.DB, (call, send) => {
      if (call.kind === "batch" && failures-- > 0) return Promise.reject(new Error("D1_ERROR: not authorized"));
      return send();
    });
    const error = await D1CheckpointStore.create(db).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(D1OperationError);
    expect(error).toMatchObject({ operation: "migrate", checkpoint: undefined, transient: false });
    expect(((error as Error).cause as Error).message).toBe("D1_ERROR: not authorized");
    expect(await tableExists()).toBe(false);
    await D1CheckpointStore.create(db);
    expect(await tableExists()).toBe(true);
  });
});

describe("round trips", () => {
  it("save, load and reset are one call each; save is an upsert", async () => {
    const counted = countD1(env.DB);
    const store = new D1CheckpointStore(counted.db);
    await store.save("orders", 1);
    await store.load("orders");
    await store.reset("orders");
    expect(counted.calls.map((c) => c.kind)).toEqual(["run", "all", "run"]);
    expect(counted.calls[0]?.sql[0]).toMatch(/^INSERT INTO checkpoints .* ON CONFLICT \(name\) DO UPDATE/);
  });

  it("names() makes one call per page and stops on a short page", async () => {
    const store = new D1CheckpointStore(env.DB);
    for (const name of ["a", "b", "c", "d", "e"]) await store.save(name, 1);
    const counted = countD1(env.DB);
    const counting = new D1CheckpointStore(counted.db);
    await collect(counting.names({ pageSize: 2 }));
    expect(counted.calls.map((c) => c.kind)).toEqual(["all", "all", "all"]);
    counted.clear();
    await collect(counting.entries({ pageSize: 5 }));
    expect(counted.calls).toHaveLength(2);
    counted.clear();
    await collect(counting.names({ pageSize: 6 }));
    expect(counted.calls).toHaveLength(1);
  });

  it("names() pages by keyset, never OFFSET, and a prefix is a range, not LIKE", async () => {
    const counted = countD1(env.DB);
    const store = new D1CheckpointStore(counted.db);
    await collect(store.names({ prefix: "orders/" }));
    await collect(store.names({ after: "x" }));
    for (const call of counted.calls) {
      expect(call.sql[0]).toMatch(/WHERE name >=? \?1.* ORDER BY name LIMIT \?2$/);
      expect(call.sql[0]).not.toMatch(/OFFSET|LIKE/i);
    }
    expect(counted.calls[0]?.sql[0]).toContain("name < ?3");
  });

  it("breaking out of the loop fetches no further page", async () => {
    const store = new D1CheckpointStore(env.DB);
    for (const name of ["a", "b", "c", "d", "e"]) await store.save(name, 1);
    const counted = countD1(env.DB);
    const counting = new D1CheckpointStore(counted.db);
    for await (const name of counting.names({ pageSize: 2 })) {
      if (name === "b") break;
    }
    expect(counted.calls).toHaveLength(1);
  });

  it("an aborted signal sends nothing to D1", async () => {
    const counted = countD1(env.DB);
    const store = new D1CheckpointStore(counted.db);
    const signal = AbortSignal.abort(new Error("stop"));
    await expect(store.save("a", 1, { signal })).rejects.toThrow("stop");
    await expect(store.load("a", { signal })).rejects.toThrow("stop");
    await expect(store.reset("a", { signal })).rejects.toThrow("stop");
    await expect(collect(store.names({ signal }))).rejects.toThrow("stop");
    await expect(collect(store.entries({ signal }))).rejects.toThrow("stop");
    await expect(store.commit("a", 1, [], { signal })).rejects.toThrow("stop");
    expect(counted.calls).toEqual([]);
  });
});

describe("stored values written by other tools", () => {
  it.each([
    ["a negative number", -1],
    ["a real", 1.5],
    ["text", "'abc'"],
    ["2^53, beyond safe integers", "9007199254740992"],
    ["2^53 + 1, which D1 reads back rounded", "9007199254740993"],
    ["2^62", "4611686018427387904"],
  ])("load and entries reject %s instead of returning it", async (_, sqlValue) => {
    await env.DB.prepare(`INSERT INTO checkpoints (name, position) VALUES ('bad', ${String(sqlValue)})`).run();
    const store = new D1CheckpointStore(env.DB);
    const error = await store.load("bad").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CorruptCheckpointError);
    expect(error).toMatchObject({ operation: "load", checkpoint: "bad" });
    await expect(collect(store.entries())).rejects.toBeInstanceOf(CorruptCheckpointError);
    await expect(collect(store.names())).resolves.toEqual(["bad"]);
  });

  it("the largest safe integer is read back exactly", async () => {
    await env.DB.prepare("INSERT INTO checkpoints (name, position) VALUES ('max', 9007199254740991)").run();
    await expect(new D1CheckpointStore(env.DB).load("max")).resolves.toEqual({
      position: Number.MAX_SAFE_INTEGER,
      found: true,
    });
  });
});

describe("D1 errors", () => {
  it("reach the caller wrapped with the operation and name, D1's error as cause", async () => {
    const store = new D1CheckpointStore(env.DB, { retry: false });
    await dropTable();
    try {
      for (const [operation, call] of [
        ["save", () => store.save("orders", 1)],
        ["load", () => store.load("orders")],
        ["reset", () => store.reset("orders")],
        ["commit", () => store.commit("orders", 1, [])],
      ] as const) {
        const error = await call().catch((e: unknown) => e);
        expect(error).toBeInstanceOf(D1OperationError);
        expect(error).toMatchObject({ operation, checkpoint: "orders", attempts: 1, transient: false });
        expect((error as Error).message).toContain(`${operation}("orders")`);
        expect((error as Error).cause).toBeInstanceOf(Error);
        expect(((error as Error).cause as Error).message).toMatch(/no such table: checkpoints/);
      }
      const listing = await collect(store.names()).catch((e: unknown) => e);
      expect(listing).toMatchObject({ operation: "names", checkpoint: undefined });
    } finally {
      await migrate(env.DB);
    }
    expect(await storedRows()).toEqual([]);
  });
});
