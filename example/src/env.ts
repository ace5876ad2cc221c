/** The example Worker's bindings. */
export interface Env {
  /** The ledger database: events, the balances read model and checkpoints. */
  readonly DB: D1Database;
  /** One AccountHistory object per account (idFromName(account)): the account-history projection. */
  readonly ACCOUNT_HISTORY: DurableObjectNamespace<import("./account-history.js").AccountHistory>;
  /** Bearer token for /admin/ routes (a secret). Unset: admin routes are disabled. */
  readonly ADMIN_TOKEN?: string | undefined;
}
