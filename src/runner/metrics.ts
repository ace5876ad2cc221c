// Metrics of runs (decision 0027): the `metrics` option of runners, groups
// and runs, the report each run gives its recorders (a summary shaped for
// logs and Analytics Engine, with lag from one status read per projection
// when asked), and how a recorder's failure is kept from the run's result.
import { withReserve, type QueryBudget } from "../core/query-budget.js";
import { CheckpointTypeError, messageOf } from "../core/errors.js";
import { NO_ROWS, rowsSince, type RowUsage } from "../core/row-usage.js";
import { checkOptions, checkPosition, hasMethods, keysOf } from "../core/validate.js";
import { parseEventTimes, type EventTimes, type ProjectionStatus } from "../sql/status.js";
import type { RunEnd } from "./run-options.js";

/**
 * What a run did, for metrics: one per run of a runner or a group, given to
 * every recorder of its `metrics`. Plain data (JSON as it is), with one entry
 * per projection in `projections`: a runner's one, or each of a group's.
 *
 * @category Metrics
 */
export interface RunReport extends RowUsage {
  /** A runner's run, or a group's. */
  readonly kind: "runner" | "group";
  /** The runner's projection name, or the group's name. */
  readonly name: string;
  /** Why the run ended; `"failed"` when it rejected with no summary (then see `error`). A group whose projections failed has its summary's `ended`, and `error`. */
  readonly ended: RunEnd | "failed";
  /** Whether it saw the end of the log. */
  readonly caughtUp: boolean;
  /** Events projected and committed, every projection's added up. */
  readonly events: number;
  /** Batches committed. */
  readonly batches: number;
  /** D1 queries the run sent; for a run that rejected, what its budget saw it send (exact unless other runs spent the same budget meanwhile). */
  readonly queries: number;
  /** Milliseconds the run took, by the Worker's clock (which moves with I/O). */
  readonly durationMs: number;
  /** The error it rejected with, or the first projection's that failed in a group; `undefined` otherwise. */
  readonly error: string | undefined;
  /** One entry per projection. */
  readonly projections: readonly ProjectionReport[];
}

/**
 * One projection's part of a {@link RunReport}.
 *
 * @category Metrics
 */
export interface ProjectionReport extends RowUsage {
  /** Its checkpoint name. */
  readonly name: string;
  /** Why its part of the run ended. */
  readonly ended: RunEnd | "failed";
  /** Its checkpoint when the run started. */
  readonly from: number;
  /** Its checkpoint when the run ended. */
  readonly to: number;
  /** Events it projected and committed. */
  readonly events: number;
  /** Events skipped in this run. */
  readonly skipped: number;
  /** Events parked in this run. */
  readonly parked: number;
  /** Positions behind the newest event after the run; `undefined` without `metrics.newest` (or when its status could not be read). */
  readonly lag: number | undefined;
  /** Milliseconds since the oldest event it has not applied was appended (`0`: none); `undefined` without `metrics.eventTimes`. */
  readonly oldestUnappliedAgeMs: number | undefined;
  /** What stopped it, when it failed. */
  readonly error: string | undefined;
}

/**
 * Gets each run's report. It may return a promise, which the run awaits
 * before it resolves. What it throws or rejects with is logged
 * (`console.error`) and never changes the run's result: the run's writes are
 * committed by then.
 *
 * @category Metrics
 */
export type MetricsRecorder = (report: RunReport, context: RecordContext) => void | Promise<void>;

/**
 * What a recorder may use besides the report.
 *
 * @category Metrics
 */
export interface RecordContext {
  /** The budget the run spent on (the caller's, or the run's own): a recorder that sends D1 queries counts them on it. */
  readonly budget: QueryBudget;
}

/**
 * The `metrics` option of runners, groups and runs: who gets each run's
 * report, and where lag comes from. With `newest` (or `eventTimes`) every
 * run ends with one status read per projection (in parallel, on the run's
 * budget) for `lag` and `oldestUnappliedAgeMs`.
 *
 * @example
 * ```ts
 * import { analyticsEngine, jsonLogLine } from "@synapse-es/checkpointstore-d1/metrics";
 *
 * const balances = new ProjectionRunner({
 *   name: "balances", store, eventsQuery, project,
 *   metrics: {
 *     record: [jsonLogLine(), analyticsEngine(env.PROJECTION_METRICS)],
 *     newest: env.DB.prepare("SELECT MAX(position) FROM events"),
 *     eventTimes: { table: "events", time: "recorded_at" },
 *   },
 * });
 * ```
 *
 * @category Metrics
 */
