export type {
  CheckpointEntry,
  CheckpointStore,
  ListOptions,
  LoadResult,
  OperationOptions,
  SaveOptions,
} from "./checkpoint-store.js";
export { isCheckpointConflict } from "./checkpoint-sql.js";
export type { D1Client } from "./d1-client.js";
export {
  D1CheckpointStore,
  type CommitOptions,
  type CreateOptions,
  type D1CheckpointStoreOptions,
} from "./d1-checkpoint-store.js";
export {
  CheckpointConflictError,
  CheckpointRangeError,
  CheckpointStoreError,
  CheckpointTypeError,
  CorruptCheckpointError,
  D1OperationError,
  type CheckpointErrorDetails,
  type CheckpointOperation,
  type D1FailureDetails,
} from "./errors.js";
export { MemoryCheckpointStore } from "./memory-checkpoint-store.js";
export { compareNames } from "./name-order.js";
export {
  ProjectionError,
  ProjectionRunner,
  type EventErrorDecision,
  type PositionedEvent,
  type ProjectionRunnerOptions,
  type RunOptions,
  type RunSummary,
} from "./projection-runner.js";
export { DEFAULT_RETRY, isTransientD1Error, TRANSIENT_D1_MESSAGES, type RetryOptions, type RetryPolicy } from "./retry.js";
export { migrate, SCHEMA, type MigrateOptions } from "./schema.js";
export { DEFAULT_PAGE_SIZE, MAX_NAME_BYTES, MAX_PAGE_SIZE } from "./validate.js";
