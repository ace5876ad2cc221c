// The daemon suite's Durable Object: a ProjectionDaemonObject over a ledger in
// D1, configured by the object's name (`budget=50;batch=100;versions`), so
// that every test gets its own object and configuration, with a wrapper
// around the projection that counts runs under way at once and can be made to
// fail through a flag row in D1 (the fault is in the run, never in project).
import { D1CheckpointStore, ProjectionGroup, ProjectionRunner, jsonRowStatements, type PositionedEvent, type RunOptions } from "../../src/index.js";
import { ProjectionDaemonObject, type DaemonOptions, type DaemonRun } from "../../src/daemon.js";
import { D1RunLog } from "../../src/metrics.js";

export interface DaemonEvent extends PositionedEvent {
  readonly account: string;
  readonly amount: number;
}

/** What the object's name asks for. */
function setup(name: string): Record<string, string> {
  return Object.fromEntries(name.split(";").map((part) => [part.split("=")[0] ?? "", part.split("=")[1] ?? "1"]));
}

function totals(db: D1Database, table: string): (events: readonly DaemonEvent[]) => D1PreparedStatement[] {
  return (events) =>
    jsonRowStatements(
      db,
      `INSERT INTO ${table} (account, total, n) SELECT value ->> 'a', SUM(value ->> 'x'), COUNT(*) FROM json_each(?1) WHERE true GROUP BY 1
       ON CONFLICT (account) DO UPDATE SET total = total + excluded.total, n = n + excluded.n`,
      events.map((event) => ({ a: event.account, x: event.amount })),
    );
}

const eventsQuery = (db: D1Database) => (after: number, limit: number) =>
  db.prepare("SELECT position, account, amount FROM dm_events WHERE position > ?1 ORDER BY position LIMIT ?2").bind(after, limit);

/** The daemon's projection: one runner, or (with `versions`) a group of version 1 and 2 of `dm`. */
function projection(db: D1Database, options: Record<string, string>): DaemonRun {
  const store = new D1CheckpointStore(db);
  const batchSize = Number(options.batch ?? 100);
  if (options.versions !== undefined) {
    return new ProjectionGroup<DaemonEvent>({
      name: "dm-group",
      store,
      batchSize,
      eventsQuery: eventsQuery(db),
      lease: true,
      projections: [
        { name: "dm", version: 1, project: totals(db, "dm_totals") },
        { name: "dm", version: 2, project: totals(db, "dm_totals_v2") },
      ],
    });
  }
  return new ProjectionRunner<DaemonEvent>({ name: "dm", store, batchSize, eventsQuery: eventsQuery(db), project: totals(db, "dm_totals"), lease: true });
}

/** The suite's daemon object. */
export class TestDaemon extends ProjectionDaemonObject<Cloudflare.Env> {
  /** Runs under way in this instance right now, the most seen at once, runs started, and each run's queries. */
  readonly runs: { active: number; most: number; started: number; budgets: number[] };

  constructor(ctx: DurableObjectState, env: Cloudflare.Env) {
    const options = setup(ctx.id.name ?? "");
    const inner = projection(env.DB, options);
    const self = { runs: { active: 0, most: 0, started: 0, budgets: [] as number[] } };
    const counted: DaemonRun = {
      run: async (run?: RunOptions) => {
        self.runs.active += 1;
        self.runs.started += 1;
        self.runs.most = Math.max(self.runs.most, self.runs.active);
        try {
          const flag = await env.DB.prepare("SELECT what FROM dm_flags WHERE what IN ('fail', 'throwAfter') LIMIT 1").first<{ what: string }>();
          if (flag?.what === "fail") throw new Error("the read model's table is locked (test flag)");
          const summary = await inner.run(run);
          self.runs.budgets.push(summary.queries);
          if (flag?.what === "throwAfter") {
            await env.DB.prepare("DELETE FROM dm_flags WHERE what = 'throwAfter'").run();
            throw new Error("failed after its commit (test flag)");
          }
          return summary;
        } finally {
          self.runs.active -= 1;
        }
      },
    };
    const daemon: DaemonOptions = {
      name: "dm",
      projection: counted,
      budget: Number(options.budget ?? 900),
      backoff: { baseMs: 1000, maxMs: 4000 },
      // `metrics`: every run the daemon makes goes to the run log, with its lag.
      ...(options.metrics !== undefined ? { metrics: { record: new D1RunLog(env.DB).record, newest: env.DB.prepare("SELECT MAX(position) FROM dm_events") } } : {}),
      ...(options.versions !== undefined ? { autoSwitch: { store: new D1CheckpointStore(env.DB), names: ["dm"] } } : {}),
    };
    super(ctx, env, daemon);
    this.runs = self.runs;
  }

  /** The counts of runs in this instance (lost on eviction). */
  counts(): { active: number; most: number; started: number; budgets: number[] } {
    return this.runs;
  }
}
