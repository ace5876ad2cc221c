// The errors of the package: the base class, D1 failures (with their cause),
// conflicts, corrupt rows, version conditions, and the two input errors that
// every call throws before any query.
/**
 * The store operation an error comes from.
 *
 * @category Errors
 */
export type CheckpointOperation =
  | "save"
  | "load"
  | "reset"
  | "names"
  | "entries"
  | "commit"
  | "migrate"
  | "saveStatement"
  | "resetStatement"
  | "configure"
  | "run"
  | "waitFor"
  | "parked"
  | "replay"
  | "jsonRows"
  | "status"
  | "rebuild"
  | "switch"
  | "dropVersion"
  | "versions";

function describe(operation: CheckpointOperation, checkpoint: string | undefined): string {
  return checkpoint === undefined ? operation : `${operation}(${JSON.stringify(checkpoint)})`;
}

/**
 * Base class of the errors the store raises (input errors aside, which are
 * {@link CheckpointTypeError} and {@link CheckpointRangeError}).
 *
 * @category Errors
 */
export class CheckpointStoreError extends Error {
  /** The class name, for logs. */
  override name = "CheckpointStoreError";
  /** The operation that failed. */
  readonly operation: CheckpointOperation;
  /** The checkpoint name the operation was about, when it has one. */
  readonly checkpoint: string | undefined;

