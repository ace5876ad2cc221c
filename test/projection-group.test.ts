import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import {
  CheckpointConflictError,
  CheckpointRangeError,
  CheckpointTypeError,
  D1CheckpointStore,
  D1OperationError,
  jsonRowStatements,
  ProjectionGroup,
  ProjectionGroupError,
  ProjectionRunner,
  TRANSIENT_D1_MESSAGES,
  type D1Client,
  type GroupProjection,
} from "../src/index.js";
import { countD1, injectFaults, seededRandom } from "../src/testing.js";
import { collect } from "./support/helpers.js";
import { appendEvents, readLedger, resetLedger, type LedgerEvent } from "./support/ledger.js";

// Several projections over one read: a batch read once, every projection's
// writes and conditional checkpoint in one batch, a projection behind joining
// the others, and one projection's trouble staying its own.

const NAMES = ["totals-a", "totals-b", "totals-c"] as const;

beforeEach(async () => {
  await resetLedger();
  await env.DB.batch([
    env.DB.prepare(
      "CREATE TABLE IF NOT EXISTS group_totals (projection TEXT NOT NULL, account TEXT NOT NULL, balance INTEGER NOT NULL, applied INTEGER NOT NULL, PRIMARY KEY (projection, account))",
    ),
    env.DB.prepare("DELETE FROM group_totals"),
    env.DB.prepare("DELETE FROM parked_events"),
    env.DB.prepare("DELETE FROM projection_leases"),
  ]);
});

const UPSERT =
  "INSERT INTO group_totals (projection, account, balance, applied) VALUES (?1, ?2, ?3, 1) " +
  "ON CONFLICT (projection, account) DO UPDATE SET balance = balance + excluded.balance, applied = applied + 1";

/** A projection writing one statement per event into its own rows of group_totals. */
function perEvent(db: D1Client, name: string, extra: Partial<GroupProjection<LedgerEvent, readonly D1PreparedStatement[]>> = {}): GroupProjection<LedgerEvent, readonly D1PreparedStatement[]> {
  return { name, project: (events) => events.map((event) => db.prepare(UPSERT).bind(name, event.account, event.amount)), ...extra };
}

/** The same read model, one json_each statement per batch. */
function setBased(db: D1Client, name: string): GroupProjection<LedgerEvent, readonly D1PreparedStatement[]> {
  return {
    name,
    project: (events) =>
      jsonRowStatements(
        db,
        "INSERT INTO group_totals (projection, account, balance, applied) " +
          "SELECT value ->> 'projection', value ->> 'account', SUM(value ->> 'amount'), COUNT(*) FROM json_each(?1) WHERE true GROUP BY 1, 2 " +
          "ON CONFLICT (projection, account) DO UPDATE SET balance = balance + excluded.balance, applied = applied + excluded.applied",
        events.map(({ account, amount }) => ({ projection: name, account, amount })),
      ),
  };
}

function eventsQuery(db: D1Client): (after: number, limit: number) => D1PreparedStatement {
  return (after, limit) =>
    db.prepare("SELECT position, account, amount FROM ledger_events WHERE position > ?1 ORDER BY position LIMIT ?2").bind(after, limit);
}

function group(
  db: D1Client,
  projections: readonly GroupProjection<LedgerEvent, readonly D1PreparedStatement[]>[] = NAMES.map((name) => perEvent(db, name)),
  options: { batchSize?: number; lease?: boolean; retry?: boolean } = {},
): ProjectionGroup<LedgerEvent> {
  return new ProjectionGroup<LedgerEvent>({
    name: "ledger-group",
    store: new D1CheckpointStore(db, options.retry === true ? { retry: { baseDelayMs: 0 } } : {}),
    batchSize: options.batchSize ?? 10,
    lease: options.lease ?? false,
    eventsQuery: eventsQuery(db),
    projections,
  });
}

