import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { D1CheckpointStore, ProjectionGroup, ProjectionRunner, QueryBudget, type D1Client, type RowUsage } from "../src/index.js";
import { appendEvents, creditStatement, resetLedger, type LedgerEvent } from "./support/ledger.js";
import { freshObject, inObject } from "./support/in-object.js";

// Rows read and written, as D1 bills them: every summary reports them from
// D1's meta (a Durable Object's cursors), split into the read model's and the
// package's own (the checkpoint with its move time, leases, parked events).
// The floors asserted here are decision 0026's.

beforeEach(async () => {
  await resetLedger();
  await env.DB.batch([env.DB.prepare("DELETE FROM projection_leases"), env.DB.prepare("DELETE FROM parked_events")]);
});

const eventsQuery = (db: D1Client) => (after: number, limit: number) =>
  db.prepare("SELECT position, account, amount FROM ledger_events WHERE position > ?1 ORDER BY position LIMIT ?2").bind(after, limit);

function runner(batchSize: number, options: { lease?: boolean; name?: string; park?: number } = {}): ProjectionRunner<LedgerEvent> {
  return new ProjectionRunner<LedgerEvent>({
    name: options.name ?? "ledger",
    store: new D1CheckpointStore(env.DB),
    batchSize,
    eventsQuery: eventsQuery(env.DB),
    ...(options.lease === true ? { lease: { ttlMs: 60_000 } } : {}),
    onError: () => "park",
    project: (events) => {
      if (events.some((event) => event.position === options.park)) throw new Error("refused");
      return events.map((event) => creditStatement(event));
    },
  });
}

const written = ({ rowsWritten, ownRowsWritten }: RowUsage) => ({ readModel: rowsWritten - ownRowsWritten, own: ownRowsWritten });

describe("rows per commit, from D1's meta", () => {
  it("a plain commit writes 2 rows of the package's own: the checkpoint and its move time", async () => {
    const store = new D1CheckpointStore(env.DB);
    await store.save("p", 1);
    const budget = new QueryBudget();
    await store.commit("p", 2, [creditStatement({ position: 2, account: "a", amount: 1 })], { expected: 1, budget });
    // The credit inserts a new account: its row and its primary-key index entry.
    expect(written(budget.rows)).toEqual({ readModel: 2, own: 2 });
    await store.commit("p", 3, [creditStatement({ position: 3, account: "a", amount: 1 })], { expected: 2, budget });
    // Updated in place: 1 row; the checkpoint and its move time again 2.
    expect(written(budget.rows)).toEqual({ readModel: 3, own: 4 });
    expect(budget.rowsOf("p")).toEqual(budget.rows);
    expect(budget.rows.rowsRead).toBeGreaterThan(budget.rows.ownRowsRead);
  });

  it("a projection's first checkpoint writes 4 once: both rows are new, with their index entries", async () => {
    const budget = new QueryBudget();
    await new D1CheckpointStore(env.DB).commit("q", 3, [], { expected: null, budget });
    expect(written(budget.rows)).toEqual({ readModel: 0, own: 4 });
  });

  it("a saved position that does not move writes only the checkpoint row, not its move time", async () => {
    const store = new D1CheckpointStore(env.DB);
    await store.save("p", 5);
    const budget = new QueryBudget();
    await store.save("p", 5, { budget });
    expect(written(budget.rows)).toEqual({ readModel: 0, own: 1 });
  });
});

