/**
 * Kysely writes committed with the checkpoint: {@link kyselyStatements} turns
 * Kysely queries (query builders and compiled queries) into D1 prepared
 * statements of your binding, which `commit`, `commitMany` and a runner's or
 * group's `project` take unchanged. One D1 `batch()`, one transaction: the
 * read model and the checkpoint, or nothing.
 *
 * kysely is an optional peer dependency, used for its types only: nothing of
 * it is imported at run time. Queries compile with your Kysely instance's
 * dialect; one that only compiles needs no driver and no binding.
 *
 * @example
 * ```ts
 * import { D1CheckpointStore, ProjectionRunner } from "@synapse-es/checkpointstore-d1";
 * import { kyselyStatements } from "@synapse-es/checkpointstore-d1/kysely";
 * import { DummyDriver, Kysely, SqliteAdapter, SqliteIntrospector, SqliteQueryCompiler } from "kysely";
 *
 * // Compiles SQLite SQL and runs nothing (the statements run in the store's batch).
 * const qb = new Kysely<Database>({
 *   dialect: {
 *     createAdapter: () => new SqliteAdapter(),
 *     createDriver: () => new DummyDriver(),
 *     createIntrospector: (db) => new SqliteIntrospector(db),
 *     createQueryCompiler: () => new SqliteQueryCompiler(),
 *   },
 * });
 * const runner = new ProjectionRunner({
 *   name: "balances",
 *   store: new D1CheckpointStore(env.DB),
 *   eventsQuery: (after, limit) =>
 *     env.DB.prepare("SELECT * FROM events WHERE position > ?1 ORDER BY position LIMIT ?2").bind(after, limit),
 *   project: (events) =>
 *     kyselyStatements(
 *       env.DB,
 *       events.map((e) =>
 *         qb
 *           .insertInto("balances")
 *           .values({ account: e.account, balance: e.amount })
 *           .onConflict((oc) => oc.column("account").doUpdateSet({ balance: (eb) => eb("balances.balance", "+", eb.ref("excluded.balance")) })),
 *       ),
 *     ),
 * });
 * ```
 *
 * @packageDocumentation
 */
import type { Compilable, CompiledQuery } from "kysely";
import type { D1Client } from "./d1/client.js";
import { checkClient, kindOf, preparedStatements, queryList, typeError, type BuiltQuery } from "./orm/statements.js";

export type { D1Client } from "./d1/client.js";

/**
 * What {@link kyselyStatements} takes: a query builder (anything with
 * `compile()`: `db.insertInto(…)`, `db.updateTable(…)`, `db.deleteFrom(…)`,
 * `db.selectFrom(…)`), or a `CompiledQuery` (from `compile()`, from an `sql`
 * template's `.compile(db)`, or from `CompiledQuery.raw(sql, parameters)`).
 */
export type KyselyQuery = Compilable | CompiledQuery;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null;
}

/** One Kysely query as SQL and parameters. */
function build(query: unknown, at: string): BuiltQuery {
  if (isObject(query)) {
    if (query.isRawBuilder === true) {
      throw typeError(at, "is a sql`…` template, which Kysely compiles with a Kysely instance: pass sql`…`.compile(db)");
    }
    if (typeof query.compile === "function") {
      const compiled: unknown = (query as unknown as Compilable).compile();
      if (!isObject(compiled)) throw typeError(at, `compile() must give a CompiledQuery, got ${kindOf(compiled)}`);
      return { sql: compiled.sql, parameters: compiled.parameters };
    }
    if (typeof query.sql === "string" && "parameters" in query) return { sql: query.sql, parameters: query.parameters };
  }
  throw typeError(
    at,
    `must be a Kysely query: a query builder such as db.insertInto(table).values(…) (not executed), or a CompiledQuery; got ${kindOf(query)}`,
  );
}

/**
 * Kysely queries as D1 prepared statements of `db`, your binding (or
 * session): pass them to `commit` or `commitMany`, or return them from a
 * `ProjectionRunner`'s or `ProjectionGroup`'s `project`, and they commit in
 * the checkpoint's batch, atomically with it. Pure: it compiles, checks and
 * prepares, and sends nothing.
 *
 * `queries` is one query or an array of them, each a query builder (compiled
 * here by its Kysely instance, whatever driver that has: a builder of a
 * Kysely on another binding, or on none, becomes a statement of `db` all the
 * same) or a `CompiledQuery`. Compile for SQLite (`SqliteQueryCompiler`,
 * which kysely-d1 uses too): its `?` placeholders are what D1 binds. A raw
 * `sql` template needs a Kysely instance to compile: pass the template's
 * `.compile(db)`. Executing a builder runs it on its own database at once,
 * outside the batch: pass it unexecuted.
 *
 * Checked before anything is prepared, each failure a
 * `CheckpointTypeError` or `CheckpointRangeError` (operation
 * `"commit"`) naming the value, such as `queries[2].parameters[0]`: `db` has
 * `prepare`; each query is one of the above; its SQL is non-empty and at most
 * `D1_MAX_STATEMENT_BYTES` (100,000) bytes; it binds at most 100 values (D1's
 * limit per query: insert fewer rows at a time, or all of them as one JSON
 * value with `jsonRowChunks`); and each value is one D1 stores unchanged: a
 * string without lone surrogates, a finite number, a boolean (bound as 1 or 0,
 * as D1 binds those numbers), null, an `ArrayBuffer` or a `Uint8Array`, at most
 * `D1_MAX_VALUE_BYTES` (2,000,000) bytes. Refused, with what to bind instead:
 * `undefined` (D1 cannot bind it; null is SQL NULL), `bigint`, `NaN` and
 * `±Infinity` (D1 would store NULL), a `Date` (bind `getTime()` or
 * `toISOString()`), a plain object (`JSON.stringify` it for a JSON column),
 * arrays and typed arrays other than `Uint8Array` (D1 would bind their
 * elements cut to bytes), and other class instances.
 *
 * Set-based writes: each JSON text of `jsonRowChunks(rows)` bound as a value
 * of an `sql` template that reads it with `json_each`, one statement per
 * chunk (see `jsonRowStatements` for the SQL rules: `WHERE true` before
 * `ON CONFLICT`, add to what is stored).
 *
 * @example
 * ```ts
 * project: (events) =>
 *   kyselyStatements(
 *     env.DB,
 *     jsonRowChunks(events.map((e) => ({ account: e.account, amount: e.amount }))).map((json) =>
 *       qb
 *         .insertInto("balances")
 *         .columns(["account", "balance"])
 *         .expression(
 *           qb
 *             .selectFrom(sql<{ value: string }>`json_each(${json})`.as("row"))
 *             .select([sql<string>`value ->> 'account'`.as("account"), sql<number>`SUM(value ->> 'amount')`.as("balance")])
 *             .groupBy(sql`1`),
 *         )
 *         .onConflict((oc) => oc.column("account").doUpdateSet({ balance: (eb) => eb("balances.balance", "+", eb.ref("excluded.balance")) })),
 *     ),
 *   ),
 * ```
 */
export function kyselyStatements(db: D1Client, queries: KyselyQuery | readonly KyselyQuery[]): D1PreparedStatement[] {
  const client = checkClient(db);
  const built = queryList(queries).map(({ query, at }) => ({ query: build(query, at), at }));
  return preparedStatements(client, built);
}
