// The D1 query budget of an invocation. D1 counts every statement a Worker
// invocation sends (each one in a `batch()` too) and stops at 1,000 on the
// paid plan, 50 on the free plan. A budget counts the queries the store sends
// (retries and checks included) right before each round trip, and refuses a
// round trip that would go over it, before anything is sent.
import { CheckpointStoreError, CheckpointTypeError, type CheckpointOperation } from "./errors.js";
import { D1_QUERIES_PER_INVOCATION } from "./d1-limits.js";
import { checkInteger } from "./validate.js";
import { rowCount, RowTally, type CountedRows, type RowUsage } from "./row-usage.js";

/**
 * A round trip did not fit in the query budget, and was not sent. When
 * `needed > limit` it never could: one batch alone is larger than the whole
 * budget. A runner ends its run on the first kind (`ended: "budget"`) and
 * rejects with the second.
 *
 * @category Errors
 */
export class QueryBudgetError extends CheckpointStoreError {
  /** The class name, for logs. */
  override name = "QueryBudgetError";
  /** The queries the round trip would have sent. */
  readonly needed: number;
  /** The queries left in the budget. */
  readonly remaining: number;
  /** The whole budget. */
  readonly limit: number;

  constructor(operation: CheckpointOperation, checkpoint: string | undefined, needed: number, budget: { remaining: number; limit: number }) {
    super(
      operation,
      checkpoint,
      needed > budget.limit
        ? `a round trip of ${needed} D1 queries is larger than the whole query budget of ${budget.limit}: nothing was sent (use a smaller batchSize, or set-based writes)`
        : `a round trip of ${needed} D1 queries does not fit in the ${budget.remaining} left of the query budget of ${budget.limit}: nothing was sent`,
    );
    this.needed = needed;
    this.remaining = budget.remaining;
    this.limit = budget.limit;
  }
}

/**
 * Counts the D1 queries an invocation sends against a limit, as D1 counts
 * them: one per statement, each statement of a `batch()` included, and every
 * retry and check. Pass one to `ProjectionRunner.run({ budget })`, to
 * `ProjectionGroup.run({ budget })` or to any store call (`{ budget }`); share
 * one between several runs of the same invocation. A round trip that would go
 * over it is refused with a {@link QueryBudgetError} before it is sent.
 *
 * It also adds up the rows D1 reports for what it counted (`rows`, and
 * `rowsOf(checkpoint)`): that is where a run's summary takes its `rowsRead`
 * and `rowsWritten` from.
 *
 * @example
 * ```ts
 * const budget = new QueryBudget(950); // of D1's 1,000 per invocation; keep some for your own queries
 * await balances.run({ budget });
 * await histories.run({ budget }); // goes on with what is left
 * console.log(budget.spent);
 * ```
 *
 * @category Limits
 */
export class QueryBudget {
  /** The most queries this budget lets through. */
  readonly limit: number;
  #spent = 0;
  readonly #rows = new RowTally();

  /** A budget of `limit` queries: a whole number from 1 up (default {@link D1_QUERIES_PER_INVOCATION}). */
  constructor(limit: number = D1_QUERIES_PER_INVOCATION) {
    this.limit = checkInteger("configure", undefined, limit, "limit", { min: 1, max: Number.MAX_SAFE_INTEGER, fallback: D1_QUERIES_PER_INVOCATION });
  }

  /** The queries counted so far. */
  get spent(): number {
    return this.#spent;
  }

  /** The queries left. */
  get remaining(): number {
    const parent = viewOf.get(this);
    if (parent === undefined) return this.limit - this.#spent;
    // A counting view sees what its parent has left; a reserve view also keeps back what every run holds of the root.
    return counting.has(this) ? parent.remaining : Math.max(0, parent.remaining - (reserved.get(rootOf(parent)) ?? 0));
  }

