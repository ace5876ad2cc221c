// Projection versions on a Durable Object's SQLite (decision 0020): the same
// records, checks and statements as on D1, each change in one `transactionSync`.
import type { OperationOptions, ProjectionVersion, RebuildOptions, SwitchOptions, VersionState } from "../core/store.js";
import { VERSION_STATE_SQL } from "../sql/checkpoints.js";
import { type CheckpointOperation, ProjectionVersionError } from "../core/errors.js";
import {
  ALL_VERSIONS_SQL,
  parseRebuild,
  parseSwitch,
  projectionVersion,
  toState,
  versionChangeError,
  VERSIONS_SQL,
  type SqlStep,
  type VersionRow,
  SWITCH_KEYS,
} from "../sql/versions.js";
import { checkSignal, checkVersion } from "../core/validate.js";
import { parseNamed } from "../core/arguments.js";
import { hasRowsSql, planDrop, planRebuild, planSwitch, SCHEMA_OBJECTS_SQL, snapshotOf, type SchemaObject, type Snapshot } from "../sql/version-plans.js";

/** The version records of `name`, ascending by version. */
export function versionsSync(storage: DurableObjectStorage, name: string, options?: OperationOptions): ProjectionVersion[] {
  const { name: valid, signal } = parseNamed("versions", name, options);
  signal?.throwIfAborted();
  return read(storage, "versions", valid);
}

/** The state of one version (`undefined`: no such version). */
export function versionStateSync(
  storage: DurableObjectStorage,
  name: string,
  version: number,
  options?: OperationOptions,
  exec: (checkpoint: string, query: string, ...bindings: unknown[]) => SqlStorageCursor<Record<string, SqlStorageValue>> = (_checkpoint, query, ...bindings) => storage.sql.exec(query, ...bindings),
): VersionState | undefined {
  const { name: valid, signal } = parseNamed("versions", name, options);
  const at = checkVersion("versions", valid, version);
  signal?.throwIfAborted();
  return toState((exec(valid, VERSION_STATE_SQL, valid, at).toArray()[0] as { state?: unknown } | undefined)?.state);
}

/** Records a rebuild and runs `create` in one transaction. */
export function startRebuildSync(
  storage: DurableObjectStorage,
  name: string,
  version: number,
  options: RebuildOptions<(sql: SqlStorage) => void>,
  checkCreate: (create: unknown) => (sql: SqlStorage) => void,
): void {
  const { name: valid, version: at, signal, tables, liveTables, create: given } = parseRebuild(name, version, options);
  const create = given === undefined ? undefined : checkCreate(given);
  signal?.throwIfAborted();
  apply(storage, "rebuild", valid, at, () => {
    const { steps, mustBeEmpty } = planRebuild(valid, at, tables, liveTables, snapshot(storage, "rebuild", valid));
    const full = mustBeEmpty.filter((table) => (storage.sql.exec(hasRowsSql(table)).toArray()[0] as { used?: unknown } | undefined)?.used === 1);
    if (full.length > 0) throw new ProjectionVersionError("rebuild", valid, at, `a rebuild starts from empty tables, and ${full.join(", ")} has rows; nothing was applied`);
    return steps;
  }, create);
}

/** Switches a rebuild live in one transaction. */
export function switchVersionSync(storage: DurableObjectStorage, name: string, version: number, options?: SwitchOptions): void {
  const { name: valid, signal } = parseNamed("switch", name, options, SWITCH_KEYS);
  const at = checkVersion("switch", valid, version);
  const retire = parseSwitch(valid, options);
  signal?.throwIfAborted();
  apply(storage, "switch", valid, at, () => planSwitch(valid, at, retire, snapshot(storage, "switch", valid)));
}

/** Drops a version that is not live in one transaction. */
export function dropVersionSync(storage: DurableObjectStorage, name: string, version: number, options?: OperationOptions): void {
  const { name: valid, signal } = parseNamed("dropVersion", name, options);
  const at = checkVersion("dropVersion", valid, version);
  checkSignal("dropVersion", valid, signal)?.throwIfAborted();
  apply(storage, "dropVersion", valid, at, () => planDrop(valid, at, snapshot(storage, "dropVersion", valid)));
}

function snapshot(storage: DurableObjectStorage, operation: CheckpointOperation, name: string): Snapshot {
  const rows = storage.sql.exec(ALL_VERSIONS_SQL).toArray() as unknown as VersionRow[];
  return snapshotOf(operation, name, rows, storage.sql.exec(SCHEMA_OBJECTS_SQL).toArray() as unknown as SchemaObject[]);
}

function read(storage: DurableObjectStorage, operation: CheckpointOperation, name: string): ProjectionVersion[] {
  return (storage.sql.exec(VERSIONS_SQL, name).toArray() as unknown as VersionRow[]).map((row) => projectionVersion(operation, name, row));
}

/** Reads, checks and writes in one transaction: nothing can change between the check and the change. */
function apply(
  storage: DurableObjectStorage,
  operation: "rebuild" | "switch" | "dropVersion",
  name: string,
  version: number,
  steps: () => readonly SqlStep[],
  create?: (sql: SqlStorage) => void,
): void {
  storage.transactionSync(() => {
    try {
      for (const { sql, bindings } of steps()) storage.sql.exec(sql, ...bindings);
    } catch (error) {
      throw versionChangeError(operation, name, version, error);
    }
    create?.(storage.sql);
  });
}
