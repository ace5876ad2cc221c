// What drizzleStatements and kyselyStatements both promise, as one suite that
// runs once per adapter (test/orm-adapters.test.ts): queries of the builder
// become statements of the caller's binding, checked before anything is sent,
// and commit atomically with the checkpoint.
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
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
import { countD1, type D1CallKind } from "../src/testing.js";
import { appendEvents, ledgerRunner, ledgerTotals, readLedger, resetLedger, type LedgerEvent } from "./support/ledger.js";
import { any, caught, countPrepares, wrongRows } from "./support/orm.js";

/** The errors that bad input is. */
export type InputError = typeof CheckpointTypeError | typeof CheckpointRangeError;

/** A query with one value the adapter refuses: a label, the query, the error, its message, and the value's index among the query's parameters (0 if left out). */
export type BadValueCase<Query> = readonly [label: string, query: Query, type: InputError, message: RegExp, index?: number];

/** A row of the ledger's read model, ledger_balances. */
export interface BalanceRow {
  readonly account: string;
  readonly balance: number;
  readonly applied: number;
}

/** Databases of the query builder that are not the caller's binding, for queries built on them. */
export interface ForeignDatabases<Query, Db> {
  /** A database whose driver runs queries on the other binding. */
  readonly otherBinding: Db;
  /** A database whose driver has no database to run anything on. */
  readonly noDatabase: Db;
  /** `SELECT 1 AS one` as an sql template, made with `otherBinding`'s builder. */
  readonly selectOne: Query;
  /** The SQL that either driver has been handed so far. */
  readonly executed: readonly string[];
  /** Account and balance of each ledger_balances row, by account, read through `otherBinding`. */
  readonly readBalances: () => Promise<readonly { readonly account: string; readonly balance: number }[]>;
  /** The D1 call that `readBalances` makes on the other binding. */
  readonly readKind: D1CallKind;
}

/** One query-builder adapter, and how its builder writes the suite's queries. */
export interface OrmAdapter<Query, Db> {
  /** The adapter function's name, which every describe starts with: "drizzleStatements". */
  readonly name: string;
  /** The query builder's name, as the tests say it: "Drizzle". */
  readonly orm: string;
  /** The adapter under test. */
  readonly statements: (db: D1Client, queries: Query | readonly Query[]) => D1PreparedStatement[];
  /** A query's SQL and parameters, as its builder renders them. */
  readonly built: (query: Query) => { readonly sql: string; readonly parameters: readonly unknown[] };
  /** The builder's `sql` tagged template, as a query the adapter takes. */
  readonly sql: (strings: TemplateStringsArray, ...values: unknown[]) => Query;
  /** The ledger projection's upsert for one event, built on `db` (by default the adapter's own database of the builder). */
  readonly credit: (event: LedgerEvent, db?: Db) => Query;
  /** A plain insert into ledger_balances, without ON CONFLICT. */
  readonly insertBalance: (row: BalanceRow) => Query;
  /** The set-based write: every event of a `jsonRowChunks` chunk, summed per account into ledger_balances; `label` says what it is. */
  readonly setBased: { readonly label: string; readonly upsert: (json: string) => Query };
  /** A group projection's upsert of one event into orm_group_totals. */
  readonly creditGroup: (projection: string, event: LedgerEvent) => Query;
  /** Databases on `other` (a binding that is not the caller's) and on no database. */
  readonly foreign: (other: D1Client) => ForeignDatabases<Query, Db>;
  /** One insert of `events` into ledger_events: three parameters an event. */
  readonly insertEvents: (events: readonly LedgerEvent[]) => Query;
  /** `SELECT count(*) AS n` of the ledger_events at `positions`: a parameter a position. */
  readonly countPositions: (positions: readonly number[]) => Query;
  /** `SELECT ?` binding `value`, whatever it is. */
  readonly selectValue: (value: unknown) => Query;
  /** Bad values that only this builder's queries carry. */
  readonly builderBadValues: readonly BadValueCase<Query>[];
  /** A query (as the type checker would refuse it) that gives `sql` and `parameters`, as a built query does. */
  readonly gives: (sql: string, parameters: unknown) => Query;
  /** A builder whose build gives no query, and the message that says so. */
  readonly badBuilder: { readonly query: Query; readonly message: RegExp };
  /** A query run (on a driver that runs nothing) instead of passed: a promise. */
  readonly running: () => Promise<unknown>;
}

