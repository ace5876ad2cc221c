// The run log (decision 0027): each projection's recent runs in D1, one row
// per projection (table projection_runs, migration 0004), written by a
// metrics recorder in one statement per run and read by the admin page for
// its rows written per 1,000 events.
import { CheckpointTypeError, D1OperationError } from "../core/errors.js";
import { checkInteger, checkOptions, isTime, keysOf } from "../core/validate.js";
import { isTransientD1Error } from "../d1/retry.js";
import type { MetricsRecorder, RunReport } from "../runner/metrics.js";

/**
 * Records one run for each projection of `?1` (a JSON array of `[name, run]`),
 * keeping the newest `?2` runs of each, oldest first: 1 row written per
 * projection (the table has no rowid).
 */
const RECORD_SQL =
  "INSERT INTO projection_runs (name, runs) SELECT json_extract(value, '$[0]'), json_array(json(json_extract(value, '$[1]'))) FROM json_each(?1) WHERE true " +
  "ON CONFLICT (name) DO UPDATE SET runs = (SELECT json_group_array(json(value)) FROM (SELECT key, value FROM (SELECT key, value FROM " +
  "json_each(json_insert(projection_runs.runs, '$[#]', json(json_extract(excluded.runs, '$[0]')))) ORDER BY key DESC LIMIT ?2) ORDER BY key))";

/** The runs of the projections in `?1` (a JSON array of names). */
const RECENT_SQL = "SELECT name, runs FROM projection_runs WHERE name IN (SELECT value FROM json_each(?1))";

/** One run as stored: `[endedAt ms, events, rowsRead, rowsWritten, ownRowsWritten]`. */
type StoredRun = [number, number, number, number, number];

/**
 * A projection's recent runs, added up: what the admin page shows.
 *
 * @category Metrics
 */
export interface RecentRuns {
  /** Runs in the log (at most the log's `keep`). */
  readonly runs: number;
  /** When the oldest of them ended. */
  readonly since: Date;
  /** Events they committed. */
  readonly events: number;
  /** Rows they read. */
  readonly rowsRead: number;
  /** Rows they wrote, the package's own included. */
  readonly rowsWritten: number;
  /** Of `rowsWritten`, the package's own. */
  readonly ownRowsWritten: number;
  /** `rowsWritten` per 1,000 events; `undefined` when they committed none. */
  readonly rowsWrittenPer1000Events: number | undefined;
}

/**
 * Options of a {@link D1RunLog}.
 *
 * @category Metrics
 */
export interface D1RunLogOptions {
  /** Runs kept per projection, 1 to 100; default 20. */
  readonly keep?: number | undefined;
}

const RUN_LOG_KEYS = keysOf<D1RunLogOptions>()(["keep"]);

/**
 * Each projection's recent runs, in the `projection_runs` table of the
 * package's migrations: `record` is a metrics recorder (one D1 query per run,
 * counted on the run's budget, and 1 row written per projection), and
 * `recent` what the admin page reads for its rows written per 1,000 events.
 * Runs that committed no event are not recorded (an idle poll costs no
 * query; the few rows such a run writes, a lease's, are not in the figure),
 * nor is a run that finds the budget spent.
 *
 * @example
 * ```ts
 * const runLog = new D1RunLog(env.DB);
 * const balances = new ProjectionRunner({ ...options, metrics: { record: [runLog.record, jsonLogLine()] } });
 * const admin = createAdminHandler({ store, runLog, ...rest });
 * ```
 *
 * @category Metrics
 */
export class D1RunLog {
  /** The D1 binding (or session). */
  readonly db: D1Database | D1DatabaseSession;
  /** Runs kept per projection. */
  readonly keep: number;

  /** Checks the options; sends nothing. */
  constructor(db: D1Database | D1DatabaseSession, options?: D1RunLogOptions) {
    if (typeof (db as { prepare?: unknown } | null)?.prepare !== "function") {
      throw new CheckpointTypeError("configure", undefined, "db", "must be a D1Database (or a session of one)");
    }
    const given = checkOptions("configure", undefined, options, "options", RUN_LOG_KEYS);
    this.db = db;
    this.keep = checkInteger("configure", undefined, given.keep, "options.keep", { min: 1, max: 100, fallback: 20 });
  }

  /** The recorder: give it to a runner's, group's or daemon's `metrics.record`. */
  readonly record: MetricsRecorder = async (report: RunReport, { budget }) => {
    // Only runs that committed events: an idle run (a cron's poke, a yielded one) would cost a query for no figure.
    if (report.events === 0) return;
    if (budget.remaining < 1) return;
    budget.spend(1, "run", report.name);
    const endedAt = Date.now();
    const runs = report.projections.map((part): [string, StoredRun] => [part.name, [endedAt, part.events, part.rowsRead, part.rowsWritten, part.ownRowsWritten]]);
    const result = await this.db.prepare(RECORD_SQL).bind(JSON.stringify(runs), this.keep).run();
    const meta = (result as { meta?: { rows_read?: number; rows_written?: number } }).meta;
    budget.countRows({ read: meta?.rows_read ?? 0, written: meta?.rows_written ?? 0, own: true });
  };

  /** The recent runs of `names` (1 to 100), added up per projection: one query. Names without runs are left out. */
  async recent(names: readonly string[]): Promise<Map<string, RecentRuns>> {
    if (!Array.isArray(names) || names.length > 100 || !names.every((name) => typeof name === "string")) {
      throw new CheckpointTypeError("status", undefined, "names", "must be an array of at most 100 names");
    }
    const found = new Map<string, RecentRuns>();
    if (names.length === 0) return found;
    let rows: { name: string; runs: string }[];
    try {
      rows = (await this.db.prepare(RECENT_SQL).bind(JSON.stringify(names)).all<{ name: string; runs: string }>()).results;
    } catch (error) {
      throw new D1OperationError("status", undefined, error, { attempts: 1, transient: isTransientD1Error(error), outcomeUnknown: false, reason: "reading the run log failed" });
    }
    for (const row of rows) {
      const runs = parseRuns(row.runs);
      if (runs.length === 0) continue;
      const sum = (at: 1 | 2 | 3 | 4): number => runs.reduce((total, run) => total + run[at], 0);
      const events = sum(1);
      const rowsWritten = sum(3);
      found.set(row.name, {
        runs: runs.length,
        since: new Date(Math.min(...runs.map((run) => run[0]))),
        events,
        rowsRead: sum(2),
        rowsWritten,
        ownRowsWritten: sum(4),
        rowsWrittenPer1000Events: events === 0 ? undefined : (rowsWritten / events) * 1000,
      });
    }
    return found;
  }
}

/** The stored runs, skipping anything that is not one (a row written by hand). */
function parseRuns(text: unknown): StoredRun[] {
  let value: unknown;
  try {
    value = typeof text === "string" ? JSON.parse(text) : [];
  } catch {
    return [];
  }
  if (!Array.isArray(value)) return [];
  return value.filter(
    (run): run is StoredRun => Array.isArray(run) && run.length === 5 && run.every((field) => typeof field === "number" && Number.isFinite(field)) && isTime(run[0]),
  );
}
