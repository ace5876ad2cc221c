/**
 * A checkpoint store for event-sourced projections on Cloudflare Workers.
 *
 * Each projection (a read-model table, a counter, a search index) remembers
 * the position of the last event it applied, so the next invocation resumes
 * exactly there, with no event lost and none applied twice. The checkpoint
 * commits in the same transaction as the read model: a D1 `batch()` with
 * {@link D1CheckpointStore}, and `ProjectionRunner` drives the loop.
 *
 * @example
 * ```ts
 * import { D1CheckpointStore, ProjectionRunner } from "@synapse-es/checkpointstore-d1";
 *
 * const runner = new ProjectionRunner({
 *   name: "balances",
 *   store: new D1CheckpointStore(env.DB),
 *   eventsQuery: (after, limit) =>
 *     env.DB.prepare("SELECT * FROM events WHERE position > ?1 ORDER BY position LIMIT ?2").bind(after, limit),
 *   project: (events) => events.map((event) => creditStatement(env.DB, event)),
 * });
 * await runner.run({ maxBatches: 8 });
 * ```
 *
 * @packageDocumentation
 */
export type {
  CheckpointCommit,
  CheckpointEntry,
  CheckpointStore,
  CommitOptions,
  GroupProjectionStore,
  ListOptions,
  LoadResult,
  OperationOptions,
  ParkRequest,
  ProjectionStore,
  ReplayOptions,
  SaveOptions,
  VersionFence,
} from "./core/store.js";
export { isCheckpointConflict } from "./sql/checkpoints.js";
export type { D1Client } from "./d1/client.js";
export { D1CheckpointStore, type CreateOptions, type D1CheckpointStoreOptions } from "./d1/checkpoint-store.js";
export type { LoadManyAndQueryOptions, LoadManyResult } from "./core/store.js";
export type { LoadAndQueryOptions } from "./core/store.js";
export { DurableObjectCheckpointStore, type SqlWrites } from "./durable-object/checkpoint-store.js";
export {
  CheckpointConflictError,
  CheckpointRangeError,
  CheckpointStoreError,
  CheckpointTypeError,
  CorruptCheckpointError,
  D1OperationError,
  type CheckpointInputDetails,
  type CheckpointOperation,
} from "./core/errors.js";
export { D1_MAX_BOUND_PARAMETERS, D1_MAX_STATEMENT_BYTES, D1_MAX_VALUE_BYTES, D1_QUERIES_PER_INVOCATION } from "./core/d1-limits.js";
export {
  jsonRowChunks,
  jsonRowStatements,
  type JsonRowOptions,
  type JsonSafe,
  type JsonValue,
} from "./d1/json-rows.js";
export { MemoryCheckpointStore } from "./memory/checkpoint-store.js";
export type { ParkedEvent, ParkedListOptions } from "./sql/parked-events.js";
export type { EventTimes, ProjectionStatus, RebuildProgress, StatusListOptions, StatusOptions } from "./sql/status.js";
export {
  ProjectionVersionError,
} from "./core/errors.js";
export {
  type ProjectionVersion,
  type RebuildOptions,
  type SwitchOptions,
  type VersionState,
  type VersionTables,
} from "./core/store.js";
export type { NamedRunLease, RunLease } from "./core/store.js";
export { compareNames } from "./core/name-order.js";
export { ProjectionError, type EventErrorDecision, type PositionedEvent } from "./runner/project-batch.js";
export { ProjectionGroup } from "./runner/projection-group.js";
export {
  ProjectionGroupError,
  type GroupCommon,
  type GroupEventsQuerySource,
  type GroupMemberSummary,
  type GroupProjection,
  type GroupReadEventsSource,
  type GroupRunSummary,
  type ProjectionGroupOptions,
} from "./runner/group-options.js";
export {
  type PipelinedGroupStore,
} from "./core/store.js";
export { ProjectionRunner } from "./runner/projection-runner.js";
export type {
  EventsQuerySource,
  ProjectionRunnerOptions,
  ReadEventsSource,
  RunnerCommon,
  RunSummary,
} from "./runner/runner-options.js";
export type {
  PipelinedProjectionStore,
} from "./core/store.js";
export { QueryBudget, QueryBudgetError } from "./core/query-budget.js";
export type { RunEnd, RunOptions } from "./runner/run-options.js";
export { isTransientD1Error, TRANSIENT_D1_MESSAGES, type RetryOptions } from "./d1/retry.js";
export { migrate, type MigrateOptions } from "./d1/migrate.js";
export { SCHEMA } from "./sql/schema.js";
export { MAX_NAME_BYTES } from "./core/validate.js";
export { CheckpointTimeoutError, waitForCheckpoint, type WaitForOptions } from "./core/wait-for.js";