  /**
   * Counts `queries` about to be sent in one round trip; throws
   * {@link QueryBudgetError} and counts nothing when they do not fit. Call it
   * for queries of your own that share the invocation's limit.
   */
  spend(queries: number, operation: CheckpointOperation = "run", checkpoint?: string): void {
    const count = checkInteger(operation, checkpoint, queries, "queries", { min: 0, max: Number.MAX_SAFE_INTEGER, fallback: 0 });
    if (count > this.remaining) throw new QueryBudgetError(operation, checkpoint, count, this);
    viewOf.get(this)?.spend(count, operation, checkpoint);
    this.#spent += count;
  }

  /** The rows D1 reported for the statements counted so far (see {@link RowUsage}). */
  get rows(): RowUsage {
    return this.#rows.total;
  }

  /** The part of {@link QueryBudget.rows} spent for one checkpoint (its writes, its checkpoint, its parked events). */
  rowsOf(checkpoint: string): RowUsage {
    return this.#rows.of(checkpoint);
  }

  /**
   * Adds rows D1 reported (`meta.rows_read`, `meta.rows_written`) to
   * {@link QueryBudget.rows}. The stores call it for every statement they
   * send; call it for queries of your own to see them in the same tally.
   * Anything but a non-negative number counts as 0.
   */
  countRows(rows: CountedRows): void {
    const counted: CountedRows = { read: rowCount(rows.read), written: rowCount(rows.written), checkpoint: rows.checkpoint, own: rows.own === true };
    if (counted.read === 0 && counted.written === 0) return;
    viewOf.get(this)?.countRows(counted);
    this.#rows.add(counted);
  }
}

/** The budget each view (made by {@link withReserve} or {@link countingView}) spends on. */
const viewOf = new WeakMap<QueryBudget, QueryBudget>();
/** The views that only count: they keep nothing back. */
const counting = new WeakSet<QueryBudget>();
/** Queries held back of a root budget, by all the runs that share it, for what they must still send at the end. */
const reserved = new WeakMap<QueryBudget, number>();

/** The budget a view spends on in the end: the caller's own. */
function rootOf(budget: QueryBudget): QueryBudget {
  let root = budget;
  for (let parent = viewOf.get(root); parent !== undefined; parent = viewOf.get(root)) root = parent;
  return root;
}

/**
 * A view of `budget` that spends on it and counts what it spent itself
 * (`spent`), with `budget`'s limit and what it has left: one per run, so
 * that a run's summary reports its own queries even while other runs spend
 * the same budget at the same time.
 */
export function countingView(budget: QueryBudget): QueryBudget {
  const view = new QueryBudget(budget.limit);
  viewOf.set(view, budget);
  counting.add(view);
  return view;
}

/** A run's view of a budget, and the way to give its reserve back. */
export interface BudgetView {
  /** Spends on the budget, but never into what any run holds back. */
  readonly budget: QueryBudget;
  /** Gives the reserve back (once the run has sent what it kept it for). */
  readonly free: () => void;
}

/**
 * A view of `budget` for one run that holds `reserve` queries of it back for
 * what the run must still send at the end (a leased run's release, sent on
 * `budget` itself). The views of runs sharing one budget, even at the same
 * time, never spend into each other's reserves.
 */
export function withReserve(budget: QueryBudget, reserve: number): BudgetView {
  const view = new QueryBudget(Math.max(1, budget.limit - reserve));
  viewOf.set(view, budget);
  // Held of the root, so that runs with views of views of one budget still see each other's reserves.
  const root = rootOf(budget);
  reserved.set(root, (reserved.get(root) ?? 0) + reserve);
  let held = reserve;
  return {
    budget: view,
    free: () => {
      reserved.set(root, Math.max(0, (reserved.get(root) ?? 0) - held));
      held = 0;
    },
  };
}

/** Checks a `budget` option: `undefined` or a {@link QueryBudget}. */
export function checkBudget(operation: CheckpointOperation, checkpoint: string | undefined, value: unknown, argument = "options.budget"): QueryBudget | undefined {
  if (value === undefined || value instanceof QueryBudget) return value;
  throw new CheckpointTypeError(operation, checkpoint, argument, "must be a QueryBudget");
}
