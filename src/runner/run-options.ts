// What a run's options become, for ProjectionRunner and ProjectionGroup
// alike: the batch size, the batch limit, the signal, the query budget (with
// one query kept back to let go of a lease), and the lease option.
import { CheckpointTypeError } from "../core/errors.js";
import { countingView, QueryBudget, QueryBudgetError, withReserve } from "../core/query-budget.js";
import { DEFAULT_LEASE_TTL_MS, MAX_LEASE_TTL_MS } from "../core/lease.js";
import { type RunLease } from "../core/store.js";
import { checkMetrics, type CheckedMetrics, type RunMetrics } from "./metrics.js";
import { checkFunction, checkInteger, checkMethods, checkName, checkOptions, checkSignal, hasMethods, keysOf } from "../core/validate.js";

const DEFAULT_BATCH_SIZE = 100;
const MAX_BATCH_SIZE = 10_000;

/**
 * Options of `ProjectionRunner.run` and `ProjectionGroup.run`.
 *
 * @category Runner
 */
export interface RunOptions {
  /**
   * The most batches this run commits. Use it to stay under D1's
   * queries-per-invocation limit (1,000; 50 on the free plan): see the
   * README's per-invocation budget.
   */
  readonly maxBatches?: number | undefined;
  /** Stops the run before its next round trip. */
  readonly signal?: AbortSignal | undefined;
  /**
   * Caps the D1 queries the run sends, counted as D1 counts them (each
   * statement of a batch, every retry and check; a `readEvents` call counts
   * as one): a number, or a {@link QueryBudget} shared by several runs of one
   * invocation. The run ends (`ended: "budget"`, `caughtUp: false`) before a
   * round trip that would go over it; a single batch larger than the whole
   * budget is a {@link QueryBudgetError} and nothing of it is sent. With a
   * lease, one query is kept back to let go of it. Default: no cap (the
   * summary still counts `queries`).
   */
  readonly budget?: number | QueryBudget | undefined;
  /** Who gets this run's report, instead of the runner's or group's own `metrics` (see {@link RunMetrics}). */
  readonly metrics?: RunMetrics | undefined;
}

const RUN_KEYS = keysOf<RunOptions>()(["maxBatches", "signal", "budget", "metrics"]);

/**
 * Why a run ended: it saw the end of the log, another run moved the
 * checkpoint, another run held the lease, `maxBatches` was reached, the
 * next round trip did not fit in the query budget; and for a runner with a
 * `version`: the version is neither live nor building (`"inactive"`: retired,
 * dropped, or its rebuild not started), or it was switched or dropped during
 * the run (`"switched"`: the last batch applied nothing; the next run takes
 * the version's new role).
 *
 * @category Runner
 */
export type RunEnd = "caughtUp" | "conflict" | "yielded" | "maxBatches" | "budget" | "inactive" | "switched";

/** What a run's store calls carry: its signal, its query budget, and the budget the lease's release may use. */
export interface RunCalls {
  readonly signal: AbortSignal | undefined;
  readonly budget: QueryBudget;
  readonly release: QueryBudget;
  /** Gives back the query kept for the release, once the run is over. */
  readonly done: () => void;
}

/** A run's options, checked. */
export interface ParsedRun {
  readonly maxBatches: number;
  readonly signal: AbortSignal | undefined;
  /** The run's own view of its budget (the caller's, or one without a cap): it counts only this run's queries. */
  readonly budget: QueryBudget;
  /** This run's lease, when the runner has a lease TTL. */
  readonly lease: RunLease | undefined;
  readonly calls: RunCalls;
}

/** Checks a run's options, with the budget made a {@link QueryBudget} (none: one without a cap); nothing else is made. */
export function checkRunOptions(name: string, options: RunOptions | undefined): { maxBatches: number; signal: AbortSignal | undefined; budget: QueryBudget } {
  const { maxBatches: limit, signal: rawSignal, budget: rawBudget } = checkOptions("run", name, options, "options", RUN_KEYS);
  const maxBatches = checkInteger("run", name, limit, "options.maxBatches", { min: 1, max: Number.MAX_SAFE_INTEGER, fallback: Number.POSITIVE_INFINITY });
  return { maxBatches, signal: checkSignal("run", name, rawSignal), budget: parseRunBudget(name, rawBudget) };
}

/** Checks a run's options (`name` is the runner's or the group's). */
export function parseRun(name: string, options: RunOptions | undefined, leaseTtlMs: number | undefined): ParsedRun {
  const { maxBatches, signal, budget: given } = checkRunOptions(name, options);
  // The run's own count of what it sends, whoever else spends the same budget meanwhile (its summary's `queries`).
  const budget = countingView(given);
  const lease: RunLease | undefined = leaseTtlMs === undefined ? undefined : { holder: crypto.randomUUID(), ttlMs: leaseTtlMs };
  // A leased run keeps one query back to let go of its lease when it ends early; runs sharing a budget never spend each other's.
  const view = withReserve(budget, lease === undefined ? 0 : 1);
  const calls: RunCalls = { signal, budget: view.budget, release: budget, done: () => { view.free(); } };
  return { maxBatches, signal, budget, lease, calls };
}

