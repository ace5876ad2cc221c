// The interfaces every store implements, and the shapes they take and give.
// The top of the type graph: it imports only the query budget, which stands below it.
import type { QueryBudget } from "./query-budget.js";

/**
 * An event set aside to park, as a commit takes it.
 *
 * @category Stores
 */
export interface ParkRequest {
  /** The event's position. */
  readonly position: number;
  /** Why it could not be applied: the error's message (stored cut to 1,000 characters). */
  readonly error: string;
}

/**
 * What `load` resolves to.
 *
 * @category Stores
 */
export interface LoadResult {
  /** The saved position, or `0` when there is none. */
  readonly position: number;
  /** Whether a checkpoint exists. Saving `0` then loading gives `{ position: 0, found: true }`. */
  readonly found: boolean;
}

/**
 * One checkpoint, as `entries()` yields it.
 *
 * @category Stores
 */
export interface CheckpointEntry {
  /** The checkpoint (projection) name. */
  readonly name: string;
  /** The last processed event position. */
  readonly position: number;
}

/**
 * Options every operation takes.
 *
 * @category Stores
 */
export interface OperationOptions {
  /**
   * Cancels the operation. An already aborted signal rejects with its
   * `reason` and sends nothing to D1. The signal is checked before every
   * round trip; a request already sent to D1 cannot be recalled, so its
   * outcome is reported.
   */
  readonly signal?: AbortSignal | undefined;
  /**
   * Counts the D1 queries the call sends (each statement of a batch, every
   * retry and check) against an invocation's budget; a round trip that would
   * go over it is refused with `QueryBudgetError` before it is sent. Stores
   * that send no D1 queries (Durable Object, memory) count nothing.
   */
  readonly budget?: QueryBudget | undefined;
}

/**
 * Makes a commit conditional on a projection version's state as well: the
 * commit applies nothing and rejects with `ProjectionVersionError` when
 * the version is no longer in `state`. `ProjectionRunner` sets it for a runner
 * with a `version`; the checkpoint must be the version's (`name` when live,
 * `name@version` when building).
 *
 * @category Versions
 */
export interface VersionFence {
  /** The projection's name (the live checkpoint's). */
  readonly name: string;
  /** The version. */
  readonly version: number;
  /** The state the version must still be in. */
  readonly state: "live" | "building";
}

/**
 * Options of `save`.
 *
 * @category Stores
 */
export interface SaveOptions extends OperationOptions {
  /**
   * Makes the save conditional: a number means the stored position must equal
   * it, where no checkpoint counts as one at `0` (as `load` reports it, so
   * `expected: (await store.load(name)).position` works on a fresh database
   * too); `null` means no checkpoint may exist yet. When the condition does
   * not hold the save rejects with `CheckpointConflictError` and writes
   * nothing. Omitted: an unconditional upsert.
   */
  readonly expected?: number | null | undefined;
  /**
   * Makes the save conditional on a projection version's state too (see
   * `VersionFence`): set by `ProjectionRunner` for a runner with a
   * `version`. Needs migration 0003.
   */
  readonly fence?: VersionFence | undefined;
}

/**
 * Options of `replayParked`.
 *
 * @category Stores
 */
export interface ReplayOptions extends OperationOptions {
  /** As `save`'s: the projection version's state the replay is conditional on (`ProjectionVersionError` when it no longer holds). */
  readonly fence?: VersionFence | undefined;
}

/**
 * Options of `commit`: a save's options, and events to park in the same transaction.
 *
 * @category Stores
 */
export interface CommitOptions extends SaveOptions {
  /**
   * Events the projection could not apply, parked in the same transaction
   * (table `parked_events`, migration 0002): listed by `parked()`, replayed
   * by `replayParked()` or `ProjectionRunner.replay`. Positions must not be
   * beyond the committed position.
   */
  readonly parked?: readonly ParkRequest[] | undefined;
}

/**
 * Options of `names()` and `entries()`.
 *
 * @category Stores
 */
export interface ListOptions extends OperationOptions {
  /** Rows per query (page), 1 to 10,000; default 1,000. */
  readonly pageSize?: number | undefined;
  /** Start after this name (exclusive), e.g. the last name of an earlier listing. */
  readonly after?: string | undefined;
  /** Only names that start with this string (an index range, not `LIKE`). */
  readonly prefix?: string | undefined;
}

