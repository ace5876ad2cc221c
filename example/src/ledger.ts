// The ledger domain: appending events, the "balances" projection, its reads,
// and the group that runs it with the "daily-totals" projection (daily-totals.ts).
// In your project, import from "@synapse-es/checkpointstore-d1".
import { D1CheckpointStore, jsonRowStatements, ProjectionGroup, ProjectionRunner, type GroupRunSummary } from "../../src/index.js";
import { analyticsEngine, D1RunLog } from "../../src/metrics.js";
import { DAILY_TOTALS, projectDailyTotals, type RecordedEvent } from "./daily-totals.js";

/** One event of the log, as the balances projection reads it. */
export interface LedgerEvent {
  readonly position: number;
  readonly account: string;
  readonly amount: number;
  /** 1 when the account is on hold (table `holds`): the projection parks the event. */
  readonly held?: number;
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

/** The group of the ledger's D1 projections (balances and daily-totals): it names the group's run lease. */
export const LEDGER_PROJECTIONS = "ledger";

/**
 * Events per batch. With `eventsQuery` a batch is one round trip: for each
 * projection its checkpoint and one write (one json_each statement for all
 * its accounts), plus one park per parked event, plus the next read: 5
 * queries for the group of two, at most 105 when events are parked.
 */
export const BATCH_SIZE = 100;

/**
 * D1 queries one run may send: the runner counts them as D1 does and ends the
 * run before a round trip would go over it (`ended: "budget"`), leaving the
 * rest of D1's 1,000 per invocation (50 on the free plan) to the request's
 * own queries. At 5 queries a batch that is about 18,000 events per run.
 */
export const QUERY_BUDGET = 900;

/** Appends events in one batch; returns their positions. */
export async function appendEvents(db: D1Database, events: readonly NewEvent[]): Promise<number[]> {
  const insert = db.prepare("INSERT INTO events (account, amount) VALUES (?1, ?2) RETURNING position");
  const results = await db.batch<{ position: number }>(events.map((e) => insert.bind(e.account, e.amount)));
  return results.map((result) => result.results[0]?.position ?? 0);
}

/** The error that parks an event of an account on hold. */
export class AccountOnHold extends Error {
  constructor(readonly account: string) {
    super(`account ${account} is on hold`);
  }
}

/**
 * The projection: one statement for the whole batch, whatever its accounts.
 * The events travel as one JSON value read with `json_each`; the statement
 * sums each account's events (`GROUP BY`) and adds them to its row. Pure: it
 * builds the statement and runs none. An event of an account on hold throws,
 * so the runner parks it (see {@link balancesRunner}).
 */
export function projectBalances(db: D1Database, events: readonly LedgerEvent[]): D1PreparedStatement[] {
  for (const event of events) if (event.held === 1) throw new AccountOnHold(event.account);
  return jsonRowStatements(
    db,
    "INSERT INTO balances (account, balance, events, last_position) " +
      "SELECT value ->> 'account', SUM(value ->> 'amount'), COUNT(*), MAX(value ->> 'position') " +
      "FROM json_each(?1) WHERE true GROUP BY 1 " +
      "ON CONFLICT (account) DO UPDATE SET balance = balance + excluded.balance, " +
      "events = events + excluded.events, last_position = excluded.last_position",
    events.map(({ position, account, amount }) => ({ position, account, amount })),
  );
}

/** The events after `after`, `limit` of them, as the ledger's D1 projections read them: with their hold and recording time. */
function ledgerEventsQuery(db: D1Database): (after: number, limit: number) => D1PreparedStatement {
  return (after, limit) =>
    db
      .prepare(
        "SELECT e.position, e.account, e.amount, EXISTS (SELECT 1 FROM holds AS h WHERE h.account = e.account) AS held, " +
          "e.recorded_at AS recordedAt FROM events AS e WHERE e.position > ?1 ORDER BY e.position LIMIT ?2",
      )
      .bind(after, limit);
}

/** The balances projection parks the events of accounts on hold, and stops on anything else. */
const parkHeld = (error: unknown): "park" | "stop" => (error instanceof AccountOnHold ? "park" : "stop");

/**
 * The runner of the balances projection alone: the admin replays its parked
 * events with it. The events live in the same D1 database, so `eventsQuery`
 * lets each batch's commit carry the next read (one round trip per batch);
 * the lease lets one of many overlapping runs do the work while the others
 * stop after one round trip; events of accounts on hold are parked. The
 * Worker runs balances in {@link ledgerProjections}, with daily-totals.
 */
export function balancesRunner(db: D1Database): ProjectionRunner<LedgerEvent> {
  return new ProjectionRunner<LedgerEvent>({
    name: BALANCES,
    store: new D1CheckpointStore(db),
    batchSize: BATCH_SIZE,
    lease: true,
    eventsQuery: ledgerEventsQuery(db),
    project: (events) => projectBalances(db, events),
    onError: parkHeld,
  });
}

/**
 * The ledger's D1 projections as one group: balances (raw SQL) and
 * daily-totals (Drizzle). Each batch of events is read once and committed
 * once, both projections' writes and conditional checkpoints in one
 * transaction, with the next read riding along: per batch, the second
 * projection adds queries, not round trips. One lease (named {@link LEDGER_PROJECTIONS}) for
 * the group: of many overlapping runs (one per append, the cron) one does the
 * work and the others stop after one round trip. A projection that is behind
 * (new, or reset from the admin) catches up alone until it reaches the other;
 * balances parks the events of accounts on hold, daily-totals counts them.
 */
export function ledgerProjections(db: D1Database, metrics?: AnalyticsEngineDataset): ProjectionGroup<RecordedEvent> {
  return new ProjectionGroup<RecordedEvent>({
    name: LEDGER_PROJECTIONS,
    store: new D1CheckpointStore(db),
    batchSize: BATCH_SIZE,
    lease: true,
    eventsQuery: ledgerEventsQuery(db),
    // Each run goes to the run log (the admin page's rows per 1,000 events: one query and 1 row per projection a run)
    // and, where the dataset is bound, to Analytics Engine.
    metrics: { record: metrics === undefined ? [new D1RunLog(db).record] : [new D1RunLog(db).record, analyticsEngine(metrics)] },
    projections: [
      { name: BALANCES, project: (events) => projectBalances(db, events), onError: parkHeld },
      { name: DAILY_TOTALS, project: (events) => projectDailyTotals(db, events) },
    ],
  });
}

/** Runs the ledger's D1 projections as far as one invocation may. */
export function catchUp(db: D1Database): Promise<GroupRunSummary> {
  return ledgerProjections(db).run({ budget: QUERY_BUDGET });
}

/** Clears the read model and its checkpoint in one transaction, so the next run rebuilds it (parked events go with the checkpoint). */
export async function resetBalances(db: D1Database): Promise<void> {
  const store = new D1CheckpointStore(db);
  await db.batch([db.prepare("DELETE FROM balances"), store.resetStatement(BALANCES)]);
}

/** Puts an account on hold: the projection parks its next events. */
export async function holdAccount(db: D1Database, account: string): Promise<void> {
  await db.prepare("INSERT INTO holds (account) VALUES (?1) ON CONFLICT (account) DO NOTHING").bind(account).run();
}

/** Releases an account's hold; its parked events stay parked until replayed. */
export async function releaseAccount(db: D1Database, account: string): Promise<void> {
  await db.prepare("DELETE FROM holds WHERE account = ?1").bind(account).run();
}

/** The accounts on hold, in account order (at most 1,000). */
export async function listHolds(db: D1Database): Promise<string[]> {
  const { results } = await db.prepare("SELECT account FROM holds ORDER BY account LIMIT 1000").all<{ account: string }>();
  return results.map((row) => row.account);
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
