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

// ── Stores: The stores and what every store can do: the interfaces a runner or a group needs, their options and results.
export { D1CheckpointStore, type CreateOptions, type D1CheckpointStoreOptions } from "./d1/checkpoint-store.js";
export type { D1Client } from "./d1/client.js";
export { TRANSIENT_D1_MESSAGES, isTransientD1Error, type RetryOptions } from "./d1/retry.js";
export { DurableObjectCheckpointStore } from "./durable-object/checkpoint-store.js";
export type { SqlWrites } from "./durable-object/sync-writes.js";
export { MemoryCheckpointStore } from "./memory/checkpoint-store.js";
export type {
  CheckpointCommit,
  CheckpointEntry,
  CheckpointStore,
  CommitOptions,
  GroupProjectionStore,
  ListOptions,
  LoadAndQueryOptions,
  LoadManyAndQueryOptions,
  LoadManyResult,
  LoadResult,
  NamedRunLease,
  OperationOptions,
  ParkRequest,
  PipelinedGroupStore,
  PipelinedProjectionStore,
  ProjectionStore,
  ReplayOptions,
  RunLease,
  SaveOptions,
} from "./core/store.js";
export { compareNames } from "./core/name-order.js";

// ── Runner: One projection, run batch by batch: exactly once, resumable, within a query budget.
export { ProjectionRunner } from "./runner/projection-runner.js";
export type { EventsQuerySource, ProjectionRunnerOptions, ReadEventsSource, RunSummary, RunnerCommon } from "./runner/runner-options.js";
export type { RunEnd, RunOptions } from "./runner/run-options.js";
export type { EventErrorDecision, PositionedEvent } from "./runner/project-batch.js";

// ── Group: Several projections, one read per batch, one commit for all of them.
export { ProjectionGroup } from "./runner/projection-group.js";
export type {
  GroupCommon,
  GroupEventsQuerySource,
  GroupMemberSummary,
  GroupProjection,
  GroupReadEventsSource,
  GroupRunSummary,
  ProjectionGroupOptions,
} from "./runner/group-options.js";

// ── Metrics: What each run reports to its recorders (the ready ones are in ./metrics), rows included.
export type { MetricsRecorder, ProjectionReport, RecordContext, RunMetrics, RunReport } from "./runner/metrics.js";

// ── Versions: Rebuilding a projection beside the live one and switching it live (docs/decisions/0020).
export type { ProjectionVersion, RebuildOptions, SwitchOptions, VersionFence, VersionState, VersionTables } from "./core/store.js";

// ── Operations: Parked events, status and lag, and waiting for a projection to catch up.
export type { ParkedEvent, ParkedListOptions } from "./sql/parked-events.js";
export type { EventTimes, ProjectionStatus, RebuildProgress, StatusListOptions, StatusOptions } from "./sql/status.js";
export { waitForCheckpoint, type WaitForOptions } from "./core/wait-for.js";

// ── Set-based writes: A batch's rows as one JSON value: one statement per batch, not per event.
export { jsonRowChunks, jsonRowStatements, type JsonRowOptions, type JsonSafe, type JsonValue } from "./d1/json-rows.js";

// ── Errors: What the package throws, and how to recognise it.
export {
  CheckpointConflictError,
  CheckpointRangeError,
  CheckpointStoreError,
  CheckpointTypeError,
  CorruptCheckpointError,
  D1OperationError,
  ProjectionVersionError,
  type CheckpointInputDetails,
  type CheckpointOperation,
} from "./core/errors.js";
export { ProjectionError } from "./runner/project-batch.js";
export { ProjectionGroupError } from "./runner/group-options.js";
export { QueryBudgetError } from "./core/query-budget.js";
export { CheckpointTimeoutError } from "./core/wait-for.js";
export { isCheckpointConflict } from "./sql/checkpoints.js";

// ── Limits: D1's limits, the name limit, and the query budget that keeps an invocation within D1's.
export { D1_MAX_BOUND_PARAMETERS, D1_MAX_STATEMENT_BYTES, D1_MAX_VALUE_BYTES, D1_QUERIES_PER_INVOCATION } from "./core/d1-limits.js";
export { MAX_NAME_BYTES } from "./core/validate.js";
export { QueryBudget } from "./core/query-budget.js";
export type { CountedRows, RowUsage } from "./core/row-usage.js";

// ── Schema: The DDL, and applying it yourself.
export { migrate, type MigrateOptions } from "./d1/migrate.js";
export { SCHEMA } from "./sql/schema.js";
