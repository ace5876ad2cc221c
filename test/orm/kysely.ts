// The Kysely adapter of the ORM suite (test/orm-adapter-suite.ts):
// kyselyStatements, with the ledger's tables as a Kysely database type.
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
import { kyselyStatements, type KyselyQuery } from "../../src/kysely.js";
import { CheckpointTypeError, type D1Client } from "../../src/index.js";
import type { OrmAdapter } from "../orm-adapter-suite.js";
import type { LedgerEvent } from "../support/ledger.js";
import { any } from "../support/orm.js";

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

/** The query builder of the Kysely tests: it compiles and runs nothing. */
export const qb = compileOnly();

/** The ledger projection's write for one event, as a Kysely upsert. */
export function credit(event: LedgerEvent, db: Kysely<Database> = qb) {
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

export const kyselyAdapter: OrmAdapter<KyselyQuery, Kysely<Database>> = {
  name: "kyselyStatements",
  orm: "Kysely",
  statements: kyselyStatements,
  built: (query) => ("compile" in query ? query.compile() : query),
  sql: (strings, ...values) => sql(strings, ...values).compile(qb),
  credit,
  insertBalance: (row) => qb.insertInto("ledger_balances").values(row),
  setBased: { label: "a builder selecting from sql`json_each(…)`", upsert: upsertRows },
  creditGroup: (projection, event) =>
    qb
      .insertInto("orm_group_totals")
      .values({ projection, account: event.account, balance: event.amount, applied: 1 })
      .onConflict((oc) =>
        oc.columns(["projection", "account"]).doUpdateSet((eb) => ({
          balance: eb("orm_group_totals.balance", "+", eb.ref("excluded.balance")),
          applied: eb("orm_group_totals.applied", "+", 1),
        })),
      ),
  foreign: (other) => {
    const elsewhere = kyselyOn(other);
    return {
      otherBinding: elsewhere.db,
      noDatabase: compileOnly(),
      selectOne: sql<{ one: number }>`SELECT ${1} AS one`.compile(elsewhere.db),
      executed: elsewhere.executed,
      readBalances: () => elsewhere.db.selectFrom("ledger_balances").select(["account", "balance"]).orderBy("account").execute(),
      readKind: "all",
    };
  },
  insertEvents: (events) => qb.insertInto("ledger_events").values(events),
  countPositions: (positions) =>
    qb
      .selectFrom("ledger_events")
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .where("position", "in", positions),
  selectValue: (value) => CompiledQuery.raw("SELECT ?", [value]),
  builderBadValues: [
    ["a Date in a builder", qb.updateTable("ledger_balances").set({ account: any(new Date(0)) }), CheckpointTypeError, /got Date .*getTime\(\).*toISOString\(\)/],
  ],
  gives: (text, parameters) => CompiledQuery.raw(text, any(parameters)),
  badBuilder: { query: any({ compile: () => "SELECT 1" }), message: /compile\(\) must give a CompiledQuery/ },
  running: () => credit({ position: 1, account: "a", amount: 1 }).execute(),
};
