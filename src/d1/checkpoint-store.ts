// The D1 store: the synapse Go store's save, load, reset and listing on a D1
// binding, plus commits with a read model. Its pipelined calls (a query in
// the same round trip, run leases) live in d1-pipelined.ts, its operations
// (parked events, status) in d1-operations.ts, the checkpoint write and its
// retries in d1-commit.ts, and what all of them build on in d1-calls.ts.
import type { CheckpointCommit, CheckpointEntry, CheckpointStore, CommitOptions, ListOptions, LoadAndQueryOptions, LoadManyAndQueryOptions, LoadManyResult, LoadResult, OperationOptions, PipelinedGroupStore, PipelinedProjectionStore, ProjectionVersion, RebuildOptions, ReplayOptions, RunLease, SaveOptions, SwitchOptions, VersionState } from "../core/store.js";
import { RESET_SQL } from "../sql/checkpoints.js";
import { D1Calls } from "./calls.js";
import type { D1Client } from "./client.js";
import { saveStatement, writeCheckpoint } from "./commit.js";
import { commitMany, loadMany, loadManyAndQuery } from "./group.js";
import { parked, replayParked, status, statuses } from "./operations.js";
import { dropVersion, startRebuild, switchVersion, versions, versionState } from "./versions.js";
import { commitAndQuery, commitAndRelease, loadAndQuery, releaseLease } from "./pipelined.js";
import { keysetPages, parseListOptions } from "../core/keyset.js";
import { checkParkRequests, type ParkedEvent, type ParkedListOptions } from "../sql/parked-events.js";
import type { ProjectionStatus, StatusListOptions, StatusOptions } from "../sql/status.js";
import { resolveRetry, type RetryOptions } from "./retry.js";
import { applySchema } from "./migrate.js";
import { waitForCheckpoint, type WaitForOptions } from "../core/wait-for.js";
import { checkBoolean, checkMethods, checkOptions, keysOf, toPosition } from "../core/validate.js";
import { COMMIT_KEYS, parseNamed, parseSave, SAVE_KEYS } from "../core/arguments.js";

/**
 * Options of the {@link D1CheckpointStore} constructor.
 *
 * @category Stores
 */
export interface D1CheckpointStoreOptions {
  /**
   * How transient D1 errors are retried; `false` turns retries off. Default:
   * 5 attempts with exponential backoff and full jitter (see `RetryOptions`).
   * Only what is safe to repeat is retried: see the README's "Guarantees".
   */
  readonly retry?: RetryOptions | false | undefined;
}

/**
 * Options of {@link D1CheckpointStore.create}.
 *
 * @category Stores
 */
export interface CreateOptions extends D1CheckpointStoreOptions {
  /**
   * Whether to apply `SCHEMA` first (default `true`), once per isolate and
   * binding. `false` is the Go store's `WithoutMigrate`: the schema is left to
   * `wrangler d1 migrations apply` or your own tooling.
   */
  readonly migrate?: boolean | undefined;
}

/** D1 clients whose schema this isolate has applied; a Worker builds a store per request. */
const migratedClients = new WeakSet<D1Client>();

/** The keys of `saveStatement`'s options (a statement takes no signal). */
const SAVE_STATEMENT_KEYS = keysOf<Omit<SaveOptions, "signal">>()(["budget", "expected", "fence"]);

/**
 * A {@link CheckpointStore} on Cloudflare D1: one row per projection in
 * `checkpoints(name TEXT PRIMARY KEY, position INTEGER NOT NULL)`, the schema
 * of synapse's Go SQLite store.
 *
 * The store wraps a D1 binding (or a `withSession()` session) that the caller
 * owns. It is cheap to build: make one per request.
 *
 * Beyond the Go store it offers conditional saves (`expected`), and
 * {@link D1CheckpointStore.commit} / {@link D1CheckpointStore.saveStatement}
 * to commit a read model and its checkpoint in one D1 batch.
 *
 * @example
 * ```ts
 * const store = new D1CheckpointStore(env.DB);
 * const { position } = await store.load("balances");
 * const events = await readEventsAfter(env.DB, position, 100);
 * const last = events.at(-1);
 * if (last !== undefined) {
 *   // read model and checkpoint in one transaction, only if no other run moved it
 *   await store.commit("balances", last.position, events.map(creditStatement), { expected: position });
 * }
 * ```
 *
 * @category Stores
 */