export interface RunMetrics {
  /** One recorder, or several (each gets every report, in order). */
  readonly record: MetricsRecorder | readonly MetricsRecorder[];
  /** The newest position of the log, for `lag`: a number, or on D1 a query of it (as `status()`'s `newest`). */
  readonly newest?: number | D1PreparedStatement | undefined;
  /** Where the events' times are, for `oldestUnappliedAgeMs` (as `status()`'s `eventTimes`). */
  readonly eventTimes?: EventTimes | undefined;
}

/** A checked `metrics` option. */
export interface CheckedMetrics {
  readonly recorders: readonly MetricsRecorder[];
  readonly status: { readonly newest: number | D1PreparedStatement | undefined; readonly eventTimes: EventTimes | undefined } | undefined;
}

const METRICS_KEYS = keysOf<RunMetrics>()(["record", "newest", "eventTimes"]);

/** Checks a `metrics` option: recorders (functions), and `newest` and `eventTimes` as `status()` takes them. */
export function checkMetrics(name: string, value: unknown, argument: string): CheckedMetrics | undefined {
  if (value === undefined) return undefined;
  const given = checkOptions<RunMetrics>("configure", name, value as RunMetrics, argument, METRICS_KEYS);
  const record: unknown = given.record;
  const recorders: unknown[] = Array.isArray(record) ? record : [record];
  if (recorders.length === 0 || !recorders.every((recorder) => typeof recorder === "function")) {
    throw new CheckpointTypeError("configure", name, `${argument}.record`, "must be a function (run report) => void, or an array of them");
  }
  const newest: unknown = given.newest;
  const { eventTimes } = given;
  if (newest !== undefined && typeof newest !== "number" && !hasMethods(newest, ["bind", "all", "first"])) {
    throw new CheckpointTypeError("configure", name, `${argument}.newest`, "must be a position or a D1PreparedStatement");
  }
  if (typeof newest === "number") checkPosition("configure", name, newest, `${argument}.newest`);
  if (eventTimes !== undefined) parseEventTimes(name, eventTimes, "configure", `${argument}.eventTimes`);
  const status = newest === undefined && eventTimes === undefined ? undefined : { newest: given.newest, eventTimes };
  return { recorders: [...recorders] as MetricsRecorder[], status };
}

/** The metrics of one run: its options' own, else the runner's or group's; none for options that are not an object (the run refuses them). */
export function runMetrics(name: string, options: unknown, configured: CheckedMetrics | undefined): CheckedMetrics | undefined {
  if (options === undefined) return configured;
  if (typeof options !== "object" || options === null) return undefined;
  return checkMetrics(name, (options as { metrics?: unknown }).metrics, "options.metrics") ?? configured;
}

/** What a report is made from: a summary's shape, a runner's or a group's. */
interface SummaryShape extends RowUsage {
  readonly name: string;
  readonly ended: RunEnd | "failed";
  readonly caughtUp: boolean;
  readonly batches: number;
  readonly queries: number;
}

/** A projection's part, as summaries have it. */
interface PartShape extends RowUsage {
  readonly name: string;
  readonly ended: RunEnd | "failed";
  readonly from: number;
  readonly to: number;
  readonly events: number;
  readonly skipped: readonly number[];
  readonly parked: readonly number[];
  readonly error?: Error | undefined;
}

/** A store whose status gives lag: the D1 and Durable Object stores. */
interface StatusStore {
  status(name: string, options?: { newest?: unknown; eventTimes?: EventTimes | undefined; budget?: QueryBudget | undefined }): Promise<ProjectionStatus>;
}

/** A run's end, as the recorders are told of it: its summary, or its error with what the budget saw it spend. */
export type RunResult =
  | { readonly summary: SummaryShape; readonly parts: readonly PartShape[] }
  | { readonly error: unknown; readonly parts: readonly PartShape[]; readonly queries?: number | undefined; readonly rows?: RowUsage | undefined };

/**
 * Runs `run` and reports it to the recorders of `metrics`, whether it
 * resolves (its summary, with `partsOf` its projections) or rejects (`failed`
 * says what is known then); resolves or rejects as `run` did.
 */
