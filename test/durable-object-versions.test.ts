import { describe, expect, it } from "vitest";
import { CheckpointRangeError, DurableObjectCheckpointStore, ProjectionRunner, ProjectionVersionError, type SqlWrites } from "../src/index.js";
import { freshObject, inObject } from "./support/in-object.js";

// Projection versions on a Durable Object's SQLite: the same records and
// checks as on D1, each change in one transactionSync (decision 0020).

interface Event {
  readonly position: number;
  readonly amount: number;
}

const NAME = "sum";

function setUp(storage: DurableObjectStorage, events: number): void {
  storage.sql.exec("CREATE TABLE IF NOT EXISTS d_events (position INTEGER PRIMARY KEY, amount INTEGER NOT NULL)");
  storage.sql.exec("CREATE TABLE IF NOT EXISTS d_sum (k TEXT PRIMARY KEY, total INTEGER NOT NULL)");
  for (let p = 1; p <= events; p++) storage.sql.exec("INSERT INTO d_events (position, amount) VALUES (?1, ?2)", p, p);
}

function append(storage: DurableObjectStorage, count: number): void {
  const newest = storage.sql.exec<{ p: number }>("SELECT COALESCE(MAX(position), 0) AS p FROM d_events").one().p;
  for (let p = newest + 1; p <= newest + count; p++) storage.sql.exec("INSERT INTO d_events (position, amount) VALUES (?1, ?2)", p, p);
}

/** Version 1 sums amounts into d_sum; version 2 sums them tenfold into d_sum_v2. */
function runner(store: DurableObjectCheckpointStore, storage: DurableObjectStorage, version: number): ProjectionRunner<Event, SqlWrites> {
  const table = version === 1 ? "d_sum" : `d_sum_v${version}`;
  const factor = version === 1 ? 1 : 10;
  return new ProjectionRunner<Event, SqlWrites>({
    name: NAME,
    version,
    store,
    batchSize: 7,
    readEvents: (after, limit) =>
      Promise.resolve(storage.sql.exec<{ position: number; amount: number }>("SELECT position, amount FROM d_events WHERE position > ?1 ORDER BY position LIMIT ?2", after, limit).toArray()),
    project: (events) => (sql) => {
      for (const event of events) {
        sql.exec(`INSERT INTO ${table} (k, total) VALUES ('all', ?1) ON CONFLICT (k) DO UPDATE SET total = total + excluded.total`, event.amount * factor);
      }
    },
  });
}

function total(storage: DurableObjectStorage, table: string): number | undefined {
  return storage.sql.exec<{ total: number }>(`SELECT total FROM ${table} WHERE k = 'all'`).toArray()[0]?.total;
}

/** An async writes callback, which the store must refuse: its writes after an await would escape the transaction. */
// eslint-disable-next-line @typescript-eslint/require-await -- async on purpose
const asyncCreate = (async () => undefined) as unknown as SqlWrites;

const create: SqlWrites = (sql) => {
  sql.exec("CREATE TABLE IF NOT EXISTS d_sum_v2 (k TEXT PRIMARY KEY, total INTEGER NOT NULL)");
};

