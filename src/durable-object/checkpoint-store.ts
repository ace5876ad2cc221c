// The checkpoint store on a Durable Object's own SQLite (docs/decisions/0011):
// the same tables and statements as the D1 store, run synchronously inside
// `transactionSync`, so a commit, a group commit, a replay and every version
// change is one real transaction in the object that owns the read model.
import type { CheckpointCommit, CheckpointEntry, CheckpointStore, CommitOptions, GroupProjectionStore, ListOptions, LoadResult, OperationOptions, ParkRequest, ProjectionVersion, RebuildOptions, ReplayOptions, SaveOptions, SwitchOptions, VersionFence, VersionState } from "../core/store.js";
import { checkCommits, checkNames, LOAD_MANY_SQL, loadManyResults, type NamedPositionRow } from "../sql/group.js";
import { isConflictMarker, LOAD_SQL, loadResult, pageBindings, pageOf, pageSql, RESET_SQL, saveSql, VERSION_STATE_SQL, type PageColumns, type PageRow } from "../sql/checkpoints.js";
import { dropVersionSync, startRebuildSync, switchVersionSync, versionsSync, versionStateSync } from "./versions.js";
import { fencedOut } from "../sql/versions.js";
import { CheckpointConflictError, CheckpointTypeError, type CheckpointOperation } from "../core/errors.js";
import { checkBudget, type QueryBudget } from "../core/query-budget.js";
import { CursorRows } from "./cursor-rows.js";
import { keysetPages, parseListOptions, type Page, type PageRequest } from "../core/keyset.js";
import {
  checkParkRequests,
  IS_PARKED_SQL,
  PARK_SQL,
  PARKED_PAGE_SQL,
  parkedPages,
  parseParkedList,
  UNPARK_SQL,
  type ParkedEvent,
  type ParkedListOptions,
  type ParkedRow,
} from "../sql/parked-events.js";
import { parseEventTimes, projectionStatus, statusColumns, statusSql, type ProjectionStatus, type StatusListOptions, type StatusOptions, type StatusRow } from "../sql/status.js";
import { SCHEMA_OBJECT_COUNT, SCHEMA_PRESENT_SQL, schemaStatements } from "../sql/schema.js";
import { checkOptions, checkPosition, checkSignal, keysOf, toPosition } from "../core/validate.js";
import { COMMIT_KEYS, OPERATION_KEYS, parseNamed, parseSave, REPLAY_KEYS, SAVE_KEYS, type SaveArguments } from "../core/arguments.js";
import { waitForCheckpoint, type WaitForOptions } from "../core/wait-for.js";
import { STATUS_KEYS, STATUS_LIST_KEYS } from "../sql/status.js";
import { checkSyncWrites, isSqlStorage, runWrites, settle, type SqlWrites } from "./sync-writes.js";

/** Storage objects whose table this isolate has created: once per object, not per request. */
const preparedStorages = new WeakSet<DurableObjectStorage>();

/** The keys of `commitSync`'s options (synchronous: no signal). */
const COMMIT_SYNC_KEYS = keysOf<Omit<CommitOptions, "signal">>()(["budget", "expected", "fence", "parked"]);

/**
 * A {@link CheckpointStore} on a Durable Object's own SQLite storage
 * (`ctx.storage`, a class declared under `new_sqlite_classes`): the same
 * `checkpoints` table, checks, errors, name order and paging as
 * `D1CheckpointStore`, and real transactions.
 *
 * A Durable Object is single-threaded and its storage is local, so every call
 * is synchronous underneath (the `…Sync` methods), there are no round trips
 * to retry, and a commit runs the read-model writes and the checkpoint save
 * in one `transactionSync`. The async methods exist for the
 * {@link CheckpointStore} interface and `ProjectionRunner`.
 *
 * The table is created by the constructor (`CREATE TABLE IF NOT EXISTS`), once
 * per storage object and isolate: there are no wrangler migrations inside an
 * object.
 *
 * @example
 * ```ts
 * export class AccountHistory extends DurableObject<Env> {
 *   readonly store = new DurableObjectCheckpointStore(this.ctx.storage);
 *   credit(position: number, amount: number): void {
 *     const { position: at, found } = this.store.loadSync("history");
 *     if (position <= at) return; // applied already
 *     this.store.commitSync("history", position, (sql) => {
 *       sql.exec("INSERT INTO history (position, amount) VALUES (?1, ?2)", position, amount);
 *     }, { expected: found ? at : null });
 *   }
 * }
 * ```
 *
 * @category Stores
 */
export class DurableObjectCheckpointStore implements CheckpointStore, GroupProjectionStore<SqlWrites> {
  /** The object's storage the store works on. */
  readonly storage: DurableObjectStorage;

