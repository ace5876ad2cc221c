import type {
  CheckpointEntry,
  CheckpointStore,
  ListOptions,
  LoadResult,
  OperationOptions,
  SaveOptions,
} from "./checkpoint-store.js";
import {
  COMPARE_AND_SET_SQL,
  INSERT_NEW_SQL,
  isCheckpointConflict,
  LOAD_SQL,
  pageBindings,
  pageSql,
  RESET_SQL,
  UPSERT_SQL,
  type PageColumns,
} from "./checkpoint-sql.js";
import type { D1Client } from "./d1-client.js";
import {
  CheckpointConflictError,
  CheckpointStoreError,
  CheckpointTypeError,
  CorruptCheckpointError,
  D1OperationError,
  type CheckpointOperation,
} from "./errors.js";
import { keysetPages, mapRows, type KeysetOptions, type PageRequest } from "./keyset.js";
import { backoffDelay, sleep, withRetry, type RetryOptions, type RetryPolicy } from "./retry.js";
import { applySchema } from "./schema.js";
import {
  checkExpected,
  checkListOptions,
  checkName,
  checkOptions,
  checkPosition,
  checkRetryOptions,
  checkSignal,
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

/** Options of `commit` and `saveStatement`. */
export interface CommitOptions extends OperationOptions {
  /** The condition, as in {@link SaveOptions.expected}. */
  readonly expected?: number | null | undefined;
}

/** D1 clients whose schema this isolate has applied; a Worker builds a store per request. */
const migratedClients = new WeakSet<D1Client>();

interface PositionRow {
  readonly position: unknown;
}

interface EntryRow {
  readonly name: string;
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
 */
export class D1CheckpointStore implements CheckpointStore {
  /** The D1 binding or session the store talks to. */
  readonly db: D1Client;
  readonly #retry: RetryPolicy;

  /** Wraps `db`. Never migrates: use {@link D1CheckpointStore.create} or `migrate()` for that. */
  constructor(db: D1Client, options?: D1CheckpointStoreOptions) {
    if (!isD1Client(db)) {
      throw new CheckpointTypeError("configure", undefined, "db", "must be a D1Database or D1DatabaseSession");
    }
    const { retry } = checkOptions("configure", undefined, options);
    this.db = db;
    this.#retry = checkRetryOptions(retry);
  }

  /**
   * Builds a store and, unless `{ migrate: false }`, applies `SCHEMA` first.
   * The schema is applied once per isolate and binding (one `batch()` round
   * trip), not once per request; concurrent first requests of a fresh isolate
   * may each apply it, which is harmless (`IF NOT EXISTS`).
   */
  static async create(db: D1Client, options?: CreateOptions): Promise<D1CheckpointStore> {
    const store = new D1CheckpointStore(db, options);
    if (options?.migrate !== false && !migratedClients.has(db)) {
      await withRetry(store.#retry, "migrate", undefined, undefined, () => applySchema(db));
      migratedClients.add(db);
    }
    return store;
  }

  /** Stores `position` for `name` (an upsert, or with `expected` a compare-and-set). One round trip. */
  async save(name: string, position: number, options?: SaveOptions): Promise<void> {
    const valid = checkName("save", name);
    const at = checkPosition("save", valid, position);
    const { expected, signal } = checkOptions("save", valid, options);
    const condition = checkExpected("save", valid, expected);
    await this.#write("save", valid, at, condition, [], checkSignal("save", valid, signal));
  }

  /** Reads the checkpoint of `name`. One round trip. */
  async load(name: string, options?: OperationOptions): Promise<LoadResult> {
    const valid = checkName("load", name);
    const signal = checkSignal("load", valid, checkOptions("load", valid, options).signal);
    return withRetry(this.#retry, "load", valid, signal, () => this.#load("load", valid));
  }

  /** Deletes the checkpoint of `name`; no error when there is none. One round trip. */
  async reset(name: string, options?: OperationOptions): Promise<void> {
    const valid = checkName("reset", name);
    const signal = checkSignal("reset", valid, checkOptions("reset", valid, options).signal);
    await withRetry(this.#retry, "reset", valid, signal, () => this.db.prepare(RESET_SQL).bind(valid).run());
  }

  /** The names in ascending order, one round trip per page (`WHERE name > ? ORDER BY name LIMIT ?`). */
  names(options?: ListOptions): AsyncIterableIterator<string> {
    const listing = checkListOptions("names", options);
    const fetchPage = this.#pageFetcher<{ readonly name: string }>("names", "name", listing);
    return mapRows(keysetPages(listing, fetchPage, (row) => row.name), (row) => row.name);
  }

  /** The checkpoints in name order with their positions, one round trip per page. */
  entries(options?: ListOptions): AsyncIterableIterator<CheckpointEntry> {
    const listing = checkListOptions("entries", options);
    const fetchPage = this.#pageFetcher<EntryRow>("entries", "name, position", listing);
    return mapRows(keysetPages(listing, fetchPage, (row) => row.name), (row) => ({
      name: row.name,
      position: toPosition("entries", row.name, row.position),
    }));
  }

  /**
   * A statement that saves the checkpoint, for your own `db.batch([...])`.
   * With `expected`, the statement itself fails when the condition does not
   * hold, so D1 rolls back the whole batch; recognise that failure with
   * `isCheckpointConflict(error)`. Nothing is sent until you run it.
   */
  saveStatement(name: string, position: number, options?: Omit<CommitOptions, "signal">): D1PreparedStatement {
    const valid = checkName("saveStatement", name);
    const at = checkPosition("saveStatement", valid, position);
    const { expected } = checkOptions("saveStatement", valid, options);
    return this.#saveStatement(valid, at, checkExpected("saveStatement", valid, expected));
  }

  /**
   * A statement that deletes the checkpoint, for your own `db.batch([...])`:
   * reset a projection and clear its read model in one transaction, so that
   * the rebuild starts from an empty read model. Nothing is sent until you run it.
   */
  resetStatement(name: string): D1PreparedStatement {
    return this.db.prepare(RESET_SQL).bind(checkName("resetStatement", name));
  }

  /**
   * Commits `statements` (your read-model writes) and the checkpoint save in
   * one `db.batch()`: one round trip, one transaction. With `expected`, a
   * moved checkpoint rejects with {@link CheckpointConflictError} and nothing
   * of the batch is applied. The checkpoint statement runs first, so a
   * conflict costs no read-model work.
   */
  async commit(
    name: string,
    position: number,
    statements: readonly D1PreparedStatement[],
    options?: CommitOptions,
  ): Promise<void> {
    const valid = checkName("commit", name);
    const at = checkPosition("commit", valid, position);
    checkStatements("commit", valid, statements);
    const { expected, signal } = checkOptions("commit", valid, options);
    const condition = checkExpected("commit", valid, expected);
    await this.#write("commit", valid, at, condition, statements, checkSignal("commit", valid, signal));
  }

  #saveStatement(name: string, position: number, expected: number | null | undefined): D1PreparedStatement {
    if (expected === undefined) return this.db.prepare(UPSERT_SQL).bind(name, position);
    if (expected === null) return this.db.prepare(INSERT_NEW_SQL).bind(name, position);
    return this.db.prepare(COMPARE_AND_SET_SQL).bind(name, position, expected);
  }

  async #load(operation: CheckpointOperation, name: string): Promise<LoadResult> {
    const row = await this.db.prepare(LOAD_SQL).bind(name).first<PositionRow>();
    if (row === null) return { position: 0, found: false };
    return { position: toPosition(operation, name, row.position), found: true };
  }

  #pageFetcher<Row>(
    operation: CheckpointOperation,
    columns: PageColumns,
    listing: KeysetOptions,
  ): (request: PageRequest) => Promise<readonly Row[]> {
    return (request) =>
      withRetry(this.#retry, operation, undefined, listing.signal, async () => {
        const { results } = await this.db
          .prepare(pageSql(columns, request))
          .bind(...pageBindings(request))
          .all<Row>();
        return results;
      });
  }

  /**
   * Saves a checkpoint, alone or after the caller's statements in one batch.
   *
   * Retries: an unconditional save is an idempotent upsert and is simply sent
   * again. A conditional write whose response may have been lost is first
   * checked: if the checkpoint is already at `position` the write landed (this
   * one, or an overlapping invocation's identical one); if it is still at
   * `expected` it did not and is sent again; anything else is a conflict. An
   * unconditional commit, or one where `expected === position`, cannot be
   * checked that way and is not retried.
   */
  async #write(
    operation: "save" | "commit",
    name: string,
    position: number,
    expected: number | null | undefined,
    statements: readonly D1PreparedStatement[],
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const checkpoint = this.#saveStatement(name, position, expected);
    const send =
      statements.length === 0
        ? () => checkpoint.run()
        : () => this.db.batch([checkpoint, ...statements]);
    const conditional = expected !== undefined;
    const checkable = conditional && (expected !== position || statements.length === 0);
    const retryable = checkable || (!conditional && statements.length === 0);
    let verify = false;
    for (let attempt = 1; ; attempt++) {
      signal?.throwIfAborted();
      try {
        if (verify) {
          const current = await this.#load(operation, name);
          const at = current.found ? current.position : null;
          if (at === position) return;
          if (at !== expected) throw new CheckpointConflictError(operation, name, expected ?? null);
          verify = false;
        }
        await send();
        return;
      } catch (cause) {
        if (cause instanceof CheckpointStoreError) throw cause;
        if (isCheckpointConflict(cause)) {
          throw new CheckpointConflictError(operation, name, expected ?? null, { cause });
        }
        const transient = this.#retry.isTransient(cause);
        if (!retryable || !transient || attempt >= this.#retry.attempts) {
          throw new D1OperationError(operation, name, cause, {
            attempts: attempt,
            transient,
            outcomeUnknown: transient,
          });
        }
        verify = checkable;
        await sleep(backoffDelay(this.#retry, attempt), signal);
      }
    }
  }
}

function isD1Client(value: unknown): value is D1Client {
  if (typeof value !== "object" || value === null) return false;
  const candidate = value as { prepare?: unknown; batch?: unknown };
  return typeof candidate.prepare === "function" && typeof candidate.batch === "function";
}

/** A stored position as a number, or a {@link CorruptCheckpointError}. */
function toPosition(operation: CheckpointOperation, name: string, value: unknown): number {
  if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) return value;
  throw new CorruptCheckpointError(operation, name, value);
}

function checkStatements(operation: CheckpointOperation, name: string, statements: unknown): void {
  if (!Array.isArray(statements)) {
    throw new CheckpointTypeError(operation, name, "statements", "must be an array of D1PreparedStatement");
  }
  statements.forEach((statement: unknown, index) => {
    if (
      typeof statement !== "object" ||
      statement === null ||
      typeof (statement as { bind?: unknown }).bind !== "function" ||
      typeof (statement as { run?: unknown }).run !== "function"
    ) {
      throw new CheckpointTypeError(operation, name, `statements[${index}]`, "must be a D1PreparedStatement");
    }
  });
}