describe("projection versions on the Durable Object store", () => {
  it("rebuilds beside the live version and switches in one transactionSync; the old version is fenced out", async () => {
    const stub = freshObject();
    await inObject(stub, async (store, storage) => {
      setUp(storage, 20);
      await runner(store, storage, 1).run();
      await store.startRebuild(NAME, 2, { tables: { d_sum: "d_sum_v2" }, create });
      await expect(runner(store, storage, 2).run()).resolves.toMatchObject({ name: "sum@2", to: 20, events: 20 });
      const status = await store.status("sum@2", { newest: 25 });
      expect(status).toMatchObject({ version: 2, lag: 5, rebuild: { of: NAME, version: 2 } });

      append(storage, 3);
      await runner(store, storage, 1).run();
      // Behind the live checkpoint: refused, nothing changed.
      await expect(store.switchVersion(NAME, 2)).rejects.toThrow(ProjectionVersionError);
      expect(storage.sql.exec<{ type: string }>("SELECT type FROM sqlite_master WHERE name = 'd_sum'").one().type).toBe("table");
      await runner(store, storage, 2).run();
      await store.switchVersion(NAME, 2);

      expect(storage.sql.exec<{ type: string }>("SELECT type FROM sqlite_master WHERE name = 'd_sum'").one().type).toBe("view");
      expect(total(storage, "d_sum")).toBe(10 * ((23 * 24) / 2));
      expect(total(storage, "d_sum_v1")).toBe((23 * 24) / 2);
      await expect(store.load(NAME)).resolves.toEqual({ position: 23, found: true });
      await expect(store.load("sum@1")).resolves.toEqual({ position: 23, found: true });
      expect((await store.versions(NAME)).map(({ version, state }) => ({ version, state }))).toEqual([
        { version: 1, state: "retired" },
        { version: 2, state: "live" },
      ]);

      // A version-1 commit after the switch applies nothing; version 2 goes on as the live one.
      const late = store.commit(NAME, 24, (sql) => void sql.exec("INSERT INTO d_sum_v1 (k, total) VALUES ('late', 1)"), {
        expected: 23,
        fence: { name: NAME, version: 1, state: "live" },
      });
      await expect(late).rejects.toThrow(/version 1 of "sum" was live and is retired now/);
      expect(storage.sql.exec("SELECT * FROM d_sum_v1 WHERE k = 'late'").toArray()).toEqual([]);
      storage.sql.exec("INSERT INTO parked_events (name, position, error, parked_at) VALUES ('sum', 3, 'held', 0)");
      const replay = store.replayParked(NAME, 3, (sql) => void sql.exec("INSERT INTO d_sum_v1 (k, total) VALUES ('replayed', 1)"), {
        fence: { name: NAME, version: 1, state: "live" },
      });
      await expect(replay).rejects.toThrow(ProjectionVersionError);
      expect(storage.sql.exec("SELECT * FROM parked_events WHERE name = 'sum' AND position = 3").toArray()).toHaveLength(1);
      storage.sql.exec("DELETE FROM parked_events WHERE name = 'sum'");
      append(storage, 2);
      await expect(runner(store, storage, 1).run()).resolves.toMatchObject({ ended: "inactive" });
      await expect(runner(store, storage, 2).run()).resolves.toMatchObject({ name: NAME, events: 2 });
      expect(total(storage, "d_sum")).toBe(10 * ((25 * 26) / 2));

      // The retired version is dropped cleanly.
      await store.dropVersion(NAME, 1);
      expect(storage.sql.exec("SELECT name FROM sqlite_master WHERE name = 'd_sum_v1'").toArray()).toEqual([]);
      await expect(store.load("sum@1")).resolves.toEqual({ position: 0, found: false });
      await expect(store.versionState(NAME, 1)).resolves.toBeUndefined();
    });
  });

  it("a switch that fails part-way applies nothing: one transaction", async () => {
    const stub = freshObject();
    await inObject(stub, async (store, storage) => {
      setUp(storage, 10);
      await runner(store, storage, 1).run();
      await store.startRebuild(NAME, 2, { tables: { d_sum: "d_sum_v2" }, create });
      await runner(store, storage, 2).run();
      // A view elsewhere that SQLite cannot read makes the rename, late in the transaction, fail.
      storage.sql.exec("CREATE TABLE d_gone (x)");
      storage.sql.exec("CREATE VIEW d_broken AS SELECT x FROM d_gone");
      storage.sql.exec("DROP TABLE d_gone");
      await expect(store.switchVersion(NAME, 2)).rejects.toThrow(/a view or trigger SQLite cannot read .*d_broken/);
      expect((await store.versions(NAME)).map((v) => v.state)).toEqual(["live", "building"]);
      await expect(store.load(NAME)).resolves.toEqual({ position: 10, found: true });
      await expect(store.load("sum@2")).resolves.toEqual({ position: 10, found: true });
      expect(storage.sql.exec<{ type: string }>("SELECT type FROM sqlite_master WHERE name = 'd_sum'").one().type).toBe("table");
    });
  });

  it("checks input before touching storage", async () => {
    const stub = freshObject();
    await inObject(stub, async (store, storage) => {
      await expect(store.startRebuild(NAME, 2, { tables: { d_sum: "d_sum" } })).rejects.toThrow(CheckpointRangeError);
      await expect(store.startRebuild(NAME, 2, { tables: { d_sum: "d_sum_v2" }, create: asyncCreate })).rejects.toThrow(/options.create must be a synchronous function/);
      await expect(store.switchVersion(NAME, 0)).rejects.toThrow(CheckpointRangeError);
      // A rebuild starts from empty tables: one with rows is refused inside the transaction, nothing written.
      setUp(storage, 0);
      storage.sql.exec("CREATE TABLE d_sum_v2 (k TEXT PRIMARY KEY, total INTEGER NOT NULL)");
      storage.sql.exec("INSERT INTO d_sum_v2 (k, total) VALUES ('stale', 1)");
      await expect(store.startRebuild(NAME, 2, { tables: { d_sum: "d_sum_v2" }, create })).rejects.toThrow(/d_sum_v2 has rows/);
      expect(storage.sql.exec("SELECT * FROM projection_versions").toArray()).toEqual([]);
      expect(storage.sql.exec("SELECT * FROM checkpoints").toArray()).toEqual([]);
    });
  });
});
