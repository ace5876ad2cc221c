// A second projection of the ledger, held in Durable Objects: one object per
// account keeps that account's history (each event with the balance after
// it) in its own SQLite, with its own checkpoint, committed in one
// transaction with the history rows. The events stay in D1; the object's
// alarm runs the projection, so it has one writer by construction and
// overlapping notifications cost nothing.
// In your project, import from "@synapse-es/checkpointstore-d1".
import { DurableObject } from "cloudflare:workers";
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

/** One account's history projection. Address it with `idFromName(account)`. */
export class AccountHistory extends DurableObject<Env> {
  readonly #store: DurableObjectCheckpointStore;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec(SCHEMA);
    this.#store = new DurableObjectCheckpointStore(ctx.storage);
  }

  /** New events for `account` were appended: make sure an alarm will project them. Cheap to call often. */
  async notify(account: string): Promise<void> {
    await this.ctx.storage.put("account", account);
    if ((await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(Date.now());
  }

  /** Runs the projection: up to MAX_BATCHES batches, and another alarm if the log goes on. */
  override async alarm(): Promise<void> {
    const summary = await this.catchUp();
    if (summary !== undefined && !summary.caughtUp && !summary.conflict) await this.ctx.storage.setAlarm(Date.now());
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
    await this.ctx.storage.setAlarm(Date.now());
  }
}