/** Per projection: the sum of its balances and the events it applied. */
async function totals(): Promise<Record<string, { sum: number; applied: number }>> {
  const { results } = await env.DB.prepare(
    "SELECT projection, SUM(balance) AS sum, SUM(applied) AS applied FROM group_totals GROUP BY projection ORDER BY projection",
  ).all<{ projection: string; sum: number; applied: number }>();
  return Object.fromEntries(results.map((row) => [row.projection, { sum: row.sum, applied: row.applied }]));
}

async function positions(): Promise<Record<string, number>> {
  const { results } = await env.DB.prepare("SELECT name, position FROM checkpoints ORDER BY name").all<{ name: string; position: number }>();
  return Object.fromEntries(results.map((row) => [row.name, row.position]));
}

const checkpointSaves = (sql: readonly string[]): number => sql.filter((statement) => statement.startsWith("INSERT INTO checkpoints")).length;

describe("ProjectionGroup", () => {
  it("reads each batch once and commits every projection in one round trip", async () => {
    const sum = await appendEvents(25);
    const counted = countD1(env.DB);
    await group(counted.db).run({ maxBatches: 1 }); // this isolate now knows the checkpoints on this binding: the start is one round trip
    counted.clear();
    const summary = await group(counted.db).run();
    expect(summary).toMatchObject({ name: "ledger-group", ended: "caughtUp", caughtUp: true, batches: 2 });
    expect(summary.projections.map((member) => [member.name, member.from, member.to, member.events])).toEqual(NAMES.map((name) => [name, 10, 25, 15]));
    // the start (3 loads in one statement, first read), then per batch one round trip with all three checkpoints
    expect(counted.calls).toHaveLength(3);
    expect(counted.calls.slice(1).map((call) => checkpointSaves(call.sql))).toEqual([3, 3]);
    expect(summary.queries).toBe(counted.calls.reduce((n, call) => n + call.sql.length, 0));
    expect(await totals()).toEqual(Object.fromEntries(NAMES.map((name) => [name, { sum, applied: 25 }])));
    expect(await positions()).toEqual(Object.fromEntries(NAMES.map((name) => [name, 25])));
  });

  it("a projection that is behind catches up alone, then joins the others", async () => {
    const sum = await appendEvents(45);
    // a and b already stand at 30; c is new
    await group(env.DB, [perEvent(env.DB, "totals-a"), perEvent(env.DB, "totals-b")]).run({ maxBatches: 3 });
    const counted = countD1(env.DB);
    const summary = await group(counted.db).run();
    expect(summary.projections.map((member) => [member.name, member.from, member.to])).toEqual([
      ["totals-a", 30, 45],
      ["totals-b", 30, 45],
      ["totals-c", 0, 45],
    ]);
    const commits = counted.calls.filter((call) => checkpointSaves(call.sql) > 0).map((call) => checkpointSaves(call.sql));
    expect(commits).toEqual([1, 1, 1, 3, 3]); // c alone for 1-30, then all three for 31-40 and 41-45
    expect(await totals()).toEqual(Object.fromEntries(NAMES.map((name) => [name, { sum, applied: 45 }])));
  });

  it("a poison event in one projection parks only there", async () => {
    const sum = await appendEvents(20);
    const poisoned = perEvent(env.DB, "totals-b", { onError: () => "park" });
    const project = poisoned.project;
    const projections = [
      perEvent(env.DB, "totals-a"),
      {
        ...poisoned,
        project: (events: readonly LedgerEvent[]) => {
          if (events.some((event) => event.position === 7)) throw new Error("cannot project 7");
          return project(events);
        },
      },
      perEvent(env.DB, "totals-c"),
    ];
    const summary = await group(env.DB, projections).run();
    expect(summary.projections.map((member) => [member.name, member.parked, member.events])).toEqual([
      ["totals-a", [], 20],
      ["totals-b", [7], 19],
      ["totals-c", [], 20],
    ]);
    const store = new D1CheckpointStore(env.DB);
    expect((await collect(store.parked("totals-b"))).map((event) => event.position)).toEqual([7]);
    expect(await collect(store.parked("totals-a"))).toEqual([]);
    const seventh = (7 % 7) + 1;
    expect(await totals()).toEqual({
      "totals-a": { sum, applied: 20 },
      "totals-b": { sum: sum - seventh, applied: 19 },
      "totals-c": { sum, applied: 20 },
    });
  });

  it("a failing statement in one projection's writes does not stop the others", async () => {
    const sum = await appendEvents(25);
    const broken: GroupProjection<LedgerEvent, readonly D1PreparedStatement[]> = {
      name: "totals-b",
      project: (events) => [
        ...events.map((event) => env.DB.prepare(UPSERT).bind("totals-b", event.account, event.amount)),
        ...(events.some((event) => event.position === 15) ? [env.DB.prepare("INSERT INTO no_such_table VALUES (1)")] : []),
      ],
    };
    const error = await group(env.DB, [perEvent(env.DB, "totals-a"), broken, perEvent(env.DB, "totals-c")]).run().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProjectionGroupError);
    const { summary } = error as ProjectionGroupError;
    expect(summary.projections.map((member) => [member.name, member.to, member.ended])).toEqual([
      ["totals-a", 25, "caughtUp"],
      ["totals-b", 10, "failed"],
      ["totals-c", 25, "caughtUp"],
    ]);
    expect(summary.projections[1]?.error).toBeInstanceOf(D1OperationError);
    expect(await positions()).toEqual({ "totals-a": 25, "totals-b": 10, "totals-c": 25 });
    const b = (await readLedger(0, 10)).reduce((n, event) => n + event.amount, 0);
    expect(await totals()).toEqual({ "totals-a": { sum, applied: 25 }, "totals-b": { sum: b, applied: 10 }, "totals-c": { sum, applied: 25 } });
  });

  it("a projection that another run moved conflicts alone; the others go on", async () => {
    const sum = await appendEvents(30);
    let overtaken = false;
    const b = perEvent(env.DB, "totals-b");
    const projections = [
      perEvent(env.DB, "totals-a"),
      {
        ...b,
        project: async (events: readonly LedgerEvent[]) => {
          if (!overtaken) {
            overtaken = true; // a runner of b alone gets ahead of this group
            await new ProjectionRunner<LedgerEvent>({ name: "totals-b", store: new D1CheckpointStore(env.DB), batchSize: 10, eventsQuery: eventsQuery(env.DB), project: b.project }).run({ maxBatches: 1 });
          }
          return b.project(events);
        },
      },
      perEvent(env.DB, "totals-c"),
    ];
    const summary = await group(env.DB, projections).run();
    expect(summary.projections.map((member) => [member.name, member.to, member.conflict])).toEqual([
      ["totals-a", 30, false],
      ["totals-b", 0, true],
      ["totals-c", 30, false],
    ]);
    expect(await totals()).toEqual({ "totals-a": { sum, applied: 30 }, "totals-b": { sum: (await readLedger(0, 10)).reduce((n, e) => n + e.amount, 0), applied: 10 }, "totals-c": { sum, applied: 30 } });
  });

  it("when every projection has failed the run ends 'failed', and a throwing onError stops only its projection", async () => {
    await appendEvents(12);
    const throwingHook: GroupProjection<LedgerEvent, readonly D1PreparedStatement[]> = {
      name: "totals-a",
      project: (events) => {
        if (events.some((event) => event.position === 3)) throw new Error("cannot project 3");
        return [];
      },
      onError: () => {
        throw new Error("the hook broke");
      },
    };
    const error = await group(env.DB, [throwingHook, perEvent(env.DB, "totals-b")]).run().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProjectionGroupError);
    const { summary } = error as ProjectionGroupError;
    expect(summary.projections.map((member) => [member.name, member.ended, member.to])).toEqual([
      ["totals-a", "failed", 0],
      ["totals-b", "caughtUp", 12],
    ]);
    expect(summary.projections[0]?.error?.message).toContain("the hook broke");
    const alone = await group(env.DB, [{ name: "totals-c", project: () => Promise.reject(new Error("always")) }]).run().catch((e: unknown) => e);
    expect((alone as ProjectionGroupError).summary).toMatchObject({ ended: "failed", caughtUp: false });
  });

  it("set-based writes: at most 2N + 1 queries per batch for N projections", async () => {
    await appendEvents(300);
    const counted = countD1(env.DB);
    const summary = await group(counted.db, NAMES.map((name) => setBased(counted.db, name)), { batchSize: 100 }).run();
    expect(summary.projections.every((member) => member.to === 300)).toBe(true);
    const commits = counted.calls.filter((call) => checkpointSaves(call.sql) > 0);
    expect(commits).toHaveLength(3);
    for (const call of commits) expect(call.sql.length).toBeLessThanOrEqual(2 * NAMES.length + 1);
    const expected = await env.DB.prepare("SELECT SUM(amount) AS sum FROM ledger_events").first<{ sum: number }>();
    expect(await totals()).toEqual(Object.fromEntries(NAMES.map((name) => [name, { sum: expected?.sum, applied: 300 }])));
  });

  it("never sends more queries than its budget, and resumes in the next invocation", async () => {
    const sum = await appendEvents(60);
    for (let run = 0; ; run++) {
      const counted = countD1(env.DB);
      const summary = await group(counted.db).run({ budget: 50 });
      expect(counted.calls.reduce((n, call) => n + call.sql.length, 0)).toBeLessThanOrEqual(50);
      expect(summary.queries).toBeLessThanOrEqual(50);
      if (summary.ended === "caughtUp") break;
      expect(summary.ended).toBe("budget");
      expect(run).toBeLessThan(30);
    }
    expect(await totals()).toEqual(Object.fromEntries(NAMES.map((name) => [name, { sum, applied: 60 }])));
  });

  it("overlapping group runs under random transient faults apply every event exactly once for every projection", async () => {
    const sum = await appendEvents(200);
    const random = seededRandom(20261129);
    const wrappers = Array.from({ length: 4 }, (_, i) => {
      const faulty = injectFaults(env.DB, random);
      TRANSIENT_D1_MESSAGES.forEach((message, m) => {
        faulty.inject({ message: `D1_ERROR: ${message}`, timing: (i + m) % 2 === 0 ? "before" : "after", probability: 1 / 10, times: Number.POSITIVE_INFINITY });
      });
      return faulty;
    });
    for (let round = 0; round < 100; round++) {
      await Promise.allSettled(wrappers.map((faulty, i) => group(faulty.db, undefined, { batchSize: 7 + 4 * i, retry: true, lease: i % 2 === 0 }).run({ maxBatches: 4 })));
      const at = await positions();
      if (NAMES.every((name) => at[name] === 200)) break;
    }
    expect(wrappers.reduce((n, w) => n + w.faults.length, 0)).toBeGreaterThan(10);
    expect(wrappers.reduce((n, w) => n + w.faults.filter((f) => f.timing === "after").length, 0)).toBeGreaterThan(3);
    expect(await positions()).toEqual(Object.fromEntries(NAMES.map((name) => [name, 200])));
    expect(await totals()).toEqual(Object.fromEntries(NAMES.map((name) => [name, { sum, applied: 200 }])));
  });

  it("with a lease, of 8 group runs started at once one projects and the rest yield; nothing is left behind", async () => {
    const sum = await appendEvents(40);
    const summaries = await Promise.all(Array.from({ length: 8 }, () => group(env.DB, undefined, { lease: true }).run()));
    expect(summaries.some((summary) => summary.ended === "yielded")).toBe(true);
    await group(env.DB, undefined, { lease: true }).run();
    expect(await totals()).toEqual(Object.fromEntries(NAMES.map((name) => [name, { sum, applied: 40 }])));
    expect((await env.DB.prepare("SELECT COUNT(*) AS n FROM projection_leases WHERE expires_at > 0").first<{ n: number }>())?.n).toBe(0);
  });
});

