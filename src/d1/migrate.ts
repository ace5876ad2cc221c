// Applying the package's schema to a D1 database: one batch (one
// transaction), retried as the store retries. `D1CheckpointStore.create`
// calls it once per isolate and binding (docs/decisions/0003).
import type { D1Client } from "./client.js";
import { resolveRetry, withRetry, type RetryOptions } from "./retry.js";
import { checkOptions, checkSignal } from "../core/validate.js";
import { SCHEMA_OBJECT_COUNT, SCHEMA_PRESENT_SQL, schemaStatements } from "../sql/schema.js";

/** Reads whether `SCHEMA` is applied, and if not sends it in one `batch()`; D1's error, if any, is thrown as is. */
export async function applySchema(db: D1Client): Promise<void> {
  const present = await db.prepare(SCHEMA_PRESENT_SQL).first<{ n: number }>();
  if (present?.n === SCHEMA_OBJECT_COUNT) return;
  await db.batch(schemaStatements().map((sql) => db.prepare(sql)));
}

/**
 * Applies `SCHEMA` to `db` in one `batch()` (one round trip, one
 * transaction), after one read that finds whether every table and trigger of
 * it is there already (then nothing more is sent). Idempotent: applying it
 * again ends with the same schema. Transient D1
 * errors are retried as the store retries them (`options.retry`, default 5
 * attempts in all; `false` for none).
 *
 * {@link D1CheckpointStore.create} calls this for you, once per isolate and
 * binding; call it yourself when you build the store with `new` or with
 * `{ migrate: false }` and still want the schema applied at a moment you choose.
 *
 * @throws {@link D1OperationError} when D1 fails, with the D1 error as `cause`.
 *
 * @example
 * ```ts
 * await migrate(env.DB, { retry: { attempts: 3 } });
 * const store = new D1CheckpointStore(env.DB); // never migrates by itself
 * ```
 *
 * @category Schema
 */
export async function migrate(db: D1Client, options?: MigrateOptions): Promise<void> {
  const { retry, signal } = checkOptions("migrate", undefined, options, "options", ["retry", "signal"]);
  await withRetry(resolveRetry("migrate", retry), {
    operation: "migrate",
    checkpoint: undefined,
    signal: checkSignal("migrate", undefined, signal),
    kind: "idempotent",
    send: () => applySchema(db),
  });
}

/**
 * Options of {@link migrate}.
 *
 * @category Schema
 */
export interface MigrateOptions {
  /** As the store's `retry` option. */
  readonly retry?: RetryOptions | false | undefined;
  /** Checked before every attempt. */
  readonly signal?: AbortSignal | undefined;
}
