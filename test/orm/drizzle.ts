// The Drizzle adapter of the ORM suite (test/orm-adapter-suite.ts):
// drizzleStatements, with the ledger's tables as a Drizzle schema.
import { env } from "cloudflare:workers";
import { inArray, is, SQL, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { integer, SQLiteAsyncDialect, sqliteTable, text, type BaseSQLiteDatabase } from "drizzle-orm/sqlite-core";
import { drizzle as drizzleProxy } from "drizzle-orm/sqlite-proxy";
import { drizzleStatements, type DrizzleQuery } from "../../src/drizzle.js";
import { CheckpointTypeError } from "../../src/index.js";
import type { OrmAdapter } from "../orm-adapter-suite.js";
import type { LedgerEvent } from "../support/ledger.js";
import { any, countPrepares } from "../support/orm.js";

/** A Drizzle database on any SQLite driver that runs queries asynchronously. */
type DrizzleDatabase = BaseSQLiteDatabase<"async", unknown>;

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

/** A Drizzle database on the test binding, the way a Worker builds one. */
const orm = () => drizzle(env.DB);

const dialect = new SQLiteAsyncDialect();

/** A Drizzle database whose driver has no database: it answers every query with no rows. */
const answersNothing = drizzleProxy(() => Promise.resolve({ rows: [] }));

/** The ledger projection's write for one event, as a Drizzle upsert. */
function credit(event: LedgerEvent, db: DrizzleDatabase = orm()) {
  return db
    .insert(ledgerBalances)
    .values({ account: event.account, balance: event.amount, applied: 1 })
    .onConflictDoUpdate({
      target: ledgerBalances.account,
      set: { balance: sql`${ledgerBalances.balance} + excluded.balance`, applied: sql`${ledgerBalances.applied} + 1` },
    });
}

export const drizzleAdapter: OrmAdapter<DrizzleQuery, DrizzleDatabase> = {
  name: "drizzleStatements",
  orm: "Drizzle",
  statements: drizzleStatements,
  built: (query) => {
    const { sql: text, params } = is(query, SQL) ? dialect.sqlToQuery(query) : query.toSQL();
    return { sql: text, parameters: params };
  },
  sql: (strings, ...values) => sql(strings, ...values),
  credit,
  insertBalance: (row) => orm().insert(ledgerBalances).values(row),
  setBased: {
    label: "an sql template",
    upsert: (json) => sql`INSERT INTO ledger_balances (account, balance, applied)
      SELECT value ->> 'account', SUM(value ->> 'amount'), COUNT(*) FROM json_each(${json}) WHERE true GROUP BY 1
      ON CONFLICT (account) DO UPDATE SET balance = balance + excluded.balance, applied = applied + excluded.applied`,
  },
  creditGroup: (projection, event) =>
    orm()
      .insert(groupTotals)
      .values({ projection, account: event.account, balance: event.amount, applied: 1 })
      .onConflictDoUpdate({
        target: [groupTotals.projection, groupTotals.account],
        set: { balance: sql`balance + excluded.balance`, applied: sql`applied + 1` },
      }),
  foreign: (other) => {
    const spied = countPrepares(other);
    const executed = spied.prepared;
    // drizzle-orm's types want a D1Database; its driver only calls prepare and batch, which a session has.
    const otherBinding = drizzle(spied.db as unknown as D1Database);
    const noDatabase = drizzleProxy(async (text) => {
      executed.push(text);
      return Promise.reject(new Error("this database runs nothing"));
    });
    return {
      otherBinding,
      noDatabase,
      selectOne: sql`SELECT ${1} AS one`,
      executed,
      readBalances: () =>
        otherBinding.select({ account: ledgerBalances.account, balance: ledgerBalances.balance }).from(ledgerBalances).orderBy(ledgerBalances.account),
      readKind: "raw", // Drizzle's D1 driver reads the rows of a select as arrays
    };
  },
  insertEvents: (events) => orm().insert(ledgerEvents).values([...events]),
  countPositions: (positions) =>
    orm()
      .select({ n: sql<number>`count(*)`.as("n") })
      .from(ledgerEvents)
      .where(inArray(ledgerEvents.position, [...positions])),
  // sql.param binds any value as it is (interpolated, undefined would be left out and an array spread into a list).
  selectValue: (value) => sql`SELECT ${sql.param(value)}`,
  builderBadValues: [
    ["a placeholder", orm().select().from(ledgerBalances).where(sql`${ledgerBalances.account} = ${sql.placeholder("account")}`), CheckpointTypeError, /got Placeholder/],
  ],
  gives: (text, parameters) => any({ toSQL: () => ({ sql: text, params: parameters }) }),
  badBuilder: { query: any({ toSQL: () => null }), message: /toSQL\(\) must give \{ sql, params \}, got null/ },
  running: () => credit({ position: 1, account: "a", amount: 1 }, answersNothing).execute(),
};
