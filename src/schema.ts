import type { D1Client } from "./d1-client.js";
import { D1OperationError } from "./errors.js";

/**
 * The DDL the store needs, byte for byte the statements of
 * `migrations/0001_checkpoints.sql` (a test proves they agree).
 *
 * It is the schema of synapse's Go SQLite checkpoint store, unchanged, so a
 * D1 export stays readable by the Go store and the other way round. Feed it
 * to your own migration tooling, or let `wrangler d1 migrations apply` apply
 * the file from this package's `migrations/` folder.
 */
export const SCHEMA: string = `CREATE TABLE IF NOT EXISTS checkpoints (
    name     TEXT    PRIMARY KEY,
    position INTEGER NOT NULL
);
`;

/** The statements of {@link SCHEMA}, one per entry, without the separator. */
export function schemaStatements(schema: string = SCHEMA): string[] {
  return schema
    .split(/;\s*(?:\n|$)/)
    .map((statement) => statement.trim())
    .filter((statement) => statement.length > 0);
}

/**
 * Applies {@link SCHEMA} to `db` in one `batch()` (one round trip, one
 * transaction). Idempotent: every statement is `IF NOT EXISTS`.
 *
 * {@link D1CheckpointStore.create} calls this for you, once per isolate and
 * binding; call it yourself when you build the store with `new` or with
 * `{ migrate: false }` and still want the schema applied at a moment you choose.
 *
 * @throws {@link D1OperationError} when D1 fails, with the D1 error as `cause`.
 */
export async function migrate(db: D1Client): Promise<void> {
  const statements = schemaStatements().map((sql) => db.prepare(sql));
  try {
    await db.batch(statements);
  } catch (cause) {
    throw new D1OperationError("migrate", undefined, cause);
  }
}