/**
 * Remembers, per projection name, the position of the last event the
 * projection applied. The TypeScript counterpart of synapse's
 * `es.CheckpointStore`.
 *
 * Every implementation passes the contract suite exported from
 * `@synapse-es/checkpointstore-d1/contract`.
 *
 * @category Stores
 */
export interface CheckpointStore {
  /** Stores `position` for `name`, replacing any earlier one (or, with `expected`, only if it still holds). */
  save(name: string, position: number, options?: SaveOptions): Promise<void>;
  /** Reads the checkpoint of `name`: `{ position: 0, found: false }` when there is none. */
  load(name: string, options?: OperationOptions): Promise<LoadResult>;
  /** Deletes the checkpoint of `name`; no error when there is none. */
  reset(name: string, options?: OperationOptions): Promise<void>;
  /**
   * The checkpoint names in ascending order (UTF-8 byte order, which is code
   * point order), fetched page by page. Names inserted or deleted while
   * iterating never cause a duplicate, nor skip a name that existed
   * throughout. Breaking out of the loop fetches no further page.
   */
  names(options?: ListOptions): AsyncIterableIterator<string>;
  /** Like {@link CheckpointStore.names}, with each checkpoint's position. */
  entries(options?: ListOptions): AsyncIterableIterator<CheckpointEntry>;
}

/**
 * What a {@link ProjectionRunner} needs of a store: read a checkpoint, and
 * commit a projection's writes together with the new checkpoint in one
 * transaction, on condition (`expected`) that the checkpoint has not moved.
 *
 * `Writes` is what the store commits with the checkpoint: D1 prepared
 * statements for the D1 store, a synchronous SQL callback for the Durable
 * Object store. A test double around {@link MemoryCheckpointStore} can drive
 * the runner too.
 *
 * @typeParam Writes - the read-model writes the store commits with a checkpoint
 *
 * @category Stores
 */
export interface ProjectionStore<Writes> {
  /** Reads the checkpoint of `name`: `{ position: 0, found: false }` when there is none. */
  load(name: string, options?: OperationOptions): Promise<LoadResult>;
  /**
   * Applies `writes` and saves `position` for `name` atomically. With
   * `expected`, rejects with `CheckpointConflictError` and applies nothing
   * when the stored checkpoint is not `expected` (`null`: none may exist).
   */
  commit(name: string, position: number, writes: Writes, options?: CommitOptions): Promise<void>;
  /**
   * Applies `writes` for the parked event at `position` and removes it from
   * the parked events, atomically, without moving the checkpoint. Resolves
   * `false` and applies nothing when no such event is parked (another replay
   * or a reset took it).
   */
  replayParked(name: string, position: number, writes: Writes, options?: ReplayOptions): Promise<boolean>;
}

/**
 * One projection's part of a group commit (`commitMany`): its writes and its
 * checkpoint, saved on condition like a `commit`.
 *
 * @typeParam Writes - the read-model writes the store commits with a checkpoint
 *
 * @category Stores
 */
export interface CheckpointCommit<Writes> {
  /** The checkpoint (projection) name; each name at most once per group commit. */
  readonly name: string;
  /** The new position. */
  readonly position: number;
  /** The projection's read-model writes. */
  readonly writes: Writes;
  /** As `commit`'s: the position the checkpoint must still have, `null` for none yet, omitted for no condition. */
  readonly expected?: number | null | undefined;
  /** As `commit`'s: events to park in the same transaction. */
  readonly parked?: readonly ParkRequest[] | undefined;
  /** As `save`'s: the projection version's state this part is conditional on. */
  readonly fence?: VersionFence | undefined;
}

/**
 * What a {@link ProjectionGroup} needs of a store beside a runner's needs:
 * load several checkpoints at once, and commit several projections' writes
 * and checkpoints in one transaction.
 *
 * @typeParam Writes - the read-model writes the store commits with a checkpoint
 *
 * @category Stores
 */
