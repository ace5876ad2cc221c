import { env } from "cloudflare:workers";
import {
  CompiledQuery,
  DummyDriver,
  Kysely,
  sql,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
  type DatabaseConnection,
  type Driver,
  type QueryResult,
} from "kysely";
import { beforeEach, describe, expect, it } from "vitest";
import { kyselyStatements, type KyselyQuery } from "../src/kysely.js";
import {
  CheckpointConflictError,
  CheckpointRangeError,
  CheckpointTypeError,
  D1CheckpointStore,
  D1OperationError,
  jsonRowChunks,
  ProjectionGroup,
  ProjectionRunner,
  type D1Client,
} from "../src/index.js";
import { countD1 } from "../src/testing.js";
import { appendEvents, ledgerRunner, ledgerTotals, readLedger, resetLedger, type LedgerEvent } from "./support/ledger.js";
import { any, caught, countPrepares, wrongRows } from "./support/orm.js";

// Kysely queries committed with the checkpoint: builders and compiled queries
// become statements of the caller's binding, checked before anything is sent.

interface Database {
  ledger_events: { position: number; account: string; amount: number };
  ledger_balances: { account: string; balance: number; applied: number };
  orm_group_totals: { projection: string; account: string; balance: number; applied: number };
}

/** A Kysely that compiles SQLite SQL and runs nothing: no driver, no binding. */
function compileOnly(): Kysely<Database> {
  return new Kysely<Database>({
    dialect: {
      createAdapter: () => new SqliteAdapter(),
      createDriver: () => new DummyDriver(),
      createIntrospector: (db) => new SqliteIntrospector(db),
      createQueryCompiler: () => new SqliteQueryCompiler(),
    },
  });
}

/** A Kysely whose driver runs queries on `client` (another binding than the store's), recording their SQL. */
function kyselyOn(client: D1Client): { readonly db: Kysely<Database>; readonly executed: string[] } {
  const executed: string[] = [];
  const connection: DatabaseConnection = {
    async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
      executed.push(query.sql);
      const { results } = await client.prepare(query.sql).bind(...query.parameters).all<R>();
      return { rows: results };
    },
    streamQuery: () => {
      throw new Error("not streamed");
    },
  };
  const driver: Driver = {
    init: () => Promise.resolve(),
    acquireConnection: () => Promise.resolve(connection),
    beginTransaction: () => Promise.reject(new Error("no transactions")),
    commitTransaction: () => Promise.reject(new Error("no transactions")),
    rollbackTransaction: () => Promise.reject(new Error("no transactions")),
    releaseConnection: () => Promise.resolve(),
    destroy: () => Promise.resolve(),
  };
  const db = new Kysely<Database>({
    dialect: {
      createAdapter: () => new SqliteAdapter(),
      createDriver: () => driver,
      createIntrospector: (kysely) => new SqliteIntrospector(kysely),
      createQueryCompiler: () => new SqliteQueryCompiler(),
    },
  });
  return { db, executed };
}

const qb = compileOnly();

beforeEach(async () => {
  await resetLedger();
  await env.DB.batch([
    env.DB.prepare(
      "CREATE TABLE IF NOT EXISTS orm_group_totals (projection TEXT NOT NULL, account TEXT NOT NULL, balance INTEGER NOT NULL, applied INTEGER NOT NULL, PRIMARY KEY (projection, account))",
    ),
    env.DB.prepare("DELETE FROM orm_group_totals"),
  ]);
});

/** The ledger projection's write for one event, as a Kysely upsert. */
function credit(event: LedgerEvent, db: Kysely<Database> = qb) {
  return db
    .insertInto("ledger_balances")
    .values({ account: event.account, balance: event.amount, applied: 1 })
    .onConflict((oc) =>
      oc.column("account").doUpdateSet((eb) => ({
        balance: eb("ledger_balances.balance", "+", eb.ref("excluded.balance")),
        applied: eb("ledger_balances.applied", "+", 1),
      })),
    );
}

