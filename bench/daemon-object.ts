// The daemon suite's Durable Object (bench/daemon.ts): a ProjectionDaemonObject
// whose D1 binding waits a fixed time before every call (the technique of
// bench/latency.ts) and counts what it sends (countD1), configured by the
// object's name (`mode=fresh;latency=10;budget=900;n=3`), so that every
// measured daemon is a fresh object with its own configuration. It runs one of
// three projections over the suite's tables, and notes, after the run that
// finished its work (caught up, or switched a rebuild live), D1's clock.
import { NOW_MS_SQL } from "../src/sql/checkpoints.js";
import { D1CheckpointStore, jsonRowStatements, ProjectionGroup, ProjectionRunner, type PositionedEvent } from "../src/index.js";
import { ProjectionDaemonObject, type DaemonOptions, type DaemonRun, type RunOutcome } from "../src/daemon.js";
import { countD1, interceptD1 } from "../src/testing.js";

/** The freshness suite's events: each row carries D1's clock at its insert. */
export const FRESH_EVENTS = "bench_daemon_events";
/** The freshness suite's read model: a row per event, with D1's clock at the commit that wrote it. */
export const FRESH_MODEL = "bench_daemon_seen";
/** The catch-up and rebuild suites' events. */
export const LOG = "bench_daemon_log";
/** The catch-up and rebuild suites' read model (version 1's table): a total and a count per key. */
export const TOTALS = "bench_daemon_totals";
/** Version 2's table of the rebuild. */
export const TOTALS_V2 = "bench_daemon_totals_v2";
/** The projections' checkpoint names (and the rebuild's group name). */
export const FRESH_NAME = "bench-daemon-fresh";
export const CATCH_UP_NAME = "bench-daemon-catch-up";
export const REBUILD_NAME = "bench-daemon-rebuild";
export const REBUILD_GROUP = "bench-daemon-rebuild-group";

export interface LogEvent extends PositionedEvent {
  readonly k: string;
  readonly v: number;
}

/** One set-based upsert per batch into `table`: the batch summed per key. */
export function totalsStatements(db: D1Database, table: string, events: readonly LogEvent[]): D1PreparedStatement[] {
  return jsonRowStatements(
    db,
    `INSERT INTO ${table} (k, total, n) SELECT value ->> 'k', SUM(value ->> 'v'), COUNT(*) FROM json_each(?1) WHERE true GROUP BY 1 ` +
      "ON CONFLICT (k) DO UPDATE SET total = total + excluded.total, n = n + excluded.n",
    events.map((e) => ({ k: e.k, v: e.v })),
  );
}

/** One set-based insert per batch: the batch's positions; a position applied twice fails the commit. */
export function seenStatements(db: D1Database, events: readonly PositionedEvent[]): D1PreparedStatement[] {
  return jsonRowStatements(db, `INSERT INTO ${FRESH_MODEL} (position) SELECT value ->> 'p' FROM json_each(?1)`, events.map((e) => ({ p: e.position })));
}

export function freshQuery(db: D1Database): (after: number, limit: number) => D1PreparedStatement {
  return (after, limit) => db.prepare(`SELECT position FROM ${FRESH_EVENTS} WHERE position > ?1 ORDER BY position LIMIT ?2`).bind(after, limit);
}

export function logQuery(db: D1Database): (after: number, limit: number) => D1PreparedStatement {
  return (after, limit) => db.prepare(`SELECT position, k, v FROM ${LOG} WHERE position > ?1 ORDER BY position LIMIT ?2`).bind(after, limit);
}

/** The freshness projection: a runner with a lease, as a daemon's should be. */
export function freshRunner(db: D1Database, batchSize: number, lease: boolean): ProjectionRunner<PositionedEvent> {
  return new ProjectionRunner<PositionedEvent>({
    name: FRESH_NAME,
    store: new D1CheckpointStore(db),
    batchSize,
    lease,
    eventsQuery: freshQuery(db),
    project: (events) => seenStatements(db, events),
  });
}

/** The catch-up projection: set-based totals per key, with a lease. */
export function catchUpRunner(db: D1Database, batchSize: number): ProjectionRunner<LogEvent> {
  return new ProjectionRunner<LogEvent>({
    name: CATCH_UP_NAME,
    store: new D1CheckpointStore(db),
    batchSize,
    lease: true,
    eventsQuery: logQuery(db),
    project: (events) => totalsStatements(db, TOTALS, events),
  });
}

/** The rebuild: one group of version 1 (live) and version 2 of the same projection, sharing the reads, with a lease. */
export function rebuildGroup(db: D1Database, batchSize: number): ProjectionGroup<LogEvent> {
  return new ProjectionGroup<LogEvent>({
    name: REBUILD_GROUP,
    store: new D1CheckpointStore(db),
    batchSize,
    lease: true,
    eventsQuery: logQuery(db),
    projections: [
      { name: REBUILD_NAME, version: 1, project: (events) => totalsStatements(db, TOTALS, events) },
      { name: REBUILD_NAME, version: 2, project: (events) => totalsStatements(db, TOTALS_V2, events) },
    ],
  });
}

