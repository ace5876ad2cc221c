import { env } from "cloudflare:workers";
import { inArray, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { integer, sqliteTable, text, type BaseSQLiteDatabase } from "drizzle-orm/sqlite-core";
import { drizzle as drizzleProxy } from "drizzle-orm/sqlite-proxy";
import { beforeEach, describe, expect, it } from "vitest";
import { drizzleStatements, type DrizzleQuery } from "../src/drizzle.js";
import {
  CheckpointConflictError,
  CheckpointRangeError,
  CheckpointTypeError,
  D1CheckpointStore,
  D1OperationError,
  jsonRowChunks,
  ProjectionGroup,
  ProjectionRunner,
} from "../src/index.js";
import { countD1 } from "../src/testing.js";
import { appendEvents, ledgerRunner, ledgerTotals, readLedger, resetLedger, type LedgerEvent } from "./support/ledger.js";
import { any, caught, countPrepares, wrongRows } from "./support/orm.js";

// Drizzle queries committed with the checkpoint: builders and sql templates
// become statements of the caller's binding, checked before anything is sent.

const ledgerEvents = sqliteTable("ledger_events", {
  position: integer("position").primaryKey(),
  account: text("account").notNull(),
  amount: integer("amount").notNull(),
});

const ledgerBalances = sqliteTable("ledger_balances", {
  account: text("account").primaryKey(),
  balance: integer("balance").notNull(),
  applied: integer("applied").notNull(),
});

const groupTotals = sqliteTable("orm_group_totals", {
  projection: text("projection").notNull(),
  account: text("account").notNull(),
  balance: integer("balance").notNull(),
  applied: integer("applied").notNull(),
});

beforeEach(async () => {
  await resetLedger();
  await env.DB.batch([
    env.DB.prepare(
      "CREATE TABLE IF NOT EXISTS orm_group_totals (projection TEXT NOT NULL, account TEXT NOT NULL, balance INTEGER NOT NULL, applied INTEGER NOT NULL, PRIMARY KEY (projection, account))",
    ),
    env.DB.prepare("CREATE TABLE IF NOT EXISTS orm_values (v)"),
    env.DB.prepare("DELETE FROM orm_group_totals"),
    env.DB.prepare("DELETE FROM orm_values"),
  ]);
});

/** A Drizzle database on the test binding, the way a Worker builds one. */
const orm = () => drizzle(env.DB);

/** The ledger projection's write for one event, as a Drizzle upsert. */
function credit(event: LedgerEvent, db: BaseSQLiteDatabase<"async", unknown> = orm()) {
  return db
    .insert(ledgerBalances)
    .values({ account: event.account, balance: event.amount, applied: 1 })
    .onConflictDoUpdate({
      target: ledgerBalances.account,
      set: { balance: sql`${ledgerBalances.balance} + excluded.balance`, applied: sql`${ledgerBalances.applied} + 1` },
    });
}

/** The set-based write: every event of a chunk read from one bound JSON value, summed per account. */
const upsertJson = (json: string) => sql`INSERT INTO ledger_balances (account, balance, applied)
  SELECT value ->> 'account', SUM(value ->> 'amount'), COUNT(*) FROM json_each(${json}) WHERE true GROUP BY 1
  ON CONFLICT (account) DO UPDATE SET balance = balance + excluded.balance, applied = applied + excluded.applied`;

describe("drizzleStatements: Drizzle writes committed with the checkpoint", () => {
  it("a runner whose project returns Drizzle builders projects every event exactly once, a batch per round trip", async () => {
    const sum = await appendEvents(25);
    const counted = countD1(env.DB);
    const store = new D1CheckpointStore(counted.db);
    const runner = new ProjectionRunner<LedgerEvent>({
      name: "ledger",
      store,
      batchSize: 10,
      readEvents: (after, limit) => readLedger(after, limit),
      project: (events) => drizzleStatements(store.db, events.map((event) => credit(event))),
    });
    await expect(runner.run()).resolves.toMatchObject({ from: 0, to: 25, events: 25, batches: 3, conflict: false, caughtUp: true });
    const batches = counted.calls.filter((call) => call.kind === "batch");
    expect(batches.map((call) => call.sql.length)).toEqual([11, 11, 6]);
    expect(batches[0]?.sql.slice(1)).toEqual(Array(10).fill(credit({ position: 1, account: "a", amount: 1 }).toSQL().sql));
    expect(await ledgerTotals()).toEqual({ sum, applied: 25 });
    expect(await wrongRows(25)).toBe(0);
    await expect(runner.run()).resolves.toMatchObject({ events: 0, to: 25 });
    expect(await ledgerTotals()).toEqual({ sum, applied: 25 });
  });

  it("a run overtaken by another invocation applies nothing of its batch, and the next run finishes exactly once", async () => {
    const sum = await appendEvents(10);
    const store = new D1CheckpointStore(env.DB);
    let overtaken = false;
    const runner = new ProjectionRunner<LedgerEvent>({
      name: "ledger",
      store,
      batchSize: 5,
      readEvents: async (after, limit) => {
        const events = await readLedger(after, limit);
        if (!overtaken) {
          overtaken = true;
          await ledgerRunner(store, 5).run({ maxBatches: 1 }); // an overlapping invocation commits positions 1 to 5 first
        }
        return events;
      },
      project: (events) => drizzleStatements(env.DB, events.map((event) => credit(event))),
    });
    await expect(runner.run()).resolves.toMatchObject({ events: 0, conflict: true });
    expect(await ledgerTotals()).toMatchObject({ applied: 5 });
    await expect(runner.run()).resolves.toMatchObject({ from: 5, to: 10, events: 5, conflict: false });
    expect(await ledgerTotals()).toEqual({ sum, applied: 10 });
    expect(await wrongRows(10)).toBe(0);
  });

  it("commit takes the statements unchanged, a single query as well as an array, in one batch with the checkpoint", async () => {
    const counted = countD1(env.DB);
    const store = new D1CheckpointStore(counted.db);
    const single = drizzleStatements(env.DB, credit({ position: 1, account: "a", amount: 4 }));
    expect(single).toHaveLength(1);
    await store.commit("ledger", 1, single, { expected: null });
    const pair = drizzleStatements(env.DB, [credit({ position: 2, account: "a", amount: 3 }), credit({ position: 3, account: "b", amount: 2 })]);
    await store.commit("ledger", 3, pair, { expected: 1 });
    expect(counted.calls.map((call) => `${call.kind} ${call.sql.length}`)).toEqual(["batch 2", "batch 3"]);
    expect(await orm().select().from(ledgerBalances).orderBy(ledgerBalances.account)).toEqual([
      { account: "a", balance: 7, applied: 2 },
      { account: "b", balance: 2, applied: 1 },
    ]);
    await expect(store.load("ledger")).resolves.toEqual({ position: 3, found: true });
    expect(drizzleStatements(env.DB, [])).toEqual([]);
  });

  it("a failing Drizzle statement rolls back the checkpoint and every other write of the batch", async () => {
    const store = new D1CheckpointStore(env.DB);
    await store.save("ledger", 5);
    const duplicate = orm().insert(ledgerBalances).values({ account: "dup", balance: 1, applied: 1 }); // no ON CONFLICT
    const statements = drizzleStatements(env.DB, [credit({ position: 6, account: "a", amount: 5 }), duplicate, duplicate]);
    const error = await store.commit("ledger", 7, statements, { expected: 5 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(D1OperationError);
    expect(error).toMatchObject({ operation: "commit", checkpoint: "ledger", outcomeUnknown: false });
    expect(String((error as Error).cause)).toMatch(/UNIQUE constraint failed: ledger_balances\.account/);
    await expect(store.load("ledger")).resolves.toEqual({ position: 5, found: true });
    expect(await ledgerTotals()).toEqual({ sum: 0, applied: 0 });
  });

  it("a stale expected position applies none of the Drizzle writes", async () => {
    const store = new D1CheckpointStore(env.DB);
    await store.save("ledger", 9);
    const error = await store
      .commit("ledger", 3, drizzleStatements(env.DB, [credit({ position: 1, account: "a", amount: 1 }), upsertJson('[{"account":"b","amount":2}]')]), {
        expected: 0,
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CheckpointConflictError);
    expect(error).toMatchObject({ checkpoint: "ledger", expected: 0 });
    expect(await ledgerTotals()).toEqual({ sum: 0, applied: 0 });
    await expect(store.load("ledger")).resolves.toEqual({ position: 9, found: true });
  });

  it("set-based writes: jsonRowChunks feeds an sql template, one statement per chunk, every event once", async () => {
    const sum = await appendEvents(60);
    const counted = countD1(env.DB);
    const runner = new ProjectionRunner<LedgerEvent>({
      name: "ledger",
      store: new D1CheckpointStore(counted.db),
      batchSize: 40,
      eventsQuery: (after, limit) =>
        counted.db.prepare("SELECT position, account, amount FROM ledger_events WHERE position > ?1 ORDER BY position LIMIT ?2").bind(after, limit),
      project: (events) =>
        drizzleStatements(
          counted.db,
          jsonRowChunks(events.map((e) => ({ account: e.account, amount: e.amount })), { maxValueBytes: 700 }).map(upsertJson),
        ),
    });
    await expect(runner.run()).resolves.toMatchObject({ to: 60, events: 60, batches: 2 });
    // A row is 32 bytes of JSON: 40 rows in 2 chunks of at most 700 bytes, 20 in 1.
    const commits = counted.calls.filter((call) => call.sql.some((text) => text.includes("json_each")));
    expect(commits.map((call) => call.sql.filter((text) => text.includes("json_each")).length)).toEqual([2, 1]);
    expect(await ledgerTotals()).toEqual({ sum, applied: 60 });
    expect(await wrongRows(60)).toBe(0);
  });

  it("a ProjectionGroup commits the Drizzle writes of every projection in one batch (commitMany)", async () => {
    await appendEvents(12);
    const counted = countD1(env.DB);
    const upsertGroup = (name: string, json: string) => sql`INSERT INTO orm_group_totals (projection, account, balance, applied)
      SELECT ${name}, value ->> 'account', SUM(value ->> 'amount'), COUNT(*) FROM json_each(${json}) WHERE true GROUP BY 2
      ON CONFLICT (projection, account) DO UPDATE SET balance = balance + excluded.balance, applied = applied + excluded.applied`;
    const group = new ProjectionGroup<LedgerEvent>({
      name: "orm-group",
      store: new D1CheckpointStore(counted.db),
      batchSize: 100,
      readEvents: (after, limit) => readLedger(after, limit),
      projections: [
        {
          name: "per-event",
          project: (events) =>
            drizzleStatements(
              counted.db,
              events.map((e) => orm().insert(groupTotals).values({ projection: "per-event", account: e.account, balance: e.amount, applied: 1 }).onConflictDoUpdate({
                target: [groupTotals.projection, groupTotals.account],
                set: { balance: sql`balance + excluded.balance`, applied: sql`applied + 1` },
              })),
            ),
        },
        {
          name: "set-based",
          project: (events) =>
            drizzleStatements(counted.db, jsonRowChunks(events.map(({ account, amount }) => ({ account, amount }))).map((json) => upsertGroup("set-based", json))),
        },
      ],
    });
    const summary = await group.run();
    expect(summary.projections.map((p) => `${p.name} ${p.to}`)).toEqual(["per-event 12", "set-based 12"]);
    const commits = counted.calls.filter((call) => call.sql.some((text) => text.includes("orm_group_totals")));
    expect(commits.map((call) => call.sql.length)).toEqual([2 + 12 + 1]); // two checkpoints, 12 upserts, one json_each upsert
    const { results } = await env.DB.prepare(
      "SELECT projection, SUM(balance) AS sum, SUM(applied) AS applied FROM orm_group_totals GROUP BY projection ORDER BY projection",
    ).all();
    const events = await env.DB.prepare("SELECT SUM(amount) AS sum FROM ledger_events").first<{ sum: number }>();
    expect(results).toEqual([
      { projection: "per-event", sum: events?.sum, applied: 12 },
      { projection: "set-based", sum: events?.sum, applied: 12 },
    ]);
  });

  it("a query built on another binding or driver becomes a statement of the caller's binding", async () => {
    const other = countD1(env.DB.withSession("first-primary"));
    // drizzle-orm's types want a D1Database; its driver only calls prepare and batch, which a session has.
    const fromOtherBinding = credit({ position: 1, account: "a", amount: 2 }, drizzle(other.db as unknown as D1Database));
    let proxyCalls = 0;
    const noDatabase = drizzleProxy(async () => {
      proxyCalls += 1;
      return Promise.reject(new Error("this database runs nothing"));
    });
    const fromProxyDriver = credit({ position: 2, account: "b", amount: 3 }, noDatabase);
    const caller = countD1(env.DB);
    const statements = drizzleStatements(caller.db, [fromOtherBinding, fromProxyDriver, sql`SELECT ${1} AS one`]);
    expect(caller.calls).toEqual([]);
    // Statements of the caller's binding: running one is a round trip of that binding.
    await expect(statements[2]?.first()).resolves.toEqual({ one: 1 });
    expect(caller.calls.map((call) => call.kind)).toEqual(["first"]);
    await new D1CheckpointStore(env.DB).commit("ledger", 2, statements, { expected: null });
    expect(await ledgerTotals()).toEqual({ sum: 5, applied: 2 });
    expect(other.calls).toEqual([]);
    expect(proxyCalls).toBe(0);
  });

  it("booleans bind as 1 and 0, exactly as those numbers do; ArrayBuffer and Uint8Array bind as BLOBs", async () => {
    const bytes = new Uint8Array([0, 1, 2, 255]);
    const values: unknown[] = [true, false, 1, 0, bytes, bytes.buffer, bytes.subarray(1, 3)];
    const inserts = values.map((value) => sql`INSERT INTO orm_values (v) VALUES (${value})`);
    await new D1CheckpointStore(env.DB).commit("values", 1, drizzleStatements(env.DB, inserts));
    const { results } = await env.DB.prepare("SELECT typeof(v) AS type, hex(v) AS hex FROM orm_values ORDER BY rowid").all();
    // D1 binds every number as a REAL; true and false are stored exactly as 1 and 0 are.
    const bound = (value: number) => env.DB.prepare("SELECT typeof(?1) AS type, hex(?1) AS hex").bind(value).first();
    const [one, zero] = [await bound(1), await bound(0)];
    expect(one).toEqual({ type: "real", hex: "312E30" });
    const blobs = ["000102FF", "000102FF", "0102"].map((hex) => ({ type: "blob", hex }));
    expect(results).toEqual([one, zero, one, zero, ...blobs]);
    // In an INTEGER column, as 1 and 0 are: INTEGERs.
    await new D1CheckpointStore(env.DB).commit("values", 2, drizzleStatements(env.DB, sql`INSERT INTO ledger_balances VALUES ('flag', ${false}, ${true})`));
    const flag = await env.DB.prepare("SELECT balance, typeof(balance) AS b, applied, typeof(applied) AS a FROM ledger_balances").first();
    expect(flag).toEqual({ balance: 0, b: "integer", applied: 1, a: "integer" });
  });

  it("at most 100 parameters per query, D1's limit (local D1 refuses 101 as well)", async () => {
    await expect(
      env.DB.prepare(`SELECT ${Array.from({ length: 101 }, (_, i) => `?${i + 1}`).join(", ")}`).bind(...Array.from({ length: 101 }, (_, i) => i)).first(),
    ).rejects.toThrow(/variable number must be between \?1 and \?100/);
    const rows = (count: number) => Array.from({ length: count }, (_, i) => ({ position: i + 1, account: `a${i}`, amount: 1 }));
    const counted = countD1(env.DB);
    const tooMany = orm().insert(ledgerEvents).values(rows(34)); // 102 parameters
    const error = caught(() => drizzleStatements(counted.db, [tooMany]));
    expect(error).toBeInstanceOf(CheckpointRangeError);
    expect(error).toMatchObject({ argument: "queries[0].parameters" });
    expect((error as Error).message).toMatch(/102 values.*at most 100.*jsonRowChunks/);
    const positions = orm().select({ n: sql<number>`count(*)`.as("n") }).from(ledgerEvents).where(inArray(ledgerEvents.position, rows(100).map((r) => r.position)));
    const [insert, select] = drizzleStatements(counted.db, [orm().insert(ledgerEvents).values(rows(33)), positions]); // 99 and 100 parameters
    expect(counted.calls).toEqual([]);
    if (insert === undefined || select === undefined) throw new Error("two statements expected");
    await new D1CheckpointStore(env.DB).commit("events", 33, [insert]);
    await expect(select.first()).resolves.toEqual({ n: 33 });
  });

  describe("bad input is a typed error naming the value, before any D1 call or prepare", () => {
    const good = credit({ position: 1, account: "a", amount: 1 });
    const cases: readonly (readonly [string, DrizzleQuery, typeof CheckpointTypeError | typeof CheckpointRangeError, RegExp, number?])[] = [
      ["undefined", sql`SELECT ${sql.param(undefined)}`, CheckpointTypeError, /got undefined .*use null/],
      ["bigint", sql`SELECT ${5n}`, CheckpointTypeError, /got bigint .*Number\(value\)/],
      ["NaN", sql`SELECT ${Number.NaN}`, CheckpointRangeError, /finite number, got NaN .*NULL/],
      ["Infinity", sql`SELECT ${Number.POSITIVE_INFINITY}`, CheckpointRangeError, /got Infinity/],
      ["-Infinity", sql`SELECT ${Number.NEGATIVE_INFINITY}`, CheckpointRangeError, /got -Infinity/],
      ["NaN in a builder", orm().insert(ledgerBalances).values({ account: "a", balance: Number.NaN, applied: 1 }), CheckpointRangeError, /got NaN/, 1],
      ["a Date", sql`SELECT ${new Date(0)}`, CheckpointTypeError, /got Date .*getTime\(\).*toISOString\(\)/],
      ["a plain object", sql`SELECT ${{ a: 1 }}`, CheckpointTypeError, /got object .*JSON\.stringify/],
      ["an array", sql`SELECT ${sql.param([1, 2])}`, CheckpointTypeError, /got array .*JSON\.stringify.*Uint8Array/],
      ["a Map", sql`SELECT ${new Map()}`, CheckpointTypeError, /got Map/],
      ["an Int16Array", sql`SELECT ${new Int16Array([1])}`, CheckpointTypeError, /got Int16Array .*new Uint8Array\(view\.buffer/],
      ["a DataView", sql`SELECT ${new DataView(new ArrayBuffer(2))}`, CheckpointTypeError, /got DataView/],
      ["a boxed number", sql`SELECT ${Object(1) as unknown}`, CheckpointTypeError, /got Number/],
      ["a symbol", sql`SELECT ${Symbol("s")}`, CheckpointTypeError, /got symbol/],
      ["a function", sql`SELECT ${() => 1}`, CheckpointTypeError, /got function/],
      ["a placeholder", orm().select().from(ledgerBalances).where(sql`${ledgerBalances.account} = ${sql.placeholder("account")}`), CheckpointTypeError, /got Placeholder/],
      ["a lone surrogate", sql`SELECT ${"a\ud800"}`, CheckpointRangeError, /lone surrogate/],
      ["a string over 2,000,000 bytes", sql`SELECT ${"\u00e9".repeat(1_000_001)}`, CheckpointRangeError, /2000002 bytes of UTF-8/],
      ["a BLOB over 2,000,000 bytes", sql`SELECT ${new Uint8Array(2_000_001)}`, CheckpointRangeError, /2000001 bytes/],
    ];
    for (const [label, query, type, message, index = 0] of cases) {
      it(`${label}: ${type.name}`, async () => {
        const counted = countD1(env.DB);
        const spy = countPrepares(counted.db);
        const error = caught(() => drizzleStatements(spy.db, [good, query]));
        expect(error).toBeInstanceOf(type);
        expect(error).toMatchObject({ operation: "commit", checkpoint: undefined, argument: `queries[1].parameters[${index}]` });
        expect((error as Error).message).toMatch(message);
        expect(counted.calls).toEqual([]);
        expect(spy.prepared).toEqual([]);
        expect(await ledgerTotals()).toEqual({ sum: 0, applied: 0 });
      });
    }

    it("db, queries and what each query gives are checked too", () => {
      const counted = countD1(env.DB);
      const expectError = (call: () => unknown, type: typeof CheckpointTypeError | typeof CheckpointRangeError, argument: string) => {
        const error = caught(call);
        expect(error).toBeInstanceOf(type);
        expect(error).toMatchObject({ operation: "commit", argument });
      };
      expectError(() => drizzleStatements(any({}), [good]), CheckpointTypeError, "db");
      expectError(() => drizzleStatements(counted.db, any(undefined)), CheckpointTypeError, "queries");
      expectError(() => drizzleStatements(counted.db, any([good, "SELECT 1"])), CheckpointTypeError, "queries[1]");
      expectError(() => drizzleStatements(counted.db, any([good, Promise.resolve(good)])), CheckpointTypeError, "queries[1]");
      // eslint-disable-next-line no-sparse-arrays -- a hole is what is being checked
      expectError(() => drizzleStatements(counted.db, any([good, , good])), CheckpointTypeError, "queries[1]");
      expectError(() => drizzleStatements(counted.db, any({ toSQL: () => ({ sql: "SELECT ?", params: "1" }) })), CheckpointTypeError, "queries.parameters");
      expectError(() => drizzleStatements(counted.db, any({ toSQL: () => ({ sql: " ", params: [] }) })), CheckpointRangeError, "queries.sql");
      expectError(() => drizzleStatements(counted.db, any({ toSQL: () => ({ sql: `SELECT '${"x".repeat(100_000)}'`, params: [] }) })), CheckpointRangeError, "queries.sql");
      expectError(() => drizzleStatements(counted.db, any({ toSQL: () => null })), CheckpointTypeError, "queries");
      expect(counted.calls).toEqual([]);
    });
  });
});
