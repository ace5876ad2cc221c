import type {
  CheckpointEntry,
  CheckpointStore,
  CommitOptions,
  ListOptions,
  LoadResult,
  OperationOptions,
  ProjectionStore,
  SaveOptions,
} from "./checkpoint-store.js";
import {
  isConflictMarker,
  LOAD_SQL,
  loadResult,
  pageBindings,
  pageOf,
  pageSql,
  RESET_SQL,
  saveSql,
  type PageColumns,
  type PageRow,
} from "./checkpoint-sql.js";
import type { D1Client } from "./d1-client.js";
import { CheckpointConflictError, CheckpointTypeError, D1OperationError, type CheckpointOperation } from "./errors.js";
import { keysetPages, parseListOptions, type KeysetOptions, type Page, type PageRequest } from "./keyset.js";
import {
  checkParkRequests,
  IS_PARKED_SQL,
  isNotParked,
  PARK_SQL,
  PARKED_PAGE_SQL,
  parkedPages,
  parseParkedList,
  REPLAY_GUARD_SQL,
  UNPARK_SQL,
  type ParkedEvent,
  type ParkedListOptions,
  type ParkedRow,
  type ParkRequest,
} from "./parked-events.js";
import {
  newestOf,
  projectionStatus,
  STATUS_COLUMNS,
  STATUS_SQL,
  type ProjectionStatus,
  type StatusListOptions,
  type StatusOptions,
  type StatusRow,
} from "./projection-status.js";
import { checkLease, CLAIM_SQL, DROP_SQL, RELEASE_SQL, RENEW_SQL, YIELD_SQL, type RunLease } from "./run-lease.js";
import { resolveRetry, withRetry, type CheckVerdict, type RetriedCall, type RetryOptions, type RetryPolicy } from "./retry.js";
import { applySchema } from "./schema.js";
import { waitForCheckpoint, type WaitForOptions } from "./wait-for.js";
import {
  checkBoolean,
  checkFunction,
  checkMethods,
  checkPosition,
  checkOptions,
  checkWrites,
  parseNamed,
  parseSave,
  toPosition,
  type SaveArguments,
} from "./validate.js";

/** Options of the {@link D1CheckpointStore} constructor. */
export interface D1CheckpointStoreOptions {
  /**
   * How transient D1 errors are retried; `false` turns retries off. Default:
   * 5 attempts with exponential backoff and full jitter (see `RetryOptions`).
   * Only what is safe to repeat is retried: see the README's "Guarantees".
   */
  readonly retry?: RetryOptions | false | undefined;
}

/** Options of {@link D1CheckpointStore.create}. */
export interface CreateOptions extends D1CheckpointStoreOptions {
  /**
   * Whether to apply `SCHEMA` first (default `true`), once per isolate and
   * binding. `false` is the Go store's `WithoutMigrate`: the schema is left to
   * `wrangler d1 migrations apply` or your own tooling.
   */
  readonly migrate?: boolean | undefined;
}

/** Options of {@link D1CheckpointStore.loadAndQuery}. */
export interface LoadAndQueryOptions extends OperationOptions {
  /**
   * Claims a run lease in the same round trip (migration 0002): when another
   * run holds one, `leased` is `false`, that run is told to look again before
   * it lets go, and no rows are returned.
   */
  readonly lease?: RunLease | undefined;
}

/**
 * Statements a commit sends after its writes in the same batch (`first`), and
 * what to send alone (`again`) when a lost response turns out to have landed;
 * the results are returned in the shape of `again` (`first` without its first
 * `skip` statements).
 */
interface Riders {
  readonly first: readonly D1PreparedStatement[];
  readonly again: readonly D1PreparedStatement[];
  readonly skip: number;
}

/** D1 clients whose schema this isolate has applied; a Worker builds a store per request. */
const migratedClients = new WeakSet<D1Client>();

/**
 * Conditional checkpoint statements made by `saveStatement`, with their
 * checkpoint's name: when one of them is among a commit's statements, a
 * failed condition in the batch may be theirs rather than the commit's own.
 */
const conditionalStatements = new WeakMap<D1PreparedStatement, string>();

/**
 * The position this isolate last saw or wrote per binding and name: the guess
 * of {@link D1CheckpointStore.loadAndQuery}. Only a guess, checked in the
 * same round trip; numbers, never I/O objects, so sharing it across requests
 * is safe.
 */
const rememberedPositions = new WeakMap<D1Client, Map<string, number>>();

