import { describe, expect, it } from "vitest";
import {
  CheckpointConflictError,
  CheckpointRangeError,
  CheckpointTypeError,
  CorruptCheckpointError,
  DurableObjectCheckpointStore,
  ProjectionGroup,
  ProjectionGroupError,
  ProjectionRunner,
  type SqlWrites,
} from "../src/index.js";
import { collect } from "./support/helpers.js";
import { freshObject, inObject } from "./support/in-object.js";

// The Durable Object store's own guarantees: real transactions, the table
// made once, the same strict input as D1. (The contract suite runs too.)

const READ_MODEL = "CREATE TABLE IF NOT EXISTS totals (k TEXT PRIMARY KEY, total INTEGER NOT NULL)";

function add(k: string, v: number): SqlWrites {
  return (sql) => {
    sql.exec(READ_MODEL);
    sql.exec("INSERT INTO totals (k, total) VALUES (?1, ?2) ON CONFLICT (k) DO UPDATE SET total = total + excluded.total", k, v);
  };
}

function state(storage: DurableObjectStorage): { checkpoints: unknown[]; totals: unknown[] } {
  storage.sql.exec(READ_MODEL);
  return {
    checkpoints: storage.sql.exec("SELECT name, position FROM checkpoints ORDER BY name").toArray(),
    totals: storage.sql.exec("SELECT k, total FROM totals ORDER BY k").toArray(),
  };
}

/** A value the type checker would reject, as a plain JavaScript caller passes it. */
function any(value: unknown): never {
  return value as never;
}

