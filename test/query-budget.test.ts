import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import {
  CheckpointRangeError,
  CheckpointTypeError,
  D1CheckpointStore,
  D1OperationError,
  ProjectionGroup,
  ProjectionRunner,
  QueryBudget,
  QueryBudgetError,
  type D1Client,
} from "../src/index.js";
import { countD1, injectFaults, seededRandom } from "../src/testing.js";
import { storedRows } from "./support/helpers.js";
import { appendEvents, creditStatement, ledgerTotals, readLedger, resetLedger, type LedgerEvent } from "./support/ledger.js";

// The query budget: a run never sends more D1 queries than it is given,
// counted as D1 counts them (each statement of a batch, every retry and check).

beforeEach(async () => {
  await resetLedger();
  await env.DB.prepare("DELETE FROM projection_leases").run();
});

/** Queries D1 received through `calls`: one per statement. */
function queriesOf(calls: readonly { sql: readonly string[] }[]): number {
  return calls.reduce((n, call) => n + call.sql.length, 0);
}

function runner(db: D1Client, options: { batchSize?: number; lease?: boolean; readEvents?: boolean; retry?: false } = {}): ProjectionRunner<LedgerEvent> {
  const store = new D1CheckpointStore(db, options.retry === false ? { retry: false } : { retry: { baseDelayMs: 1, maxDelayMs: 2 } });
  const common = {
    name: "ledger",
    store,
    batchSize: options.batchSize ?? 10,
    project: (events: readonly LedgerEvent[]) => events.map((event) => creditStatement(event, db)),
  };
  if (options.readEvents === true) return new ProjectionRunner<LedgerEvent>({ ...common, readEvents: (after, limit) => readLedger(after, limit, db) });
  return new ProjectionRunner<LedgerEvent>({
    ...common,
    lease: options.lease ?? false,
    eventsQuery: (after, limit) =>
      db.prepare("SELECT position, account, amount FROM ledger_events WHERE position > ?1 ORDER BY position LIMIT ?2").bind(after, limit),
  });
}