/** Remembers `position` (0 for "no checkpoint", which `loadAndQuery` reads after the same way). */
function rememberPosition(db: D1Client, name: string, position: number): void {
  let positions = rememberedPositions.get(db);
  if (positions === undefined) rememberedPositions.set(db, (positions = new Map<string, number>()));
  positions.set(name, position);
}

interface PositionRow {
  readonly position: unknown;
}


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
 */
export class D1CheckpointStore implements CheckpointStore, ProjectionStore<readonly D1PreparedStatement[]> {
  /** The D1 binding or session the store talks to. */
  readonly db: D1Client;
  readonly #retry: RetryPolicy;
  #statementPrototype: object | null | undefined;

  /** Wraps `db`. Never migrates: use {@link D1CheckpointStore.create} or `migrate()` for that. */
  constructor(db: D1Client, options?: D1CheckpointStoreOptions) {
    this.db = checkMethods<D1Client>("configure", undefined, db, "db", ["prepare", "batch"], "a D1Database or D1DatabaseSession");
    this.#retry = resolveRetry("configure", checkOptions("configure", undefined, options).retry);
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
    const store = new D1CheckpointStore(db, options);
    const migrate = checkBoolean("configure", undefined, options?.migrate, "options.migrate", true);
    if (migrate && !migratedClients.has(db)) {
      await store.#call({
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
    await this.#write("save", parseSave("save", name, position, options), []);
  }

  /** Reads the checkpoint of `name`. One round trip. */
  async load(name: string, options?: OperationOptions): Promise<LoadResult> {
    const { name: valid, signal } = parseNamed("load", name, options);
    const checkpoint = await this.#call({ operation: "load", checkpoint: valid, signal, kind: "read", send: () => this.#load("load", valid) });
    rememberPosition(this.db, valid, checkpoint.position);
    return checkpoint;
  }

  /** Deletes the checkpoint of `name`; no error when there is none. One round trip. */
  async reset(name: string, options?: OperationOptions): Promise<void> {
    const { name: valid, signal } = parseNamed("reset", name, options);
    await this.#call({
      operation: "reset",
      checkpoint: valid,
      signal,
      kind: "idempotent",
      send: () => this.db.prepare(RESET_SQL).bind(valid).run(),
    });
    rememberPosition(this.db, valid, 0);
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
    return keysetPages(listing, this.#pages<string>("names", "name", listing, (_row, name) => name));
  }