export async function reported<Summary extends SummaryShape>(
  metrics: CheckedMetrics,
  kind: "runner" | "group",
  name: string,
  store: unknown,
  budget: QueryBudget,
  run: () => Promise<Summary>,
  partsOf: (summary: Summary) => readonly PartShape[],
  failed: (error: unknown) => RunResult | undefined = () => undefined,
): Promise<Summary> {
  const startedAt = Date.now();
  const spentBefore = budget.spent;
  const rowsBefore = budget.rows;
  // The recorders and the lag reads never spend the queries other runs on this budget keep for their leases.
  const { budget: view } = withReserve(budget, 0);
  let summary: Summary;
  try {
    summary = await run();
  } catch (error) {
    // What the run spent before it failed, as its budget saw it (exact unless other runs spent the same budget meanwhile).
    const result = failed(error) ?? { error, parts: [], queries: budget.spent - spentBefore, rows: rowsSince(rowsBefore, budget.rows) };
    await reportRun(metrics, kind, name, store, result, startedAt, view);
    throw error;
  }
  await reportRun(metrics, kind, name, store, { summary, parts: partsOf(summary) }, startedAt, view);
  return summary;
}

/**
 * Reports a run to the recorders of `metrics`: reads lag when asked (on
 * `budget`; a status that cannot be read leaves it `undefined`), then calls
 * each recorder, logging what they throw.
 */
async function reportRun(
  metrics: CheckedMetrics,
  kind: "runner" | "group",
  name: string,
  store: unknown,
  result: RunResult,
  startedAt: number,
  budget: QueryBudget,
): Promise<void> {
  const lags = await readLags(metrics, store, result.parts, budget);
  const projections = result.parts.map((part, index): ProjectionReport => ({
    name: part.name,
    ended: part.ended,
    from: part.from,
    to: part.to,
    events: part.events,
    skipped: part.skipped.length,
    parked: part.parked.length,
    rowsRead: part.rowsRead,
    rowsWritten: part.rowsWritten,
    ownRowsRead: part.ownRowsRead,
    ownRowsWritten: part.ownRowsWritten,
    lag: lags[index]?.lag,
    oldestUnappliedAgeMs: lags[index]?.oldestUnappliedAgeMs,
    error: part.error === undefined ? undefined : messageOf(part.error),
  }));
  const events = projections.reduce((sum, part) => sum + part.events, 0);
  const durationMs = Math.max(0, Date.now() - startedAt);
  const report: RunReport =
    "summary" in result
      ? {
          kind,
          name,
          ended: result.summary.ended,
          caughtUp: result.summary.caughtUp,
          events,
          batches: result.summary.batches,
          queries: result.summary.queries,
          durationMs,
          rowsRead: result.summary.rowsRead,
          rowsWritten: result.summary.rowsWritten,
          ownRowsRead: result.summary.ownRowsRead,
          ownRowsWritten: result.summary.ownRowsWritten,
          error: projections.find((part) => part.error !== undefined)?.error,
          projections,
        }
      : { kind, name, ended: "failed", caughtUp: false, events, batches: 0, queries: result.queries ?? 0, durationMs, ...(result.rows ?? NO_ROWS), error: messageOf(result.error), projections };
  for (const recorder of metrics.recorders) {
    try {
      await recorder(report, { budget });
    } catch (error) {
      console.error(`checkpointstore-d1: a metrics recorder of ${JSON.stringify(name)} failed (the run's result stands): ${messageOf(error)}`);
    }
  }
}

/** Each part's lag and oldest unapplied age, when asked and the store can tell: one status read per part, in parallel. */
async function readLags(
  metrics: CheckedMetrics,
  store: unknown,
  parts: readonly PartShape[],
  budget: QueryBudget,
): Promise<(Pick<ProjectionStatus, "lag" | "oldestUnappliedAgeMs"> | undefined)[]> {
  const asked = metrics.status;
  if (asked === undefined || !hasMethods(store, ["status"])) return parts.map(() => undefined);
  const statusStore = store as StatusStore;
  return Promise.all(
    parts.map(async (part) => {
      try {
        const status = await statusStore.status(part.name, { newest: asked.newest, eventTimes: asked.eventTimes, budget });
        return { lag: status.lag, oldestUnappliedAgeMs: status.oldestUnappliedAgeMs };
      } catch {
        return undefined; // the budget is spent, or the read failed: the report says "unknown"
      }
    }),
  );
}