  /** Wraps `storage` and creates the `checkpoints` table if it is missing (once per storage object). */
  constructor(storage: DurableObjectStorage) {
    if (!isSqlStorage(storage)) {
      throw new CheckpointTypeError(
        "configure",
        undefined,
        "storage",
        "must be a Durable Object's ctx.storage with SQLite (declare the class under new_sqlite_classes)",
      );
    }
    this.storage = storage;
    if (!preparedStorages.has(storage)) {
      // Applied only when some of it is missing (migration 0004 drops and creates triggers).
      const present = storage.sql.exec<{ n: number }>(SCHEMA_PRESENT_SQL).one().n;
      if (present !== SCHEMA_OBJECT_COUNT) for (const statement of schemaStatements()) storage.sql.exec(statement);
      preparedStorages.add(storage);
    }
  }

  /** Stores `position` for `name` (with `expected`, only if it still holds). */
  save(name: string, position: number, options?: SaveOptions): Promise<void> {
    return settle(() => {
      const args = parseSave("save", name, position, options, SAVE_KEYS);
      const budget = checkBudget("save", args.name, options?.budget);
      args.signal?.throwIfAborted();
      this.#counted(budget, (rows) => {
        this.#commit("save", args, undefined, rows);
      });
    });
  }

  /** Reads the checkpoint of `name`. */
  load(name: string, options?: OperationOptions): Promise<LoadResult> {
    return settle(() => {
      const { name: valid, signal } = parseNamed("load", name, options);
      const budget = checkBudget("load", valid, options?.budget);
      signal?.throwIfAborted();
      return this.#counted(budget, (rows) => this.#load("load", valid, rows));
    });
  }

  /** Reads the checkpoint of `name`, synchronously: for code inside the object. */
  loadSync(name: string): LoadResult {
    return this.#load("load", parseNamed("load", name, undefined).name, new CursorRows(this.storage.sql, undefined));
  }

  /** Deletes the checkpoint of `name`; no error when there is none. */
  reset(name: string, options?: OperationOptions): Promise<void> {
    return settle(() => {
      const { name: valid, signal } = parseNamed("reset", name, options);
      signal?.throwIfAborted();
      this.storage.sql.exec(RESET_SQL, valid);
    });
  }

  /**
   * Deletes the checkpoint of `name`, synchronously: inside your own
   * `transactionSync`, clear a read model and its checkpoint together so that
   * the rebuild starts from an empty read model.
   */
  resetSync(name: string): void {
    this.storage.sql.exec(RESET_SQL, parseNamed("reset", name, undefined).name);
  }

  /** Resolves when the checkpoint of `name` has reached `position`; see `waitForCheckpoint`. */
  waitFor(name: string, position: number, options?: WaitForOptions): Promise<LoadResult> {
    return waitForCheckpoint(this, name, position, options);
  }

  /** The names in ascending order, page by page; names that are not valid text are skipped, as on D1. */
  names(options?: ListOptions): AsyncIterableIterator<string> {
    const listing = parseListOptions("names", options);
    return keysetPages(listing, this.#pages("name", (_row, name) => name));
  }

  /** The checkpoints in name order with their positions, page by page. */
  entries(options?: ListOptions): AsyncIterableIterator<CheckpointEntry> {
    const listing = parseListOptions("entries", options);
    return keysetPages(
      listing,
      this.#pages("name, position", (row, name) => ({ name, position: toPosition("entries", name, row.position) })),
    );
  }

  /**
   * Runs `write` (your synchronous read-model writes) and saves the
   * checkpoint in one `transactionSync`. The checkpoint is saved first: with
   * `expected`, a moved checkpoint rejects with {@link CheckpointConflictError}
   * before `write` runs. Anything `write` throws rolls the whole transaction
   * back and is rethrown as it is.
   */
  commit(name: string, position: number, write: SqlWrites, options?: CommitOptions): Promise<void> {
    return settle(() => {
      const args = parseSave("commit", name, position, options, COMMIT_KEYS);
      const writes = checkSyncWrites("commit", args.name, write);
      const parked = checkParkRequests("commit", args.name, options?.parked, args.position);
      const budget = checkBudget("commit", args.name, options?.budget);
      args.signal?.throwIfAborted();
      this.#counted(budget, (rows) => {
        this.#commit("commit", args, writes, rows, parked);
      });
    });
  }

  /**
   * {@link DurableObjectCheckpointStore.commit}, synchronously: for code
   * inside the object (no signal). Its rows are counted on `budget` as soon as
   * it returns: inside a `transactionSync` of your own that then throws, they
   * were rolled back but stay counted.
   */
  commitSync(name: string, position: number, write: SqlWrites, options?: Omit<CommitOptions, "signal">): void {
    const args = parseSave("commit", name, position, options, COMMIT_SYNC_KEYS);
    const writes = checkSyncWrites("commit", args.name, write);
    const parked = checkParkRequests("commit", args.name, options?.parked, args.position);
    this.#counted(checkBudget("commit", args.name, options?.budget), (rows) => {
      this.#commit("commit", args, writes, rows, parked);
    });
  }

  /** The checkpoints of `names` (1 to 100, distinct), in the same order. */
  loadMany(names: readonly string[], options?: OperationOptions): Promise<LoadResult[]> {
    return settle(() => {
      const valid = checkNames("load", names);
      const given = checkOptions("load", undefined, options, "options", OPERATION_KEYS);
      const budget = checkBudget("load", undefined, given.budget);
      checkSignal("load", undefined, given.signal)?.throwIfAborted();
      return this.#counted(budget, (rows) =>
        loadManyResults("load", valid, rows.exec(undefined, LOAD_MANY_SQL, JSON.stringify(valid)).toArray() as unknown as NamedPositionRow[]),
      );
    });
  }

  /**
   * Commits several projections' writes and checkpoints in one
   * `transactionSync`, all or nothing: each part's conditional checkpoint
   * save first, then its parked events and its writes. A moved checkpoint
   * rejects with {@link CheckpointConflictError} (naming it) and a throwing
   * write is rethrown as it is; either way nothing is applied.
   */
  commitMany(commits: readonly CheckpointCommit<SqlWrites>[], options?: OperationOptions): Promise<void> {
    return settle(() => {
      const parts = checkCommits("commit", commits, (name, write, argument) => checkSyncWrites("commit", name, write as SqlWrites, argument));
      const given = checkOptions("commit", undefined, options, "options", OPERATION_KEYS);
      const budget = checkBudget("commit", undefined, given.budget);
      checkSignal("commit", undefined, given.signal)?.throwIfAborted();
      this.#counted(budget, (rows) => {
        this.storage.transactionSync(() => {
          for (const part of parts) this.#commit("commit", { ...part, signal: undefined }, part.writes, rows, part.parked, false);
        });
      });
    });
  }

  /**
   * Runs `write` for the parked event at `position` of `name` and removes it
   * from the parked events, in one `transactionSync`, without moving the
   * checkpoint. Resolves `false`, running nothing, when no such event is parked.
   */
  replayParked(name: string, position: number, write: SqlWrites, options?: ReplayOptions): Promise<boolean> {
    return settle(() => {
      const { name: valid, position: at, signal, fence } = parseSave("replay", name, position, options, REPLAY_KEYS);
      const writes = checkSyncWrites("replay", valid, write);
      const budget = checkBudget("replay", valid, options?.budget);
      signal?.throwIfAborted();
      return this.#counted(budget, (rows) =>
        this.storage.transactionSync(() => {
          if (fence !== undefined) this.#checkFence("replay", valid, fence, rows);
          if (rows.exec(valid, IS_PARKED_SQL, valid, at).toArray().length === 0) return false;
          rows.exec(valid, UNPARK_SQL, valid, at);
          runWrites(rows.writes(valid), writes);
          return true;
        }),
      );
    });
  }

  /** The parked events of `name`, ascending by position, page by page. */
  parked(name: string, options?: ParkedListOptions): AsyncIterableIterator<ParkedEvent> {
    const listing = parseParkedList(name, options);
    return parkedPages(listing, (after, limit) =>
      Promise.resolve(this.storage.sql.exec(PARKED_PAGE_SQL, listing.name, after, limit).toArray() as unknown as ParkedRow[]),
    );
  }

  /** The status of `name` (see `ProjectionStatus`); `newest` is a number here. */
  status(name: string, options?: StatusOptions): Promise<ProjectionStatus> {
    return settle(() => {
      const { name: valid, signal } = parseNamed("status", name, options, STATUS_KEYS);
      const newest = options?.newest === undefined ? undefined : checkPosition("status", valid, options.newest, "options.newest");
      const sql = statusSql(parseEventTimes(valid, options?.eventTimes));
      const budget = checkBudget("status", valid, options?.budget);
      signal?.throwIfAborted();
      const row = this.#counted(budget, (rows) => rows.exec(valid, sql, valid).toArray()[0]) as StatusRow | undefined;
      return projectionStatus("status", valid, row ?? {}, newest);
    });
  }

  /** The status of every checkpoint in name order, paged as `entries()`. */
  statuses(options?: StatusListOptions): AsyncIterableIterator<ProjectionStatus> {
    const listing = parseListOptions("status", options, STATUS_LIST_KEYS);
    const newest = options?.newest === undefined ? undefined : checkPosition("status", undefined, options.newest, "options.newest");
    const columns = statusColumns(parseEventTimes(undefined, options?.eventTimes));
    return keysetPages(listing, this.#pages(columns, (row, name) => projectionStatus("status", name, row, newest)));
  }

  /**
   * Starts rebuilding `name` as `version` beside the live version, as
   * `D1CheckpointStore.startRebuild`: the records and `options.create` (a
   * synchronous SQL callback) in one `transactionSync`.
   */
  startRebuild(name: string, version: number, options: RebuildOptions<SqlWrites>): Promise<void> {
    return settle(() => {
      startRebuildSync(this.storage, name, version, options, (create) => checkSyncWrites("rebuild", name, create as SqlWrites, "options.create"));
    });
  }

  /** Makes the rebuild `version` of `name` live, as `D1CheckpointStore.switchVersion`, in one `transactionSync`. */
  switchVersion(name: string, version: number, options?: SwitchOptions): Promise<void> {
    return settle(() => {
      switchVersionSync(this.storage, name, version, options);
    });
  }

  /** Drops a version that is not live, as `D1CheckpointStore.dropVersion`, in one `transactionSync`. */
  dropVersion(name: string, version: number, options?: OperationOptions): Promise<void> {
    return settle(() => {
      dropVersionSync(this.storage, name, version, options);
    });
  }

  /** The version records of `name`, ascending. */
  versions(name: string, options?: OperationOptions): Promise<ProjectionVersion[]> {
    return settle(() => versionsSync(this.storage, name, options));
  }

  /** The state of one version of `name` (`undefined`: no record; version 1 is live without records). */
  versionState(name: string, version: number, options?: OperationOptions): Promise<VersionState | undefined> {
    return settle(() => {
      const budget = checkBudget("versions", undefined, options?.budget);
      return this.#counted(budget, (rows) => versionStateSync(this.storage, name, version, options, (checkpoint, query, ...bindings) => rows.exec(checkpoint, query, ...bindings)));
    });
  }

  /** Throws `ProjectionVersionError` unless the fence's version is still in its state. */
  #checkFence(operation: CheckpointOperation, name: string, fence: VersionFence, rows: CursorRows, cause?: unknown): void {
    const state = (rows.exec(name, VERSION_STATE_SQL, fence.name, fence.version).toArray()[0] as { state?: unknown } | undefined)?.state;
    if (state !== fence.state) throw fencedOut(operation, name, fence, state, cause);
  }

  /** Runs `work` with the cursors it opens counted onto `budget` once it succeeded. */
  #counted<T>(budget: QueryBudget | undefined, work: (rows: CursorRows) => T): T {
    const rows = new CursorRows(this.storage.sql, budget);
    const result = work(rows);
    rows.count();
    return result;
  }

  #load(operation: CheckpointOperation, name: string, rows: CursorRows): LoadResult {
    return loadResult(operation, name, rows.exec<{ position: SqlStorageValue }>(name, LOAD_SQL, name).toArray()[0]);
  }

  #commit(
    operation: "save" | "commit",
    { name, position, expected, fence }: SaveArguments,
    write: SqlWrites | undefined,
    rows: CursorRows,
    parked: readonly ParkRequest[] = [],
    ownTransaction = true,
  ): void {
    const { sql, bindings } = saveSql(name, position, expected, fence);
    const save = (): void => {
      try {
        rows.exec(name, sql, ...bindings);
      } catch (error) {
        if (isConflictMarker(error) && fence !== undefined) this.#checkFence(operation, name, fence, rows, error);
        if (isConflictMarker(error)) throw new CheckpointConflictError(operation, name, expected ?? null, { cause: error });
        throw error;
      }
    };
    const all = (): void => {
      save();
      for (const event of parked) rows.exec(name, PARK_SQL, name, event.position, event.error);
      if (write !== undefined) runWrites(rows.writes(name), write);
    };
    // One statement is atomic by itself; with writes, one transaction holds both (or the caller's, in a group commit).
    if (!ownTransaction || (write === undefined && parked.length === 0)) all();
    else this.storage.transactionSync(all);
  }

  #pages<Item>(columns: PageColumns, toItem: (row: PageRow, name: string) => Item): (request: PageRequest) => Promise<Page<Item>> {
    return (request) => {
      const bindings = pageBindings(request).map((value) => (value instanceof Uint8Array ? value.slice().buffer : value));
      // The page query returns name, raw (hex text or NULL) and, for entries, position.
      const rows = this.storage.sql.exec(pageSql(columns, request), ...bindings).toArray() as unknown as PageRow[];
      return Promise.resolve(pageOf(rows, toItem));
    };
  }
}