  /** The checkpoints in name order with their positions, one round trip per page; names as {@link D1CheckpointStore.names}. */
  entries(options?: ListOptions): AsyncIterableIterator<CheckpointEntry> {
    const listing = parseListOptions("entries", options);
    return keysetPages(
      listing,
      this.#pages<CheckpointEntry>("entries", "name, position", listing, (row, name) => ({
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
    const { name: valid, position: at, expected } = parseSave("saveStatement", name, position, options);
    const statement = this.#saveStatement(valid, at, expected);
    if (expected !== undefined) conditionalStatements.set(statement, valid);
    return statement;
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
    const args = parseSave("commit", name, position, options);
    const writes = this.#checkStatements("commit", args.name, statements);
    await this.#write("commit", args, writes, undefined, checkParkRequests("commit", args.name, options?.parked, args.position));
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
    const args = parseSave("commit", name, position, options);
    const writes = this.#checkStatements("commit", args.name, statements);
    const parked = checkParkRequests("commit", args.name, options?.parked, args.position);
    const read = this.#checkQuery("commit", args.name, query);
    const [rows] = await this.#write<Row>("commit", args, writes, { first: [read], again: [read], skip: 0 }, parked);
    return rows?.results ?? [];
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
    const args = parseSave("commit", name, position, options);
    const writes = this.#checkStatements("commit", args.name, statements);
    const parked = checkParkRequests("commit", args.name, options?.parked, args.position);
    const riders = this.#releaseRiders(args.name, checkLease("commit", args.name, lease, "lease"), [this.#checkQuery("commit", args.name, query)]);
    return released(await this.#write<Row>("commit", args, writes, riders, parked));
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
    const { name: valid, signal } = parseNamed("load", name, options);
    checkFunction("load", valid, query, "query", true);
    const lease = options?.lease === undefined ? undefined : checkLease("load", valid, options.lease, "options.lease");
    const guess = rememberedPositions.get(this.db)?.get(valid);
    const read = (after: number): Promise<Row[]> => {
      const statement = this.#checkQuery("load", valid, query(after));
      return this.#call({
        operation: "load",
        checkpoint: valid,
        signal,
        kind: "read",
        send: async () => (await statement.all<Row>()).results,
      });
    };
    if (guess === undefined && lease === undefined) {
      const checkpoint = await this.load(valid, { signal });
      return { checkpoint, rows: await read(checkpoint.position), leased: true };
    }
    const claim =
      lease === undefined
        ? []
        : [this.db.prepare(CLAIM_SQL).bind(valid, lease.holder, lease.ttlMs), this.db.prepare(YIELD_SQL).bind(valid, lease.holder)];
    const guessed = guess === undefined ? [] : [this.#checkQuery("load", valid, query(guess))];
    const { checkpoint, rows, leased } = await this.#call({
      operation: "load",
      checkpoint: valid,
      signal,
      // Claiming again is harmless: the holder's own claim is not expired, so it stays the holder.
      kind: lease === undefined ? "read" : "idempotent",
      send: async () => {
        const results = await this.db.batch([...claim, this.db.prepare(LOAD_SQL).bind(valid), ...guessed]);
        const checkpoint = loadResult("load", valid, results[claim.length]?.results[0] as PositionRow | undefined);
        const leased = lease === undefined || (results[1]?.results.length ?? 0) === 0;
        return { checkpoint, rows: (results[claim.length + 1]?.results ?? []) as Row[], leased };
      },
    });
    rememberPosition(this.db, valid, checkpoint.position);
    if (!leased) return { checkpoint, rows: [], leased };
    return { checkpoint, rows: checkpoint.position === guess ? rows : await read(checkpoint.position), leased };
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
    const listing = parseParkedList(name, options);
    return parkedPages(listing, (after, limit) =>
      this.#call({
        operation: "parked",
        checkpoint: listing.name,
        signal: listing.signal,
        kind: "read",
        send: async () => (await this.db.prepare(PARKED_PAGE_SQL).bind(listing.name, after, limit).all<ParkedRow>()).results,
      }),
    );
  }

  /**
   * Applies `statements` for the parked event at `position` of `name` and
   * removes it from the parked events, in one batch (one round trip, one
   * transaction), without moving the checkpoint. Resolves `false`, applying
   * nothing, when no such event is parked. `ProjectionRunner.replay` builds
   * the statements with the projection for you.
   */
  async replayParked(name: string, position: number, statements: readonly D1PreparedStatement[], options?: OperationOptions): Promise<boolean> {
    const { name: valid, position: at, signal } = parseSave("replay", name, position, options);
    const writes = this.#checkStatements("replay", valid, statements);
    const batch = [this.db.prepare(REPLAY_GUARD_SQL).bind(valid, at), this.db.prepare(UNPARK_SQL).bind(valid, at), ...writes];
    return this.#call({
      operation: "replay",
      checkpoint: valid,
      signal,
      kind: "checked",
      send: async () => {
        try {
          await this.db.batch(batch);
          return true;
        } catch (error) {
          if (isNotParked(error)) return false;
          throw error;
        }
      },
      check: async () =>
        (await this.db.prepare(IS_PARKED_SQL).bind(valid, at).first()) === null
          ? { landed: "unknown", found: `the event at position ${at} is no longer parked` }
          : { landed: false },
    });
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
    const { name: valid, signal } = parseNamed("status", name, options);
    const newest = this.#parseNewest(valid, options?.newest);
    const statement = this.db.prepare(STATUS_SQL).bind(valid);
    const { row, last } = await this.#call({
      operation: "status",
      checkpoint: valid,
      signal,
      kind: "read",
      send: async () => {
        if (typeof newest !== "object") return { row: (await statement.first<StatusRow>()) ?? {}, last: undefined };
        const [found, newestRows] = await this.db.batch<Record<string, unknown>>([statement, newest]);
        return { row: found?.results[0] ?? {}, last: newestRows?.results[0] };
      },
    });
    // The newest query's result is checked as statuses() checks it: junk is an input error naming `newest`, not a D1 failure.
    return projectionStatus("status", valid, row, typeof newest === "object" ? newestOf("status", valid, last) : newest);
  }

  /**
   * The status of every checkpoint in name order, paged as
   * {@link D1CheckpointStore.entries}; a `newest` query is one round trip before the first page.
   */
  statuses(options?: StatusListOptions<number | D1PreparedStatement>): AsyncIterableIterator<ProjectionStatus> {
    const listing = parseListOptions("status", options);
    let newest = this.#parseNewest(undefined, options?.newest);
    const pages = this.#pages<ProjectionStatus>("status", STATUS_COLUMNS, listing, (row, name) =>
      projectionStatus("status", name, row, typeof newest === "object" ? undefined : newest),
    );
    return keysetPages(listing, async (request) => {
      if (typeof newest === "object") {
        const query = newest;
        const [last] = await this.#call({
          operation: "status",
          checkpoint: undefined,
          signal: listing.signal,
          kind: "read",
          send: async () => (await query.all()).results,
        });
        newest = newestOf("status", undefined, last);
      }
      return pages(request);
    });
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
    const { name: valid, signal } = parseNamed("run", name, options);
    const { holder, ttlMs } = checkLease("run", valid, lease, "lease");
    const drop = checkBoolean("run", valid, options?.drop, "options.drop", false);
    if (drop) {
      const statement = this.db.prepare(DROP_SQL).bind(valid, holder);
      await this.#call({ operation: "run", checkpoint: valid, signal, kind: "idempotent", send: () => statement.run() });
      return { held: false, rows: [] };
    }
    const riders = this.#releaseRiders(valid, { holder, ttlMs }, query === undefined ? [] : [this.#checkQuery("run", valid, query)]);
    let sent = false;
    const results = await this.#call({
      operation: "run",
      checkpoint: valid,
      signal,
      kind: "idempotent",
      send: async () => {
        const first = !sent;
        sent = true;
        const answer = await this.db.batch<Row>([...(first ? riders.first : riders.again)]);
        return first ? answer.slice(riders.skip) : answer;
      },
    });
    return released(results);
  }

  /**
   * Letting go of a lease, with `read` after it: release unless work was noted
   * pending, then renew if still held. Sent again (after a lost response), the
   * release could delete a lease whose pending note the first attempt cleared,
   * so a re-send only renews, which tells "still ours" from "let go" either way.
   */
  #releaseRiders(name: string, { holder, ttlMs }: RunLease, read: readonly D1PreparedStatement[]): Riders {
    const renew = this.db.prepare(RENEW_SQL).bind(name, holder, ttlMs);
    return { first: [this.db.prepare(RELEASE_SQL).bind(name, holder), renew, ...read], again: [renew, ...read], skip: 1 };
  }

  #parseNewest(name: string | undefined, value: unknown): number | D1PreparedStatement | undefined {
    if (value === undefined) return undefined;
    if (typeof value === "number" || typeof value === "bigint") return checkPosition("status", name, value, "options.newest");
    return this.#checkQuery("status", name ?? "", value, "options.newest");
  }

  #call<T>(call: RetriedCall<T>): Promise<T> {
    return withRetry(this.#retry, call);
  }

  #checkStatements(operation: CheckpointOperation, name: string, statements: unknown, argument = "statements"): D1PreparedStatement[] {
    const prototype = (this.#statementPrototype ??= Object.getPrototypeOf(this.db.prepare(LOAD_SQL)) as object | null);
    const isStatement = (item: unknown): item is D1PreparedStatement =>
      typeof item === "object" && item !== null && Object.getPrototypeOf(item) === prototype;
    return checkWrites(operation, name, statements, isStatement, "D1PreparedStatement (from db.prepare)", argument);
  }

  #checkQuery(operation: CheckpointOperation, name: string, query: unknown, argument = "query"): D1PreparedStatement {
    const [statement] = this.#checkStatements(operation, name, [query], argument);
    if (statement === undefined) throw new CheckpointTypeError(operation, name, argument, "must be a D1PreparedStatement");
    return statement;
  }

  #saveStatement(name: string, position: number, expected: number | null | undefined): D1PreparedStatement {
    const { sql, bindings } = saveSql(name, position, expected);
    return this.db.prepare(sql).bind(...bindings);
  }

  async #load(operation: CheckpointOperation, name: string): Promise<LoadResult> {
    return loadResult(operation, name, await this.db.prepare(LOAD_SQL).bind(name).first<PositionRow>());
  }

  #pages<Item>(
    operation: CheckpointOperation,
    columns: PageColumns,
    listing: KeysetOptions,
    toItem: (row: PageRow, name: string) => Item,
  ): (request: PageRequest) => Promise<Page<Item>> {
    return async (request) => {
      const rows = await this.#call({
        operation,
        checkpoint: undefined,
        signal: listing.signal,
        kind: "read",
        send: async () => (await this.db.prepare(pageSql(columns, request)).bind(...pageBindings(request)).all<PageRow>()).results,
      });
      return pageOf(rows, toItem);
    };
  }

  /**
   * Saves a checkpoint, alone or first in one batch with the caller's
   * statements, and then `query`, whose rows are returned. How each kind of
   * write is retried, and what the caller is told when a response is lost, is
   * decided by `withRetry` (decision 0006): an unconditional save is an
   * idempotent upsert; a conditional write is checked with a `load` before it
   * is sent again; an unconditional commit with statements, or one where
   * `expected === position`, cannot be checked and is sent once. When the
   * check finds that the write landed, `query` is sent alone.
   */
  async #write<Row = never>(
    operation: "save" | "commit",
    args: SaveArguments,
    statements: readonly D1PreparedStatement[],
    riders?: Riders,
    parked: readonly ParkRequest[] = [],
  ): Promise<D1Result<Row>[]> {
    const { name, position, expected, signal } = args;
    const checkpoint = this.#saveStatement(name, position, expected);
    const parks = parked.map((event) => this.db.prepare(PARK_SQL).bind(name, event.position, event.error));
    const batch = [checkpoint, ...parks, ...statements, ...(riders?.first ?? [])];
    const send = async (): Promise<D1Result<Row>[]> => {
      try {
        if (batch.length === 1) {
          await checkpoint.run();
          return [];
        }
        const results = await this.db.batch<Row>(batch);
        return riders === undefined ? [] : results.slice(batch.length - riders.first.length + riders.skip);
      } catch (error) {
        if (isConflictMarker(error)) throw await this.#conflict(operation, args, statements, error);
        throw error;
      }
    };
    const check = async (): Promise<CheckVerdict<D1Result<Row>[]>> => {
      const current = await this.#load(operation, name);
      const at = current.found ? current.position : null;
      if (at === position) return { landed: true, value: riders === undefined ? [] : await this.db.batch<Row>([...riders.again]) };
      if (at === expected) return { landed: false };
      return { landed: "unknown", found: `the checkpoint is now at ${at === null ? "no checkpoint" : `position ${at}`}` };
    };
    const alone = statements.length === 0 && parks.length === 0;
    const kind = expected === undefined ? (alone ? "idempotent" : "once") : expected !== position || alone ? "checked" : "once";
    const results = await this.#call({ operation, checkpoint: name, signal, kind, send, check });
    rememberPosition(this.db, name, position);
    return results;
  }

  /**
   * The error for a batch in which a conditional checkpoint statement failed.
   * Ours runs first; when the caller's statements hold conditional checkpoint
   * statements of their own, one `load` tells whose condition failed: ours
   * held if the checkpoint is still at `expected`.
   */
  async #conflict(
    operation: CheckpointOperation,
    { name, expected, signal }: SaveArguments,
    statements: readonly D1PreparedStatement[],
    error: unknown,
  ): Promise<Error> {
    const others = statements.flatMap((statement, index) => {
      const other = conditionalStatements.get(statement);
      return other === undefined ? [] : [`statements[${index}] (checkpoint ${JSON.stringify(other)})`];
    });
    const theirs = (): Error =>
      new D1OperationError(operation, name, error, {
        attempts: 1,
        transient: false,
        outcomeUnknown: false,
        reason:
          others.length === 0
            ? `a statement among the statements wrote NULL into checkpoints.position; nothing was applied`
            : `the condition of a conditional checkpoint statement among the statements did not hold: ${others.join(", ")}; nothing was applied`,
      });
    // An unconditional save cannot fail that way: the failure is theirs.
    if (expected === undefined) return theirs();
    // Ours runs first and alone decides when nothing else could fail that way.
    if (statements.length === 0) return new CheckpointConflictError(operation, name, expected, { cause: error });
    let current: LoadResult;
    try {
      // Retried like any read: one transient fault must not turn a plain conflict into a failure.
      current = await this.#call({ operation, checkpoint: name, signal, kind: "read", send: () => this.#load(operation, name) });
    } catch (cause) {
      return new D1OperationError(operation, name, error, {
        attempts: 1,
        transient: false,
        outcomeUnknown: false,
        reason: `a checkpoint condition failed (this one's, or one among the statements${others.length === 0 ? "" : `: ${others.join(", ")}`}), and the load that would tell which failed too (${cause instanceof Error ? cause.message : String(cause)}); nothing was applied`,
      });
    }
    const at = current.found ? current.position : null;
    return at === expected ? theirs() : new CheckpointConflictError(operation, name, expected, { cause: error });
  }
}

/** What the release riders answered: the lease is still held when the renewal matched, and then the read's rows. */
function released<Row>([renewed, read]: readonly D1Result<Row>[]): { readonly held: boolean; readonly rows: Row[] } {
  const held = (renewed?.results.length ?? 0) > 0;
  return { held, rows: held ? (read?.results ?? []) : [] };
}