export class D1CheckpointStore implements CheckpointStore, PipelinedProjectionStore, PipelinedGroupStore {
  /** The D1 binding or session the store talks to. */
  readonly db: D1Client;
  readonly #calls: D1Calls;

  /** Wraps `db`. Never migrates: use {@link D1CheckpointStore.create} or `migrate()` for that. */
  constructor(db: D1Client, options?: D1CheckpointStoreOptions) {
    this.db = checkMethods<D1Client>("configure", undefined, db, "db", ["prepare", "batch"], "a D1Database or D1DatabaseSession");
    this.#calls = new D1Calls(this.db, resolveRetry("configure", checkOptions("configure", undefined, options, "options", ["retry"]).retry));
  }

  /**
   * Builds a store and, unless `{ migrate: false }`, applies `SCHEMA` first.
   * The schema is applied once per isolate and binding (one `batch()` round
   * trip), not once per request; concurrent first requests of a fresh isolate
   * may each apply it, which is harmless (`IF NOT EXISTS`).
   *
   * @example
   * ```ts
   * const store = await D1CheckpointStore.create(env.DB); // no wrangler migrations needed
   * ```
   */
  static async create(db: D1Client, options?: CreateOptions): Promise<D1CheckpointStore> {
    const { retry, migrate: rawMigrate } = checkOptions("configure", undefined, options, "options", ["retry", "migrate"]);
    const store = new D1CheckpointStore(db, retry === undefined ? undefined : { retry });
    const migrate = checkBoolean("configure", undefined, rawMigrate, "options.migrate", true);
    if (migrate && !migratedClients.has(db)) {
      await store.#calls.call({
        operation: "migrate",
        checkpoint: undefined,
        signal: undefined,
        kind: "idempotent",
        send: () => applySchema(db),
      });
      migratedClients.add(db);
    }
    return store;
  }

  /** Stores `position` for `name` (an upsert, or with `expected` a compare-and-set). One round trip. */
  async save(name: string, position: number, options?: SaveOptions): Promise<void> {
    const args = parseSave("save", name, position, options, SAVE_KEYS);
    await writeCheckpoint(this.#calls.budgeted("save", args.name, options?.budget), "save", args, []);
  }

  /** Reads the checkpoint of `name`. One round trip. */
  async load(name: string, options?: OperationOptions): Promise<LoadResult> {
    const { name: valid, signal } = parseNamed("load", name, options);
    const calls = this.#calls.budgeted("load", valid, options?.budget);
    const checkpoint = await calls.call({ operation: "load", checkpoint: valid, signal, kind: "read", send: () => calls.load("load", valid) });
    calls.remember(valid, checkpoint.position);
    return checkpoint;
  }

  /** Deletes the checkpoint of `name`; no error when there is none. One round trip. */
  async reset(name: string, options?: OperationOptions): Promise<void> {
    const { name: valid, signal } = parseNamed("reset", name, options);
    const calls = this.#calls.budgeted("reset", valid, options?.budget);
    await calls.call({
      operation: "reset",
      checkpoint: valid,
      signal,
      kind: "idempotent",
      send: () => calls.run(this.db.prepare(RESET_SQL).bind(valid)),
    });
    calls.remember(valid, 0);
  }

  /**
   * Resolves when the checkpoint of `name` has reached `position`: polls
   * `load` (one round trip each) with backoff until `timeoutMs`, then rejects
   * with `CheckpointTimeoutError`. See {@link waitForCheckpoint}.
   */
  waitFor(name: string, position: number, options?: WaitForOptions): Promise<LoadResult> {
    return waitForCheckpoint(this, name, position, options);
  }

  /**
   * The names in ascending order, one round trip per page (`WHERE name > ? ORDER BY name LIMIT ?`).
   * Rows whose name is not valid UTF-8 text (written by another tool: a blob,
   * bytes such as FE or FF) are skipped: no method of the store could address
   * them, and the listing goes on after their exact bytes.
   */
  names(options?: ListOptions): AsyncIterableIterator<string> {
    const listing = parseListOptions("names", options);
    const calls = this.#calls.budgeted("names", undefined, options?.budget);
    return keysetPages(listing, calls.pages<string>("names", "name", listing, (_row, name) => name));
  }

  /** The checkpoints in name order with their positions, one round trip per page; names as {@link D1CheckpointStore.names}. */
  entries(options?: ListOptions): AsyncIterableIterator<CheckpointEntry> {
    const listing = parseListOptions("entries", options);
    const calls = this.#calls.budgeted("entries", undefined, options?.budget);
    return keysetPages(
      listing,
      calls.pages<CheckpointEntry>("entries", "name, position", listing, (row, name) => ({
        name,
        position: toPosition("entries", name, row.position),
      })),
    );
  }

  /**
   * A statement that saves the checkpoint, for your own `db.batch([...])`.
   * With `expected`, the statement itself fails when the condition does not
   * hold, so D1 rolls back the whole batch; recognise that failure with
   * `isCheckpointConflict(error)`. Nothing is sent until you run it.
   *
   * @example
   * ```ts
   * await env.DB.batch([store.saveStatement("balances", 42, { expected: 41 }), ...readModelStatements]);
   * ```
   */
  saveStatement(name: string, position: number, options?: Omit<SaveOptions, "signal">): D1PreparedStatement {
    const { name: valid, position: at, expected, fence } = parseSave("saveStatement", name, position, options, SAVE_STATEMENT_KEYS);
    return saveStatement(this.#calls, valid, at, expected, true, fence);
  }

  /**
   * A statement that deletes the checkpoint, for your own `db.batch([...])`:
   * reset a projection and clear its read model in one transaction, so that
   * the rebuild starts from an empty read model. Nothing is sent until you run it.
   */
  resetStatement(name: string): D1PreparedStatement {
    return this.db.prepare(RESET_SQL).bind(parseNamed("resetStatement", name, undefined).name);
  }

  /**
   * Commits `statements` (your read-model writes) and the checkpoint save in
   * one `db.batch()`: one round trip, one transaction. With `expected`, a
   * moved checkpoint rejects with {@link CheckpointConflictError} and nothing
   * of the batch is applied. The checkpoint statement runs first, so a
   * conflict costs no read-model work. The statements are checked and copied
   * when `commit` is called: changing the array afterwards changes nothing.
   *
   * @example
   * ```ts
   * await store.commit("balances", 42, [creditAlice, debitBob], { expected: 41 });
   * ```
   */
  async commit(
    name: string,
    position: number,
    statements: readonly D1PreparedStatement[],
    options?: CommitOptions,
  ): Promise<void> {
    const args = parseSave("commit", name, position, options, COMMIT_KEYS);
    const calls = this.#calls.budgeted("commit", args.name, options?.budget);
    const writes = calls.checkStatements("commit", args.name, statements);
    await writeCheckpoint(calls, "commit", args, writes, undefined, checkParkRequests("commit", args.name, options?.parked, args.position));
  }

  /**
   * {@link D1CheckpointStore.commit} with `query` appended to the same batch:
   * one round trip commits the read model and the checkpoint and returns the
   * query's rows, typically the next events. The rows are returned only when
   * the batch committed; on a conflict nothing is applied and nothing is
   * returned. `ProjectionRunner` uses it with `eventsQuery`.
   *
   * @example
   * ```ts
   * const next = await store.commitAndQuery<Event>("balances", 200, statements,
   *   env.DB.prepare("SELECT * FROM events WHERE position > ?1 ORDER BY position LIMIT 100").bind(200),
   *   { expected: 100 });
   * ```
   */
  async commitAndQuery<Row>(
    name: string,
    position: number,
    statements: readonly D1PreparedStatement[],
    query: D1PreparedStatement,
    options?: CommitOptions,
  ): Promise<Row[]> {
    return commitAndQuery<Row>(this.#calls, name, position, statements, query, options);
  }

  /**
   * {@link D1CheckpointStore.commitAndQuery} for a run's last batch under a
   * run lease: the same batch also lets go of the lease (as `releaseLease`),
   * so a leased run ends without a round trip of its own. `held: true` when
   * another run noted work meanwhile: the lease is still this run's and `rows`
   * (the next events) are the work to go on with; otherwise `rows` is empty.
   * After a lost response that the check finds landed, only the renewal and
   * the query are sent again.
   */
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- the caller names the row type, as with D1's all<T>()
  async commitAndRelease<Row>(
    name: string,
    position: number,
    statements: readonly D1PreparedStatement[],
    lease: RunLease,
    query: D1PreparedStatement,
    options?: CommitOptions,
  ): Promise<{ readonly held: boolean; readonly rows: Row[] }> {
    return commitAndRelease<Row>(this.#calls, name, position, statements, lease, query, options);
  }

  /**
   * Loads the checkpoint and returns the rows of `query(checkpoint.position)`,
   * typically the events after it. When this isolate has seen the checkpoint
   * on this binding before, both go in one `batch()` (one round trip, one
   * consistent snapshot) with the last position seen as the guess; when there
   * is no guess, or it was wrong, the query is sent again after the loaded
   * position (a second round trip). `ProjectionRunner` uses it with `eventsQuery`.
   */
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- the caller names the row type, as with D1's all<T>()
  async loadAndQuery<Row>(
    name: string,
    query: (after: number) => D1PreparedStatement,
    options?: LoadAndQueryOptions,
  ): Promise<{ readonly checkpoint: LoadResult; readonly rows: Row[]; readonly leased: boolean }> {
    return loadAndQuery<Row>(this.#calls, name, query, options);
  }

  /**
   * The parked events of `name`, ascending by position, one round trip per
   * page (`WHERE name = ? AND position > ? ORDER BY position LIMIT ?`).
   *
   * @example
   * ```ts
   * for await (const event of store.parked("balances")) console.log(event.position, event.error);
   * ```
   */
  parked(name: string, options?: ParkedListOptions): AsyncIterableIterator<ParkedEvent> {
    return parked(this.#calls, name, options);
  }

  /**
   * Applies `statements` for the parked event at `position` of `name` and
   * removes it from the parked events, in one batch (one round trip, one
   * transaction), without moving the checkpoint. Resolves `false`, applying
   * nothing, when no such event is parked. `ProjectionRunner.replay` builds
   * the statements with the projection for you.
   */
  async replayParked(name: string, position: number, statements: readonly D1PreparedStatement[], options?: ReplayOptions): Promise<boolean> {
    return replayParked(this.#calls, name, position, statements, options);
  }

  /**
   * The status of `name`: position, whether a checkpoint exists, lag behind
   * `options.newest`, when the checkpoint last moved and how many events it
   * parked. One round trip (with a `newest` query, in the same batch).
   *
   * @example
   * ```ts
   * const status = await store.status("balances", { newest: env.DB.prepare("SELECT MAX(position) FROM events") });
   * console.log(status.lag, status.sinceMovedMs, status.parked);
   * ```
   */
  async status(name: string, options?: StatusOptions<number | D1PreparedStatement>): Promise<ProjectionStatus> {
    return status(this.#calls, name, options);
  }

  /**
   * The status of every checkpoint in name order, paged as
   * {@link D1CheckpointStore.entries}; a `newest` query is one round trip before the first page.
   */
  statuses(options?: StatusListOptions<number | D1PreparedStatement>): AsyncIterableIterator<ProjectionStatus> {
    return statuses(this.#calls, options);
  }

  /**
   * Lets go of a run's lease after its last batch, and runs `query` (the next
   * events) in the same round trip. `held: true` means another run noted new
   * work meanwhile: the lease is still this run's, renewed, and `rows` are
   * the events to go on with. With `drop`, lets go whatever was noted.
   * `ProjectionRunner` calls it for runners with a `lease`.
   */
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- the caller names the row type, as with D1's all<T>()
  async releaseLease<Row>(
    name: string,
    lease: RunLease,
    query: D1PreparedStatement | undefined,
    options?: OperationOptions & { readonly drop?: boolean | undefined },
  ): Promise<{ readonly held: boolean; readonly rows: Row[] }> {
    return releaseLease<Row>(this.#calls, name, lease, query, options);
  }

  /** The checkpoints of `names` (1 to 100, distinct), in the same order: one statement, one round trip. */
  loadMany(names: readonly string[], options?: OperationOptions): Promise<LoadResult[]> {
    return loadMany(this.#calls, names, options);
  }

  /**
   * The checkpoints of `names` and the rows of `query(lowest position)`,
   * typically the events after the projection furthest behind: one `batch()`
   * when this isolate has seen every checkpoint on this binding, two round
   * trips otherwise; with `lease` (a named run lease), claimed in the same
   * batch. `ProjectionGroup` uses it with `eventsQuery`.
   */
  loadManyAndQuery<Row>(
    names: readonly string[],
    query: (after: number) => D1PreparedStatement,
    options?: LoadManyAndQueryOptions,
  ): Promise<LoadManyResult<Row>> {
    return loadManyAndQuery<Row>(this.#calls, names, query, options);
  }

  /**
   * Commits several projections' writes and checkpoints in one `db.batch()`:
   * one round trip, one transaction, all or nothing. Each part's checkpoint
   * is saved on its own condition (`expected`), before its writes; a failed
   * condition rejects with {@link CheckpointConflictError} naming the first
   * checkpoint that moved, and nothing is applied.
   *
   * @example
   * ```ts
   * await store.commitMany([
   *   { name: "balances", position: 200, writes: balanceStatements, expected: 100 },
   *   { name: "search", position: 200, writes: searchStatements, expected: 100 },
   * ]);
   * ```
   */
  async commitMany(commits: readonly CheckpointCommit<readonly D1PreparedStatement[]>[], options?: OperationOptions): Promise<void> {
    await commitMany(this.#calls, commits, undefined, options);
  }

  /** {@link D1CheckpointStore.commitMany} with `query` last in the same batch: its rows, only when the batch committed. */
  commitManyAndQuery<Row>(
    commits: readonly CheckpointCommit<readonly D1PreparedStatement[]>[],
    query: D1PreparedStatement,
    options?: OperationOptions,
  ): Promise<Row[]> {
    return commitMany<Row>(this.#calls, commits, query, options);
  }

  /**
   * Starts rebuilding `name` as `version` beside the live version: records
   * the version as building (and, on a projection's first rebuild, the live
   * version as 1 with `options.liveTables`) and runs `options.create`, in one
   * batch. A `ProjectionRunner` with this `version` then projects into its
   * tables under the checkpoint `name@version` (from the first event), while
   * the live version goes on. A retired version starts again from its kept
   * checkpoint (a rollback). One round trip to read the records, one to write.
   *
   * @throws `ProjectionVersionError` when another version is building or `version` is live.
   *
   * @example
   * ```ts
   * await store.startRebuild("balances", 2, {
   *   tables: { balances: "balances_v2" },
   *   create: [env.DB.prepare("CREATE TABLE IF NOT EXISTS balances_v2 (account TEXT PRIMARY KEY, balance INTEGER NOT NULL)")],
   * });
   * ```
   */
  async startRebuild(name: string, version: number, options: RebuildOptions<readonly D1PreparedStatement[]>): Promise<void> {
    await startRebuild(this.#calls, name, version, options);
  }

  /**
   * Makes the rebuild `version` of `name` live, in one batch (one
   * transaction): on condition that it is still building and its checkpoint
   * is at or beyond the live one, each read name becomes a view of its
   * table, the live checkpoint moves to its position (with its parked
   * events), and the old version is retired (kept, or with `retire: "drop"`
   * dropped). Commits of the old version's runners fail from then on
   * (`ended: "switched"`); the new version's runners go on as the live one.
   *
   * @throws `ProjectionVersionError` when the version is not building or has not caught up.
   */
  async switchVersion(name: string, version: number, options?: SwitchOptions): Promise<void> {
    await switchVersion(this.#calls, name, version, options);
  }

  /** Drops a version that is not live (an abandoned rebuild, a retired version): its record, checkpoint, parked events and tables, in one batch. */
  async dropVersion(name: string, version: number, options?: OperationOptions): Promise<void> {
    await dropVersion(this.#calls, name, version, options);
  }

  /** The version records of `name`, ascending (none until its first rebuild). One round trip. */
  versions(name: string, options?: OperationOptions): Promise<ProjectionVersion[]> {
    return versions(this.#calls, name, options);
  }

  /** The state of one version of `name`; `undefined` for a version without a record (version 1 is live without records). One round trip. */
  versionState(name: string, version: number, options?: OperationOptions): Promise<VersionState | undefined> {
    return versionState(this.#calls, name, version, options);
  }
}