describe("DurableObjectCheckpointStore", () => {
  it("commits read-model writes and the checkpoint in one transaction", async () => {
    const stub = freshObject();
    await inObject(stub, async (store, storage) => {
      await store.commit("totals", 1, add("a", 5), { expected: null });
      store.commitSync("totals", 2, add("a", 2), { expected: 1 });
      expect(state(storage)).toEqual({ checkpoints: [{ name: "totals", position: 2 }], totals: [{ k: "a", total: 7 }] });
      expect(store.loadSync("totals")).toEqual({ position: 2, found: true });
    });
  });

  it("a conflict applies nothing and does not run the writes", async () => {
    await inObject(freshObject(), async (store, storage) => {
      await store.commit("totals", 3, add("a", 5));
      let ran = false;
      const error = await store
        .commit("totals", 4, () => { ran = true; }, { expected: 1 })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CheckpointConflictError);
      expect(error).toMatchObject({ operation: "commit", checkpoint: "totals", expected: 1 });
      expect(ran).toBe(false);
      expect(() => {
        store.commitSync("totals", 4, add("a", 1), { expected: null });
      }).toThrow(CheckpointConflictError);
      expect(state(storage)).toEqual({ checkpoints: [{ name: "totals", position: 3 }], totals: [{ k: "a", total: 5 }] });
    });
  });

  it("a throw from the writes rolls back the checkpoint and every write before it, and is rethrown as is", async () => {
    await inObject(freshObject(), async (store, storage) => {
      await store.commit("totals", 1, add("a", 5));
      const boom = new Error("read model rejected the event");
      const error = await store
        .commit("totals", 2, (sql) => {
          add("a", 100)(sql);
          throw boom;
        }, { expected: 1 })
        .catch((e: unknown) => e);
      expect(error).toBe(boom);
      expect(state(storage)).toEqual({ checkpoints: [{ name: "totals", position: 1 }], totals: [{ k: "a", total: 5 }] });
    });
  });

  it("rejects bad input before any SQL runs", async () => {
    await inObject(freshObject(), async (store, storage) => {
      await store.save("keep", 7);
      const calls: [string, typeof CheckpointTypeError | typeof CheckpointRangeError, string, () => unknown][] = [
        ["2^53", CheckpointRangeError, "position", () => store.commit("x", 2 ** 53, add("a", 1))],
        ["-1", CheckpointRangeError, "position", () => store.save("x", -1)],
        ["1.5", CheckpointRangeError, "position", () => {
          store.commitSync("x", 1.5, add("a", 1));
        }],
        ["NaN", CheckpointRangeError, "position", () => store.save("x", Number.NaN)],
        ["bigint", CheckpointTypeError, "position", () => store.save("x", any(1n))],
        ["empty name", CheckpointRangeError, "name", () => store.load("")],
        ["lone surrogate", CheckpointRangeError, "name", () => store.loadSync("\uD800")],
        ["options a string", CheckpointTypeError, "options", () => store.reset("x", any("now"))],
        ["expected fractional", CheckpointRangeError, "options.expected", () => store.save("x", 1, { expected: 0.5 })],
        ["write not a function", CheckpointTypeError, "write", () => store.commit("x", 1, any([]))],
        ["pageSize 0", CheckpointRangeError, "options.pageSize", () => collect(store.names({ pageSize: 0 }))],
      ];
      for (const [label, type, argument, call] of calls) {
        const error = await Promise.resolve().then(call).catch((e: unknown) => e);
        expect(error, label).toBeInstanceOf(type);
        expect(error, label).toMatchObject({ argument });
      }
      expect(state(storage)).toEqual({ checkpoints: [{ name: "keep", position: 7 }], totals: [] });
    });
  });

  it("creates its table once per storage object; a second store on it is harmless", async () => {
    await inObject(freshObject(), async (store, storage) => {
      await store.save("a", 1);
      const again = new DurableObjectCheckpointStore(storage);
      await expect(again.load("a")).resolves.toEqual({ position: 1, found: true });
      expect(storage.sql.exec("SELECT COUNT(*) AS n FROM sqlite_master WHERE name = 'checkpoints'").one()).toEqual({ n: 1 });
    });
    expect(() => new DurableObjectCheckpointStore(any({ get: () => undefined }))).toThrow(CheckpointTypeError);
  });

  it("raises CorruptCheckpointError for stored garbage, and skips names that are not text", async () => {
    await inObject(freshObject(), async (store, storage) => {
      storage.sql.exec("INSERT INTO checkpoints (name, position) VALUES ('big', 9007199254740993), ('neg', -1), ('ok', 1)");
      storage.sql.exec("INSERT INTO checkpoints (name, position) VALUES (CAST(x'FE41' AS TEXT), 2), (x'00FF', 3)");
      await expect(store.load("big")).rejects.toBeInstanceOf(CorruptCheckpointError);
      await expect(store.load("neg")).rejects.toMatchObject({ name: "CorruptCheckpointError", value: -1 });
      await expect(collect(store.names({ pageSize: 1 }))).resolves.toEqual(["big", "neg", "ok"]);
    });
  });

  it("drives ProjectionRunner: exactly once, a conflict applies nothing", async () => {
    const stub = freshObject();
    const runner = (store: DurableObjectCheckpointStore, storage: DurableObjectStorage): ProjectionRunner<{ position: number; v: number }, SqlWrites> =>
      new ProjectionRunner<{ position: number; v: number }, SqlWrites>({
        name: "totals",
        store,
        batchSize: 4,
        readEvents: (after, limit) =>
          Promise.resolve(storage.sql.exec<{ position: number; v: number }>("SELECT position, v FROM log WHERE position > ?1 ORDER BY position LIMIT ?2", after, limit).toArray()),
        project: (events) => (sql) => {
          for (const event of events) add("sum", event.v)(sql);
        },
      });
    await inObject(stub, async (store, storage) => {
      storage.sql.exec("CREATE TABLE log (position INTEGER PRIMARY KEY, v INTEGER NOT NULL)");
      for (let p = 1; p <= 10; p++) storage.sql.exec("INSERT INTO log VALUES (?1, ?2)", p, p);
      await expect(runner(store, storage).run()).resolves.toMatchObject({ to: 10, events: 10, batches: 3, caughtUp: true });
      await expect(runner(store, storage).run()).resolves.toMatchObject({ from: 10, to: 10, events: 0 });
      expect(state(storage).totals).toEqual([{ k: "sum", total: 55 }]);
      // another writer moves the checkpoint between the load and the commit
      for (let p = 11; p <= 12; p++) storage.sql.exec("INSERT INTO log VALUES (?1, ?2)", p, p);
      const overtaken = new ProjectionRunner<{ position: number; v: number }, SqlWrites>({
        name: "totals",
        store,
        readEvents: async (after) => {
          await store.save("totals", 12);
          return storage.sql.exec<{ position: number; v: number }>("SELECT position, v FROM log WHERE position > ?1", after).toArray();
        },
        project: (events) => (sql) => {
          for (const event of events) add("sum", event.v)(sql);
        },
      });
      await expect(overtaken.run()).resolves.toMatchObject({ conflict: true, events: 0 });
      expect(state(storage).totals).toEqual([{ k: "sum", total: 55 }]);
    });
  });

  it("parks, lists, replays and reports status as the D1 store does", async () => {
    const poison = new Set([3]);
    const runner = (store: DurableObjectCheckpointStore, storage: DurableObjectStorage): ProjectionRunner<{ position: number; v: number }, SqlWrites> =>
      new ProjectionRunner<{ position: number; v: number }, SqlWrites>({
        name: "totals",
        store,
        readEvents: (after, limit) =>
          Promise.resolve(storage.sql.exec<{ position: number; v: number }>("SELECT position, v FROM log WHERE position > ?1 ORDER BY position LIMIT ?2", after, limit).toArray()),
        project: (events) => {
          for (const event of events) if (poison.has(event.position)) throw new Error(`poison ${event.position}`);
          return (sql) => {
            for (const event of events) add("sum", event.v)(sql);
          };
        },
        onError: () => "park",
      });
    await inObject(freshObject(), async (store, storage) => {
      storage.sql.exec("CREATE TABLE log (position INTEGER PRIMARY KEY, v INTEGER NOT NULL)");
      for (let p = 1; p <= 5; p++) storage.sql.exec("INSERT INTO log VALUES (?1, ?2)", p, p);
      await expect(runner(store, storage).run()).resolves.toMatchObject({ to: 5, events: 4, parked: [3] });
      expect(state(storage).totals).toEqual([{ k: "sum", total: 12 }]);
      const parked = await collect(store.parked("totals"));
      expect(parked.map(({ position, error }) => ({ position, error }))).toEqual([{ position: 3, error: "poison 3" }]);
      await expect(store.status("totals", { newest: 9 })).resolves.toMatchObject({ found: true, position: 5, lag: 4, parked: 1 });
      expect((await store.status("totals")).movedAt).toBeInstanceOf(Date);
      expect((await collect(store.statuses())).map((s) => [s.name, s.parked])).toEqual([["totals", 1]]);

      await expect(runner(store, storage).replay(3)).rejects.toMatchObject({ name: "ProjectionError", position: 3 });
      poison.clear();
      await expect(runner(store, storage).replay(3)).resolves.toBe(true);
      await expect(runner(store, storage).replay(3)).resolves.toBe(false);
      expect(state(storage).totals).toEqual([{ k: "sum", total: 15 }]);
      await expect(store.status("totals")).resolves.toMatchObject({ position: 5, parked: 0 });
    });
  });

  it("refuses async writes before running them, and a returned promise rolls everything back", async () => {
    await inObject(freshObject(), async (store, storage) => {
      const sneaky = any(async (sql: SqlStorage) => {
        await Promise.resolve();
        add("late", 1)(sql);
      });
      await expect(store.commit("totals", 1, sneaky)).rejects.toMatchObject({ name: "CheckpointTypeError", argument: "write" });
      expect(() => { store.commitSync("totals", 1, sneaky); }).toThrow(CheckpointTypeError);
      const thenable = any((sql: SqlStorage) => {
        add("early", 1)(sql);
        return Promise.resolve();
      });
      await expect(store.commit("totals", 1, thenable)).rejects.toThrow("must be synchronous");
      await expect(store.load("totals")).resolves.toEqual({ position: 0, found: false });
      expect(state(storage).totals).toEqual([]);
    });
  });
});