/** Creates (or empties) the ledger and the tables of the ORM tests. */
export async function resetOrmTables(): Promise<void> {
  await resetLedger();
  await env.DB.batch([
    env.DB.prepare(
      "CREATE TABLE IF NOT EXISTS orm_group_totals (projection TEXT NOT NULL, account TEXT NOT NULL, balance INTEGER NOT NULL, applied INTEGER NOT NULL, PRIMARY KEY (projection, account))",
    ),
    env.DB.prepare("CREATE TABLE IF NOT EXISTS orm_values (v)"),
    env.DB.prepare("DELETE FROM orm_group_totals"),
    env.DB.prepare("DELETE FROM orm_values"),
  ]);
}

/** Values that no adapter binds, each bound alone by `selectValue`. */
const badValues: readonly (readonly [label: string, value: unknown, type: InputError, message: RegExp])[] = [
  ["undefined", undefined, CheckpointTypeError, /got undefined .*use null/],
  ["bigint", 5n, CheckpointTypeError, /got bigint .*Number\(value\)/],
  ["NaN", Number.NaN, CheckpointRangeError, /finite number, got NaN .*NULL/],
  ["Infinity", Number.POSITIVE_INFINITY, CheckpointRangeError, /got Infinity/],
  ["-Infinity", Number.NEGATIVE_INFINITY, CheckpointRangeError, /got -Infinity/],
  ["a Date", new Date(0), CheckpointTypeError, /got Date .*getTime\(\).*toISOString\(\)/],
  ["a plain object", { a: 1 }, CheckpointTypeError, /got object .*JSON\.stringify/],
  ["an array", [1, 2], CheckpointTypeError, /got array .*JSON\.stringify.*Uint8Array/],
  ["a Map", new Map(), CheckpointTypeError, /got Map/],
  ["an Int16Array", new Int16Array([1]), CheckpointTypeError, /got Int16Array .*new Uint8Array\(view\.buffer/],
  ["a DataView", new DataView(new ArrayBuffer(2)), CheckpointTypeError, /got DataView/],
  ["a boxed number", Object(1) as unknown, CheckpointTypeError, /got Number/],
  ["a boxed string", Object("s") as unknown, CheckpointTypeError, /got String/],
  ["a symbol", Symbol("s"), CheckpointTypeError, /got symbol/],
  ["a function", () => 1, CheckpointTypeError, /got function/],
  ["a lone high surrogate", "a\ud800", CheckpointRangeError, /lone surrogate/],
  ["a lone low surrogate", "a\udc00", CheckpointRangeError, /lone surrogate/],
  ["a string over 2,000,000 bytes of 2-byte characters", "\u00e9".repeat(1_000_001), CheckpointRangeError, /2000002 bytes of UTF-8/],
  ["a string over 2,000,000 bytes of 3-byte characters", "\u20ac".repeat(666_667), CheckpointRangeError, /2000001 bytes of UTF-8/],
  ["a Uint8Array BLOB over 2,000,000 bytes", new Uint8Array(2_000_001), CheckpointRangeError, /2000001 bytes/],
  ["an ArrayBuffer BLOB over 2,000,000 bytes", new ArrayBuffer(2_000_001), CheckpointRangeError, /2000001 bytes/],
];

/** Ledger events at positions 1 to `count`, each in an account of its own. */
const eventRows = (count: number): LedgerEvent[] => Array.from({ length: count }, (_, i) => ({ position: i + 1, account: `a${i}`, amount: 1 }));

/** The suite, run for `adapter`. */
export function runOrmAdapterSuite<Query, Db>(adapter: OrmAdapter<Query, Db>): void {
  const { statements, credit } = adapter;

  describe(`${adapter.name}: ${adapter.orm} writes committed with the checkpoint`, () => {
    beforeEach(resetOrmTables);

    it(`a runner whose project returns ${adapter.orm} builders projects every event exactly once, a batch per round trip`, async () => {
      const sum = await appendEvents(25);
      const counted = countD1(env.DB);
      const store = new D1CheckpointStore(counted.db);
      const runner = new ProjectionRunner<LedgerEvent>({
        name: "ledger",
        store,
        batchSize: 10,
        readEvents: (after, limit) => readLedger(after, limit),
        project: (events) => statements(store.db, events.map((event) => credit(event))),
      });
      await expect(runner.run()).resolves.toMatchObject({ from: 0, to: 25, events: 25, batches: 3, conflict: false, caughtUp: true });
      const batches = counted.calls.filter((call) => call.kind === "batch");
      expect(batches.map((call) => call.sql.length)).toEqual([11, 11, 6]);
      expect(batches[0]?.sql.slice(1)).toEqual(Array(10).fill(adapter.built(credit({ position: 1, account: "a", amount: 1 })).sql));
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
        project: (events) => statements(env.DB, events.map((event) => credit(event))),
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
      const single = statements(env.DB, credit({ position: 1, account: "a", amount: 4 }));
      expect(single).toHaveLength(1);
      await store.commit("ledger", 1, single, { expected: null });
      const pair = statements(env.DB, [credit({ position: 2, account: "a", amount: 3 }), credit({ position: 3, account: "b", amount: 2 })]);
      await store.commit("ledger", 3, pair, { expected: 1 });
      expect(counted.calls.map((call) => `${call.kind} ${call.sql.length}`)).toEqual(["batch 2", "batch 3"]);
      const { results } = await env.DB.prepare("SELECT account, balance, applied FROM ledger_balances ORDER BY account").all();
      expect(results).toEqual([
        { account: "a", balance: 7, applied: 2 },
        { account: "b", balance: 2, applied: 1 },
      ]);
      await expect(store.load("ledger")).resolves.toEqual({ position: 3, found: true });
      expect(statements(env.DB, [])).toEqual([]);
    });

    it(`a failing ${adapter.orm} statement rolls back the checkpoint and every other write of the batch`, async () => {
      const store = new D1CheckpointStore(env.DB);
      await store.save("ledger", 5);
      const duplicate = adapter.insertBalance({ account: "dup", balance: 1, applied: 1 }); // no ON CONFLICT
      const batch = statements(env.DB, [credit({ position: 6, account: "a", amount: 5 }), duplicate, duplicate]);
      const error = await store.commit("ledger", 7, batch, { expected: 5 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(D1OperationError);
      expect(error).toMatchObject({ operation: "commit", checkpoint: "ledger", outcomeUnknown: false });
      expect(String((error as Error).cause)).toMatch(/UNIQUE constraint failed: ledger_balances\.account/);
      await expect(store.load("ledger")).resolves.toEqual({ position: 5, found: true });
      expect(await ledgerTotals()).toEqual({ sum: 0, applied: 0 });
    });

    it(`a stale expected position applies none of the ${adapter.orm} writes`, async () => {
      const store = new D1CheckpointStore(env.DB);
      await store.save("ledger", 9);
      const batch = statements(env.DB, [credit({ position: 1, account: "a", amount: 1 }), adapter.setBased.upsert('[{"account":"b","amount":2}]')]);
      const error = await store.commit("ledger", 3, batch, { expected: 0 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CheckpointConflictError);
      expect(error).toMatchObject({ checkpoint: "ledger", expected: 0 });
      expect(await ledgerTotals()).toEqual({ sum: 0, applied: 0 });
      await expect(store.load("ledger")).resolves.toEqual({ position: 9, found: true });
    });

    it(`set-based writes: jsonRowChunks feeds ${adapter.setBased.label}, one statement per chunk, every event once`, async () => {
      const sum = await appendEvents(60);
      const counted = countD1(env.DB);
      const runner = new ProjectionRunner<LedgerEvent>({
        name: "ledger",
        store: new D1CheckpointStore(counted.db),
        batchSize: 40,
        eventsQuery: (after, limit) =>
          counted.db.prepare("SELECT position, account, amount FROM ledger_events WHERE position > ?1 ORDER BY position LIMIT ?2").bind(after, limit),
        project: (events) =>
          statements(counted.db, jsonRowChunks(events.map((e) => ({ account: e.account, amount: e.amount })), { maxValueBytes: 700 }).map(adapter.setBased.upsert)),
      });
      await expect(runner.run()).resolves.toMatchObject({ to: 60, events: 60, batches: 2 });
      // A row is 32 bytes of JSON: 40 rows in 2 chunks of at most 700 bytes, 20 in 1.
      const commits = counted.calls.filter((call) => call.sql.some((text) => text.includes("json_each")));
      expect(commits.map((call) => call.sql.filter((text) => text.includes("json_each")).length)).toEqual([2, 1]);
      expect(await ledgerTotals()).toEqual({ sum, applied: 60 });
      expect(await wrongRows(60)).toBe(0);
    });

    it(`a ProjectionGroup commits the ${adapter.orm} writes of every projection in one batch (commitMany), a raw sql template among them`, async () => {
      await appendEvents(12);
      const counted = countD1(env.DB);
      const upsertGroup = (name: string, json: string) => adapter.sql`INSERT INTO orm_group_totals (projection, account, balance, applied)
        SELECT ${name}, value ->> 'account', SUM(value ->> 'amount'), COUNT(*) FROM json_each(${json}) WHERE true GROUP BY 2
        ON CONFLICT (projection, account) DO UPDATE SET balance = balance + excluded.balance, applied = applied + excluded.applied`;
      const group = new ProjectionGroup<LedgerEvent>({
        name: "orm-group",
        store: new D1CheckpointStore(counted.db),
        batchSize: 100,
        readEvents: (after, limit) => readLedger(after, limit),
        projections: [
          { name: "per-event", project: (events) => statements(counted.db, events.map((e) => adapter.creditGroup("per-event", e))) },
          {
            name: "set-based",
            project: (events) =>
              statements(counted.db, jsonRowChunks(events.map(({ account, amount }) => ({ account, amount }))).map((json) => upsertGroup("set-based", json))),
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

    it(`a query built on a ${adapter.orm} database of another binding or driver becomes a statement of the caller's binding`, async () => {
      const other = countD1(env.DB.withSession("first-primary"));
      const foreign = adapter.foreign(other.db);
      const caller = countD1(env.DB);
      const batch = statements(caller.db, [
        credit({ position: 1, account: "a", amount: 2 }, foreign.otherBinding),
        credit({ position: 2, account: "b", amount: 3 }, foreign.noDatabase),
        foreign.selectOne,
      ]);
      expect(caller.calls).toEqual([]);
      // Statements of the caller's binding: running one is a round trip of that binding.
      await expect(batch[2]?.first()).resolves.toEqual({ one: 1 });
      expect(caller.calls.map((call) => call.kind)).toEqual(["first"]);
      await new D1CheckpointStore(env.DB).commit("ledger", 2, batch, { expected: null });
      expect(await ledgerTotals()).toEqual({ sum: 5, applied: 2 });
      expect(other.calls).toEqual([]);
      expect(foreign.executed).toEqual([]);
      // The other database reads the read model through its own driver and binding.
      await expect(foreign.readBalances()).resolves.toEqual([
        { account: "a", balance: 2 },
        { account: "b", balance: 3 },
      ]);
      expect(foreign.executed).toHaveLength(1);
      expect(other.calls.map((call) => call.kind)).toEqual([foreign.readKind]);
    });

    it("booleans bind as 1 and 0, exactly as those numbers do, INTEGERs in an INTEGER column; ArrayBuffer and Uint8Array bind as BLOBs", async () => {
      const bytes = new Uint8Array([0, 1, 2, 255]);
      const values: unknown[] = [true, false, 1, 0, bytes, bytes.buffer, bytes.subarray(1, 3)];
      const inserts = values.map((value) => adapter.sql`INSERT INTO orm_values (v) VALUES (${value})`);
      await new D1CheckpointStore(env.DB).commit("values", 1, statements(env.DB, inserts));
      const { results } = await env.DB.prepare("SELECT typeof(v) AS type, hex(v) AS hex FROM orm_values ORDER BY rowid").all();
      // D1 binds every number as a REAL; true and false are stored exactly as 1 and 0 are.
      const bound = (value: number) => env.DB.prepare("SELECT typeof(?1) AS type, hex(?1) AS hex").bind(value).first();
      const [one, zero] = [await bound(1), await bound(0)];
      expect(one).toEqual({ type: "real", hex: "312E30" });
      const blobs = ["000102FF", "000102FF", "0102"].map((hex) => ({ type: "blob", hex }));
      expect(results).toEqual([one, zero, one, zero, ...blobs]);
      // The builder hands the booleans over as they are; in an INTEGER column they are stored as 1 and 0 are: INTEGERs.
      const flag = adapter.sql`INSERT INTO ledger_balances (account, balance, applied) VALUES ('flag', ${false}, ${true})`;
      expect(adapter.built(flag).parameters).toEqual([false, true]);
      await new D1CheckpointStore(env.DB).commit("values", 2, statements(env.DB, flag));
      const row = await env.DB.prepare("SELECT balance, typeof(balance) AS b, applied, typeof(applied) AS a FROM ledger_balances").first();
      expect(row).toEqual({ balance: 0, b: "integer", applied: 1, a: "integer" });
    });

    it("at most 100 parameters per query, D1's limit (local D1 refuses 101 as well): a 102-parameter insert is refused, 99 commit", async () => {
      await expect(
        env.DB.prepare(`SELECT ${Array.from({ length: 101 }, (_, i) => `?${i + 1}`).join(", ")}`).bind(...Array.from({ length: 101 }, (_, i) => i)).first(),
      ).rejects.toThrow(/variable number must be between \?1 and \?100/);
      const counted = countD1(env.DB);
      const error = caught(() => statements(counted.db, [adapter.insertEvents(eventRows(34))])); // 102 parameters
      expect(error).toBeInstanceOf(CheckpointRangeError);
      expect(error).toMatchObject({ argument: "queries[0].parameters" });
      expect((error as Error).message).toMatch(/102 values.*at most 100.*jsonRowChunks/);
      const positions = adapter.countPositions(eventRows(100).map((r) => r.position));
      const [insert, count] = statements(counted.db, [adapter.insertEvents(eventRows(33)), positions]); // 99 and 100 parameters
      expect(counted.calls).toEqual([]);
      if (insert === undefined || count === undefined) throw new Error("two statements expected");
      await new D1CheckpointStore(env.DB).commit("events", 33, [insert]);
      await expect(count.first()).resolves.toEqual({ n: 33 });
    });

    describe("bad input is a typed error naming the value, before any D1 call or prepare", () => {
      const good = credit({ position: 1, account: "a", amount: 1 });
      const cases: readonly BadValueCase<Query>[] = [
        ...badValues.map(([label, value, type, message]) => [label, adapter.selectValue(value), type, message] as const),
        ["NaN in a builder", adapter.insertBalance({ account: "a", balance: Number.NaN, applied: 1 }), CheckpointRangeError, /got NaN/, 1],
        ...adapter.builderBadValues,
      ];
      for (const [label, query, type, message, index = 0] of cases) {
        it(`${label}: ${type.name}`, async () => {
          const counted = countD1(env.DB);
          const spy = countPrepares(counted.db);
          const error = caught(() => statements(spy.db, [good, query]));
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
        const expectError = (call: () => unknown, type: InputError, argument: string, message?: RegExp) => {
          const error = caught(call);
          expect(error).toBeInstanceOf(type);
          expect(error).toMatchObject({ operation: "commit", argument });
          if (message !== undefined) expect((error as Error).message).toMatch(message);
        };
        expectError(() => statements(any({}), [good]), CheckpointTypeError, "db");
        expectError(() => statements(counted.db, any(undefined)), CheckpointTypeError, "queries");
        expectError(() => statements(counted.db, any([good, "SELECT 1"])), CheckpointTypeError, "queries[1]", new RegExp(`must be a ${adapter.orm} query`));
        expectError(() => statements(counted.db, any([good, adapter.running()])), CheckpointTypeError, "queries[1]", /got Promise/);
        // eslint-disable-next-line no-sparse-arrays -- a hole is what is being checked
        expectError(() => statements(counted.db, any([good, , good])), CheckpointTypeError, "queries[1]", /hole/);
        expectError(() => statements(counted.db, adapter.gives("SELECT ?", "1")), CheckpointTypeError, "queries.parameters");
        expectError(() => statements(counted.db, adapter.gives(" ", [])), CheckpointRangeError, "queries.sql");
        expectError(() => statements(counted.db, adapter.gives(`SELECT '${"x".repeat(100_000)}'`, [])), CheckpointRangeError, "queries.sql");
        expectError(() => statements(counted.db, adapter.badBuilder.query), CheckpointTypeError, "queries", adapter.badBuilder.message);
        expect(counted.calls).toEqual([]);
      });
    });
  });
}
