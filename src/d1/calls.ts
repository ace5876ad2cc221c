// What every call of the D1 store builds on: the binding, the one retry loop
// (`withRetry`), the check that statements come from that binding, the
// checkpoint load, keyset pages, and the positions this isolate has seen
// (the guesses of `loadAndQuery`). Every round trip goes through `batch`,
// `first`, `all` or `run` here, which count its queries against the call's
// budget before sending, and after it, the rows D1 reports for each
// statement: the caller's (the statements it handed in) or the package's own.
import type { LoadResult } from "../core/store.js";
import { LOAD_SQL, loadResult, pageBindings, pageOf, pageSql, VERSION_STATE_SQL, type PageColumns, type PageRow } from "../sql/checkpoints.js";
import type { D1Client } from "./client.js";
import { CheckpointTypeError, type CheckpointOperation } from "../core/errors.js";
import type { KeysetOptions, Page, PageRequest } from "../core/keyset.js";
import { withRetry, type RetriedCall, type RetryPolicy } from "./retry.js";
import { checkBudget, type QueryBudget } from "../core/query-budget.js";
import { checkWrites } from "../core/validate.js";

/** A row of the checkpoint load. */
export interface PositionRow {
  readonly position: unknown;
}

/**
 * The position this isolate last saw or wrote per binding and name: the guess
 * of `loadAndQuery`. Only a guess, checked in the same round trip; numbers,
 * never I/O objects, so sharing it across requests is safe.
 */
const rememberedPositions = new WeakMap<D1Client, Map<string, number>>();

/**
 * The caller's statements (those handed in and checked), for the rows they
 * cost; any other is the package's own. Which checkpoint a statement's rows
 * count for is the call's, or what the batch says (`batch(statements,
 * checkpoints)`), never the statement's: a caller may hand one statement in
 * for several checkpoints.
 */
const callerStatements = new WeakSet<D1PreparedStatement>();

/**
 * One D1 binding (or session) with the store's retry policy; a view made by
 * {@link D1Calls.budgeted} also counts every round trip against a budget.
 */
export class D1Calls {
  /** The D1 binding or session. */
  readonly db: D1Client;
  readonly #retry: RetryPolicy;
  readonly #prototype: { statement?: object | null };
  readonly #budget: QueryBudget | undefined;
  readonly #operation: CheckpointOperation;
  readonly #checkpoint: string | undefined;

  constructor(
    db: D1Client,
    retry: RetryPolicy,
    scope?: { budget: QueryBudget | undefined; operation: CheckpointOperation; checkpoint: string | undefined; prototype: { statement?: object | null } },
  ) {
    this.db = db;
    this.#retry = retry;
    this.#prototype = scope?.prototype ?? {};
    this.#budget = scope?.budget;
    this.#operation = scope?.operation ?? "run";
    this.#checkpoint = scope?.checkpoint;
  }

  /** This binding for one operation: `budget` (checked, as `options.budget`) counts its round trips. */
  budgeted(operation: CheckpointOperation, checkpoint: string | undefined, budget: unknown): D1Calls {
    const checked = checkBudget(operation, checkpoint, budget);
    return new D1Calls(this.db, this.#retry, { budget: checked, operation, checkpoint, prototype: this.#prototype });
  }

  /** The budget of this view, if any. */
  get budget(): QueryBudget | undefined {
    return this.#budget;
  }

  /**
   * `db.batch(statements)`, counted; each statement's rows for the
   * checkpoint at its index in `checkpoints` (a group commit's parts), or
   * else for this call's.
   */
  async batch<Row = unknown>(statements: readonly D1PreparedStatement[], checkpoints?: readonly (string | undefined)[]): Promise<D1Result<Row>[]> {
    this.#budget?.spend(statements.length, this.#operation, this.#checkpoint);
    const results = await this.db.batch<Row>([...statements]);
    statements.forEach((statement, index) => {
      this.#countRows(statement, results[index], checkpoints === undefined ? this.#checkpoint : checkpoints[index]);
    });
    return results;
  }

  /** The first row of `statement.all()`, counted (`all`, not `first`, for the rows D1 reports). */
  async first<Row = Record<string, unknown>>(statement: D1PreparedStatement): Promise<Row | null> {
    return (await this.all<Row>(statement)).results[0] ?? null;
  }

  /** `statement.all()`, counted. */
  async all<Row = Record<string, unknown>>(statement: D1PreparedStatement): Promise<D1Result<Row>> {
    this.#budget?.spend(1, this.#operation, this.#checkpoint);
    const result = await statement.all<Row>();
    this.#countRows(statement, result, this.#checkpoint);
    return result;
  }

  /** `statement.run()`, counted. */
  async run(statement: D1PreparedStatement): Promise<D1Result> {
    this.#budget?.spend(1, this.#operation, this.#checkpoint);
    const result = await statement.run();
    this.#countRows(statement, result, this.#checkpoint);
    return result;
  }

  /** Adds the rows D1 reported for one statement to the budget's tally, for `checkpoint`: the caller's, or the package's own. */
  #countRows(statement: D1PreparedStatement, result: D1Result | undefined, checkpoint: string | undefined): void {
    const meta = (result as { meta?: { rows_read?: unknown; rows_written?: unknown } } | undefined)?.meta;
    this.#budget?.countRows({ read: meta?.rows_read as number, written: meta?.rows_written as number, checkpoint, own: !callerStatements.has(statement) });
  }