describe("the query budget of a run", () => {
  it.each([
    ["eventsQuery", {}],
    ["eventsQuery with a lease", { lease: true }],
    ["readEvents", { readEvents: true }],
  ] as const)("ends the run before a round trip would go over it, and never sends more (%s)", async (_label, options) => {
    const sum = await appendEvents(100);
    let runs = 0;
    for (;;) {
      const counted = countD1(env.DB);
      const summary = await runner(counted.db, options).run({ budget: 40 });
      runs += 1;
      const sent = queriesOf(counted.calls);
      expect(sent).toBeLessThanOrEqual(40);
      // readEvents reads through its own function on the plain binding: the runner counts one query per call
      if (!("readEvents" in options)) expect(summary.queries).toBe(sent);
      if (summary.ended === "caughtUp") break;
      expect(summary).toMatchObject({ ended: "budget", caughtUp: false, conflict: false });
      expect(summary.batches).toBeGreaterThan(0);
      expect(runs).toBeLessThan(20);
    }
    expect(runs).toBeGreaterThan(3); // 100 events at 11 queries a batch cannot fit in one budget of 40
    expect(await ledgerTotals()).toEqual({ sum, applied: 100 });
    expect(await storedRows()).toEqual([{ name: "ledger", position: 100 }]);
    expect((await env.DB.prepare("SELECT COUNT(*) AS n FROM projection_leases WHERE expires_at > 0").first<{ n: number }>())?.n).toBe(0);
  });

  it("a batch larger than the whole budget is a QueryBudgetError, and nothing of it is sent", async () => {
    await appendEvents(30);
    const counted = countD1(env.DB);
    const error = await runner(counted.db, { batchSize: 20 }).run({ budget: 15 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(QueryBudgetError);
    expect(error).toMatchObject({ needed: 22, limit: 15, operation: "commit", checkpoint: "ledger" });
    expect(counted.calls.every((call) => !call.sql.some((sql) => sql.startsWith("INSERT INTO ledger_balances")))).toBe(true);
    expect((await ledgerTotals()).applied).toBe(0);
    expect(await storedRows()).toEqual([]);
  });

  it("one budget shared by two runs of an invocation: the second goes on with what the first left", async () => {
    await appendEvents(25);
    const budget = new QueryBudget(60);
    const counted = countD1(env.DB);
    const first = await runner(counted.db).run({ budget });
    const second = new ProjectionRunner<LedgerEvent>({
      name: "ledger-copy",
      store: new D1CheckpointStore(counted.db),
      batchSize: 10,
      eventsQuery: (after, limit) =>
        counted.db.prepare("SELECT position, account, amount FROM ledger_events WHERE position > ?1 ORDER BY position LIMIT ?2").bind(after, limit),
      project: (events) => events.map((event) => creditStatement(event, counted.db)),
    });
    const after = await second.run({ budget });
    expect(first.ended).toBe("caughtUp");
    expect(after.ended).toBe("budget");
    expect(budget.spent).toBe(first.queries + after.queries);
    expect(budget.spent).toBe(queriesOf(counted.calls));
    expect(budget.spent).toBeLessThanOrEqual(60);
  });

  it("retries and checks count: under random transient faults the budget still holds and every event applies once", async () => {
    const sum = await appendEvents(60);
    const faulty = injectFaults(env.DB, seededRandom(7));
    faulty.inject({ probability: 0.25, times: Number.POSITIVE_INFINITY, timing: "before" });
    faulty.inject({ probability: 0.1, times: Number.POSITIVE_INFINITY, timing: "after" });
    for (let run = 0; run < 60; run++) {
      const before = queriesOf(faulty.calls);
      const summary = await runner(faulty.db).run({ budget: 30 }).catch((error: unknown) => {
        if (error instanceof D1OperationError) return undefined; // retries ran out or an outcome is unknown: the next run resumes
        throw error;
      });
      expect(queriesOf(faulty.calls) - before).toBeLessThanOrEqual(30);
      if (summary?.ended === "caughtUp") break;
    }
    faulty.clear();
    await runner(env.DB).run();
    expect(await ledgerTotals()).toEqual({ sum, applied: 60 });
  });

  it("a lost commit response whose check the budget has no room for is an unknown outcome", async () => {
    await appendEvents(5);
    const faulty = injectFaults(env.DB);
    faulty.inject({ kinds: ["batch"], sql: /^INSERT INTO checkpoints/, timing: "after" });
    const store = new D1CheckpointStore(faulty.db, { retry: { baseDelayMs: 1, maxDelayMs: 2 } });
    const statements = (await readLedger(0, 5)).map((event) => creditStatement(event, faulty.db));
    const error = await store.commit("ledger", 5, statements, { expected: null, budget: new QueryBudget(6) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(D1OperationError);
    expect(error).toMatchObject({ outcomeUnknown: true });
    expect((error as D1OperationError).cause).toBeInstanceOf(QueryBudgetError);
    expect(queriesOf(faulty.calls)).toBe(6);
  });

  it("store calls take a budget too, and a call that does not fit sends nothing", async () => {
    const counted = countD1(env.DB);
    const store = new D1CheckpointStore(counted.db);
    const budget = new QueryBudget(3);
    await store.save("a", 1, { budget });
    await store.load("a", { budget });
    await store.waitFor("a", 1, { budget }); // one poll
    await expect(store.reset("a", { budget })).rejects.toBeInstanceOf(QueryBudgetError);
    expect(counted.calls).toHaveLength(3);
    expect(budget).toMatchObject({ spent: 3, remaining: 0 });
    await expect(store.load("a")).resolves.toEqual({ position: 1, found: true });
  });

  it("bad budgets are input errors before any query", async () => {
    const counted = countD1(env.DB);
    await expect(runner(counted.db).run({ budget: 0 })).rejects.toBeInstanceOf(CheckpointRangeError);
    await expect(runner(counted.db).run({ budget: 2.5 })).rejects.toBeInstanceOf(CheckpointRangeError);
    await expect(runner(counted.db).run({ budget: "100" as never })).rejects.toBeInstanceOf(CheckpointTypeError);
    await expect(new D1CheckpointStore(counted.db).load("a", { budget: { limit: 5 } as never })).rejects.toBeInstanceOf(CheckpointTypeError);
    expect(() => new QueryBudget(-1)).toThrow(CheckpointRangeError);
    expect(() => {
      new QueryBudget(1).spend(-1);
    }).toThrow(CheckpointRangeError);
    expect(counted.calls).toEqual([]);
  });

  it("a run whose first round trip does not fit ends on its budget, sending nothing", async () => {
    await appendEvents(5);
    const counted = countD1(env.DB);
    const budget = new QueryBudget(10);
    budget.spend(9); // the invocation's own queries used most of it
    await expect(runner(counted.db, { lease: true }).run({ budget })).resolves.toMatchObject({ ended: "budget", from: 0, to: 0, batches: 0, queries: 0 });
    expect(counted.calls).toEqual([]);
  });

  it("leased runs sharing one budget at the same time never spend each other's reserve: every lease is let go", async () => {
    await appendEvents(60);
    const budget = new QueryBudget(45);
    const counted = countD1(env.DB);
    const summaries = await Promise.all([0, 1].map((i) => runner(counted.db, { lease: true, batchSize: 7 + i }).run({ budget })));
    expect(budget.spent).toBeLessThanOrEqual(45);
    expect(counted.calls.reduce((n, call) => n + call.sql.length, 0)).toBe(budget.spent);
    expect(summaries.map((summary) => summary.ended).sort()).toContain("budget");
    expect((await env.DB.prepare("SELECT COUNT(*) AS n FROM projection_leases WHERE expires_at > 0").first<{ n: number }>())?.n).toBe(0);
  });

  it("runs sharing one budget at the same time each report their own queries, and a lease is let go only by the run that claimed it", async () => {
    await appendEvents(120);
    await env.DB.prepare("DELETE FROM projection_versions").run();
    const budget = new QueryBudget(150);
    const eventsQuery = (db: D1Client) => (after: number, limit: number) =>
      db.prepare("SELECT position, account, amount FROM ledger_events WHERE position > ?1 ORDER BY position LIMIT ?2").bind(after, limit);
    const counters = [0, 1, 2, 3].map(() => countD1(env.DB));
    const [a, b, c, d] = counters.map((counted) => counted.db) as [D1Client, D1Client, D1Client, D1Client];
    const nothing = (): D1PreparedStatement[] => [];
    const runs = [
      new ProjectionRunner<LedgerEvent>({ name: "shared-a", store: new D1CheckpointStore(a), batchSize: 10, eventsQuery: eventsQuery(a), project: nothing, lease: true }).run({ budget }),
      new ProjectionRunner<LedgerEvent>({ name: "shared-b", version: 1, store: new D1CheckpointStore(b), batchSize: 9, eventsQuery: eventsQuery(b), project: nothing }).run({ budget }),
      new ProjectionGroup<LedgerEvent>({
        name: "shared-group",
        store: new D1CheckpointStore(c),
        batchSize: 8,
        eventsQuery: eventsQuery(c),
        lease: true,
        projections: [{ name: "shared-c1", project: nothing }, { name: "shared-c2", project: nothing }],
      }).run({ budget }),
      new ProjectionRunner<LedgerEvent>({ name: "shared-d", store: new D1CheckpointStore(d), batchSize: 11, readEvents: (after, limit) => readLedger(after, limit, d), project: nothing }).run({ budget }),
    ];
    const summaries = await Promise.all(runs);
    const own = counters.map((counted) => queriesOf(counted.calls));
    expect(summaries.map((summary) => summary.queries)).toEqual(own);
    expect(own.reduce((sum, n) => sum + n, 0)).toBe(budget.spent);
    expect(budget.spent).toBeLessThanOrEqual(150);
    expect((await env.DB.prepare("SELECT COUNT(*) AS n FROM projection_leases WHERE expires_at > 0").first<{ n: number }>())?.n).toBe(0);
  });

  it("replay counts its queries against a budget", async () => {
    await appendEvents(3);
    await env.DB.prepare("INSERT INTO parked_events (name, position, error, parked_at) VALUES ('ledger', 2, 'x', 0)").run();
    const counted = countD1(env.DB);
    const budget = new QueryBudget(10);
    await expect(runner(counted.db).replay(2, { budget })).resolves.toBe(true);
    expect(budget.spent).toBe(counted.calls.reduce((n, call) => n + call.sql.length, 0));
    expect(budget.spent).toBeGreaterThan(0);
  });
});