export interface GroupProjectionStore<Writes> extends ProjectionStore<Writes> {
  /** The checkpoints of `names`, in the same order, in one read. */
  loadMany(names: readonly string[], options?: OperationOptions): Promise<LoadResult[]>;
  /**
   * Commits every projection's writes and checkpoint in one transaction: all
   * or nothing. A failed condition rejects with `CheckpointConflictError` (for
   * the first checkpoint found moved) and applies nothing.
   */
  commitMany(commits: readonly CheckpointCommit<Writes>[], options?: OperationOptions): Promise<void>;
}

/**
 * A lease as a run holds it: who, and for how long it may run before another run may take over.
 *
 * @category Stores
 */
export interface RunLease {
  /** This run's holder id (random, one per run). */
  readonly holder: string;
  /** How long the lease lasts after each claim or renewal, in milliseconds. */
  readonly ttlMs: number;
}

/**
 * A run lease under a name of its own: a projection group's, claimed once for all its projections.
 *
 * @category Stores
 */
export interface NamedRunLease extends RunLease {
  /** The lease's name (the group's), checked as a checkpoint name. */
  readonly name: string;
}

/**
 * A version's state: `"live"` (its checkpoint is the projection's own name and
 * readers see its tables), `"building"` (a rebuild beside the live one, under
 * the checkpoint `name@version`) or `"retired"` (switched away from, kept with
 * its tables and its checkpoint `name@version` for a rollback).
 *
 * @category Versions
 */
export type VersionState = "live" | "building" | "retired";

/**
 * Each read name (what readers query: a view once a version has been switched live) mapped to a version's own table.
 *
 * @category Versions
 */
export type VersionTables = Readonly<Record<string, string>>;

/**
 * One version of a projection, as `versions()` lists it.
 *
 * @category Versions
 */
export interface ProjectionVersion {
  /** The projection's name. */
  readonly name: string;
  /** The version number (1 for a projection's first). */
  readonly version: number;
  /** Its state. */
  readonly state: VersionState;
  /** Its checkpoint's name: the projection's own name when live, `name@version` otherwise. */
  readonly checkpoint: string;
  /** Its tables, by read name. */
  readonly tables: VersionTables;
  /** When it was recorded (for a rebuild, when it started), by the database's clock. */
  readonly startedAt: Date;
}

/**
 * Options of `startRebuild`. `Create` is what creates tables: D1 statements, or a Durable Object's `SqlWrites`.
 *
 * @category Versions
 */
export interface RebuildOptions<Create> extends OperationOptions {
  /**
   * The new version's tables by read name, for example
   * `{ balances: "balances_v2" }`: its projection writes into `balances_v2`,
   * and the switch makes `balances` a view of it. Names are SQL identifiers
   * (letters, digits, `_`); a table may not be a read name.
   */
  readonly tables: VersionTables;
  /** Creates the new version's tables (and their indexes) in the same transaction; omit when a migration made them. */
  readonly create?: Create | undefined;
  /**
   * The live version's tables, recorded when the projection has no version
   * record yet (its first rebuild). Default: each read name of `tables` that
   * is a table now is itself the live version's table, which the switch
   * renames to `<name>_v1` (or drops) before it creates the view.
   */
  readonly liveTables?: VersionTables | undefined;
}

/**
 * Options of `switchVersion`.
 *
 * @category Versions
 */
export interface SwitchOptions extends OperationOptions {
  /**
   * What becomes of the version that was live: `"keep"` (default) keeps its
   * tables and its checkpoint (`name@version`) for a rollback (start it as a
   * rebuild again to catch it up); `"drop"` drops its tables and forgets it.
   */
  readonly retire?: "keep" | "drop" | undefined;
}

/**
 * A store that can ride a query along with its load and its commits, in the
 * same round trip: what `ProjectionRunner` needs for `eventsQuery`.
 * {@link D1CheckpointStore} is one.
 *
 * @category Stores
 */