/** What a D1 binding with latency has sent so far. */
export interface Sent {
  readonly queries: number;
  readonly roundTrips: number;
}

/** A D1 binding that waits `latencyMs` before every call, and what it has sent (statements and round trips), counted with countD1. */
export function withLatency(db: D1Database, latencyMs: number): { readonly db: D1Database; sent: () => Sent; clear: () => void } {
  const slow = interceptD1(db, async (_call, send) => {
    await new Promise((resolve) => setTimeout(resolve, latencyMs));
    return send();
  });
  const counted = countD1(slow);
  return {
    db: counted.db,
    sent: () => ({ queries: counted.calls.reduce((n, call) => n + call.sql.length, 0), roundTrips: counted.calls.length }),
    clear: () => {
      counted.clear();
    },
  };
}

/** D1's clock, in ms since the epoch: one query on the binding as given (no added latency, not counted). */
export async function d1Now(db: D1Database): Promise<number> {
  const row = await db.prepare(`SELECT ${NOW_MS_SQL} AS now`).first<{ now: number }>();
  if (row === null) throw new Error("D1 returned no clock");
  return row.now;
}

/** What the object's name asks for. */
function configOf(name: string): Record<string, string> {
  return Object.fromEntries(name.split(";").map((part) => [part.split("=")[0] ?? "", part.split("=")[1] ?? "1"]));
}

/** What a bench daemon reports: the D1 traffic of its runs since the last clear, their outcomes, and D1's clock after its work was done. */
export interface BenchDaemonMeter extends Sent {
  readonly runs: readonly RunOutcome[];
  /** D1's clock right after the first run since the last clear that caught up (catch-up) or switched a rebuild live (rebuild). */
  readonly doneAt: number | undefined;
  /** The object's clock (Date.now(), ms) when each notify() and each alarm() was delivered. */
  readonly notifiedAt: readonly number[];
  readonly alarmedAt: readonly number[];
  /** The events each run applied. */
  readonly events: readonly number[];
}

/** The bench's daemon object: `mode` is fresh, catchUp or rebuild. */
export class BenchDaemon extends ProjectionDaemonObject<Cloudflare.Env> {
  readonly #meter: { runs: RunOutcome[]; doneAt: number | undefined; notifiedAt: number[]; alarmedAt: number[]; events: number[]; sent: () => Sent; clear: () => void };

  constructor(ctx: DurableObjectState, env: Cloudflare.Env) {
    const config = configOf(ctx.id.name ?? "");
    const slow = withLatency(env.DB, Number(config.latency ?? 10));
    const batchSize = Number(config.batch ?? 100);
    const mode = config.mode ?? "fresh";
    const meter = { runs: [] as RunOutcome[], doneAt: undefined as number | undefined, notifiedAt: [] as number[], alarmedAt: [] as number[], events: [] as number[], sent: slow.sent, clear: slow.clear };
    // The projection, noting how many events each run applied (a group's: its busiest projection's).
    let run: DaemonRun["run"];
    if (mode === "fresh" || mode === "catchUp") {
      const runner = mode === "fresh" ? freshRunner(slow.db, batchSize, true) : catchUpRunner(slow.db, batchSize);
      run = async (options) => {
        const summary = await runner.run(options);
        meter.events.push(summary.events);
        return summary;
      };
    } else if (mode === "rebuild") {
      const group = rebuildGroup(slow.db, batchSize);
      run = async (options) => {
        const summary = await group.run(options);
        meter.events.push(Math.max(0, ...summary.projections.map((projection) => projection.events)));
        return summary;
      };
    } else {
      throw new Error(`unknown bench daemon mode ${mode}`);
    }
    const projection: DaemonRun = { run };
    const options: DaemonOptions = {
      name: mode,
      projection,
      budget: Number(config.budget ?? 900),
      ...(mode === "rebuild" ? { autoSwitch: { store: new D1CheckpointStore(slow.db), names: [REBUILD_NAME] } } : {}),
      onRun: async (outcome) => {
        meter.runs.push(outcome);
        const done = mode === "rebuild" ? outcome.switched.length > 0 : outcome.caughtUp;
        if (done && meter.doneAt === undefined) meter.doneAt = await d1Now(env.DB);
      },
    };
    super(ctx, env, options);
    this.#meter = meter;
  }

  override async notify(position?: number): Promise<void> {
    this.#meter.notifiedAt.push(Date.now());
    await super.notify(position);
  }

  override async alarm(): Promise<void> {
    this.#meter.alarmedAt.push(Date.now());
    await super.alarm();
  }

  /** The runs' D1 traffic and outcomes since the last clear. */
  meter(): BenchDaemonMeter {
    const { runs, doneAt, notifiedAt, alarmedAt, events } = this.#meter;
    return { ...this.#meter.sent(), runs, doneAt, notifiedAt, alarmedAt, events };
  }

  /** Forgets the traffic, the outcomes, the deliveries and the done time. */
  clearMeter(): void {
    this.#meter.clear();
    this.#meter.runs = [];
    this.#meter.doneAt = undefined;
    this.#meter.notifiedAt = [];
    this.#meter.alarmedAt = [];
    this.#meter.events = [];
  }
}
