// The interfaces every store implements, and the shapes they take and give.
// The top of the type graph: it imports only the query budget, which stands below it.
import type { QueryBudget } from "./query-budget.js";

/** An event set aside to park, as a commit takes it. */
export interface ParkRequest {
  /** The event's position. */
  readonly position: number;
  /** Why it could not be applied: the error's message (stored cut to 1,000 characters). */
  readonly error: string;
}

/** What `load` resolves to. */
export interface LoadResult {
  /** The saved position, or `0` when there is none. */
  readonly position: number;
  /** Whether a checkpoint exists. Saving `0` then loading gives `{ position: 0, found: true }`. */
  readonly found: boolean;
}

/** One checkpoint, as `entries()` yields it. */
export interface CheckpointEntry {
  /** The checkpoint (projection) name. */
  readonly name: string;
  /** The last processed event position. */
  readonly position: number;
}

/** Options every operation takes. */
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
 */
export interface VersionFence {
  /** The projection's name (the live checkpoint's). */
  readonly name: string;
  /** The version. */
  readonly version: number;
  /** The state the version must still be in. */
  readonly state: "live" | "building";
}

/** Options of `save`. */
export interface SaveOptions extends OperationOptions {
  /**
   * Makes the save conditional: a number means the stored position must equal
   * it, `null` means no checkpoint may exist yet. When the condition does not
   * hold the save rejects with `CheckpointConflictError` and writes nothing.
   * Omitted: an unconditional upsert.
   */
  readonly expected?: number | null | undefined;
  /**
   * Makes the save conditional on a projection version's state too (see
   * `VersionFence`): set by `ProjectionRunner` for a runner with a
   * `version`. Needs migration 0003.
   */
  readonly fence?: VersionFence | undefined;
}

/** Options of `replayParked`. */
export interface ReplayOptions extends OperationOptions {
  /** As `save`'s: the projection version's state the replay is conditional on (`ProjectionVersionError` when it no longer holds). */
  readonly fence?: VersionFence | undefined;
}

/** Options of `commit`: a save's options, and events to park in the same transaction. */
export interface CommitOptions extends SaveOptions {
  /**
   * Events the projection could not apply, parked in the same transaction
   * (table `parked_events`, migration 0002): listed by `parked()`, replayed
   * by `replayParked()` or `ProjectionRunner.replay`. Positions must not be
   * beyond the committed position.
   */
  readonly parked?: readonly ParkRequest[] | undefined;
}

/** Options of `names()` and `entries()`. */
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