  constructor(
    operation: CheckpointOperation,
    checkpoint: string | undefined,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${describe(operation, checkpoint)}: ${message}`, options);
    this.operation = operation;
    this.checkpoint = checkpoint;
  }
}

/**
 * D1 rejected or failed a call (after any retries). The D1 error is `cause`,
 * untouched; when an abort ended a retry after a write that may have been
 * applied, `cause` is the signal's reason and `aborted` is `true`.
 *
 * @example
 * ```ts
 * try {
 *   await store.commit("balances", 42, statements, { expected: 41 });
 * } catch (error) {
 *   if (error instanceof D1OperationError && error.outcomeUnknown) {
 *     // the batch may have been applied: load the checkpoint before deciding
 *   }
 *   throw error;
 * }
 * ```
 *
 * @category Errors
 */
export class D1OperationError extends CheckpointStoreError {
  /** The class name, for logs. */
  override name = "D1OperationError";
  /** How many times the call was sent (a check `load` counts with the attempt it precedes). */
  readonly attempts: number;
  /** Whether the last D1 error was transient (retryable by its message). */
  readonly transient: boolean;
  /**
   * Whether the write may have been applied all the same. `true` when a
   * transient error struck a write (the response may have been lost after D1
   * committed) and nothing since has shown that it did not land: load the
   * checkpoint to find out. `false` for reads, and for errors D1 reported
   * about a statement, which roll the whole batch back.
   */
  readonly outcomeUnknown: boolean;
  /** Whether the caller's signal ended the call (its reason is `cause`). */
  readonly aborted: boolean;

  constructor(
    operation: CheckpointOperation,
    checkpoint: string | undefined,
    cause: unknown,
    details: {
      readonly attempts: number;
      readonly transient: boolean;
      readonly outcomeUnknown: boolean;
      readonly aborted?: boolean | undefined;
      /** Said instead of D1's message, which stays in `cause`. */
      readonly reason?: string | undefined;
    } = { attempts: 1, transient: false, outcomeUnknown: false },
  ) {
    const tries = details.attempts === 1 ? "" : ` after ${details.attempts} attempts`;
    const what = details.reason ?? `D1 failed${tries}: ${messageOf(cause)}`;
    const unknown = details.outcomeUnknown ? " (the write may have been applied: load the checkpoint to find out)" : "";
    super(operation, checkpoint, `${what}${unknown}`, { cause });
    this.attempts = details.attempts;
    this.transient = details.transient;
    this.outcomeUnknown = details.outcomeUnknown;
    this.aborted = details.aborted ?? false;
  }
}

/**
 * A conditional save or commit found the checkpoint somewhere else than
 * `expected`: another invocation moved it first. Nothing of the batch was
 * applied: the store raises it only when it knows that. A write whose
 * response was lost and whose checkpoint has moved since is a
 * {@link D1OperationError} with `outcomeUnknown: true` instead.
 *
 * @category Errors
 */
export class CheckpointConflictError extends CheckpointStoreError {
  /** The class name, for logs. */
  override name = "CheckpointConflictError";
  /** The position the caller expected; `null` means "no checkpoint yet". */
  readonly expected: number | null;

  constructor(
    operation: CheckpointOperation,
    checkpoint: string,
    expected: number | null,
    options?: { cause?: unknown },
  ) {
    super(
      operation,
      checkpoint,
      expected === null
        ? "conflict: expected no checkpoint, but one exists"
        : `conflict: expected the checkpoint at position ${expected}, but it has moved`,
      options,
    );
    this.expected = expected;
  }
}

/**
 * The stored position is not a non-negative safe integer (another tool wrote
 * it). The store refuses to return a rounded or negative number.
 *
 * @category Errors
 */
export class CorruptCheckpointError extends CheckpointStoreError {
  /** The class name, for logs. */
  override name = "CorruptCheckpointError";
  /** What D1 returned for the column. */
  readonly value: unknown;
  /** The column that holds it: `"position"`, or `"parked_at"` for a parked event's time. */
  readonly column: string;

  constructor(operation: CheckpointOperation, checkpoint: string, value: unknown, column = "position") {
    super(
      operation,
      checkpoint,
      column === "position"
        ? `stored position ${String(value)} (${typeof value}) is not a non-negative safe integer`
        : `stored ${column} ${String(value)} (${typeof value}) is not a time in milliseconds that a Date can hold`,
    );
    this.value = value;
    this.column = column;
  }
}

/**
 * What the input errors carry: where the bad argument was given.
 *
 * @category Errors
 */
export interface CheckpointInputDetails {
  /** The operation that was called. */
  readonly operation: CheckpointOperation;
  /** The checkpoint name, when the name itself was valid. */
  readonly checkpoint: string | undefined;
  /** The argument or option at fault, such as `"name"` or `"options.pageSize"`. */
  readonly argument: string;
}

/** The message of an input error: where the bad argument was given, and what is wrong with it. */
function inputMessage(operation: CheckpointOperation, checkpoint: string | undefined, argument: string, message: string): string {
  return `${describe(operation, checkpoint)}: ${argument} ${message}`;
}

// The two input errors differ only in their standard base class (so that
// `instanceof TypeError` and `instanceof RangeError` keep working); a mixin
// would share the body but puts an unexported base class into the public types.

/**
 * An argument of the wrong type (a `TypeError`). Raised before any query; nothing is sent.
 *
 * @category Errors
 */
export class CheckpointTypeError extends TypeError implements CheckpointInputDetails {
  /** The class name, for logs. */
  override name = "CheckpointTypeError";
  /** The operation that was called. */
  readonly operation: CheckpointOperation;
  /** The checkpoint name, when the name itself was valid. */
  readonly checkpoint: string | undefined;
  /** The argument or option at fault. */
  readonly argument: string;

  constructor(operation: CheckpointOperation, checkpoint: string | undefined, argument: string, message: string) {
    super(inputMessage(operation, checkpoint, argument, message));
    [this.operation, this.checkpoint, this.argument] = [operation, checkpoint, argument];
  }
}

/**
 * An argument of the right type but outside its range (a `RangeError`). Raised before any query; nothing is sent.
 *
 * @category Errors
 */
export class CheckpointRangeError extends RangeError implements CheckpointInputDetails {
  /** The class name, for logs. */
  override name = "CheckpointRangeError";
  /** The operation that was called. */
  readonly operation: CheckpointOperation;
  /** The checkpoint name, when the name itself was valid. */
  readonly checkpoint: string | undefined;
  /** The argument or option at fault. */
  readonly argument: string;

  constructor(operation: CheckpointOperation, checkpoint: string | undefined, argument: string, message: string) {
    super(inputMessage(operation, checkpoint, argument, message));
    [this.operation, this.checkpoint, this.argument] = [operation, checkpoint, argument];
  }
}

/** The message of an unknown thrown value. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * A version call whose condition did not hold: the version is not in the
 * state the call needs (`startRebuild` while another rebuild runs,
 * `switchVersion` on a rebuild that has not caught up, a fenced commit after
 * a switch). Nothing was applied.
 *
 * @category Errors
 */
export class ProjectionVersionError extends CheckpointStoreError {
  /** The class name, for logs. */
  override name = "ProjectionVersionError";
  /** The version the call was about. */
  readonly version: number;

  constructor(operation: CheckpointOperation, checkpoint: string, version: number, message: string, options?: { cause?: unknown }) {
    super(operation, checkpoint, message, options);
    this.version = version;
  }
}
