/** The example Worker's bindings. */
export interface Env {
  /** The ledger database: events, the balances read model and checkpoints. */
  readonly DB: D1Database;
  /** Bearer token for /admin/ routes (a secret). Unset: admin routes are disabled. */
  readonly ADMIN_TOKEN?: string | undefined;
}
