/** The example Worker's bindings. */
export interface Env {
  /** The ledger database: events, the balances read model and checkpoints. */
  readonly DB: D1Database;
  /** One AccountHistory object per account (idFromName(account)): the account-history projection. */
  readonly ACCOUNT_HISTORY: DurableObjectNamespace<import("./account-history.js").AccountHistory>;
  /** Wake-ups for the ledger's projections (queue.ts): an append whose own run does not get past it sends its position; the Worker's queue handler runs them. Unset: none is sent (the cron still catches up). */
  readonly LEDGER_WAKE?: Queue<import("./queue.js").Wake> | undefined;
  /** The ledger's projection daemon (daemon.ts): appends notify it, the cron pokes it. Unset: appends run the group in waitUntil and wake it through the queue. */
  readonly LEDGER_DAEMON?: DurableObjectNamespace<import("./daemon.js").LedgerDaemon> | undefined;
  /** The admin's token (a generated secret: 32 to 1,024 characters, no whitespace, not a placeholder; `openssl rand -hex 16`). Unset, or refused by bearerToken: admin routes are disabled. */
  readonly ADMIN_TOKEN?: string | undefined;
  /** An Analytics Engine dataset for the projections' runs (one data point per run and per projection). Unset: the runs go to the run log only. */
  readonly PROJECTION_METRICS?: AnalyticsEngineDataset | undefined;
}