/** The set-based write as a builder: every event of a chunk read from one bound JSON value, summed per account. */
function upsertRows(json: string) {
  return qb
    .insertInto("ledger_balances")
    .columns(["account", "balance", "applied"])
    .expression(
      qb
        .selectFrom(sql<{ value: string }>`json_each(${json})`.as("row"))
        .select([sql<string>`value ->> 'account'`.as("account"), sql<number>`SUM(value ->> 'amount')`.as("balance"), sql<number>`COUNT(*)`.as("applied")])
        .groupBy(sql`1`),
    )
    .onConflict((oc) =>
      oc.column("account").doUpdateSet((eb) => ({
        balance: eb("ledger_balances.balance", "+", eb.ref("excluded.balance")),
        applied: eb("ledger_balances.applied", "+", eb.ref("excluded.applied")),
      })),
    );
}

describe("kyselyStatements: Kysely writes committed with the checkpoint", () => {
  it("a runner whose project returns Kysely builders projects every event exactly once, a batch per round trip", async () => {
    const sum = await appendEvents(25);
    const counted = countD1(env.DB);
    const store = new D1CheckpointStore(counted.db);
    const runner = new ProjectionRunner<LedgerEvent>({
      name: "ledger",
      store,
      batchSize: 10,
      readEvents: (after, limit) => readLedger(after, limit),
      project: (events) => kyselyStatements(store.db, events.map((event) => credit(event))),
    });
    await expect(runner.run()).resolves.toMatchObject({ from: 0, to: 25, events: 25, batches: 3, conflict: false, caughtUp: true });
    const batches = counted.calls.filter((call) => call.kind === "batch");
    expect(batches.map((call) => call.sql.length)).toEqual([11, 11, 6]);
    expect(batches[0]?.sql.slice(1)).toEqual(Array(10).fill(credit({ position: 1, account: "a", amount: 1 }).compile().sql));
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
      project: (events) => kyselyStatements(env.DB, events.map((event) => credit(event))),
    });
    await expect(runner.run()).resolves.toMatchObject({ events: 0, conflict: true });
    expect(await ledgerTotals()).toMatchObject({ applied: 5 });
    await expect(runner.run()).resolves.toMatchObject({ from: 5, to: 10, events: 5, conflict: false });
    expect(await ledgerTotals()).toEqual({ sum, applied: 10 });
    expect(await wrongRows(10)).toBe(0);
  });

  it("commit takes builders, compiled queries and compiled sql templates unchanged, in one batch with the checkpoint", async () => {
    const counted = countD1(env.DB);
    const store = new D1CheckpointStore(counted.db);
    const single = kyselyStatements(counted.db, credit({ position: 1, account: "a", amount: 4 }));
    expect(single).toHaveLength(1);
    await store.commit("ledger", 1, single, { expected: null });
    const three = kyselyStatements(counted.db, [
      credit({ position: 2, account: "a", amount: 3 }).compile(),
      sql`INSERT INTO ledger_balances (account, balance, applied) VALUES (${"b"}, ${2}, 1)`.compile(qb),
      CompiledQuery.raw("UPDATE ledger_balances SET balance = balance + ?, applied = applied + 1 WHERE account = ?", [10, "b"]),
    ]);
    await store.commit("ledger", 4, three, { expected: 1 });
    expect(counted.calls.map((call) => `${call.kind} ${call.sql.length}`)).toEqual(["batch 2", "batch 4"]);
    expect(counted.calls[1]?.sql[3]).toBe("UPDATE ledger_balances SET balance = balance + ?, applied = applied + 1 WHERE account = ?");
    const { results } = await env.DB.prepare("SELECT account, balance, applied FROM ledger_balances ORDER BY account").all();
    expect(results).toEqual([
      { account: "a", balance: 7, applied: 2 },
      { account: "b", balance: 12, applied: 2 },
    ]);
    await expect(store.load("ledger")).resolves.toEqual({ position: 4, found: true });
    expect(kyselyStatements(env.DB, [])).toEqual([]);
  });

  it("a failing Kysely statement rolls back the checkpoint and every other write of the batch", async () => {
    const store = new D1CheckpointStore(env.DB);
    await store.save("ledger", 5);
    const duplicate = qb.insertInto("ledger_balances").values({ account: "dup", balance: 1, applied: 1 }); // no ON CONFLICT
    const statements = kyselyStatements(env.DB, [credit({ position: 6, account: "a", amount: 5 }), duplicate, duplicate]);
    const error = await store.commit("ledger", 7, statements, { expected: 5 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(D1OperationError);
    expect(error).toMatchObject({ operation: "commit", checkpoint: "ledger", outcomeUnknown: false });
    expect(String((error as Error).cause)).toMatch(/UNIQUE constraint failed: ledger_balances\.account/);
    await expect(store.load("ledger")).resolves.toEqual({ position: 5, found: true });
    expect(await ledgerTotals()).toEqual({ sum: 0, applied: 0 });
  });

  it("a stale expected position applies none of the Kysely writes", async () => {
    const store = new D1CheckpointStore(env.DB);
    await store.save("ledger", 9);
    const statements = kyselyStatements(env.DB, [credit({ position: 1, account: "a", amount: 1 }), upsertRows('[{"account":"b","amount":2}]')]);
    const error = await store.commit("ledger", 3, statements, { expected: 0 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CheckpointConflictError);
    expect(error).toMatchObject({ checkpoint: "ledger", expected: 0 });
    expect(await ledgerTotals()).toEqual({ sum: 0, applied: 0 });
    await expect(store.load("ledger")).resolves.toEqual({ position: 9, found: true });
  });

  it("set-based writes: jsonRowChunks feeds a builder selecting from sql`json_each(…)`, one statement per chunk, every event once", async () => {
    const sum = await appendEvents(60);
    const counted = countD1(env.DB);
    const runner = new ProjectionRunner<LedgerEvent>({
      name: "ledger",
      store: new D1CheckpointStore(counted.db),
      batchSize: 40,
      eventsQuery: (after, limit) =>
        counted.db.prepare("SELECT position, account, amount FROM ledger_events WHERE position > ?1 ORDER BY position LIMIT ?2").bind(after, limit),
      project: (events) =>
        kyselyStatements(counted.db, jsonRowChunks(events.map((e) => ({ account: e.account, amount: e.amount })), { maxValueBytes: 700 }).map(upsertRows)),
    });
    await expect(runner.run()).resolves.toMatchObject({ to: 60, events: 60, batches: 2 });
    // A row is 32 bytes of JSON: 40 rows in 2 chunks of at most 700 bytes, 20 in 1.
    const commits = counted.calls.filter((call) => call.sql.some((text) => text.includes("json_each")));
    expect(commits.map((call) => call.sql.filter((text) => text.includes("json_each")).length)).toEqual([2, 1]);
    expect(await ledgerTotals()).toEqual({ sum, applied: 60 });
    expect(await wrongRows(60)).toBe(0);
  });

  it("a ProjectionGroup commits the Kysely writes of every projection in one batch (commitMany), a raw sql template among them", async () => {
    await appendEvents(12);
    const counted = countD1(env.DB);
    const upsertGroup = (name: string, json: string) =>
      sql`INSERT INTO orm_group_totals (projection, account, balance, applied)
        SELECT ${name}, value ->> 'account', SUM(value ->> 'amount'), COUNT(*) FROM json_each(${json}) WHERE true GROUP BY 2
        ON CONFLICT (projection, account) DO UPDATE SET balance = balance + excluded.balance, applied = applied + excluded.applied`.compile(qb);
    const group = new ProjectionGroup<LedgerEvent>({
      name: "orm-group",
      store: new D1CheckpointStore(counted.db),
      batchSize: 100,
      readEvents: (after, limit) => readLedger(after, limit),
      projections: [
        {
          name: "per-event",
          project: (events) =>
            kyselyStatements(
              counted.db,
              events.map((e) =>
                qb
                  .insertInto("orm_group_totals")
                  .values({ projection: "per-event", account: e.account, balance: e.amount, applied: 1 })
                  .onConflict((oc) =>
                    oc.columns(["projection", "account"]).doUpdateSet((eb) => ({
                      balance: eb("orm_group_totals.balance", "+", eb.ref("excluded.balance")),
                      applied: eb("orm_group_totals.applied", "+", 1),
                    })),
                  ),
              ),
            ),
        },
        {
          name: "set-based",
          project: (events) =>
            kyselyStatements(counted.db, jsonRowChunks(events.map(({ account, amount }) => ({ account, amount }))).map((json) => upsertGroup("set-based", json))),
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

  it("a query built on a Kysely of another binding or driver becomes a statement of the caller's binding", async () => {
    const other = countD1(env.DB.withSession("first-primary"));
    const elsewhere = kyselyOn(other.db);
    const caller = countD1(env.DB);
    const statements = kyselyStatements(caller.db, [
      credit({ position: 1, account: "a", amount: 2 }, elsewhere.db),
      credit({ position: 2, account: "b", amount: 3 }, compileOnly()),
      sql<{ one: number }>`SELECT ${1} AS one`.compile(elsewhere.db),
    ]);
    expect(caller.calls).toEqual([]);
    // Statements of the caller's binding: running one is a round trip of that binding.
    await expect(statements[2]?.first()).resolves.toEqual({ one: 1 });
    expect(caller.calls.map((call) => call.kind)).toEqual(["first"]);
    await new D1CheckpointStore(env.DB).commit("ledger", 2, statements, { expected: null });
    expect(other.calls).toEqual([]);
    expect(elsewhere.executed).toEqual([]);
    // The other Kysely reads the read model through its own driver and binding.
    await expect(elsewhere.db.selectFrom("ledger_balances").select(["account", "balance"]).orderBy("account").execute()).resolves.toEqual([
      { account: "a", balance: 2 },
      { account: "b", balance: 3 },
    ]);
    expect(elsewhere.executed).toHaveLength(1);
    expect(other.calls.map((call) => call.kind)).toEqual(["all"]);
  });

  it("booleans bind as 1 and 0, which an INTEGER column stores as INTEGERs", async () => {
    const flag = sql`INSERT INTO ledger_balances (account, balance, applied) VALUES ('flag', ${false}, ${true})`.compile(qb);
    expect(flag.parameters).toEqual([false, true]);
    await new D1CheckpointStore(env.DB).commit("values", 1, kyselyStatements(env.DB, flag));
    const row = await env.DB.prepare("SELECT balance, typeof(balance) AS b, applied, typeof(applied) AS a FROM ledger_balances").first();
    expect(row).toEqual({ balance: 0, b: "integer", applied: 1, a: "integer" });
  });

  it("at most 100 parameters per query, D1's limit: a 102-parameter insert is refused, 99 commit", async () => {
    const rows = (count: number) => Array.from({ length: count }, (_, i) => ({ position: i + 1, account: `a${i}`, amount: 1 }));
    const counted = countD1(env.DB);
    const error = caught(() => kyselyStatements(counted.db, [qb.insertInto("ledger_events").values(rows(34))]));
    expect(error).toBeInstanceOf(CheckpointRangeError);
    expect(error).toMatchObject({ argument: "queries[0].parameters" });
    expect((error as Error).message).toMatch(/102 values.*at most 100.*jsonRowChunks/);
    const select = qb.selectFrom("ledger_events").select((eb) => eb.fn.countAll<number>().as("n")).where("position", "in", rows(100).map((r) => r.position));
    const [insert, count] = kyselyStatements(counted.db, [qb.insertInto("ledger_events").values(rows(33)), select]);
    expect(counted.calls).toEqual([]);
    if (insert === undefined || count === undefined) throw new Error("two statements expected");
    await new D1CheckpointStore(env.DB).commit("events", 33, [insert]);
    await expect(count.first()).resolves.toEqual({ n: 33 });
  });

  describe("bad input is a typed error naming the value, before any D1 call or prepare", () => {
    const good = credit({ position: 1, account: "a", amount: 1 });
    const raw = (value: unknown) => CompiledQuery.raw("SELECT ?", [value]);
    const cases: readonly (readonly [string, KyselyQuery, typeof CheckpointTypeError | typeof CheckpointRangeError, RegExp, number?])[] = [
      ["undefined", raw(undefined), CheckpointTypeError, /got undefined .*use null/],
      ["bigint", raw(5n), CheckpointTypeError, /got bigint .*Number\(value\)/],
      ["NaN", raw(Number.NaN), CheckpointRangeError, /finite number, got NaN .*NULL/],
      ["Infinity", raw(Number.POSITIVE_INFINITY), CheckpointRangeError, /got Infinity/],
      ["-Infinity", raw(Number.NEGATIVE_INFINITY), CheckpointRangeError, /got -Infinity/],
      ["NaN in a builder", qb.insertInto("ledger_balances").values({ account: "a", balance: Number.NaN, applied: 1 }), CheckpointRangeError, /got NaN/, 1],
      ["a Date in a builder", qb.updateTable("ledger_balances").set({ account: any(new Date(0)) }), CheckpointTypeError, /got Date .*getTime\(\).*toISOString\(\)/],
      ["a plain object", raw({ a: 1 }), CheckpointTypeError, /got object .*JSON\.stringify/],
      ["an array", raw([1, 2]), CheckpointTypeError, /got array .*JSON\.stringify.*Uint8Array/],
      ["a Map", raw(new Map()), CheckpointTypeError, /got Map/],
      ["an Int16Array", raw(new Int16Array([1])), CheckpointTypeError, /got Int16Array .*new Uint8Array\(view\.buffer/],
      ["a DataView", raw(new DataView(new ArrayBuffer(2))), CheckpointTypeError, /got DataView/],
      ["a boxed string", raw(Object("s")), CheckpointTypeError, /got String/],
      ["a symbol", raw(Symbol("s")), CheckpointTypeError, /got symbol/],
      ["a function", raw(() => 1), CheckpointTypeError, /got function/],
      ["a lone surrogate", raw("a\udc00"), CheckpointRangeError, /lone surrogate/],
      ["a string over 2,000,000 bytes", raw("\u20ac".repeat(666_667)), CheckpointRangeError, /2000001 bytes of UTF-8/],
      ["a BLOB over 2,000,000 bytes", raw(new ArrayBuffer(2_000_001)), CheckpointRangeError, /2000001 bytes/],
    ];
    for (const [label, query, type, message, index = 0] of cases) {
      it(`${label}: ${type.name}`, async () => {
        const counted = countD1(env.DB);
        const spy = countPrepares(counted.db);
        const error = caught(() => kyselyStatements(spy.db, [good, query]));
        expect(error).toBeInstanceOf(type);
        expect(error).toMatchObject({ operation: "commit", checkpoint: undefined, argument: `queries[1].parameters[${index}]` });
        expect((error as Error).message).toMatch(message);
        expect(counted.calls).toEqual([]);
        expect(spy.prepared).toEqual([]);
        expect(await ledgerTotals()).toEqual({ sum: 0, applied: 0 });
      });
    }

    it("db, queries and what each query gives are checked too; an uncompiled sql template says how to compile it", () => {
      const counted = countD1(env.DB);
      const expectError = (call: () => unknown, type: typeof CheckpointTypeError | typeof CheckpointRangeError, argument: string, message?: RegExp) => {
        const error = caught(call);
        expect(error).toBeInstanceOf(type);
        expect(error).toMatchObject({ operation: "commit", argument });
        if (message !== undefined) expect((error as Error).message).toMatch(message);
      };
      expectError(() => kyselyStatements(any({}), [good]), CheckpointTypeError, "db");
      expectError(() => kyselyStatements(counted.db, any([good, sql`SELECT 1`])), CheckpointTypeError, "queries[1]", /sql`…`\.compile\(db\)/);
      expectError(() => kyselyStatements(counted.db, any(undefined)), CheckpointTypeError, "queries");
      expectError(() => kyselyStatements(counted.db, any([good, "SELECT 1"])), CheckpointTypeError, "queries[1]", /must be a Kysely query/);
      expectError(() => kyselyStatements(counted.db, any([good, good.execute()])), CheckpointTypeError, "queries[1]", /got Promise/);
      // eslint-disable-next-line no-sparse-arrays -- a hole is what is being checked
      expectError(() => kyselyStatements(counted.db, any([good, , good])), CheckpointTypeError, "queries[1]", /hole/);
      expectError(() => kyselyStatements(counted.db, any({ sql: "SELECT ?", parameters: "1" })), CheckpointTypeError, "queries.parameters");
      expectError(() => kyselyStatements(counted.db, CompiledQuery.raw("  ")), CheckpointRangeError, "queries.sql");
      expectError(() => kyselyStatements(counted.db, CompiledQuery.raw(`SELECT '${"x".repeat(100_000)}'`)), CheckpointRangeError, "queries.sql");
      expectError(() => kyselyStatements(counted.db, any({ compile: () => "SELECT 1" })), CheckpointTypeError, "queries", /compile\(\) must give a CompiledQuery/);
      expect(counted.calls).toEqual([]);
    });
  });
});