/** The `budget` of a run's options: a number or a shared budget; none counts without a cap. */
function parseRunBudget(name: string, value: unknown): QueryBudget {
  if (value instanceof QueryBudget) return value;
  if (value === undefined) return new QueryBudget(Number.MAX_SAFE_INTEGER);
  if (typeof value !== "number") throw new CheckpointTypeError("run", name, "options.budget", "must be a number or a QueryBudget");
  return new QueryBudget(checkInteger("run", name, value, "options.budget", { min: 1, max: Number.MAX_SAFE_INTEGER, fallback: 1 }));
}

/** Whether an error is the budget refusing a round trip that could fit in a whole budget: the run ends there, nothing of it sent. */
export function endsOnBudget(error: unknown): boolean {
  return error instanceof QueryBudgetError && error.needed <= error.limit;
}

/** Events per batch: 1 to 10,000, default 100. */
export function parseBatchSize(name: string, value: unknown): number {
  return checkInteger("configure", name, value, "options.batchSize", { min: 1, max: MAX_BATCH_SIZE, fallback: DEFAULT_BATCH_SIZE });
}

/** The lease of a runner's options, checked: its TTL in milliseconds, or `undefined` for none. */
export function parseLease(name: string, value: unknown, pipelined: boolean): number | undefined {
  if (value === undefined || value === false) return undefined;
  if (!pipelined) throw new CheckpointTypeError("configure", name, "options.lease", "needs eventsQuery (the lease is claimed in the load's batch)");
  if (value === true) return DEFAULT_LEASE_TTL_MS;
  if (typeof value !== "object" || value === null) throw new CheckpointTypeError("configure", name, "options.lease", "must be a boolean or { ttlMs }");
  const { ttlMs } = checkOptions<{ ttlMs?: unknown }>("configure", name, value, "options.lease", ["ttlMs"]);
  return checkInteger("configure", name, ttlMs, "options.lease.ttlMs", { min: 1, max: MAX_LEASE_TTL_MS, fallback: DEFAULT_LEASE_TTL_MS });
}

/** What a runner or a group is configured with beside its projections, checked. */
export interface ParsedSource<Store, Pipelined, Event> {
  /** The options object, checked to be one, for the caller's own fields. */
  readonly raw: Record<string, unknown>;
  readonly name: string;
  readonly store: Store;
  /** The store as a pipelining one, when `eventsQuery` is given (checked to have the pipelined methods). */
  readonly pipelined: Pipelined | undefined;
  readonly batchSize: number;
  readonly readEvents: ((after: number, limit: number) => Promise<readonly Event[]>) | undefined;
  readonly eventsQuery: ((after: number, limit: number) => D1PreparedStatement) | undefined;
  readonly leaseTtlMs: number | undefined;
  readonly metrics: CheckedMetrics | undefined;
}

/**
 * Checks the options every runner and group shares: the name, a store with
 * `methods`, exactly one event source (`eventsQuery` needs a store with
 * `pipelined`), the batch size, a lease (which needs `releaseLease`), and metrics.
 */
export function parseSource<Store extends object, Pipelined extends object, Event>(
  options: unknown,
  known: readonly string[],
  methods: readonly string[],
  pipelinedMethods: readonly string[],
): ParsedSource<Store, Pipelined, Event> {
  if (options === undefined) throw new CheckpointTypeError("configure", undefined, "options", "must be an object, got undefined");
  const raw = checkOptions<Record<string, unknown>>("configure", undefined, options as Record<string, unknown>, "options", known);
  const name = checkName("configure", raw.name, "options.name");
  const store = checkMethods<Store>("configure", name, raw.store, "options.store", methods, `a store with ${methods.join(", ")}`);
  type ReadEvents = (after: number, limit: number) => Promise<readonly Event[]>;
  type EventsQuery = (after: number, limit: number) => D1PreparedStatement;
  const readEvents = checkFunction("configure", name, raw.readEvents as ReadEvents | undefined, "options.readEvents");
  const eventsQuery = checkFunction("configure", name, raw.eventsQuery as EventsQuery | undefined, "options.eventsQuery");
  if ((readEvents === undefined) === (eventsQuery === undefined)) {
    throw new CheckpointTypeError("configure", name, "options.readEvents", "give exactly one of readEvents and eventsQuery");
  }
  let pipelined: Pipelined | undefined;
  if (eventsQuery !== undefined) {
    if (!hasMethods<Pipelined>(store, pipelinedMethods)) {
      throw new CheckpointTypeError("configure", name, "options.store", "must pipeline queries (a D1CheckpointStore) to use eventsQuery");
    }
    pipelined = store;
  }
  const leaseTtlMs = parseLease(name, raw.lease, eventsQuery !== undefined);
  if (leaseTtlMs !== undefined && !hasMethods(store, ["releaseLease"])) {
    throw new CheckpointTypeError("configure", name, "options.store", "must offer releaseLease (a D1CheckpointStore) to use a lease");
  }
  const metrics = checkMetrics(name, raw.metrics, "options.metrics");
  return { raw, name, store, pipelined, batchSize: parseBatchSize(name, raw.batchSize), readEvents, eventsQuery, leaseTtlMs, metrics };
}