  /** Runs one D1 call under the store's retry policy (decision 0006). */
  call<T>(call: RetriedCall<T>): Promise<T> {
    return withRetry(this.#retry, call);
  }

  /** Remembers `position` (0 for "no checkpoint", which `loadAndQuery` reads after the same way). */
  remember(name: string, position: number): void {
    let positions = rememberedPositions.get(this.db);
    if (positions === undefined) rememberedPositions.set(this.db, (positions = new Map<string, number>()));
    positions.set(name, position);
  }

  /** The position this isolate last saw for `name` on this binding, if any. */
  remembered(name: string): number | undefined {
    return rememberedPositions.get(this.db)?.get(name);
  }

  /** Checks statements: a dense array of prepared statements of this binding's kind; returns a copy. */
  checkStatements(operation: CheckpointOperation, name: string, statements: unknown, argument = "statements"): D1PreparedStatement[] {
    const prototype = (this.#prototype.statement ??= Object.getPrototypeOf(this.db.prepare(LOAD_SQL)) as object | null);
    const isStatement = (item: unknown): item is D1PreparedStatement =>
      typeof item === "object" && item !== null && Object.getPrototypeOf(item) === prototype;
    const checked = checkWrites(operation, name, statements, isStatement, "D1PreparedStatement (from db.prepare)", argument);
    for (const statement of checked) callerStatements.add(statement);
    return checked;
  }

  /** Checks one query statement. */
  checkQuery(operation: CheckpointOperation, name: string, query: unknown, argument = "query"): D1PreparedStatement {
    const [statement] = this.checkStatements(operation, name, [query], argument);
    if (statement === undefined) throw new CheckpointTypeError(operation, name, argument, "must be a D1PreparedStatement");
    return statement;
  }

  /** The load statement of `name`. */
  loadStatement(name: string): D1PreparedStatement {
    return this.db.prepare(LOAD_SQL).bind(name);
  }

  /** The stored state of a projection version (see `VERSION_STATE_SQL`), unchecked: one round trip, not retried. */
  async versionState(name: string, version: number): Promise<unknown> {
    return (await this.first<{ state: unknown }>(this.db.prepare(VERSION_STATE_SQL).bind(name, version)))?.state;
  }

  /** Loads the checkpoint of `name`: one round trip, not retried (callers wrap it in {@link D1Calls.call}). */
  async load(operation: CheckpointOperation, name: string): Promise<LoadResult> {
    return loadResult(operation, name, await this.first<PositionRow>(this.loadStatement(name)));
  }

  /** The page reader of a keyset listing of `columns`, each page one retried round trip. */
  pages<Item>(
    operation: CheckpointOperation,
    columns: PageColumns,
    listing: KeysetOptions,
    toItem: (row: PageRow, name: string) => Item,
  ): (request: PageRequest) => Promise<Page<Item>> {
    return async (request) => {
      const rows = await this.call({
        operation,
        checkpoint: undefined,
        signal: listing.signal,
        kind: "read",
        send: async () => (await this.all<PageRow>(this.db.prepare(pageSql(columns, request)).bind(...pageBindings(request)))).results,
      });
      return pageOf(rows, toItem);
    };
  }
}
