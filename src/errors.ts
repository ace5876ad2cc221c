/** The store operation an error comes from. */
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
  | "run";

/** Fields every error raised by the store carries. */
export interface CheckpointErrorDetails {
  /** The operation that failed. */
  readonly operation: CheckpointOperation;
  /** The checkpoint name the operation was about, when it has one. */
  readonly checkpoint: string | undefined;
}

function describe(operation: CheckpointOperation, checkpoint: string | undefined): string {
  return checkpoint === undefined ? operation : `${operation}(${JSON.stringify(checkpoint)})`;
}

/**
 * Base class of the errors the store raises (input errors aside, which are
 * {@link CheckpointTypeError} and {@link CheckpointRangeError}).
 */
export class CheckpointStoreError extends Error implements CheckpointErrorDetails {
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

/** Details of a failed D1 call. */
export interface D1FailureDetails {
  /** How many times the call was sent. */
  readonly attempts: number;
  /** Whether the last error was transient (retryable by its message). */
  readonly transient: boolean;
  /**
   * Whether the write may have been applied all the same: a transient error
   * can hide a response lost after D1 committed. Load the checkpoint to find
   * out. Always `false` for reads and for errors D1 reported about a statement
   * (those roll the whole batch back).
   */
  readonly outcomeUnknown: boolean;
}

/**
 * D1 rejected or failed a call (after any retries). The D1 error is `cause`,
 * untouched.
 */
export class D1OperationError extends CheckpointStoreError implements D1FailureDetails {
  /** The class name, for logs. */
  override name = "D1OperationError";
  /** How many times the call was sent. */
  readonly attempts: number;
  /** Whether the last error was transient. */
  readonly transient: boolean;
  /** Whether a write may have been applied all the same (see {@link D1FailureDetails.outcomeUnknown}). */
  readonly outcomeUnknown: boolean;

  constructor(
    operation: CheckpointOperation,
    checkpoint: string | undefined,
    cause: unknown,
    details: D1FailureDetails = { attempts: 1, transient: false, outcomeUnknown: false },
  ) {
    const tries = details.attempts === 1 ? "" : ` after ${details.attempts} attempts`;
    const unknown = details.outcomeUnknown ? " (the write may have been applied: load the checkpoint to find out)" : "";
    super(operation, checkpoint, `D1 failed${tries}: ${messageOf(cause)}${unknown}`, { cause });
    this.attempts = details.attempts;
    this.transient = details.transient;
    this.outcomeUnknown = details.outcomeUnknown;
  }
}

/**
 * A conditional save or commit found the checkpoint somewhere else than
 * `expected`: another invocation moved it first. Nothing of the batch was
 * applied.
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
 */
export class CorruptCheckpointError extends CheckpointStoreError {
  /** The class name, for logs. */
  override name = "CorruptCheckpointError";
  /** What D1 returned for the position column. */
  readonly value: unknown;

  constructor(operation: CheckpointOperation, checkpoint: string, value: unknown) {
    super(
      operation,
      checkpoint,
      `stored position ${String(value)} (${typeof value}) is not a non-negative safe integer`,
    );
    this.value = value;
  }
}

/** An argument of the wrong type. Raised before any query. */
export class CheckpointTypeError extends TypeError implements CheckpointErrorDetails {
  /** The class name, for logs. */
  override name = "CheckpointTypeError";
  /** The operation that was called. */
  readonly operation: CheckpointOperation;
  /** The checkpoint name, when the name itself was valid. */
  readonly checkpoint: string | undefined;
  /** The argument or option at fault, such as `"name"` or `"options.pageSize"`. */
  readonly argument: string;

  constructor(
    operation: CheckpointOperation,
    checkpoint: string | undefined,
    argument: string,
    message: string,
  ) {
    super(`${describe(operation, checkpoint)}: ${argument} ${message}`);
    this.operation = operation;
    this.checkpoint = checkpoint;
    this.argument = argument;
  }
}

/** An argument of the right type but outside its range. Raised before any query. */
export class CheckpointRangeError extends RangeError implements CheckpointErrorDetails {
  /** The class name, for logs. */
  override name = "CheckpointRangeError";
  /** The operation that was called. */
  readonly operation: CheckpointOperation;
  /** The checkpoint name, when the name itself was valid. */
  readonly checkpoint: string | undefined;
  /** The argument or option at fault, such as `"position"`. */
  readonly argument: string;

  constructor(
    operation: CheckpointOperation,
    checkpoint: string | undefined,
    argument: string,
    message: string,
  ) {
    super(`${describe(operation, checkpoint)}: ${argument} ${message}`);
    this.operation = operation;
    this.checkpoint = checkpoint;
    this.argument = argument;
  }
}

/** The message of an unknown thrown value. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