export interface PipelinedProjectionStore extends ProjectionStore<readonly D1PreparedStatement[]> {
  /** Commits, then runs `query` in the same batch; its rows only when the batch committed. */
  commitAndQuery<Row>(
    name: string,
    position: number,
    statements: readonly D1PreparedStatement[],
    query: D1PreparedStatement,
    options?: CommitOptions,
  ): Promise<Row[]>;
  /**
   * Loads the checkpoint and runs `query(checkpoint.position)`: in one round
   * trip when it can guess the position. With `lease`, claims a run lease in
   * the same round trip; `leased: false` when another run holds it.
   */
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- the caller names the row type, as with D1's all<T>()
  loadAndQuery<Row>(
    name: string,
    query: (after: number) => D1PreparedStatement,
    options?: OperationOptions & { readonly lease?: RunLease | undefined },
  ): Promise<{ readonly checkpoint: LoadResult; readonly rows: Row[]; readonly leased: boolean }>;
  /** Lets go of a run lease (see `D1CheckpointStore.releaseLease`); needed only for runners with a `lease`. */
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- as above
  releaseLease?<Row>(
    name: string,
    lease: RunLease,
    query: D1PreparedStatement | undefined,
    options?: OperationOptions & { readonly drop?: boolean | undefined },
  ): Promise<{ readonly held: boolean; readonly rows: Row[] }>;
  /** Commits a leased run's last batch and lets go of the lease in it (see `D1CheckpointStore.commitAndRelease`); optional. */
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- as above
  commitAndRelease?<Row>(
    name: string,
    position: number,
    statements: readonly D1PreparedStatement[],
    lease: RunLease,
    query: D1PreparedStatement,
    options?: CommitOptions,
  ): Promise<{ readonly held: boolean; readonly rows: Row[] }>;
}

/**
 * A store that can ride a query along with a group's load and commit: what `ProjectionGroup` needs for `eventsQuery`.
 *
 * @category Stores
 */
export interface PipelinedGroupStore extends GroupProjectionStore<readonly D1PreparedStatement[]> {
  /** The checkpoints of `names` and the rows of `query(lowest position)`, in one round trip when it can guess. */
  loadManyAndQuery<Row>(names: readonly string[], query: (after: number) => D1PreparedStatement, options?: LoadManyAndQueryOptions): Promise<LoadManyResult<Row>>;
  /** `commitMany`, then `query` in the same batch; its rows only when the batch committed. */
  commitManyAndQuery<Row>(
    commits: readonly CheckpointCommit<readonly D1PreparedStatement[]>[],
    query: D1PreparedStatement,
    options?: LoadManyAndQueryOptions,
  ): Promise<Row[]>;
  /** Lets go of a run lease (as `D1CheckpointStore.releaseLease`); needed only with `lease`. */
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- the caller names the row type, as with D1's all<T>()
  releaseLease?<Row>(
    name: string,
    lease: RunLease,
    query: D1PreparedStatement | undefined,
    options?: LoadManyAndQueryOptions & { readonly drop?: boolean | undefined },
  ): Promise<{ readonly held: boolean; readonly rows: Row[] }>;
}

/**
 * Options of `D1CheckpointStore.loadManyAndQuery`.
 *
 * @category Stores
 */
export interface LoadManyAndQueryOptions extends OperationOptions {
  /** Claims a run lease of its own name in the same round trip, as `loadAndQuery`'s `lease` does. */
  readonly lease?: NamedRunLease | undefined;
}

/**
 * What `loadManyAndQuery` gives: the checkpoints in the order of the names, the query's rows, and whether the lease is this run's.
 *
 * @category Stores
 */
export interface LoadManyResult<Row> {
  /** The checkpoints, in the order of the names. */
  readonly checkpoints: LoadResult[];
  /** The query's rows (after the lowest checkpoint); none when the lease is another run's. */
  readonly rows: Row[];
  /** Whether the lease is this run's (always `true` without a lease). */
  readonly leased: boolean;
}

/**
 * Options of `D1CheckpointStore.loadAndQuery`.
 *
 * @category Stores
 */
export interface LoadAndQueryOptions extends OperationOptions {
  /**
   * Claims a run lease in the same round trip (migration 0002): when another
   * run holds one, `leased` is `false`, that run is told to look again before
   * it lets go, and no rows are returned.
   */
  readonly lease?: RunLease | undefined;
}

/** A store that knows projection versions. */
export interface VersionedStore {
  versions(name: string, options?: OperationOptions): Promise<readonly { readonly version: number; readonly state: VersionState }[]>;
}