describe("group store calls", () => {
  it("commitMany is all or nothing, and names the checkpoint that moved", async () => {
    const store = new D1CheckpointStore(env.DB);
    await store.save("totals-b", 5);
    const write = (name: string): D1PreparedStatement[] => [env.DB.prepare(UPSERT).bind(name, "x", 1)];
    const error = await store
      .commitMany([
        { name: "totals-a", position: 6, writes: write("totals-a"), expected: null },
        { name: "totals-b", position: 6, writes: write("totals-b"), expected: 4 },
      ])
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CheckpointConflictError);
    expect(error).toMatchObject({ checkpoint: "totals-b", expected: 4 });
    expect(await totals()).toEqual({});
    await expect(store.loadMany(["totals-a", "totals-b"])).resolves.toEqual([
      { position: 0, found: false },
      { position: 5, found: true },
    ]);
  });

  it("a lost group commit response is checked with one load of every checkpoint", async () => {
    const faulty = injectFaults(env.DB);
    faulty.inject({ kinds: ["batch"], timing: "after" });
    const store = new D1CheckpointStore(faulty.db, { retry: { baseDelayMs: 0 } });
    const rows = await store.commitManyAndQuery<{ one: number }>(
      NAMES.map((name) => ({ name, position: 3, writes: [faulty.db.prepare(UPSERT).bind(name, "x", 1)], expected: null })),
      faulty.db.prepare("SELECT 1 AS one"),
    );
    expect(rows).toEqual([{ one: 1 }]);
    expect(faulty.calls.map((call) => call.kind)).toEqual(["batch", "all", "batch"]); // the commit, the check, the query alone
    expect(await totals()).toEqual(Object.fromEntries(NAMES.map((name) => [name, { sum: 1, applied: 1 }])));
  });

  it("bad input gets a typed error before any query", async () => {
    const counted = countD1(env.DB);
    const store = new D1CheckpointStore(counted.db);
    const write = [counted.db.prepare(UPSERT).bind("a", "x", 1)];
    await expect(store.loadMany([])).rejects.toBeInstanceOf(CheckpointRangeError);
    await expect(store.loadMany(["a", "a"])).rejects.toBeInstanceOf(CheckpointRangeError);
    await expect(store.loadMany("a" as never)).rejects.toBeInstanceOf(CheckpointTypeError);
    await expect(store.commitMany([{ name: "a", position: 1, writes: write }, { name: "a", position: 2, writes: write }])).rejects.toBeInstanceOf(CheckpointRangeError);
    await expect(store.commitMany([{ name: "a", position: -1, writes: write }])).rejects.toBeInstanceOf(CheckpointRangeError);
    await expect(store.commitMany([{ name: "a", position: 1, writes: ["SELECT 1"] as never }])).rejects.toBeInstanceOf(CheckpointTypeError);
    await expect(store.commitMany([{ name: "a", position: 1, writes: write, parked: [{ position: 2, error: "x" }] }])).rejects.toBeInstanceOf(CheckpointRangeError);
    expect(counted.calls).toEqual([]);
    const query = eventsQuery(counted.db);
    const base = { name: "g", store, eventsQuery: query };
    expect(() => new ProjectionGroup({ ...base, projections: [] })).toThrow(CheckpointTypeError);
    expect(() => new ProjectionGroup({ ...base, projections: [perEvent(counted.db, "a"), perEvent(counted.db, "a")] })).toThrow(CheckpointTypeError);
    expect(() => new ProjectionGroup({ ...base, projections: [{ name: "a" } as never] })).toThrow(CheckpointTypeError);
    expect(() => new ProjectionGroup({ ...base, projections: [{ ...perEvent(counted.db, "a"), extra: 1 } as never] })).toThrow(CheckpointTypeError);
    expect(() => new ProjectionGroup({ ...base, projections: [perEvent(counted.db, "a")], lease: { ttl: 5 } as never })).toThrow(CheckpointTypeError);
    await expect(new ProjectionGroup({ ...base, projections: [perEvent(counted.db, "a")] }).run({ budget: 0 })).rejects.toBeInstanceOf(CheckpointRangeError);
    expect(counted.calls).toEqual([]);
  });
});
