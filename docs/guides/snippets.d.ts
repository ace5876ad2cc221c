// What the guides' TypeScript blocks leave to the reader, declared once so that
// `npm test` can type-check every block (test/node/snippets.test.ts). In your
// Worker these are your own: `Env` from `wrangler types`, your event type, your
// statements.

/** The bindings (`wrangler types` generates this). */
interface Env {
  DB: D1Database;
  ADMIN_TOKEN: string;
  ACCESS_AUD: string;
  LEDGER_WAKE: Queue<{ position: number }>;
  PROJECTION_METRICS: AnalyticsEngineDataset;
}

/** The Worker's `env` (`import { env } from "cloudflare:workers"`, or a handler's argument). */
declare const env: Env;

/** An event of the ledger the guides use. */
interface LedgerEvent {
  readonly position: number;
  readonly account: string;
  readonly amount: number;
}

/** Your read model's write for one event: an upsert into `balances`, say. */
declare function creditStatement(db: D1Database, event: LedgerEvent): D1PreparedStatement;

/** Reads up to `limit` events after `after`, ascending by position. */
declare function readEventsAfter(db: D1Database, after: number, limit: number): Promise<LedgerEvent[]>;

/** An error class of yours that a projection throws for events it must park. */
declare class OnHold extends Error {}

/** A runner you built, as the Quick start's `balances(db)` does. */
declare const runner: import("@synapse-es/checkpointstore-d1").ProjectionRunner<LedgerEvent>;
/** The D1 store on `env.DB`. */
declare const store: import("@synapse-es/checkpointstore-d1").D1CheckpointStore;
/** Runners of your projections, built per invocation. */
declare function balances(env: Env): import("@synapse-es/checkpointstore-d1").ProjectionRunner<LedgerEvent>;
declare function histories(env: Env): import("@synapse-es/checkpointstore-d1").ProjectionRunner<LedgerEvent>;
/** The read-model SQL of a set-based projection: reads its rows with `json_each(?1)`. */
declare const BALANCES_SQL: string, DAILY_TOTALS_SQL: string, ACCOUNT_INDEX_SQL: string, LARGE_PAYMENTS_SQL: string, AUDIT_LOG_SQL: string;
/** Two versions of a projection's writes (a rebuild). */
declare function balancesV1(db: D1Database, events: readonly LedgerEvent[]): D1PreparedStatement[];
declare function balancesV2(db: D1Database, events: readonly LedgerEvent[]): D1PreparedStatement[];
/** Reads one account's events after `after` (a Durable Object projection). */
declare function readAccountEvents(db: D1Database, after: number, limit: number): Promise<LedgerEvent[]>;
/** Admin hooks of yours: clear the balances, the accounts with partitions, an account's object. */
declare function resetBalances(db: D1Database): Promise<void>;
declare function recentAccounts(env: Env): string[];
declare function historyOf(env: Env, account: string): { statuses(): Promise<readonly import("@synapse-es/checkpointstore-d1").ProjectionStatus[]> };
/** The rest of your Worker. */
declare function app(request: Request, env: Env, ctx: ExecutionContext): Promise<Response>;
/** Your `adminHandler(…)`, built for an invocation. */
declare function adminFor(env: Env, ctx: { waitUntil(promise: Promise<unknown>): void }): (request: Request) => Promise<Response | undefined>;
/** Your Kysely instance. */
declare const db: import("kysely").Kysely<{ ledger: { position: number; amount: number } }>;
/** Your projections as a group, built per invocation. */
declare function projections(db: D1Database): import("@synapse-es/checkpointstore-d1").ProjectionGroup<LedgerEvent>;
/** `import { env } from "cloudflare:workers"` sees the same bindings. */
declare namespace Cloudflare {
  interface Env {
    DB: D1Database;
  }
}
/** The daemon class of the guides (daemon.md); `wrangler types` names your own class instead. */
type LedgerDaemon = import("@synapse-es/checkpointstore-d1/daemon").ProjectionDaemonObject<Env>;
/** The daemon's binding (daemon.md), merged into the bindings above. */
interface Env {
  LEDGER_DAEMON: DurableObjectNamespace<LedgerDaemon>;
}
declare namespace Cloudflare {
  interface Env {
    LEDGER_DAEMON: DurableObjectNamespace<LedgerDaemon>;
  }
}
/** What a test block uses of `cloudflare:test`; in your tests `@cloudflare/vitest-plugin/types` declares it (testing.md). */
declare module "cloudflare:test" {
  export function runDurableObjectAlarm(stub: DurableObjectStub): Promise<boolean>;
}
