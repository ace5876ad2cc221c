// The checkpoint write of the D1 store: a save, alone or first in one batch
// with the caller's statements, parked events and riders (queries and lease
// statements after it); how each kind of write is retried and what a lost
// response means (decision 0006); and, when a condition fails, whose it was.
import type { LoadResult, ParkRequest, VersionFence } from "../core/store.js";
import { conditionHolds, type SaveArguments } from "../core/arguments.js";
import { isConflictMarker, saveSql } from "../sql/checkpoints.js";
import type { D1Calls } from "./calls.js";
import { CheckpointConflictError, D1OperationError, type CheckpointOperation } from "../core/errors.js";
import { PARK_SQL } from "../sql/parked-events.js";
import { fencedOut } from "../sql/versions.js";
import type { CheckVerdict } from "./retry.js";

/**
 * Statements a commit sends after its writes in the same batch (`first`), and
 * what to send alone (`again`) when a lost response turns out to have landed;
 * the results are returned in the shape of `again` (`first` without its first
 * `skip` statements).
 */
export interface Riders {
  readonly first: readonly D1PreparedStatement[];
  readonly again: readonly D1PreparedStatement[];
  readonly skip: number;
}

/**
 * Conditional checkpoint statements made by `saveStatement`, with their
 * checkpoint's name: when one of them is among a commit's statements, a
 * failed condition in the batch may be theirs rather than the commit's own.
 */
const conditionalStatements = new WeakMap<D1PreparedStatement, string>();

/** The checkpoint save as a statement; a conditional one handed to the caller is registered for attribution. */
export function saveStatement(
  calls: D1Calls,
  name: string,
  position: number,
  expected: number | null | undefined,
  handedOut = false,
  fence?: VersionFence,
): D1PreparedStatement {
  const { sql, bindings } = saveSql(name, position, expected, fence);
  const statement = calls.db.prepare(sql).bind(...bindings);
  if (handedOut && expected !== undefined) conditionalStatements.set(statement, name);
  return statement;
}

/**
 * Saves a checkpoint, alone or first in one batch with the caller's
 * statements, and then `riders`, whose results are returned. An unconditional
 * save is an idempotent upsert; a conditional write is checked with a `load`
 * before it is sent again; an unconditional commit with statements, or one
 * where `expected === position`, cannot be checked and is sent once. When the
 * check finds that the write landed, the riders are sent alone (`again`).
 */
export async function writeCheckpoint<Row = never>(
  calls: D1Calls,
  operation: "save" | "commit",
  args: SaveArguments,
  statements: readonly D1PreparedStatement[],
  riders?: Riders,
  parked: readonly ParkRequest[] = [],
): Promise<D1Result<Row>[]> {
  const { db } = calls;
  const { name, position, expected, signal, fence } = args;
  const checkpoint = saveStatement(calls, name, position, expected, false, fence);
  const parks = parked.map((event) => db.prepare(PARK_SQL).bind(name, event.position, event.error));
  const batch = [checkpoint, ...parks, ...statements, ...(riders?.first ?? [])];
  const send = async (): Promise<D1Result<Row>[]> => {
    try {
      if (batch.length === 1) {
        await calls.run(checkpoint);
        return [];
      }
      const results = await calls.batch<Row>(batch);
      return riders === undefined ? [] : results.slice(batch.length - riders.first.length + riders.skip);
    } catch (error) {
      if (isConflictMarker(error)) throw await attributeConflict(calls, operation, args, statements, error);
      throw error;
    }
  };
  const check = async (): Promise<CheckVerdict<D1Result<Row>[]>> => {
    const current = await calls.load(operation, name);
    const at = current.found ? current.position : null;
    if (at === position) return { landed: true, value: riders === undefined ? [] : await calls.batch<Row>(riders.again) };
    if (expected !== undefined && conditionHolds(expected, current)) return { landed: false };
    return { landed: "unknown", found: `the checkpoint is now at ${at === null ? "no checkpoint" : `position ${at}`}` };
  };
  const alone = statements.length === 0 && parks.length === 0;
  const kind = expected === undefined ? (alone ? "idempotent" : "once") : expected !== position || alone ? "checked" : "once";
  const results = await calls.call({ operation, checkpoint: name, signal, kind, send, check });
  calls.remember(name, position);
  return results;
}

/**
 * The error for a batch in which a conditional checkpoint statement failed.
 * Ours runs first and alone decides when nothing else could fail that way;
 * otherwise one `load` (retried like any read) tells whose condition failed:
 * ours held if the checkpoint is still at `expected`.
 */
async function attributeConflict(
  calls: D1Calls,
  operation: CheckpointOperation,
  { name, expected, signal, fence }: SaveArguments,
  statements: readonly D1PreparedStatement[],
  error: unknown,
): Promise<Error> {
  if (fence !== undefined) {
    // The fence's version may have been switched or dropped: that is the run's end, not a conflict to retry.
    const state = await calls.call({
      operation,
      checkpoint: name,
      signal,
      kind: "read",
      send: () => calls.versionState(fence.name, fence.version),
    });
    if (state !== fence.state) return fencedOut(operation, name, fence, state, error);
  }
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
  if (statements.length === 0) return new CheckpointConflictError(operation, name, expected, { cause: error });
  let current: LoadResult;
  try {
    // Retried: one transient fault must not turn a plain conflict into a failure.
    current = await calls.call({ operation, checkpoint: name, signal, kind: "read", send: () => calls.load(operation, name) });
  } catch (cause) {
    return new D1OperationError(operation, name, error, {
      attempts: 1,
      transient: false,
      outcomeUnknown: false,
      reason: `a checkpoint condition failed (this one's, or one among the statements${others.length === 0 ? "" : `: ${others.join(", ")}`}), and the load that would tell which failed too (${cause instanceof Error ? cause.message : String(cause)}); nothing was applied`,
    });
  }
  return conditionHolds(expected, current) ? theirs() : new CheckpointConflictError(operation, name, expected, { cause: error });
}
