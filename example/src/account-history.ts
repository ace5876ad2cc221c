// A second projection of the ledger, held in Durable Objects: one object per
// account keeps that account's history (each event with the balance after
// it) in its own SQLite, with its own checkpoint, committed in one
// transaction with the history rows. The events stay in D1; a projection
// daemon runs the projection in the object's alarm, so it has one writer by
// construction and overlapping notifications are coalesced.
// In your project, import from "@synapse-es/checkpointstore-d1".
import { DurableObject } from "cloudflare:workers";
import { AlarmSchedule, ProjectionDaemon, type DaemonRun } from "../../src/daemon.js";
import { DurableObjectCheckpointStore, ProjectionRunner, type ProjectionStatus, type RunSummary, type SqlWrites } from "../../src/index.js";
import type { Env } from "./env.js";
import type { LedgerEvent } from "./ledger.js";

/** The checkpoint name inside each account's object. */
export const HISTORY = "history";

/** One row of an account's history. */
export interface HistoryEntry {
  readonly position: number;
  readonly amount: number;
  readonly balance: number;
}

/** What `GET /accounts/:account/history` answers. */
export interface AccountHistoryView {
  readonly account: string;
  /** The account's checkpoint: the position of the last event applied. */
  readonly position: number;
  /** Events of this account in the log after the checkpoint: this partition's lag. */
  readonly lag: number;
  /** The newest entries first. */
  readonly entries: readonly HistoryEntry[];
}

const BATCH_SIZE = 100;
/** Batches per alarm; another alarm continues if the log goes on. */
const MAX_BATCHES = 8;

const SCHEMA = "CREATE TABLE IF NOT EXISTS history (position INTEGER PRIMARY KEY, amount INTEGER NOT NULL, balance INTEGER NOT NULL)";

/** The history writes for a batch: each event with the running balance. Pure: it returns the writes, runs none. */
export function projectHistory(events: readonly LedgerEvent[]): SqlWrites {
  return (sql) => {
    let balance = sql.exec<{ balance: number }>("SELECT balance FROM history ORDER BY position DESC LIMIT 1").toArray()[0]?.balance ?? 0;
    for (const event of events) {
      balance += event.amount;
      sql.exec("INSERT INTO history (position, amount, balance) VALUES (?1, ?2, ?3)", event.position, event.amount, balance);
    }
  };
}

/**
 * One account's history projection. Address it with `idFromName(account)`.
 * A ProjectionDaemon runs it on the object's own SQLite (the Durable Object
 * store): notified after appends, one run at a time, chained while the log
 * goes on, backing off on failure. Its alarm is an AlarmSchedule, the way an
 * object shares its one alarm with alarm work of its own.
 */
export class AccountHistory extends DurableObject<Env> {
  readonly #store: DurableObjectCheckpointStore;
  readonly #schedule: AlarmSchedule;
  readonly #daemon: ProjectionDaemon;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec(SCHEMA);
    this.#store = new DurableObjectCheckpointStore(ctx.storage);
    this.#schedule = new AlarmSchedule(ctx.storage);
    const run: DaemonRun = { run: async () => (await this.catchUp()) ?? { ended: "caughtUp", caughtUp: true, queries: 0 } };
    this.#daemon = new ProjectionDaemon(ctx.storage, { name: HISTORY, projection: run, schedule: this.#schedule });
  }

  /** New events for `account` were appended: the daemon will project them (coalesced). Cheap to call often. */
  async notify(account: string): Promise<void> {
    await this.ctx.storage.put("account", account);
    await this.#daemon.notify();
  }

  /** Runs whatever of the schedule is due: here, the history daemon's next run (up to MAX_BATCHES batches). */
  override async alarm(): Promise<void> {
    for (const job of this.#schedule.due()) if (job === this.#daemon.job) await this.#daemon.alarm();
    await this.#schedule.arm();
  }

  /** One run of the projection (what the alarm does); `undefined` before the object knows its account. */
  async catchUp(): Promise<RunSummary | undefined> {
    const account = await this.ctx.storage.get<string>("account");
    if (account === undefined) return undefined;
    const db = this.env.DB;
    return new ProjectionRunner<LedgerEvent, SqlWrites>({
      name: HISTORY,
      store: this.#store,
      batchSize: BATCH_SIZE,
      readEvents: async (after, limit) =>
        (
          await db
            .prepare("SELECT position, account, amount FROM events WHERE account = ?1 AND position > ?2 ORDER BY position LIMIT ?3")
            .bind(account, after, limit)
            .all<LedgerEvent>()
        ).results,
      project: projectHistory,
    }).run({ maxBatches: MAX_BATCHES });
  }

  /**
   * The history of `account` (this object's, as `idFromName(account)` addressed it), newest
   * first, with its checkpoint and lag. Reads only: an object never notified reports all the
   * account's events as lag. Call it for accounts with events only: the first call creates the object.
   */
  async view(account: string, limit: number): Promise<AccountHistoryView> {
    const { position } = this.#store.loadSync(HISTORY);
    const lag = await this.env.DB.prepare("SELECT COUNT(*) AS n FROM events WHERE account = ?1 AND position > ?2")
      .bind(account, position)
      .first<{ n: number }>();
    const entries = this.ctx.storage.sql
      .exec<{ position: number; amount: number; balance: number }>("SELECT position, amount, balance FROM history ORDER BY position DESC LIMIT ?1", limit)
      .toArray();
    return { account, position, lag: lag?.n ?? 0, entries };
  }

  /**
   * This object's checkpoints' statuses (the admin page lists them as a
   * partition); `newest` is the account's newest event position, for `lag`.
   */
  async statuses(newest?: number): Promise<ProjectionStatus[]> {
    const statuses: ProjectionStatus[] = [];
    for await (const status of this.#store.statuses(newest === undefined ? undefined : { newest })) statuses.push(status);
    return statuses;
  }

  /** Clears the history and its checkpoint in one transaction, then lets the alarm rebuild it. */
  async rebuild(): Promise<void> {
    this.ctx.storage.transactionSync(() => {
      this.ctx.storage.sql.exec("DELETE FROM history");
      this.#store.resetSync(HISTORY);
    });
    await this.#daemon.wake();
  }
}
