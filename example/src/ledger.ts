// The ledger domain: appending events, the "balances" projection, its reads.
// In your project, import from "@synapse-es/checkpointstore-d1".
import { D1CheckpointStore, ProjectionRunner, type RunSummary } from "../../src/index.js";

/** One event of the log. */
export interface LedgerEvent {
  readonly position: number;
  readonly account: string;
  readonly amount: number;
}

/** An event as a client posts it. */
export interface NewEvent {
  readonly account: string;
  readonly amount: number;
}

/** One row of the read model. */
export interface Balance {
  readonly account: string;
  readonly balance: number;
  readonly events: number;
}

/** The projection's checkpoint name. */
export const BALANCES = "balances";

/**
 * Events per batch. A batch costs 1 read + 1 batch() of (1 checkpoint + at most
 * one statement per account in it) queries, so at most 102 queries; with
 * MAX_BATCHES = 8 a run stays under 1 + 8 * 102 = 817 of D1's 1,000 queries
 * per invocation.
 */
export const BATCH_SIZE = 100;
/** Batches per invocation; see {@link BATCH_SIZE}. */
export const MAX_BATCHES = 8;

/** Appends events in one batch; returns their positions. */
export async function appendEvents(db: D1Database, events: readonly NewEvent[]): Promise<number[]> {
  const insert = db.prepare("INSERT INTO events (account, amount) VALUES (?1, ?2) RETURNING position");
  const results = await db.batch<{ position: number }>(events.map((e) => insert.bind(e.account, e.amount)));
  return results.map((result) => result.results[0]?.position ?? 0);
}

/** The newest event's position (0 for an empty log). */
export async function newestPosition(db: D1Database): Promise<number> {
  const row = await db.prepare("SELECT COALESCE(MAX(position), 0) AS position FROM events").first<{ position: number }>();
  return row?.position ?? 0;
}

/**
 * The projection: one upsert per account in the batch, summing its events.
 * Pure: it builds statements and runs none.
 */
export function projectBalances(db: D1Database, events: readonly LedgerEvent[]): D1PreparedStatement[] {
  const perAccount = new Map<string, { sum: number; count: number; last: number }>();
  for (const event of events) {
    const entry = perAccount.get(event.account) ?? { sum: 0, count: 0, last: 0 };
    entry.sum += event.amount;
    entry.count += 1;
    entry.last = event.position;
    perAccount.set(event.account, entry);
  }
  const upsert = db.prepare(
    "INSERT INTO balances (account, balance, events, last_position) VALUES (?1, ?2, ?3, ?4) " +
      "ON CONFLICT (account) DO UPDATE SET balance = balance + excluded.balance, " +
      "events = events + excluded.events, last_position = excluded.last_position",
  );
  return [...perAccount].map(([account, { sum, count, last }]) => upsert.bind(account, sum, count, last));
}

/** The runner of the balances projection. */
export function balancesRunner(db: D1Database): ProjectionRunner<LedgerEvent> {
  return new ProjectionRunner<LedgerEvent>({
    name: BALANCES,
    store: new D1CheckpointStore(db),
    batchSize: BATCH_SIZE,
    readEvents: async (after, limit) => {
      const { results } = await db
        .prepare("SELECT position, account, amount FROM events WHERE position > ?1 ORDER BY position LIMIT ?2")
        .bind(after, limit)
        .all<LedgerEvent>();
      return results;
    },
    project: (events) => projectBalances(db, events),
  });
}

/** Runs the projection as far as one invocation may. */
export function catchUp(db: D1Database): Promise<RunSummary> {
  return balancesRunner(db).run({ maxBatches: MAX_BATCHES });
}

/** Clears the read model and its checkpoint in one transaction, so the next run rebuilds it. */
export async function resetBalances(db: D1Database): Promise<void> {
  const store = new D1CheckpointStore(db);
  await db.batch([db.prepare("DELETE FROM balances"), store.resetStatement(BALANCES)]);
}

/** Balances in account order, `limit` after `after`. */
export async function listBalances(db: D1Database, after: string, limit: number): Promise<Balance[]> {
  const { results } = await db
    .prepare("SELECT account, balance, events FROM balances WHERE account > ?1 ORDER BY account LIMIT ?2")
    .bind(after, limit)
    .all<Balance>();
  return results;
}

/** One account's balance, or null. */
export function getBalance(db: D1Database, account: string): Promise<Balance | null> {
  return db.prepare("SELECT account, balance, events FROM balances WHERE account = ?1").bind(account).first<Balance>();
}
