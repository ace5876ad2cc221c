// Bindings the test suites see (both the package's and the example's).
declare namespace Cloudflare {
  interface Env {
    DB: D1Database;
    CHECKPOINT_OBJECTS: DurableObjectNamespace<import("./worker.js").CheckpointObject>;
    LEDGER_DAEMON?: DurableObjectNamespace<import("../example/src/daemon.js").LedgerDaemon> | undefined;
    TEST_DAEMON: DurableObjectNamespace<import("./worker.js").TestDaemon>;
    TEST_MIGRATIONS: import("cloudflare:test").D1Migration[];
    /** The metrics suite's Analytics Engine dataset (the package suite only). */
    PROJECTION_METRICS: AnalyticsEngineDataset;
    ADMIN_TOKEN?: string | undefined;
    /** The example's account-history objects (the example suite only). */
    ACCOUNT_HISTORY: DurableObjectNamespace<import("../example/src/account-history.js").AccountHistory>;
    /** The example's wake-up queue (the example suite only). */
    LEDGER_WAKE?: Queue<import("../example/src/queue.js").Wake> | undefined;
  }
}