describe("rows in run summaries", () => {
  it("a runner reports 2 own rows per batch, and the read model's writes apart", async () => {
    await appendEvents(100);
    const first = await runner(10).run();
    // 5 new accounts (2 rows each) and 95 updates; 10 commits, the first one creating the checkpoint.
    expect(written(first)).toEqual({ readModel: 5 * 2 + 95, own: 4 + 9 * 2 });
    await appendEvents(100);
    const again = await runner(10).run();
    expect(again.batches).toBe(10);
    expect(written(again)).toEqual({ readModel: 100, own: 10 * 2 });
    // Reads: the event queries are the caller's; the package reads its checkpoint and move time.
    expect(again.rowsRead - again.ownRowsRead).toBeGreaterThanOrEqual(100);
    expect(again.ownRowsRead).toBeGreaterThan(0);
  });

  it("a lease costs 2 rows a run, not a commit: its claim and its release, each updating its row in place", async () => {
    await appendEvents(100);
    const first = await runner(10, { lease: true }).run();
    // The first claim inserts the lease's row (and its index entry): once per projection.
    expect(written(first)).toEqual({ readModel: 5 * 2 + 95, own: 4 + 9 * 2 + 2 + 1 });
    await appendEvents(100);
    const again = await runner(10, { lease: true }).run();
    expect(again.batches).toBe(10);
    expect(written(again)).toEqual({ readModel: 100, own: 10 * 2 + 2 });
    // An idle poll with a lease: the claim and the release, nothing else.
    const idle = await runner(10, { lease: true }).run();
    expect([idle.events, idle.caughtUp]).toEqual([0, true]);
    expect(written(idle)).toEqual({ readModel: 0, own: 2 });
  });

  it("a parked event costs 2 rows: its row and its primary-key index entry", async () => {
    await appendEvents(10);
    await runner(10).run(); // the checkpoint exists
    await appendEvents(10);
    const summary = await runner(10, { park: 15 }).run();
    expect(summary.parked).toEqual([15]);
    expect(written(summary)).toEqual({ readModel: 9, own: 2 + 2 });
  });

  it("a group reports each projection's own rows and writes, and shares only reads", async () => {
    await appendEvents(100);
    const group = new ProjectionGroup<LedgerEvent>({
      name: "g",
      store: new D1CheckpointStore(env.DB),
      batchSize: 10,
      eventsQuery: eventsQuery(env.DB),
      projections: ["a", "b", "c"].map((name) => ({ name, project: (events: readonly LedgerEvent[]) => events.map((event) => creditStatement(event)) })),
    });
    await group.run();
    await appendEvents(100);
    const summary = await group.run();
    for (const member of summary.projections) expect(written(member)).toEqual({ readModel: 100, own: 10 * 2 });
    expect(written(summary)).toEqual({ readModel: 300, own: 60 });
    // The event query and the loads are shared: in the total, in no projection's part.
    const memberReads = summary.projections.reduce((sum, member) => sum + member.rowsRead, 0);
    expect(summary.rowsRead).toBeGreaterThanOrEqual(memberReads + 100);
  });

  it("a statement that several projections of a group hand in counts for each of them", async () => {
    await env.DB.prepare("CREATE TABLE IF NOT EXISTS rows_counter (k TEXT PRIMARY KEY, n INTEGER NOT NULL)").run();
    await env.DB.prepare("INSERT INTO rows_counter (k, n) VALUES ('x', 0) ON CONFLICT (k) DO NOTHING").run();
    const shared = env.DB.prepare("UPDATE rows_counter SET n = n + 1 WHERE k = 'x'"); // one object, in both projections' writes
    await appendEvents(10);
    const summary = await new ProjectionGroup<LedgerEvent>({
      name: "g",
      store: new D1CheckpointStore(env.DB),
      batchSize: 10,
      eventsQuery: eventsQuery(env.DB),
      projections: ["a", "b"].map((name) => ({ name, project: () => [shared] })),
    }).run();
    expect(summary.projections.map((member) => written(member).readModel)).toEqual([1, 1]);
  });

  it("runs sharing a budget add up on it", async () => {
    await appendEvents(30);
    const budget = new QueryBudget();
    const one = await runner(10, { name: "one" }).run({ budget });
    const two = await runner(10, { name: "two" }).run({ budget });
    expect(budget.rows.rowsWritten).toBe(one.rowsWritten + two.rowsWritten);
    expect(budget.rows.ownRowsRead).toBe(one.ownRowsRead + two.ownRowsRead);
    expect(budget.rowsOf("one").ownRowsWritten).toBe(one.ownRowsWritten);
  });

  it("rows a caller counts itself join the tally; junk counts as 0", () => {
    const budget = new QueryBudget();
    budget.countRows({ read: 5, written: 2 });
    budget.countRows({ read: Number.NaN, written: -1, own: true });
    expect(budget.rows).toEqual({ rowsRead: 5, rowsWritten: 2, ownRowsRead: 0, ownRowsWritten: 0 });
  });
});

describe("rows on the Durable Object store, from its cursors", () => {
  it("a commit reports the same split: 2 own rows, and the writes' own", async () => {
    await inObject(freshObject(), async (store, storage) => {
      storage.sql.exec("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL)");
      await store.save("p", 1);
      const write = (sql: SqlStorage): void => {
        sql.exec("INSERT INTO t (k, v) VALUES ('a', 1) ON CONFLICT (k) DO UPDATE SET v = v + 1");
      };
      const budget = new QueryBudget();
      await store.commit("p", 2, write, { expected: 1, budget });
      expect(written(budget.rows)).toEqual({ readModel: 2, own: 2 });
      store.commitSync("p", 3, write, { expected: 2, budget });
      expect(written(budget.rows)).toEqual({ readModel: 3, own: 4 });
      await store.commitMany([{ name: "p", position: 4, writes: write, expected: 3 }], { budget });
      expect(written(budget.rowsOf("p"))).toEqual({ readModel: 4, own: 6 });
    });
  });
});
