import { env } from "cloudflare:workers";
import type { D1CheckpointStore, D1Client } from "../../src/index.js";
import { ProjectionRunner } from "../../src/index.js";

/** A test event: an amount credited to an account. */
export interface LedgerEvent {
  readonly position: number;
  readonly account: string;
  readonly amount: number;
}

/** Creates (or empties) the test event log and read model. */
export async function resetLedger(db: D1Database = env.DB): Promise<void> {
  await db.batch([
    db.prepare("CREATE TABLE IF NOT EXISTS ledger_events (position INTEGER PRIMARY KEY, account TEXT NOT NULL, amount INTEGER NOT NULL)"),
    db.prepare("CREATE TABLE IF NOT EXISTS ledger_balances (account TEXT PRIMARY KEY, balance INTEGER NOT NULL, applied INTEGER NOT NULL)"),
    db.prepare("DELETE FROM ledger_events"),
    db.prepare("DELETE FROM ledger_balances"),
    db.prepare("DELETE FROM checkpoints"),
  ]);
}

/** Appends `count` events after the newest one; returns their amounts' sum. */
export async function appendEvents(count: number, db: D1Database = env.DB): Promise<number> {
  const newest = await db.prepare("SELECT COALESCE(MAX(position), 0) AS p FROM ledger_events").first<{ p: number }>();
  const start = (newest?.p ?? 0) + 1;
  const statements = [];
  let sum = 0;
  for (let i = 0; i < count; i++) {
    const position = start + i;
    const amount = (position % 7) + 1;
    sum += amount;
    statements.push(
      db.prepare("INSERT INTO ledger_events (position, account, amount) VALUES (?1, ?2, ?3)").bind(position, `acct-${position % 5}`, amount),
    );
  }
  for (let i = 0; i < statements.length; i += 50) await db.batch(statements.slice(i, i + 50));
  return sum;
}

/** Reads events after `after`, as a projection's event source does. */
export async function readLedger(after: number, limit: number, db: D1Client = env.DB): Promise<LedgerEvent[]> {
  const { results } = await db
    .prepare("SELECT position, account, amount FROM ledger_events WHERE position > ?1 ORDER BY position LIMIT ?2")
    .bind(after, limit)
    .all<LedgerEvent>();
  return results;
}

/** The read-model statement for one event. */
export function creditStatement(event: LedgerEvent, db: D1Client = env.DB): D1PreparedStatement {
  return db
    .prepare(
      "INSERT INTO ledger_balances (account, balance, applied) VALUES (?1, ?2, 1) " +
        "ON CONFLICT (account) DO UPDATE SET balance = balance + excluded.balance, applied = applied + 1",
    )
    .bind(event.account, event.amount);
}

/** The read model's totals: the sum of balances and the number of events applied. */
export async function ledgerTotals(db: D1Database = env.DB): Promise<{ sum: number; applied: number }> {
  const row = await db
    .prepare("SELECT COALESCE(SUM(balance), 0) AS sum, COALESCE(SUM(applied), 0) AS applied FROM ledger_balances")
    .first<{ sum: number; applied: number }>();
  return row ?? { sum: 0, applied: 0 };
}

/** A runner of the ledger projection on `store`. */
export function ledgerRunner(store: D1CheckpointStore, batchSize: number, name = "ledger"): ProjectionRunner<LedgerEvent> {
  return new ProjectionRunner<LedgerEvent>({
    name,
    store,
    batchSize,
    readEvents: (after, limit) => readLedger(after, limit, store.db),
    project: (events) => events.map((event) => creditStatement(event, store.db)),
  });
}

/**
 * A `readEvents` that, on its first call, lets an overlapping invocation (a
 * ledger runner on `store`) commit first: the caller's commit then conflicts.
 */
export function overtakenReader(store: D1CheckpointStore, batchSize: number): (after: number, limit: number) => Promise<LedgerEvent[]> {
  let overtaken = false;
  return async (after, limit) => {
    const events = await readLedger(after, limit);
    if (!overtaken) {
      overtaken = true;
      await ledgerRunner(store, batchSize).run({ maxBatches: 1 }); // an overlapping invocation
    }
    return events;
  };
}
