/**
 * Drizzle ORM writes committed with the checkpoint: {@link drizzleStatements}
 * turns Drizzle queries (query builders, built and not awaited, and `sql`
 * templates) into D1 prepared statements of your binding, which `commit`,
 * `commitMany` and a runner's or group's `project` take unchanged. One D1
 * `batch()`, one transaction: the read model and the checkpoint, or nothing.
 *
 * drizzle-orm is an optional peer dependency: the package root never imports
 * it, this entry point does (its SQLite dialect renders `sql` templates).
 *
 * @example
 * ```ts
 * import { D1CheckpointStore, ProjectionRunner } from "@synapse-es/checkpointstore-d1";
 * import { drizzleStatements } from "@synapse-es/checkpointstore-d1/drizzle";
 * import { sql } from "drizzle-orm";
 * import { drizzle } from "drizzle-orm/d1";
 *
 * const orm = drizzle(env.DB);
 * const runner = new ProjectionRunner({
 *   name: "balances",
 *   store: new D1CheckpointStore(env.DB),
 *   eventsQuery: (after, limit) =>
 *     env.DB.prepare("SELECT * FROM events WHERE position > ?1 ORDER BY position LIMIT ?2").bind(after, limit),
 *   project: (events) =>
 *     drizzleStatements(
 *       env.DB,
 *       events.map((e) =>
 *         orm
 *           .insert(balances)
 *           .values({ account: e.account, balance: e.amount })
 *           .onConflictDoUpdate({ target: balances.account, set: { balance: sql`${balances.balance} + excluded.balance` } }),
 *       ),
 *     ),
 * });
 * ```
 *
 * @packageDocumentation
 */
import { is, SQL, type Query } from "drizzle-orm";
import { SQLiteAsyncDialect } from "drizzle-orm/sqlite-core";
import type { D1Client } from "./d1/client.js";
import { checkClient, kindOf, preparedStatements, queryList, typeError, type BuiltQuery } from "./orm/statements.js";

export type { D1Client } from "./d1/client.js";

/**
 * A Drizzle query builder for SQLite, built and not awaited: `db.insert(…)`,
 * `db.update(…)`, `db.delete(…)`, `db.select(…)` and whatever else has
 * `toSQL()`, from a Drizzle database on any SQLite driver (its own dialect,
 * `casing` option included, renders the SQL).
 */
export interface DrizzleQueryBuilder {
  /** The query's SQL with `?` placeholders and the values to bind, rendered without running it. */
  toSQL(): Query;
  /** Drizzle's type information: only builders of a SQLite dialect are D1 queries. */
  readonly _: { readonly dialect: "sqlite" };
}

/**
 * What {@link drizzleStatements} takes: a {@link DrizzleQueryBuilder} or an
 * `SQL` object from Drizzle's `sql` template.
 */
export type DrizzleQuery = DrizzleQueryBuilder | SQL;

let dialect: SQLiteAsyncDialect | undefined;

function hasToSql(value: unknown): value is { toSQL(): unknown } {
  return typeof value === "object" && value !== null && typeof (value as { toSQL?: unknown }).toSQL === "function";
}

/** One Drizzle query as SQL and parameters. */
function build(query: unknown, at: string): BuiltQuery {
  if (hasToSql(query)) {
    const built = query.toSQL();
    if (typeof built !== "object" || built === null) throw typeError(at, `toSQL() must give { sql, params }, got ${kindOf(built)}`);
    const { sql, params } = built as Partial<Query>;
    return { sql, parameters: params };
  }
  if (is(query, SQL)) {
    const { sql, params } = (dialect ??= new SQLiteAsyncDialect()).sqlToQuery(query);
    return { sql, parameters: params };
  }
  throw typeError(at, `must be a Drizzle query: a query builder such as db.insert(table).values(…) (not awaited), or sql\`…\`; got ${kindOf(query)}`);
}

/**
 * Drizzle queries as D1 prepared statements of `db`, your binding (or
 * session): pass them to `commit` or `commitMany`, or return them from a
 * `ProjectionRunner`'s or `ProjectionGroup`'s `project`, and they commit in
 * the checkpoint's batch, atomically with it. Pure: it renders, checks and
 * prepares, and sends nothing.
 *
 * `queries` is one query or an array of them, each a query builder (anything
 * with `toSQL()`, rendered by its own database's dialect, so a builder of a
 * Drizzle database on another binding or driver, or of none, becomes a
 * statement of `db` all the same) or an `sql` template, rendered with
 * Drizzle's SQLite dialect. That dialect has no `casing` option: in an `sql`
 * template, refer to columns that have explicit names (`text("account_id")`)
 * or write the names in the SQL. Awaiting a builder runs it on its own
 * database at once, outside the batch: pass it unawaited.
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
 * `toISOString()`; Drizzle's `integer({ mode: "timestamp" })` columns do it
 * in a builder), a plain object (`JSON.stringify` it; `text({ mode: "json" })`
 * columns do), arrays and typed arrays other than `Uint8Array` (D1 would bind
 * their elements cut to bytes), and other class instances.
 *
 * Set-based writes: each JSON text of `jsonRowChunks(rows)` bound as a value
 * of an `sql` template that reads it with `json_each`, one statement per
 * chunk (see `jsonRowStatements` for the SQL rules: `WHERE true` before
 * `ON CONFLICT`, add to what is stored).
 *
 * @example
 * ```ts
 * project: (events) =>
 *   drizzleStatements(
 *     env.DB,
 *     jsonRowChunks(events.map((e) => ({ account: e.account, amount: e.amount }))).map(
 *       (json) => sql`INSERT INTO balances (account, balance)
 *         SELECT value ->> 'account', SUM(value ->> 'amount') FROM json_each(${json}) WHERE true GROUP BY 1
 *         ON CONFLICT (account) DO UPDATE SET balance = balance + excluded.balance`,
 *     ),
 *   ),
 * ```
 */
export function drizzleStatements(db: D1Client, queries: DrizzleQuery | readonly DrizzleQuery[]): D1PreparedStatement[] {
  const client = checkClient(db);
  const built = queryList(queries).map(({ query, at }) => ({ query: build(query, at), at }));
  return preparedStatements(client, built);
}
