// Projection versions on D1 (decision 0020): each call reads the version
// records and the database's tables and views (one round trip), plans and
// checks its change (version-plans.ts), then sends it in one `batch()` whose
// first statement fails unless the records still are what was read. A lost
// response is checked by reading the version's state again.
import type { OperationOptions, ProjectionVersion, RebuildOptions, SwitchOptions, VersionState } from "../core/store.js";
import type { D1Calls } from "./calls.js";
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
import type { CheckVerdict } from "./retry.js";
import { hasRowsSql, planDrop, planRebuild, planSwitch, SCHEMA_OBJECTS_SQL, snapshotOf, type SchemaObject, type Snapshot } from "../sql/version-plans.js";
import { checkSignal, checkVersion } from "../core/validate.js";
import { parseNamed } from "../core/arguments.js";

type Operation = "rebuild" | "switch" | "dropVersion";

/** The version records of `name`, ascending by version: one round trip. */
export async function versions(base: D1Calls, name: string, options: OperationOptions | undefined): Promise<ProjectionVersion[]> {
  const { name: valid, signal } = parseNamed("versions", name, options);
  return read(base.budgeted("versions", valid, options?.budget), "versions", valid, signal);
}

/** The state of one version (`undefined`: no such version): one round trip. */
export async function versionState(base: D1Calls, name: string, version: number, options: OperationOptions | undefined): Promise<VersionState | undefined> {
  const { name: valid, signal } = parseNamed("versions", name, options);
  const at = checkVersion("versions", valid, version);
  const calls = base.budgeted("versions", valid, options?.budget);
  return calls.call({ operation: "versions", checkpoint: valid, signal, kind: "read", send: () => stateOf(calls, valid, at) });
}

/** Records `version` as a rebuild of `name` beside the live version and creates its tables, in one batch. */
export async function startRebuild(
  base: D1Calls,
  name: string,
  version: number,
  options: RebuildOptions<readonly D1PreparedStatement[]>,
): Promise<void> {
  const { name: valid, version: at, signal, tables, liveTables, create: given } = parseRebuild(name, version, options);
  const calls = base.budgeted("rebuild", valid, options.budget);
  const create = given === undefined ? [] : calls.checkStatements("rebuild", valid, given, "options.create");
  const { steps, mustBeEmpty } = planRebuild(valid, at, tables, liveTables, await snapshot(calls, "rebuild", valid, signal));
  if (mustBeEmpty.length > 0) {
    // Tables that exist already (a migration made them) must be empty: the rebuild projects every event into them.
    const used = await calls.call({
      operation: "rebuild",
      checkpoint: valid,
      signal,
      kind: "read",
      send: async () => (await calls.batch<{ used: unknown }>(mustBeEmpty.map((table) => calls.db.prepare(hasRowsSql(table))))).map((result) => result.results[0]?.used),
    });
    const full = mustBeEmpty.filter((_table, index) => used[index] === 1);
    if (full.length > 0) throw new ProjectionVersionError("rebuild", valid, at, `a rebuild starts from empty tables, and ${full.join(", ")} has rows; nothing was applied`);
  }
  await apply(calls, "rebuild", valid, at, signal, steps, create, "building");
}

/** Switches the rebuild `version` of `name` live in one batch (see `D1CheckpointStore.switchVersion`). */
export async function switchVersion(base: D1Calls, name: string, version: number, options: SwitchOptions | undefined): Promise<void> {
  const { name: valid, signal } = parseNamed("switch", name, options, SWITCH_KEYS);
  const at = checkVersion("switch", valid, version);
  const retire = parseSwitch(valid, options);
  const calls = base.budgeted("switch", valid, options?.budget);
  const steps = planSwitch(valid, at, retire, await snapshot(calls, "switch", valid, signal));
  await apply(calls, "switch", valid, at, signal, steps, [], "live");
}

/** Drops a version that is not live: its record, checkpoint, parked events, lease and tables, in one batch. */
export async function dropVersion(base: D1Calls, name: string, version: number, options: OperationOptions | undefined): Promise<void> {
  const { name: valid, signal } = parseNamed("dropVersion", name, options);
  const at = checkVersion("dropVersion", valid, version);
  checkSignal("dropVersion", valid, signal);
  const calls = base.budgeted("dropVersion", valid, options?.budget);
  const steps = planDrop(valid, at, await snapshot(calls, "dropVersion", valid, signal));
  await apply(calls, "dropVersion", valid, at, signal, steps, [], undefined);
}

async function stateOf(calls: D1Calls, name: string, version: number): Promise<VersionState | undefined> {
  return toState(await calls.versionState(name, version));
}

/** Every projection's version records and the database's tables, views and triggers, in one round trip. */
async function snapshot(calls: D1Calls, operation: CheckpointOperation, name: string, signal: AbortSignal | undefined): Promise<Snapshot> {
  const [records, objects] = await calls.call({
    operation,
    checkpoint: name,
    signal,
    kind: "read",
    send: () => calls.batch<Record<string, unknown>>([calls.db.prepare(ALL_VERSIONS_SQL), calls.db.prepare(SCHEMA_OBJECTS_SQL)]),
  });
  return snapshotOf(operation, name, (records?.results ?? []) as unknown as VersionRow[], (objects?.results ?? []) as unknown as SchemaObject[]);
}

async function read(calls: D1Calls, operation: CheckpointOperation, name: string, signal: AbortSignal | undefined): Promise<ProjectionVersion[]> {
  const rows = await calls.call({
    operation,
    checkpoint: name,
    signal,
    kind: "read",
    send: async () => (await calls.all<VersionRow>(calls.db.prepare(VERSIONS_SQL).bind(name))).results,
  });
  return rows.map((row) => projectionVersion(operation, name, row));
}

/**
 * Sends a version change in one batch. A failed guard is a
 * {@link ProjectionVersionError}; a lost response is checked by the version's
 * state: `landed` when it is `after` (`undefined`: the record is gone).
 */
async function apply(
  calls: D1Calls,
  operation: Operation,
  name: string,
  version: number,
  signal: AbortSignal | undefined,
  steps: readonly SqlStep[],
  extra: readonly D1PreparedStatement[],
  after: VersionState | undefined,
): Promise<void> {
  const batch = [...steps.map(({ sql, bindings }) => calls.db.prepare(sql).bind(...bindings)), ...extra];
  const before = operation === "dropVersion" ? "present" : operation === "switch" ? "building" : "not building";
  await calls.call({
    operation,
    checkpoint: name,
    signal,
    kind: "checked",
    send: async () => {
      try {
        await calls.batch(batch);
      } catch (error) {
        throw versionChangeError(operation, name, version, error);
      }
    },
    check: async (): Promise<CheckVerdict<undefined>> => {
      const state = await stateOf(calls, name, version);
      if (state === after) return { landed: true, value: undefined };
      const unchanged = before === "present" ? state !== undefined : before === "building" ? state === "building" : state !== "building";
      return unchanged ? { landed: false } : { landed: "unknown", found: `version ${version} is ${state ?? "gone"} now` };
    },
  });
}