describe("a projection group on the Durable Object store", () => {
  const events = Array.from({ length: 25 }, (_, i) => ({ position: i + 1, k: `k${i % 3}`, v: i + 1 }));
  const readEvents = (after: number, limit: number): Promise<typeof events> => Promise.resolve(events.filter((e) => e.position > after).slice(0, limit));
  const writer = (prefix: string) => (batch: readonly (typeof events)[number][]): SqlWrites => (sql) => {
    sql.exec(READ_MODEL);
    for (const e of batch) sql.exec("INSERT INTO totals (k, total) VALUES (?1, ?2) ON CONFLICT (k) DO UPDATE SET total = total + excluded.total", `${prefix}${e.k}`, e.v);
  };

  it("commits every projection of a batch in one transactionSync", async () => {
    const stub = freshObject();
    await inObject(stub, async (store, storage) => {
      const transactions: number[] = [];
      const counting = new Proxy(storage, {
        get(target, key) {
          if (key === "transactionSync") return <T>(run: () => T): T => (transactions.push(1), target.transactionSync(run));
          const value: unknown = Reflect.get(target, key);
          return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
        },
      });
      const counted = new DurableObjectCheckpointStore(counting);
      transactions.length = 0;
      const summary = await new ProjectionGroup({
        name: "g",
        store: counted,
        batchSize: 10,
        readEvents,
        projections: [
          { name: "a", project: writer("a-") },
          { name: "b", project: writer("b-") },
        ],
      }).run();
      expect(summary.projections.map((m) => [m.name, m.to, m.events])).toEqual([["a", 25, 25], ["b", 25, 25]]);
      expect(transactions).toHaveLength(3); // one per batch, both projections inside
      const totals = storage.sql.exec("SELECT SUM(total) AS sum, COUNT(*) AS n FROM totals").toArray()[0];
      expect(totals).toEqual({ sum: 2 * events.reduce((n, e) => n + e.v, 0), n: 6 });
      await expect(store.loadMany(["a", "b", "c"])).resolves.toEqual([
        { position: 25, found: true },
        { position: 25, found: true },
        { position: 0, found: false },
      ]);
    });
  });

  it("a write that throws in one projection rolls back the shared transaction; the others commit on their own", async () => {
    await inObject(freshObject(), async (_store, storage) => {
      const store = new DurableObjectCheckpointStore(storage);
      const broken = (batch: readonly (typeof events)[number][]): SqlWrites => {
        const write = writer("b-")(batch);
        return (sql) => {
          write(sql);
          if (batch.some((e) => e.position === 12)) throw new Error("b cannot write 12");
        };
      };
      const error = await new ProjectionGroup({
        name: "g",
        store,
        batchSize: 10,
        readEvents,
        projections: [
          { name: "a", project: writer("a-") },
          { name: "b", project: broken },
        ],
      })
        .run()
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ProjectionGroupError);
      expect((error as ProjectionGroupError).summary.projections.map((m) => [m.name, m.to, m.ended])).toEqual([
        ["a", 25, "caughtUp"],
        ["b", 10, "failed"],
      ]);
      const sums = storage.sql.exec("SELECT substr(k, 1, 1) AS p, SUM(total) AS sum FROM totals GROUP BY 1 ORDER BY 1").toArray();
      expect(sums).toEqual([
        { p: "a", sum: events.reduce((n, e) => n + e.v, 0) },
        { p: "b", sum: events.slice(0, 10).reduce((n, e) => n + e.v, 0) },
      ]);
      await expect(store.commitMany([{ name: "a", position: 30, writes: () => undefined, expected: 7 }])).rejects.toBeInstanceOf(CheckpointConflictError);
      const asyncWrite: unknown = async () => {}; // as a plain JavaScript caller might pass it
      await expect(store.commitMany([{ name: "a", position: 30, writes: asyncWrite as SqlWrites }])).rejects.toBeInstanceOf(CheckpointTypeError);
    });
  });
});
